//go:build !race

package localaws

import (
	"fmt"
	"os"

	"github.com/sivchari/kumo"

	"github.com/ferryworks/ferry/internal/localaws/kumochild"
)

// A binary built without -race (cmd/devstack, the bench, the chaos
// campaign) serves kumo from itself, re-executed with kumochild.Env set.
func init() {
	if os.Getenv(kumochild.Env) == "1" {
		kumochild.Serve(func() (string, func()) {
			srv := kumo.NewServer()
			return srv.URL, srv.Close
		})
	}
}

// kumoExecutable returns this binary, which serves kumo when re-executed.
func kumoExecutable() (string, error) {
	exe, err := os.Executable()
	if err != nil {
		return "", fmt.Errorf("locate own executable for kumo: %w", err)
	}
	return exe, nil
}
