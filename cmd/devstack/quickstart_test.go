package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ferryworks/ferry/internal/demo"
	"github.com/ferryworks/ferry/internal/devproc"
	"github.com/ferryworks/ferry/internal/testenv"
)

// The README's quickstart, as a user runs it: scripts/run.sh (what `make
// run` does) with the user's own environment, until every demo task's event
// has been printed; then Ctrl-C, which must stop every process it started.
// Its files go to a temporary RUN_STATE_DIR instead of the checkout. It
// runs over https (`make run TLS=1`), the transport of production: the
// worker's uploads travel aws-chunked with trailing checksums.
func TestQuickstart(t *testing.T) {
	t.Parallel()
	testenv.Integration(t)
	root, err := devproc.ModuleRoot(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	state := t.TempDir()
	awsPort, err := devproc.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	metricsPort, err := devproc.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("bash", filepath.Join(root, "scripts", "run.sh"))
	cmd.Dir = root
	// The user's environment as it is (AWS_CA_BUNDLE and all), with the
	// embedded Redis rather than a shared one.
	// A race-built test has make run build race binaries, as devproc.Build
	// does for the other tests.
	goflags := os.Getenv("GOFLAGS")
	if devproc.RaceEnabled {
		goflags = strings.TrimSpace(goflags + " -race")
	}
	cmd.Env = append(environWithout("FERRY_REDIS_URL", "DEVSTACK_ADDR", "FERRY_METRICS_ADDR", "RUN_STATE_DIR", "DEVSTACK_TLS", "GOFLAGS"),
		"RUN_STATE_DIR="+state, "DEVSTACK_TLS=1", "GOFLAGS="+goflags,
		fmt.Sprintf("DEVSTACK_ADDR=127.0.0.1:%d", awsPort),
		fmt.Sprintf("FERRY_METRICS_ADDR=127.0.0.1:%d", metricsPort))
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr := &testenv.LockedBuffer{}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pgid := cmd.Process.Pid
	t.Cleanup(func() { _ = syscall.Kill(-pgid, syscall.SIGKILL) })

	event := regexp.MustCompile(`^\d\d:\d\d:\d\d\s+(task\.(completed|access_denied|failed))\s+(\S+)\s+(\S+)`)
	type seen struct{ typ, customer string }
	events := map[string]seen{}
	lines := make(chan string)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	var out strings.Builder
	want := -1
	deadline := time.After(4 * time.Minute)
	for want < 0 || len(events) < want {
		select {
		case line, ok := <-lines:
			if !ok {
				t.Fatalf("run.sh ended before printing every event (%d of %d):\n%s\nstderr:\n%s", len(events), want, out.String(), stderr.String())
			}
			out.WriteString(line + "\n")
			if m := event.FindStringSubmatch(line); m != nil {
				events[m[4]] = seen{m[1], m[3]}
			}
		case <-deadline:
			t.Fatalf("no complete set of events after 4 minutes (%d of %d):\n%s\nstderr:\n%s", len(events), want, out.String(), stderr.String())
		}
		if want < 0 {
			if b, err := os.ReadFile(filepath.Join(state, ".run", "demo-tasks.jsonl")); err == nil && len(b) > 0 && b[len(b)-1] == '\n' {
				want = strings.Count(string(b), "\n")
			}
		}
	}
	// Every demo task ends as the manifest's world says it should.
	data, err := os.ReadFile(filepath.Join(state, ".devstack.json"))
	if err != nil {
		t.Fatal(err)
	}
	var m demo.Manifest
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatal(err)
	}
	tasks := demo.Tasks(m)
	for _, dt := range tasks {
		if got := events[dt.Task.TaskID]; got.typ != dt.Expected || got.customer != dt.Task.CustomerID {
			t.Errorf("%s: %+v, want %s for %s (%s)", dt.Task.TaskID, got, dt.Expected, dt.Task.CustomerID, dt.Why)
		}
	}
	for _, id := range []string{"wayne", "stark", "tyrell", "cyberdyne"} {
		if _, ok := events["demo-"+id]; !ok {
			t.Errorf("no event for demo-%s", id)
		}
	}
	if !strings.Contains(out.String(), "devstack is serving at https://127.0.0.1:") {
		t.Errorf("the devstack does not say it serves https:\n%s", out.String())
	}
	if !strings.Contains(out.String(), "hint:") {
		t.Errorf("no hints printed:\n%s", out.String())
	}

	// Ctrl-C reaches the whole foreground process group.
	if err := syscall.Kill(-pgid, syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	go func() {
		for range lines { //nolint:revive // drain so run.sh never blocks on a full pipe
		}
	}()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		t.Fatalf("run.sh still running 60 s after Ctrl-C\nstderr:\n%s", stderr.String())
	}
	// Nothing it started is left behind.
	for i := 0; ; i++ {
		err := syscall.Kill(-pgid, 0)
		if err == syscall.ESRCH {
			break
		}
		if i == 100 {
			t.Fatalf("processes of run.sh's group still alive 10 s after it exited (kill -0: %v)", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
