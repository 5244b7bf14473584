// Package devproc is what ferry's development tools (the chaos campaign,
// the load harness, the devstack) share: read their command line, build
// ferry from this module and find free loopback ports.
package devproc

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// ModuleRoot finds the ferry module from the working directory.
func ModuleRoot(ctx context.Context) (string, error) {
	out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", fmt.Errorf("not inside the ferry module (go env GOMOD is empty): run from the repository or pass a built binary")
	}
	return filepath.Dir(gomod), nil
}

// BuildFerry compiles ./cmd/ferry into dir and returns the binary's path, so
// the tools run the same binary production runs.
func BuildFerry(ctx context.Context, dir string) (string, error) {
	return Build(ctx, "./cmd/ferry", dir, BuildOptions{})
}

// BuildOptions are how Build compiles a binary.
type BuildOptions struct {
	// LDFlags, when not empty, are passed to the linker (go build -ldflags).
	LDFlags string
	// Plain builds without -race even when this process was built with it.
	Plain bool
}

// Build compiles the module's main package pkg (a path from the module
// root, such as "./cmd/devstack") into dir, named after its last element,
// and returns the binary's path.
//
// A process built with -race (the tests) builds with -race too, unless
// opts.Plain is set. The processes an integration test starts (workers, the
// devstack) are then checked for races like the test itself, and they reuse
// the race-instrumented packages the test binaries were compiled from: on
// an empty build cache `make test` compiles the module once instead of once
// with -race and once without.
func Build(ctx context.Context, pkg, dir string, opts BuildOptions) (string, error) {
	root, err := ModuleRoot(ctx)
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, filepath.Base(pkg))
	args := []string{"build", "-o", bin}
	if RaceEnabled && !opts.Plain {
		args = append(args, "-race")
	}
	if opts.LDFlags != "" {
		args = append(args, "-ldflags", opts.LDFlags)
	}
	cmd := exec.CommandContext(ctx, "go", append(args, pkg)...)
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go %s: %w\n%s", strings.Join(append(args, pkg), " "), err, out)
	}
	return bin, nil
}

// FreePort returns a loopback port nothing listens on right now.
func FreePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// ParseFlags reads a tool's command line into fs, whose -h prints usage and
// then the flags. When ok is false the tool exits with code at once: 0 after
// -h, 2 on bad usage (fs has said what was wrong).
func ParseFlags(fs *flag.FlagSet, usage string, args []string) (code int, ok bool) {
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), usage)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0, false
		}
		return 2, false
	}
	return 0, true
}
