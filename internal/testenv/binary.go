package testenv

import (
	"context"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/ferryworks/ferry/internal/devproc"
)

// Binary is one of the module's main packages, built at most once per test
// process for the tests that run the real binary: go build reuses compiled
// packages from its cache but links the binary again on every call, which
// costs seconds of CPU. A race-built test builds it with -race
// (devproc.Build). Declare it at package level and call Remove from
// TestMain once the tests have run:
//
//	var ferryBin = testenv.Binary{Pkg: "./cmd/ferry"}
//
//	func TestMain(m *testing.M) {
//		code := m.Run()
//		ferryBin.Remove()
//		os.Exit(code)
//	}
type Binary struct {
	// Pkg is the main package, a path from the module root ("./cmd/ferry").
	Pkg string
	// LDFlags, when set, returns the -ldflags to link with; it is called
	// once, on the first Path.
	LDFlags func() (string, error)

	once sync.Once
	dir  string
	path string
	err  error
}

// Path builds the binary on first use and returns its path. It marks t as
// an integration test: -short skips it before anything is built.
func (b *Binary) Path(t testing.TB) string {
	t.Helper()
	Integration(t)
	b.once.Do(func() {
		if b.dir, b.err = os.MkdirTemp("", "ferry-testbin"); b.err != nil {
			return
		}
		var opts devproc.BuildOptions
		if b.LDFlags != nil {
			if opts.LDFlags, b.err = b.LDFlags(); b.err != nil {
				b.err = fmt.Errorf("ldflags: %w", b.err)
				return
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		defer cancel()
		b.path, b.err = devproc.Build(ctx, b.Pkg, b.dir, opts)
	})
	if b.err != nil {
		t.Fatalf("build %s: %v", b.Pkg, b.err)
	}
	return b.path
}

// Remove deletes what Path built.
func (b *Binary) Remove() {
	if b.dir != "" {
		_ = os.RemoveAll(b.dir)
	}
}
