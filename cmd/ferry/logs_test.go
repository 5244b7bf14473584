package main

import (
	"bytes"
	"context"
	"io"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/ferryworks/ferry/internal/testenv"
)

// runOnTerminal runs ferry with its stderr on a pseudo-terminal and returns
// what it wrote there.
func runOnTerminal(t *testing.T, env []string, args ...string) string {
	t.Helper()
	tty, ctl := testenv.PTY(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, builtFerry.Path(t), args...)
	cmd.Env = env
	cmd.Stdout = io.Discard
	cmd.Stderr = tty
	var seen bytes.Buffer
	read := make(chan struct{})
	go func() {
		defer close(read)
		_, _ = io.Copy(&seen, ctl) // ends with EIO once no process holds the terminal
	}()
	if err := cmd.Run(); err != nil {
		if _, ok := err.(*exec.ExitError); !ok {
			t.Fatalf("run ferry %v: %v", args, err)
		}
	}
	tty.Close()
	select {
	case <-read:
	case <-ctx.Done():
		t.Fatal("the terminal's output never ended")
	}
	return seen.String()
}

// Commands people run log for people when stderr is a terminal, unless
// FERRY_LOG_FORMAT says otherwise.
func TestConsoleLogsOnATerminal(t *testing.T) {
	t.Parallel()
	w := testenv.SharedWorld(t)
	// dlq ls goes on without Redis and warns that it does.
	env := worldEnv(w, "FERRY_REDIS_URL=redis://127.0.0.1:1")
	out := runOnTerminal(t, env, "dlq", "ls")
	if !strings.Contains(out, "WRN") || !strings.Contains(out, "redis unavailable") || strings.Contains(out, `"level":"warn"`) {
		t.Errorf("dlq ls on a terminal logs:\n%s", out)
	}
	out = runOnTerminal(t, append(env, "FERRY_LOG_FORMAT=json"), "dlq", "ls")
	if !strings.Contains(out, `"level":"warn"`) || !strings.Contains(out, "redis unavailable") {
		t.Errorf("dlq ls with FERRY_LOG_FORMAT=json on a terminal logs:\n%s", out)
	}
	// Off a terminal the default stays JSON, for log pipelines.
	if r := ferry(t, env, "dlq", "ls"); !strings.Contains(r.stderr, `"level":"warn"`) {
		t.Errorf("dlq ls off a terminal logs:\n%s", r.stderr)
	}
}
