package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ferryworks/ferry/internal/testenv"
)

// builtFerry is the binary the smoke runs share (-ferry), built once.
var builtFerry = testenv.Binary{Pkg: "./cmd/ferry"}

func TestMain(m *testing.M) {
	code := m.Run()
	builtFerry.Remove()
	os.Exit(code)
}

// TestSmoke runs the whole harness with tiny sizes and counts — real
// `ferry work` processes, the raw loop, rclone when installed, the noisy
// neighbour with and without the cap — and checks the report it writes, so
// the bench cannot rot between `make bench` runs. It runs over https (-tls),
// production's transport: ferry, the raw loop and rclone must all trust the
// stack's generated CA from the environment the harness gives them.
// TestSmokeRedisURL covers plain http.
func TestSmoke(t *testing.T) {
	t.Parallel()
	testenv.Integration(t)
	args := []string{"-smoke", "-tls", "-ferry", builtFerry.Path(t), "-out", t.TempDir(), "-scenario-timeout", "60s"}
	if _, err := exec.LookPath("redis-server"); err != nil {
		// Without a private redis-server the bench uses the test Redis;
		// its command counts are then approximate.
		args = append(args, "-redis-url", testenv.RedisURL(t))
	}
	out := args[5]
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var stdout, stderr bytes.Buffer
	if code := run(ctx, args, &stdout, &stderr); code != 0 {
		t.Fatalf("ferrybench exited %d:\n%s", code, stderr.String())
	}

	data, err := os.ReadFile(filepath.Join(out, "results.json"))
	if err != nil {
		t.Fatal(err)
	}
	var res struct {
		TLS     bool          `json:"tls"`
		Results []measurement `json:"results"`
		Assume  []assumeCount `json:"assume_role_per_world"`
	}
	if err := json.Unmarshal(data, &res); err != nil {
		t.Fatal(err)
	}
	if !res.TLS {
		t.Error("results.json does not record -tls")
	}
	seen := map[string]measurement{}
	for _, m := range res.Results {
		seen[m.Scenario+"|"+m.Tool] = m
		if m.Failures != 0 || m.Seconds <= 0 {
			t.Errorf("%s/%s: %d failures in %.3fs", m.Scenario, m.Tool, m.Failures, m.Seconds)
		}
	}
	for _, want := range []string{"1KiB/c1|ferry", "1KiB/c1|raw", "1KiB/c8|ferry", "1KiB/idle|ferry", "1KiB/idle|raw", "6MiB|ferry", "6MiB|raw", "noisy/nocap|ferry", "noisy/cap1|ferry", "noisy/fleetcap1|ferry"} {
		m, ok := seen[want]
		if !ok {
			t.Errorf("no measurement for %s", want)
			continue
		}
		if m.Tool != toolRclone && (m.TasksPerSec <= 0 || m.P99ms <= 0 || m.PeakRSSMiB <= 0) {
			t.Errorf("%s: empty measurement %+v", want, m)
		}
	}
	if _, err := exec.LookPath("rclone"); err == nil {
		if m, ok := seen["6MiB|rclone"]; !ok || m.MiBPerSec <= 0 {
			t.Errorf("rclone is installed but measured nothing: %+v", m)
		}
	}
	if m := seen["1KiB/c1|ferry"]; m.RedisPerTsk <= 0 {
		t.Errorf("Redis commands per task not measured: %v", m.RedisPerTsk)
	}
	// Each 1 KiB task is one source read and one event; the worker's Redis
	// work shows up command by command.
	if m := seen["1KiB/c1|ferry"]; m.CallsPerTask["s3:GetObject"] < 1 || m.CallsPerTask["sqs:SendMessage"] < 1 || len(m.RedisCmdsPerTask) == 0 {
		t.Errorf("cost per task not measured: AWS %v, Redis %v", m.CallsPerTask, m.RedisCmdsPerTask)
	}
	if len(res.Assume) == 0 {
		t.Error("no AssumeRole counts")
	}
	for _, a := range res.Assume {
		if a.Calls > int64(a.Delegated) {
			t.Errorf("%s: %d AssumeRole calls for %d delegated customers", a.World, a.Calls, a.Delegated)
		}
	}

	md, err := os.ReadFile(filepath.Join(out, "summary.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"## Results", "## Ratios", "## Targets", "## Noisy neighbour", "| 1KiB/c8 | ferry |", "## Cost per task", "| noisy/fleetcap1 |"} {
		if !strings.Contains(string(md), want) {
			t.Errorf("summary.md lacks %q", want)
		}
	}
	svg, err := os.ReadFile(filepath.Join(out, "chart.svg"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(svg, []byte("<svg")) || !bytes.Contains(svg, []byte("<polyline")) {
		t.Errorf("chart.svg has no plotted line:\n%.300s", svg)
	}
}

// TestSmokeRedisURL runs K = 3 ferry workers on the test Redis named by
// FERRY_REDIS_URL, read as FERRY_REDIS_MODE says (-redis-mode's default):
// one server in make test's first pass, a 6-node Redis Cluster in its
// cluster pass (.ci/test-cluster.sh), where the workers must run in cluster
// mode (a worker in single mode refuses a cluster URL at start, and the
// scenario fails) and the commands are counted on every master. It runs
// over plain http, the transport TestSmoke leaves out.
func TestSmokeRedisURL(t *testing.T) {
	t.Parallel()
	out := t.TempDir()
	args := []string{"-smoke", "-only", "1KiB/c8", "-workers", "3", "-rclone", "off", "-out", out, "-ferry", builtFerry.Path(t),
		"-scenario-timeout", "60s", "-redis-url", testenv.RedisURL(t)}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var stdout, stderr bytes.Buffer
	if code := run(ctx, args, &stdout, &stderr); code != 0 {
		t.Fatalf("ferrybench -redis-url exited %d:\n%s", code, stderr.String())
	}
	data, err := os.ReadFile(filepath.Join(out, "results.json"))
	if err != nil {
		t.Fatal(err)
	}
	var res struct {
		Results []measurement `json:"results"`
	}
	if err := json.Unmarshal(data, &res); err != nil {
		t.Fatal(err)
	}
	var m *measurement
	for i := range res.Results {
		if res.Results[i].Scenario == "1KiB/c8" && res.Results[i].Tool == toolFerry {
			m = &res.Results[i]
		}
	}
	if m == nil || m.Failures != 0 || m.TasksPerSec <= 0 {
		t.Fatalf("1KiB/c8 through ferry: %+v", m)
	}
	if m.RedisCmdsPerTask["hgetall"] < 1 {
		t.Errorf("Redis commands per task not counted (every task reads its integration): %v", m.RedisCmdsPerTask)
	}
	md, err := os.ReadFile(filepath.Join(out, "summary.md"))
	if err != nil {
		t.Fatal(err)
	}
	want := "a shared Redis (-redis-url)"
	if testenv.RedisCluster() {
		want = "a Redis Cluster (-redis-url, -redis-mode cluster)"
	}
	if !strings.Contains(string(md), want) {
		t.Errorf("summary.md does not say it ran on %s", want)
	}
}

func TestRedisModeFlag(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-redis-mode", "sentinel"}, `-redis-mode "sentinel"`},
		{[]string{"-redis-mode", "cluster", "-redis-url", "redis://h1:6379/3"}, "a cluster has only database 0"},
		{[]string{"-redis-mode", "single", "-redis-url", "redis://h1:6379?addr=h2:6379"}, "-redis-url with -redis-mode single"},
	} {
		var stdout, stderr bytes.Buffer
		code := run(context.Background(), append([]string{"-out", t.TempDir()}, tc.args...), &stdout, &stderr)
		if code != 2 || !strings.Contains(stderr.String(), tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want exit 2 saying %q", tc.args, code, stderr.String(), tc.want)
		}
	}
}

// TestSpread pins the report's median and min–max arithmetic.
func TestSpread(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   []float64
		want string
	}{
		{[]float64{3, 1, 2}, "2.0 (1.0–3.0)"},
		{[]float64{4, 1, 2, 3}, "2.5 (1.0–4.0)"},
		{[]float64{5}, "5.0"},
		{nil, "–"},
	} {
		if got := spreadOf(tc.in).fmt(1); got != tc.want {
			t.Errorf("spreadOf(%v) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// TestQuantile pins the nearest-rank quantile used for latencies.
func TestQuantile(t *testing.T) {
	t.Parallel()
	lat := make([]time.Duration, 100)
	for i := range lat {
		lat[i] = time.Duration(i+1) * time.Millisecond
	}
	for _, tc := range []struct {
		q    float64
		want float64
	}{{0.50, 50}, {0.95, 95}, {0.99, 99}, {1, 100}} {
		if got := quantileMs(lat, tc.q); got != tc.want {
			t.Errorf("q%.2f = %v, want %v", tc.q, got, tc.want)
		}
	}
}

// TestParseCredBench reads `go test -bench` output lines.
func TestParseCredBench(t *testing.T) {
	t.Parallel()
	p := filepath.Join(t.TempDir(), "cred.txt")
	text := "goos: linux\n" +
		"BenchmarkCredentials/L1hit-2   \t 5000000\t       212.5 ns/op\t       0 B/op\t       0 allocs/op\n" +
		"BenchmarkCredentials/L2hit-2   \t   10000\t     95000 ns/op\t     90000 p50-ns\t    400000 p99-ns\n" +
		"PASS\n"
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	got, err := parseCredBench(p)
	if err != nil {
		t.Fatal(err)
	}
	if l1 := got["L1hit"]; l1 == nil || len(l1.NsPerOp) != 1 || l1.NsPerOp[0] != 212.5 {
		t.Errorf("L1hit = %+v", l1)
	}
	if l2 := got["L2hit"]; l2 == nil || len(l2.P99ns) != 1 || l2.P99ns[0] != 400000 {
		t.Errorf("L2hit = %+v", l2)
	}
}
