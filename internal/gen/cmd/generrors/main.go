// Command generrors writes the root package's errors_gen.go from
// franz-go's kerr. It is run by `go generate` in the module root.
package main

import (
	"flag"
	"log"
	"os"

	"github.com/tributary/tributary/internal/gen"
)

func main() {
	out := flag.String("o", "errors_gen.go", "output file")
	flag.Parse()
	src, err := gen.Errors()
	if err != nil {
		log.Fatal(err)
	}
	if err := os.WriteFile(*out, src, 0o644); err != nil {
		log.Fatal(err)
	}
}
