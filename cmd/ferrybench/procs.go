package main

import (
	"github.com/ferryworks/ferry/internal/devproc"

	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// clockTicks is USER_HZ, the unit of utime and stime in /proc/PID/stat; it
// is 100 on every Linux architecture Go supports.
const clockTicks = 100

// procUsage is a process's CPU time (user + system) and peak resident set.
type procUsage struct {
	CPU     time.Duration
	PeakRSS int64 // bytes
}

// readProc reads utime+stime from /proc/PID/stat and VmHWM from
// /proc/PID/status.
func readProc(pid int) (procUsage, error) {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return procUsage{}, err
	}
	// The command name (field 2) may hold spaces; fields count from the
	// last ')'. After it come state (3) … utime (14) and stime (15).
	i := strings.LastIndexByte(string(stat), ')')
	if i < 0 {
		return procUsage{}, fmt.Errorf("/proc/%d/stat: malformed", pid)
	}
	f := strings.Fields(string(stat[i+1:]))
	if len(f) < 13 {
		return procUsage{}, fmt.Errorf("/proc/%d/stat: short", pid)
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	u := procUsage{CPU: time.Duration(ut+st) * time.Second / clockTicks}
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return procUsage{}, err
	}
	for _, line := range strings.Split(string(status), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			u.PeakRSS = kb << 10
		}
	}
	return u, nil
}

// rusageOf is procUsage for an exited child, from wait4's rusage (ru_maxrss
// is in KiB on Linux).
func rusageOf(ps *os.ProcessState) procUsage {
	ru, ok := ps.SysUsage().(*syscall.Rusage)
	if !ok || ru == nil {
		return procUsage{}
	}
	cpu := time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	return procUsage{CPU: cpu, PeakRSS: int64(ru.Maxrss) << 10}
}

// child is one long-running process of a fleet (a `ferry work` or a raw
// loop).
type child struct {
	cmd     *exec.Cmd
	done    chan struct{}
	logPath string
	addr    string // metrics address of a ferry worker
}

func (c *child) exited() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// fleet is K processes doing the same job; their CPU is summed and their
// peak RSS reported per process.
type fleet struct {
	kind  string
	procs []*child
	base  []procUsage
}

// startChild starts bin args with env, logging to logPath.
func startChild(bin string, args, env []string, logPath string) (*child, error) {
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = f, f
	setChildAttrs(cmd)
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("start %s: %w", filepath.Base(bin), err)
	}
	c := &child{cmd: cmd, done: make(chan struct{}), logPath: logPath}
	go func() {
		_ = cmd.Wait()
		f.Close()
		close(c.done)
	}()
	return c, nil
}

// startFerryFleet starts k `ferry work` processes and waits until each
// answers /readyz.
func startFerryFleet(ctx context.Context, bin string, env []string, k int, logDir, tag string) (*fleet, error) {
	fl := &fleet{kind: "ferry"}
	for i := range k {
		port, err := devproc.FreePort()
		if err != nil {
			fl.stop(0)
			return nil, err
		}
		addr := "127.0.0.1:" + strconv.Itoa(port)
		penv := append(append([]string(nil), env...), "FERRY_METRICS_ADDR="+addr, "FERRY_PPROF=1")
		c, err := startChild(bin, []string{"work"}, penv, filepath.Join(logDir, fmt.Sprintf("%s-ferry-%d.log", tag, i)))
		if err != nil {
			fl.stop(0)
			return nil, err
		}
		c.addr = addr
		fl.procs = append(fl.procs, c)
	}
	for _, c := range fl.procs {
		if err := waitReady(ctx, c); err != nil {
			fl.stop(0)
			return nil, err
		}
	}
	return fl, nil
}

func waitReady(ctx context.Context, c *child) error {
	deadline := time.Now().Add(60 * time.Second)
	url := "http://" + c.addr + "/readyz"
	for {
		if c.exited() {
			return fmt.Errorf("ferry work exited before it was ready; its log %s ends:\n%s", c.logPath, tail(c.logPath, 10))
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("ferry work not ready at %s; its log %s ends:\n%s", url, c.logPath, tail(c.logPath, 10))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// startRawFleet starts k raw-loop processes (this binary in raw-loop mode)
// and waits until each has printed "ready".
func startRawFleet(ctx context.Context, env []string, cfgPath string, k int, logDir, tag string) (*fleet, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	fl := &fleet{kind: "raw"}
	for i := range k {
		logPath := filepath.Join(logDir, fmt.Sprintf("%s-raw-%d.log", tag, i))
		penv := append(append([]string(nil), env...), rawLoopEnv+"=1", rawLoopConfigEnv+"="+cfgPath)
		c, err := startChild(self, nil, penv, logPath)
		if err != nil {
			fl.stop(0)
			return nil, err
		}
		fl.procs = append(fl.procs, c)
	}
	for _, c := range fl.procs {
		deadline := time.Now().Add(60 * time.Second)
		for !strings.Contains(tail(c.logPath, 50), rawLoopReady) {
			if c.exited() || time.Now().After(deadline) || ctx.Err() != nil {
				fl.stop(0)
				return nil, fmt.Errorf("raw loop did not start; its log %s ends:\n%s", c.logPath, tail(c.logPath, 10))
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	return fl, nil
}

// mark records every process's CPU so far; usage later reports the delta.
func (fl *fleet) mark() error {
	fl.base = fl.base[:0]
	for _, c := range fl.procs {
		u, err := readProc(c.cmd.Process.Pid)
		if err != nil {
			return fmt.Errorf("%s process %d: %w", fl.kind, c.cmd.Process.Pid, err)
		}
		fl.base = append(fl.base, u)
	}
	return nil
}

// usage returns the CPU used since mark, summed over the fleet, and the
// largest peak RSS of any one process (over its whole life).
func (fl *fleet) usage() (procUsage, error) {
	var sum procUsage
	for i, c := range fl.procs {
		u, err := readProc(c.cmd.Process.Pid)
		if err != nil {
			return procUsage{}, fmt.Errorf("%s process %d: %w", fl.kind, c.cmd.Process.Pid, err)
		}
		if i < len(fl.base) {
			sum.CPU += u.CPU - fl.base[i].CPU
		}
		sum.PeakRSS = max(sum.PeakRSS, u.PeakRSS)
	}
	return sum, nil
}

// stop sends SIGTERM, waits up to grace, then kills what is left.
func (fl *fleet) stop(grace time.Duration) {
	for _, c := range fl.procs {
		if !c.exited() {
			_ = c.cmd.Process.Signal(syscall.SIGTERM)
		}
	}
	deadline := time.After(grace)
	for _, c := range fl.procs {
		select {
		case <-c.done:
		case <-deadline:
		}
	}
	for _, c := range fl.procs {
		if !c.exited() {
			_ = c.cmd.Process.Kill()
			<-c.done
		}
	}
}

// anyExited names a fleet process that died during the load.
func (fl *fleet) anyExited() error {
	for _, c := range fl.procs {
		if c.exited() {
			return fmt.Errorf("%s process %d exited during the load; its log %s ends:\n%s", fl.kind, c.cmd.Process.Pid, c.logPath, tail(c.logPath, 10))
		}
	}
	return nil
}

// cpuProfile saves a CPU profile of worker 0 over secs seconds.
func (fl *fleet) cpuProfile(ctx context.Context, path string, secs int) error {
	if len(fl.procs) == 0 || fl.procs[0].addr == "" {
		return errors.New("no ferry worker to profile")
	}
	url := fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", fl.procs[0].addr, secs)
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("pprof: %s", resp.Status)
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// tail returns the last n lines of a log file.
func tail(path string, n int) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		lines = append(lines, sc.Text())
		if len(lines) > n {
			lines = lines[1:]
		}
	}
	return strings.Join(lines, "\n")
}

// rcloneResult is one rclone scenario run: wall time, CPU summed over the
// processes, the largest peak RSS of one process.
type rcloneResult struct {
	Elapsed time.Duration
	Usage   procUsage
}

// runRclone streams objs into the internal bucket with rclone, one process
// per source customer (all at once), each with two S3 remotes: the source
// signs as the customer (delegated: rclone cannot assume a role with an
// external ID) or as the fleet (cross-account), the destination as the fleet,
// so rclone must stream rather than copy server-side.
func runRclone(ctx context.Context, bin string, w *world, objs []object, transfers int, dir, dstPrefix string) (rcloneResult, error) {
	byCustomer := map[*benchCustomer][]string{}
	var order []*benchCustomer
	for _, o := range objs {
		if _, ok := byCustomer[o.Customer]; !ok {
			order = append(order, o.Customer)
		}
		byCustomer[o.Customer] = append(byCustomer[o.Customer], o.Key)
	}
	conf := filepath.Join(dir, "rclone.conf")
	if err := os.WriteFile(conf, nil, 0o600); err != nil {
		return rcloneResult{}, err
	}
	type proc struct {
		cmd *exec.Cmd
		out *strings.Builder
	}
	var procs []proc
	start := time.Now()
	for _, c := range order {
		list := filepath.Join(dir, "rclone-"+c.ID+".txt")
		if err := os.WriteFile(list, []byte(strings.Join(byCustomer[c], "\n")+"\n"), 0o600); err != nil {
			return rcloneResult{}, err
		}
		src := w.fleet
		if c.Mode == modeDelegated {
			src = c.Keys
		}
		env := append(cleanEnv("AWS_", "RCLONE_"),
			"RCLONE_CONFIG_SRC_TYPE=s3", "RCLONE_CONFIG_SRC_PROVIDER=Other",
			"RCLONE_CONFIG_SRC_ACCESS_KEY_ID="+src.AccessKeyID, "RCLONE_CONFIG_SRC_SECRET_ACCESS_KEY="+src.SecretAccessKey,
			"RCLONE_CONFIG_SRC_ENDPOINT="+w.stack.URL, "RCLONE_CONFIG_SRC_REGION=us-east-1", "RCLONE_CONFIG_SRC_FORCE_PATH_STYLE=true",
			"RCLONE_CONFIG_DST_TYPE=s3", "RCLONE_CONFIG_DST_PROVIDER=Other",
			"RCLONE_CONFIG_DST_ACCESS_KEY_ID="+w.fleet.AccessKeyID, "RCLONE_CONFIG_DST_SECRET_ACCESS_KEY="+w.fleet.SecretAccessKey,
			"RCLONE_CONFIG_DST_ENDPOINT="+w.stack.URL, "RCLONE_CONFIG_DST_REGION=us-east-1", "RCLONE_CONFIG_DST_FORCE_PATH_STYLE=true",
		)
		if ca := w.env.Lookup("RCLONE_CA_CERT"); ca != "" {
			env = append(env, "RCLONE_CA_CERT="+ca)
		}
		cmd := exec.CommandContext(ctx, bin, "copy", "src:"+c.Bucket, "dst:"+w.env.Lookup("FERRY_BUCKET")+"/"+dstPrefix+"/"+c.ID,
			"--config", conf, "--files-from", list, "--no-traverse", "--transfers", strconv.Itoa(max(transfers, 1)),
			"--s3-chunk-size", "16M", "--s3-upload-concurrency", "4", "--s3-no-check-bucket", "--retries", "1", "-q")
		cmd.Env = env
		out := &strings.Builder{}
		cmd.Stdout, cmd.Stderr = out, out
		setChildAttrs(cmd)
		if err := cmd.Start(); err != nil {
			return rcloneResult{}, fmt.Errorf("start rclone: %w", err)
		}
		procs = append(procs, proc{cmd, out})
	}
	var res rcloneResult
	var errs []error
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, p := range procs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := p.cmd.Wait()
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, fmt.Errorf("rclone: %w: %s", err, strings.TrimSpace(p.out.String())))
			}
			u := rusageOf(p.cmd.ProcessState)
			res.Usage.CPU += u.CPU
			res.Usage.PeakRSS = max(res.Usage.PeakRSS, u.PeakRSS)
		}()
	}
	wg.Wait()
	res.Elapsed = time.Since(start)
	return res, errors.Join(errs...)
}

// cleanEnv is this process's environment without the variables that start
// with any of prefixes: the caller's AWS settings (a CA bundle, a profile)
// would send a child elsewhere or break its client.
func cleanEnv(prefixes ...string) []string {
	var env []string
next:
	for _, kv := range os.Environ() {
		for _, p := range prefixes {
			if strings.HasPrefix(kv, p) {
				continue next
			}
		}
		env = append(env, kv)
	}
	return env
}
