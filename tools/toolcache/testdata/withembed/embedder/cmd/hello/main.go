// Command hello embeds gen/*.txt, which its module does not hold: it builds only with the files added.
package main

import (
	"embed"
	"fmt"
	"os"
)

//go:embed gen/*.txt
var gen embed.FS

func main() {
	if len(os.Args) > 1 && os.Args[1] == "--version" {
		fmt.Println("hello v0.1.0")
		return
	}
	b, _ := gen.ReadFile("gen/greeting.txt")
	fmt.Print(string(b))
}
