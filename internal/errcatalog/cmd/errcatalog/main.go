// Command errcatalog writes docs/errors.md (`make docs`); run it from the
// repository root, or give the path with -o.
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/ferryworks/ferry/internal/errcatalog"
)

func main() {
	out := flag.String("o", errcatalog.Path, "file to write")
	flag.Parse()
	if err := os.WriteFile(*out, errcatalog.Markdown(), 0o644); err != nil {
		fmt.Fprintf(os.Stderr, "errcatalog: %v (run it from the repository root, or give -o PATH)\n", err)
		os.Exit(1)
	}
}
