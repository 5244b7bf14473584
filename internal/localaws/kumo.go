package localaws

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/sivchari/kumo"

	"github.com/ferryworks/ferry/internal/devproc"
	"github.com/ferryworks/ferry/internal/localaws/kumochild"
)

// kumo keeps its services (and their buckets and queues) in process-global
// singletons, and two kumo servers in one process race while wiring them.
// Each Stack therefore runs kumo in a child process of its own (the
// kumochild protocol), so parallel tests never see each other's queues and
// buckets. The child is the running binary re-executed, or, when this binary
// is built with -race, the kumod command (kumodPath).
func init() {
	if os.Getenv(kumochild.Env) == "1" {
		kumochild.Serve()
	}
}

// kumoBackend is a running kumo: its URL and how to stop it.
type kumoBackend struct {
	URL   string
	close func() error
}

func startKumoProcess() (*kumoBackend, error) {
	var exe string
	var err error
	if raceEnabled {
		exe, err = kumodPath()
	} else if exe, err = os.Executable(); err != nil {
		err = fmt.Errorf("locate own executable for kumo: %w", err)
	}
	if err != nil {
		return nil, err
	}
	urlR, urlW, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("kumo url pipe: %w", err)
	}
	defer urlR.Close()
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), kumochild.Env+"=1")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		_ = urlW.Close()
		return nil, fmt.Errorf("kumo stdin: %w", err)
	}
	// kumo's S3 service logs every request to stdout; its stderr carries
	// panics and race reports worth seeing.
	cmd.Stdout = nil
	cmd.Stderr = os.Stderr
	cmd.ExtraFiles = []*os.File{urlW}
	setParentDeathSignal(cmd)
	if err := cmd.Start(); err != nil {
		_ = urlW.Close()
		return nil, fmt.Errorf("start kumo process: %w", err)
	}
	_ = urlW.Close()

	type result struct {
		url string
		err error
	}
	ch := make(chan result, 1)
	go func() {
		line, err := bufio.NewReader(urlR).ReadString('\n')
		ch <- result{strings.TrimSpace(line), err}
	}()
	var res result
	select {
	case res = <-ch:
	case <-time.After(60 * time.Second):
		res.err = errors.New("timed out waiting for kumo to listen")
	}
	stop := func() error {
		_ = stdin.Close()
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			return err
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			return <-done
		}
	}
	if res.err != nil || !strings.HasPrefix(res.url, "http://") {
		_ = cmd.Process.Kill()
		_ = stop()
		return nil, fmt.Errorf("kumo process did not report its URL: %v", res.err)
	}
	return &kumoBackend{URL: res.url, close: stop}, nil
}

var (
	sharedKumoOnce sync.Once
	sharedKumo     *kumoBackend
)

// startKumoInProcess returns the process-wide in-process kumo, starting it
// on first use. It is never stopped: kumo's state outlives its server anyway.
func startKumoInProcess() *kumoBackend {
	sharedKumoOnce.Do(func() {
		srv := kumo.NewServer()
		sharedKumo = &kumoBackend{URL: srv.URL, close: func() error { return nil }}
	})
	return sharedKumo
}

var kumod struct {
	once sync.Once
	path string
	err  error
}

// kumodPath returns the kumod binary (internal/localaws/kumod), building it
// on first use in this process. Builds are kept under the user's cache
// directory, named by a hash of what goes into them (the Go version, go.sum,
// the kumochild and kumod sources), so the test binaries of one `make test`
// share one link, and a later run links again only after one of those
// changed. Binaries of other versions are removed once a day old.
func kumodPath() (string, error) {
	kumod.once.Do(func() { kumod.path, kumod.err = buildKumod() })
	return kumod.path, kumod.err
}

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
	tmp, err := devproc.Build(ctx, "./internal/localaws/kumod", tmpDir)
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
