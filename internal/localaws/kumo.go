package localaws

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/ferryworks/ferry/internal/localaws/kumochild"
)

// kumo keeps its services (and their buckets and queues) in process-global
// singletons, and two kumo servers in one process race while wiring them.
// Each Stack therefore runs kumo in a child process of its own (the
// kumochild protocol), so parallel tests never see each other's queues and
// buckets. The child is the running binary re-executed (kumo_norace.go) or,
// in a binary built with -race, the kumod command (kumo_race.go).

// kumoBackend is a running kumo: its URL and how to stop it.
type kumoBackend struct {
	URL   string
	close func() error
}

func startKumoProcess() (*kumoBackend, error) {
	exe, err := kumoExecutable()
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
