// Command hello is a real, dependency-free tool the cache tests build in seconds.
package main

import (
	"fmt"
	"os"
)

var version = "dev"

func main() {
	if len(os.Args) > 1 && os.Args[1] == "--version" {
		fmt.Println("hello version", version)
		return
	}
	fmt.Println("hello")
}
