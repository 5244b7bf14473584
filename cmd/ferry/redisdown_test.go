package main

import (
	"encoding/json"
	"io"
	"net"
	"net/http"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferryworks/ferry/internal/testenv"
	"github.com/ferryworks/ferry/queue"
)

// A worker started while Redis is unreachable becomes ready (Redis health is
// ferry_redis_up, not a readiness condition), and the tasks it received
// meanwhile complete once Redis answers: the delegated customer's with its
// own role, never downgraded to the fleet's credentials.
func TestWorkStartsWithoutRedis(t *testing.T) {
	t.Parallel()
	// The Redis the registry lives in; the worker reaches it only through
	// a forwarder that starts later, as a Redis coming back with its data.
	srv := testenv.StartRedis(t)
	w := testenv.SharedWorldOn(t, srv.Client(), srv.URL, "ferry")
	redisAddr, metricsAddr := freeAddr(t), freeAddr(t)
	env := cliEnv(w, "FERRY_REDIS_PREFIX=ferry", "FERRY_REDIS_MODE=single", "FERRY_REDIS_URL=redis://"+redisAddr+"/0",
		"FERRY_METRICS_ADDR="+metricsAddr, "FERRY_VISIBILITY_TIMEOUT=5s")

	acme, globex := w.Customer(t, "acme"), w.Customer(t, "globex")
	tasks := `{"version":1,"task_id":"t-acme","customer_id":"acme","attachments":[{"uri":"s3://` + acme.Bucket + "/" + acme.Objects[0] + `"}]}` + "\n" +
		`{"version":1,"task_id":"t-globex","customer_id":"globex","attachments":[{"uri":"s3://` + globex.Bucket + "/" + globex.Objects[0] + `"}]}` + "\n"
	if r := runCLI(t, env, tasks, "enqueue", "-o", "json"); r.code != 0 {
		t.Fatalf("enqueue: exit %d: %s %s", r.code, r.stdout, r.stderr)
	}
	startWorker(t, env)

	waitFor(t, 60*time.Second, "/readyz 200 with Redis down", func() bool {
		code, _ := httpGet("http://" + metricsAddr + "/readyz")
		return code == http.StatusOK
	})
	metrics := "http://" + metricsAddr + "/metrics"
	if v := metric(scrape(t, metrics), "ferry_redis_up", "", ""); v != 0 {
		t.Errorf("ferry_redis_up = %v with Redis down, want 0", v)
	}
	// The tasks were tried and put back for later, not failed.
	waitFor(t, 60*time.Second, "a task retried while Redis is down", func() bool {
		return metric(scrape(t, metrics), "ferry_tasks_total", "outcome", "retried") >= 1
	})

	forward(t, redisAddr, srv.Addr)
	var events []queue.Event
	r := runCLI(t, env, "", "events", "tail", "-o", "json", "--ack", "--max", "2")
	if r.code != 0 {
		t.Fatalf("events tail: exit %d: %s", r.code, r.stderr)
	}
	for _, line := range strings.Split(strings.TrimSpace(r.stdout), "\n") {
		var ev queue.Event
		if err := json.Unmarshal([]byte(line), &ev); err != nil {
			t.Fatalf("event %q: %v", line, err)
		}
		events = append(events, ev)
	}
	sort.Slice(events, func(i, j int) bool { return events[i].TaskID < events[j].TaskID })
	want := []struct{ id, mode string }{{"t-acme/completed", "delegated"}, {"t-globex/completed", "cross_account"}}
	if len(events) != len(want) {
		t.Fatalf("events %+v, want %v", events, want)
	}
	for i, ev := range events {
		if ev.EventID != want[i].id || len(ev.Attachments) != 1 || ev.Attachments[0].Mode != want[i].mode {
			t.Errorf("event %+v, want %s read in %s mode", ev, want[i].id, want[i].mode)
		}
	}
	waitFor(t, 30*time.Second, "ferry_redis_up 1 once Redis answers", func() bool {
		return metric(scrape(t, metrics), "ferry_redis_up", "", "") == 1
	})
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func httpGet(url string) (int, string) {
	resp, err := http.Get(url)
	if err != nil {
		return 0, ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// forward relays TCP connections from listen to target until the test ends.
func forward(t *testing.T, listen, target string) {
	t.Helper()
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		t.Fatalf("listen on %s (taken meanwhile?): %v", listen, err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	t.Cleanup(func() {
		_ = ln.Close()
		mu.Lock()
		for _, c := range conns {
			_ = c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			in, err := ln.Accept()
			if err != nil {
				return
			}
			out, err := net.Dial("tcp", target)
			if err != nil {
				_ = in.Close()
				continue
			}
			mu.Lock()
			conns = append(conns, in, out)
			mu.Unlock()
			wg.Add(2)
			go func() { defer wg.Done(); _, _ = io.Copy(out, in); _ = out.Close() }()
			go func() { defer wg.Done(); _, _ = io.Copy(in, out); _ = in.Close() }()
		}
	}()
}
