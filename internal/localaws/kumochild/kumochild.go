// Package kumochild is the protocol between internal/localaws and the child
// process that serves kumo for one local AWS stack: the child reports its
// URL on file descriptor 3 and exits when its stdin closes (the parent
// closed it, or died). The same child runs either as the parent's own
// binary re-executed (localaws sets Env) or as the small kumod command,
// which localaws runs instead when it is itself built with -race. The
// package does not import kumo, so a race build of localaws, which only
// starts children, does not compile kumo.
package kumochild

import (
	"fmt"
	"io"
	"os"
)

// Env marks a process started to serve kumo and nothing else: a binary
// whose init sees Env=1 calls Serve.
const Env = "FERRY_LOCALAWS_KUMO_CHILD"

// Serve starts the server with start (which returns its URL and how to stop
// it), serves until stdin closes, then exits the process; it never returns.
// It exits 2 at once when file descriptor 3 was not passed.
func Serve(start func() (url string, stop func())) {
	f := os.NewFile(3, "localaws-url")
	if f == nil {
		os.Exit(2)
	}
	url, stop := start()
	_, _ = fmt.Fprintln(f, url)
	_ = f.Close()
	_, _ = io.Copy(io.Discard, os.Stdin)
	stop()
	os.Exit(0)
}
