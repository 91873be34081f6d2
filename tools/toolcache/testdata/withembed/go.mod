module example.com/withembed

go 1.26

require example.com/embedder v0.1.0

replace example.com/embedder => ./embedder
