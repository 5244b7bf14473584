package localaws

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"time"

	"github.com/sivchari/kumo"
)

// kumoChildEnv marks a process started by startKumoProcess: it serves kumo
// and nothing else.
const kumoChildEnv = "FERRY_LOCALAWS_KUMO_CHILD"

// kumo keeps its services (and their buckets and queues) in process-global
// singletons, and two kumo servers in one process race while wiring them.
// Each Stack therefore runs kumo in a child process of its own — the running
// binary re-executed with kumoChildEnv set — so parallel tests never see each
// other's queues and buckets.
func init() {
	if os.Getenv(kumoChildEnv) == "1" {
		runKumoChild()
	}
}

// runKumoChild serves kumo, reports its URL on file descriptor 3 and exits
// when its stdin closes (the parent closed it or died).
func runKumoChild() {
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

// kumoBackend is a running kumo: its URL and how to stop it.
type kumoBackend struct {
	URL   string
	close func() error
}

func startKumoProcess() (*kumoBackend, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("locate own executable for kumo: %w", err)
	}
	urlR, urlW, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("kumo url pipe: %w", err)
	}
	defer urlR.Close()
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), kumoChildEnv+"=1")
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
