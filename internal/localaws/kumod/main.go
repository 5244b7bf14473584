// Command kumod serves kumo for one internal/localaws stack (the
// kumochild protocol). localaws builds and runs it when localaws itself is
// compiled with -race: re-executing a race-instrumented test binary would
// run kumo, a third-party emulator, under the race detector too, and that
// was most of the CPU of the packages whose tests copy objects through a
// local stack (80 % of the worker package's). The stack's own code, the
// gate in front of kumo, stays in the test process and under -race.
package main

import (
	"github.com/sivchari/kumo"

	"github.com/ferryworks/ferry/internal/localaws/kumochild"
)

func main() {
	kumochild.Serve(func() (string, func()) {
		srv := kumo.NewServer()
		return srv.URL, srv.Close
	})
}
