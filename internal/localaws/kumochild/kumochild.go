// Package kumochild is the protocol between internal/localaws and the child
// process that serves kumo for one local AWS stack: the child reports its
// URL on file descriptor 3 and exits when its stdin closes (the parent
// closed it, or died). The same child runs either as the parent's own
// binary re-executed (localaws sets Env) or as the small kumod command,
// which localaws runs instead when it is itself built with -race.
package kumochild

import (
	"fmt"
	"io"
	"os"

	"github.com/sivchari/kumo"
)

// Env marks a process started to serve kumo and nothing else: a binary
// whose init sees Env=1 calls Serve.
const Env = "FERRY_LOCALAWS_KUMO_CHILD"

// Serve runs kumo until stdin closes, then exits the process; it never
// returns. It exits 2 at once when file descriptor 3 was not passed.
func Serve() {
	srv := kumo.NewServer()
	f := os.NewFile(3, "localaws-url")
	if f == nil {
		os.Exit(2)
	}
	_, _ = fmt.Fprintln(f, srv.URL)
	_ = f.Close()
	_, _ = io.Copy(io.Discard, os.Stdin)
	srv.Close()
	os.Exit(0)
}
