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
	return Build(ctx, "./cmd/ferry", dir)
}

// Build compiles the module's main package pkg (a path from the module
// root, such as "./cmd/devstack") into dir, named after its last element,
// and returns the binary's path.
func Build(ctx context.Context, pkg, dir string) (string, error) {
	root, err := ModuleRoot(ctx)
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, filepath.Base(pkg))
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, pkg)
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build %s: %w\n%s", pkg, err, out)
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
