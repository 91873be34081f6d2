module example.com/embedder

go 1.26
