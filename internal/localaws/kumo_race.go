//go:build race

package localaws

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"time"

	"github.com/ferryworks/ferry/internal/devproc"
)

// In a binary built with -race (the tests), kumo runs from the kumod
// command, built without -race. Re-executing the test binary would run kumo,
// a third-party emulator, under the race detector too, and that was most of
// the CPU of the packages whose tests copy objects through a local stack
// (80 % of the worker package's). The gate in front of kumo, which is
// ferry's, stays in the test process and under -race. This file does not
// import kumo, so race builds do not compile it either.

// kumoExecutable returns the kumod binary, building it on first use in
// this process.
func kumoExecutable() (string, error) {
	kumod.once.Do(func() { kumod.path, kumod.err = buildKumod() })
	return kumod.path, kumod.err
}

var kumod struct {
	once sync.Once
	path string
	err  error
}

// buildKumod builds the kumod command (internal/localaws/kumod). Builds are kept under the user's cache
// directory, named by a hash of what goes into them (the Go version, go.sum,
// the kumochild and kumod sources), so the test binaries of one `make test`
// share one link, and a later run links again only after one of those
// changed. Binaries of other versions are removed once a day old.
func buildKumod() (string, error) {
	ctx := context.Background()
	root, err := devproc.ModuleRoot(ctx)
	if err != nil {
		return "", fmt.Errorf("build kumod: %w", err)
	}
	h := sha256.New()
	fmt.Fprintf(h, "%s %s/%s\n", runtime.Version(), runtime.GOOS, runtime.GOARCH)
	inputs := []string{filepath.Join(root, "go.sum")}
	for _, dir := range []string{"kumochild", "kumod"} {
		srcs, err := filepath.Glob(filepath.Join(root, "internal", "localaws", dir, "*.go"))
		if err != nil {
			return "", err
		}
		inputs = append(inputs, srcs...)
	}
	for _, name := range inputs {
		b, err := os.ReadFile(name)
		if err != nil {
			return "", fmt.Errorf("build kumod: %w", err)
		}
		fmt.Fprintf(h, "%s %d\n", filepath.Base(name), len(b))
		h.Write(b)
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		cache = os.TempDir()
	}
	dir := filepath.Join(cache, "ferry", "kumod")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("build kumod: %w", err)
	}
	name := "kumod-" + hex.EncodeToString(h.Sum(nil))[:16]
	path := filepath.Join(dir, name)
	if _, err := os.Stat(path); err == nil {
		return path, nil
	}
	// Concurrent test processes may both build; each links to a name of
	// its own and renames it into place, which is atomic.
	tmpDir, err := os.MkdirTemp(dir, ".build-")
	if err != nil {
		return "", fmt.Errorf("build kumod: %w", err)
	}
	defer os.RemoveAll(tmpDir)
	tmp, err := devproc.Build(ctx, "./internal/localaws/kumod", tmpDir, devproc.BuildOptions{Plain: true})
	if err != nil {
		return "", err
	}
	if err := os.Rename(tmp, path); err != nil {
		return "", fmt.Errorf("build kumod: %w", err)
	}
	if old, _ := filepath.Glob(filepath.Join(dir, "kumod-*")); len(old) > 0 {
		for _, o := range old {
			if fi, err := os.Stat(o); err == nil && o != path && time.Since(fi.ModTime()) > 24*time.Hour {
				_ = os.Remove(o)
			}
		}
	}
	return path, nil
}
