package chaos

import (
	"github.com/ferryworks/ferry/internal/devproc"

	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"
)

// redisServer is a throwaway redis-server without persistence, so a restart
// loses every key, as a crashed cache node without AOF would.
type redisServer struct {
	port int
	dir  string
	// args are extra redis-server arguments (a cluster node's).
	args []string

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{} // closed when cmd has been waited for
}

func startRedis(ctx context.Context, dir string) (*redisServer, error) {
	if _, err := exec.LookPath("redis-server"); err != nil {
		return nil, fmt.Errorf("redis-server not found in PATH (make test installs it): %w", err)
	}
	port, err := devproc.FreePort()
	if err != nil {
		return nil, err
	}
	r := &redisServer{port: port, dir: dir}
	return r, r.start(ctx)
}

func (r *redisServer) addr() string { return "127.0.0.1:" + strconv.Itoa(r.port) }

func (r *redisServer) start(ctx context.Context) error {
	args := append([]string{"--port", strconv.Itoa(r.port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", r.dir, "--loglevel", "warning"}, r.args...)
	cmd := exec.Command("redis-server", args...)
	setDeathSignal(cmd)
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start redis-server: %w", err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	r.mu.Lock()
	r.cmd, r.exited = cmd, exited
	r.mu.Unlock()
	c := redis.NewClient(&redis.Options{Addr: r.addr(), MaxRetries: -1})
	defer c.Close()
	// The server answering must be this one, not another process that took
	// the port first: INFO names its process.
	want := "process_id:" + strconv.Itoa(cmd.Process.Pid)
	deadline := time.Now().Add(10 * time.Second)
	for {
		info, err := c.Info(ctx, "server").Result()
		if err == nil && strings.Contains(info, want+"\r\n") {
			return nil
		}
		select {
		case <-exited:
			return fmt.Errorf("redis-server on %s exited at start (port taken?)", r.addr())
		default:
		}
		if time.Now().After(deadline) {
			r.stop()
			return fmt.Errorf("redis-server on %s did not answer: %v", r.addr(), err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// restart kills the server with SIGKILL and starts an empty one on the same
// port.
func (r *redisServer) restart(ctx context.Context) error {
	r.stop()
	return r.start(ctx)
}

func (r *redisServer) stop() {
	r.mu.Lock()
	cmd, exited := r.cmd, r.exited
	r.cmd = nil
	r.mu.Unlock()
	if cmd != nil {
		_ = cmd.Process.Signal(syscall.SIGKILL)
		<-exited
	}
}

// workerProc is one `ferry work` slot of the fleet: a process that the
// campaign kills and restarts; every incarnation appends to the same log.
type workerProc struct {
	id      int
	bin     string
	env     []string
	logPath string

	mu      sync.Mutex
	cmd     *exec.Cmd
	done    chan struct{}
	exitErr error
	starts  int
}

func (w *workerProc) start() error {
	f, err := os.OpenFile(w.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	cmd := exec.Command(w.bin, "work")
	cmd.Env = w.env
	cmd.Stdout, cmd.Stderr = f, f
	setDeathSignal(cmd)
	if err := cmd.Start(); err != nil {
		f.Close()
		return fmt.Errorf("start worker %d: %w", w.id, err)
	}
	done := make(chan struct{})
	w.mu.Lock()
	w.cmd, w.done = cmd, done
	w.starts++
	w.mu.Unlock()
	go func() {
		err := cmd.Wait()
		f.Close()
		w.mu.Lock()
		w.exitErr = err
		w.mu.Unlock()
		close(done)
	}()
	return nil
}

// signal sends sig and waits up to wait for the process to exit; it
// returns the exit error (nil for exit code 0) and whether it exited.
func (w *workerProc) signal(sig syscall.Signal, wait time.Duration) (error, bool) {
	w.mu.Lock()
	cmd, done := w.cmd, w.done
	w.mu.Unlock()
	if cmd == nil {
		return nil, true
	}
	_ = cmd.Process.Signal(sig)
	select {
	case <-done:
		w.mu.Lock()
		defer w.mu.Unlock()
		return w.exitErr, true
	case <-time.After(wait):
		return nil, false
	}
}

func (w *workerProc) kill() { _, _ = w.signal(syscall.SIGKILL, 10*time.Second) }
