module example.com/withdep

go 1.26

require example.com/lib v1.2.3

replace example.com/lib => ./lib
