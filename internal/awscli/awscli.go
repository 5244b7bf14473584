// Package awscli runs aws CLI (v1) commands for tests, as a customer would
// type them. Each Session is one Python process that hands every command's
// argv to the CLI's own driver (awscli.clidriver, what the `aws` script
// runs), so a test pays the CLI's start-up once rather than per command;
// parsing, signing and output are the CLI's.
package awscli

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// runner reads one JSON argv per line and answers one JSON line with the
// exit status and what the CLI printed.
const runner = `
import contextlib, io, json, sys
from awscli.clidriver import create_clidriver
out = sys.stdout
for line in sys.stdin:
    argv = json.loads(line)
    o, e = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(o), contextlib.redirect_stderr(e):
        try:
            rc = create_clidriver().main(argv)
        except SystemExit as x:
            rc = x.code if isinstance(x.code, int) else 1
        except Exception as x:
            print(repr(x), file=e)
            rc = 255
    out.write(json.dumps({"rc": rc, "stdout": o.getvalue(), "stderr": e.getvalue()}) + "\n")
    out.flush()
`

// Session is a running CLI for one set of credentials.
type Session struct {
	// Dir is a private directory for files commands read (file://…).
	Dir string

	mu     sync.Mutex
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	stdout *bufio.Reader
}

// Error is a command that exited non-zero; Stderr is what the CLI printed
// (the AWS error code and message).
type Error struct {
	Args   []string
	Code   int
	Stderr string
}

func (e *Error) Error() string {
	return fmt.Sprintf("aws %s: exit %d: %s", strings.Join(e.Args, " "), e.Code, strings.TrimSpace(e.Stderr))
}

// python finds an interpreter that has the awscli package: the one in
// PATH, or the one the aws script names.
func python() (string, error) {
	for _, p := range []string{"python3", "python"} {
		if bin, err := exec.LookPath(p); err == nil && exec.Command(bin, "-c", "import awscli").Run() == nil {
			return bin, nil
		}
	}
	aws, err := exec.LookPath("aws")
	if err != nil {
		return "", errors.New("the aws CLI (v1) is not installed")
	}
	f, err := os.Open(aws)
	if err != nil {
		return "", err
	}
	defer f.Close()
	line, _ := bufio.NewReader(f).ReadString('\n')
	if bin, ok := strings.CutPrefix(strings.TrimSpace(line), "#!"); ok && strings.Contains(bin, "python") {
		fields := strings.Fields(bin)
		if exec.Command(fields[0], append(fields[1:], "-c", "import awscli")...).Run() == nil {
			return fields[0], nil
		}
	}
	return "", errors.New("no Python interpreter with the awscli package found beside the aws CLI")
}

// Start starts a CLI session for t with env (AWS_ENDPOINT_URL, keys,
// region…) on top of the process environment stripped of AWS_* variables
// and config files. Without the CLI the test fails when CI is set and is
// skipped otherwise. The session stops at cleanup.
func Start(t testing.TB, env map[string]string) *Session {
	t.Helper()
	py, err := python()
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("aws CLI: %v", err)
		}
		t.Skipf("aws CLI: %v", err)
	}
	s := &Session{Dir: t.TempDir()}
	var e []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "AWS_") {
			e = append(e, kv)
		}
	}
	e = append(e, "AWS_CONFIG_FILE="+filepath.Join(s.Dir, ".config"), "AWS_SHARED_CREDENTIALS_FILE="+filepath.Join(s.Dir, ".credentials"),
		"AWS_PAGER=", "AWS_MAX_ATTEMPTS=1", "PYTHONIOENCODING=utf-8")
	for k, v := range env {
		e = append(e, k+"="+v)
	}
	s.cmd = exec.Command(py, "-c", runner)
	s.cmd.Env = e
	s.cmd.Dir = s.Dir
	s.cmd.Stderr = os.Stderr
	if s.stdin, err = s.cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	out, err := s.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	s.stdout = bufio.NewReader(out)
	if err := s.cmd.Start(); err != nil {
		t.Fatalf("start the aws CLI: %v", err)
	}
	t.Cleanup(func() {
		_ = s.stdin.Close()
		_ = s.cmd.Wait()
	})
	return s
}

// Try runs one command (argv without "aws") and returns its stdout; a
// non-zero exit is an *Error.
func (s *Session) Try(args ...string) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	line, err := json.Marshal(args)
	if err != nil {
		return "", err
	}
	if _, err := s.stdin.Write(append(line, '\n')); err != nil {
		return "", fmt.Errorf("aws CLI session: %w", err)
	}
	reply, err := s.stdout.ReadBytes('\n')
	if err != nil {
		return "", fmt.Errorf("aws CLI session ended: %w", err)
	}
	var r struct {
		RC     int    `json:"rc"`
		Stdout string `json:"stdout"`
		Stderr string `json:"stderr"`
	}
	if err := json.Unmarshal(bytes.TrimSpace(reply), &r); err != nil {
		return "", fmt.Errorf("aws CLI session: %w", err)
	}
	if r.RC != 0 {
		return r.Stdout, &Error{Args: args, Code: r.RC, Stderr: r.Stderr}
	}
	return r.Stdout, nil
}

// Run is Try that fails the test on error.
func (s *Session) Run(t testing.TB, args ...string) string {
	t.Helper()
	out, err := s.Try(args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// File writes content to name in the session's directory and returns it as
// a file:// argument.
func (s *Session) File(t testing.TB, name, content string) string {
	t.Helper()
	p := filepath.Join(s.Dir, name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return "file://" + p
}
