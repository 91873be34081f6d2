// Command withdep has no version flag, like the Flux controllers: the cache reads its dependency's version.
package main

import (
	"fmt"

	"example.com/lib"
)

func main() { fmt.Println(lib.Greeting) }
