package worker_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"github.com/ferryworks/ferry/internal/localaws"
	"github.com/ferryworks/ferry/internal/testenv"
	"github.com/ferryworks/ferry/queue"
	"github.com/ferryworks/ferry/worker"
)

func get(t *testing.T, h http.Handler, path string) (int, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	return rec.Code, rec.Body.String()
}

// deadRedis is a client for an address nothing listens on.
func deadRedis(t *testing.T) *redis.Client {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	c := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1, DialTimeout: 200 * time.Millisecond})
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func TestReadyz(t *testing.T) {
	t.Parallel()
	closed := make(chan struct{})
	close(closed)
	pass := worker.ReadyCheck{Name: "sqs", Check: func(context.Context) error { return nil }}
	cases := []struct {
		name     string
		draining <-chan struct{}
		checks   []worker.ReadyCheck
		want     int
		body     string
	}{
		{"all reachable", nil, []worker.ReadyCheck{pass}, 200, "ready"},
		{"sqs never polled", nil, []worker.ReadyCheck{mustGauges(t, nil).ReachableCheck(0)}, 503, "unreachable: sqs"},
		{"draining", closed, []worker.ReadyCheck{pass}, 503, "draining"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			h := worker.HealthHandler(worker.HealthOptions{Gatherer: prometheus.NewRegistry(), Draining: c.draining, Checks: c.checks, Logger: zerolog.Nop()})
			code, body := get(t, h, "/readyz")
			if code != c.want || !strings.Contains(body, c.body) {
				t.Errorf("/readyz = %d %q, want %d containing %q", code, body, c.want, c.body)
			}
			// Liveness does not depend on readiness: a worker that cannot
			// reach Redis must not be restarted for it.
			if code, _ := get(t, h, "/healthz"); code != 200 {
				t.Errorf("/healthz = %d, want 200", code)
			}
		})
	}
}

// ferry_redis_up follows Redis: 1 while it answers, 0 while it does not
// (and before the first ping), on one server or every master of a cluster.
func TestRedisWatch(t *testing.T) {
	t.Parallel()
	rdb, _ := testenv.Redis(t)
	ctx := context.Background()
	for _, c := range []struct {
		name string
		rdb  redis.UniversalClient
		want float64
	}{
		{"reachable", rdb, 1},
		{"unreachable", deadRedis(t), 0},
	} {
		reg := prometheus.NewRegistry()
		w := worker.NewRedisWatch(reg, c.rdb, time.Second, zerolog.Nop())
		if got := gaugeValue(t, reg, "ferry_redis_up"); got != 0 {
			t.Errorf("%s: ferry_redis_up = %v before the first ping, want 0", c.name, got)
		}
		err := w.Ping(ctx)
		if (err == nil) != (c.want == 1) {
			t.Errorf("%s: Ping = %v", c.name, err)
		}
		if got := gaugeValue(t, reg, "ferry_redis_up"); got != c.want {
			t.Errorf("%s: ferry_redis_up = %v, want %v", c.name, got, c.want)
		}
	}
}

func gaugeValue(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) == 1 {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	t.Fatalf("%s not registered", name)
	return 0
}

// blockingReceiver delivers nothing and waits for the pool to stop.
type blockingReceiver struct{}

func (blockingReceiver) Receive(ctx context.Context, _ int) ([]*queue.Lease, error) {
	<-ctx.Done()
	return nil, ctx.Err()
}
func (blockingReceiver) Close(context.Context) error { return nil }

type noHandler struct{}

func (noHandler) Handle(context.Context, *queue.Lease) worker.Report { return worker.Report{} }

// /readyz turns 503 the moment the pool starts shutting down, while the
// listener still answers.
func TestReadyzFlipsOnShutdown(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	wm := worker.NewMetrics(reg)
	pool, err := worker.NewPool(worker.PoolOptions{Receiver: blockingReceiver{}, Handler: noHandler{}, Slots: 3, Metrics: wm, Logger: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	srv, addr, err := worker.ServeHealth(worker.HealthOptions{Addr: "127.0.0.1:0", Gatherer: reg, Draining: pool.Draining(),
		Checks: []worker.ReadyCheck{{Name: "sqs", Check: func(context.Context) error { return nil }}}, Logger: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	ready := func() int {
		resp, err := http.Get("http://" + addr.String() + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		_, _ = io.Copy(io.Discard, resp.Body)
		return resp.StatusCode
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- pool.Run(ctx) }()
	if got := ready(); got != 200 {
		t.Fatalf("/readyz before shutdown = %d, want 200", got)
	}
	cancel()
	<-pool.Draining()
	if got := ready(); got != 503 {
		t.Errorf("/readyz after shutdown started = %d, want 503", got)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if got := gathered(t, reg, "ferry_worker_slots", nil); got != 3 {
		t.Errorf("ferry_worker_slots = %v, want 3", got)
	}
}

// gathered is the value of the one series of family name whose labels
// include labels; the test fails when there is no such series.
func gathered(t *testing.T, reg prometheus.Gatherer, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	series:
		for _, m := range mf.GetMetric() {
			for k, v := range labels {
				if !hasLabel(m, k, v) {
					continue series
				}
			}
			switch {
			case m.Gauge != nil:
				return m.GetGauge().GetValue()
			case m.Counter != nil:
				return m.GetCounter().GetValue()
			}
		}
	}
	t.Fatalf("no series %s%v", name, labels)
	return 0
}

func hasLabel(m *dto.Metric, k, v string) bool {
	for _, lp := range m.GetLabel() {
		if lp.GetName() == k && lp.GetValue() == v {
			return true
		}
	}
	return false
}

func mustGauges(t *testing.T, reg prometheus.Registerer) *worker.QueueGauges {
	t.Helper()
	g, err := worker.NewQueueGauges(reg, worker.QueueGaugesOptions{SQS: sqs.New(sqs.Options{Region: "us-east-1"}),
		Queues: []worker.WatchedQueue{{Label: "tasks", URL: "http://127.0.0.1:1/000000000000/never"}}})
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// The queue gauges report what SQS says per state, keep the last values when
// SQS fails, and readiness follows the last successful poll.
func TestQueueGauges(t *testing.T) {
	t.Parallel()
	stack := testenv.LocalAWS(t)
	ctx := context.Background()
	acct, err := stack.NewAccount("")
	if err != nil {
		t.Fatal(err)
	}
	dlq, err := stack.CreateQueue(ctx, localaws.Queue{Name: "gauges-dlq"})
	if err != nil {
		t.Fatal(err)
	}
	tasks, err := stack.CreateQueue(ctx, localaws.Queue{Name: "gauges-tasks", DeadLetter: "gauges-dlq"})
	if err != nil {
		t.Fatal(err)
	}
	api := stack.SQSClient(acct, "us-east-1")
	for i, delay := range []int32{0, 0, 0, 300} {
		if _, err := api.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(tasks), MessageBody: aws.String("m" + string(rune('0'+i))), DelaySeconds: delay}); err != nil {
			t.Fatal(err)
		}
	}
	if out, err := api.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(tasks), MaxNumberOfMessages: 1, VisibilityTimeout: 300}); err != nil || len(out.Messages) != 1 {
		t.Fatalf("receive: %v (%d messages)", err, len(out.Messages))
	}
	if _, err := api.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(dlq), MessageBody: aws.String("dead")}); err != nil {
		t.Fatal(err)
	}

	reg := prometheus.NewRegistry()
	clock := testenv.FixedClock(time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC))
	g, err := worker.NewQueueGauges(reg, worker.QueueGaugesOptions{SQS: api, Interval: 10 * time.Second, Now: clock.Now,
		Queues: []worker.WatchedQueue{{Label: "tasks", URL: tasks}, {Label: "dlq", URL: dlq}}, Logger: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	ready := g.ReachableCheck(0)
	if err := ready.Check(ctx); !errors.Is(err, worker.ErrSQSUnreachable) {
		t.Errorf("before the first poll: %v, want ErrSQSUnreachable", err)
	}
	if err := g.Poll(ctx); err != nil {
		t.Fatal(err)
	}
	want := map[[2]string]float64{
		{"dlq", "visible"}: 1, {"dlq", "in_flight"}: 0, {"dlq", "delayed"}: 0,
		{"tasks", "visible"}: 2, {"tasks", "in_flight"}: 1, {"tasks", "delayed"}: 1,
	}
	check := func(when string) {
		t.Helper()
		for k, v := range want {
			if got := gathered(t, reg, "ferry_queue_messages", map[string]string{"queue": k[0], "state": k[1]}); got != v {
				t.Errorf("%s: ferry_queue_messages{queue=%q,state=%q} = %v, want %v", when, k[0], k[1], got, v)
			}
		}
	}
	check("after a poll")
	clock.Advance(29 * time.Second)
	if err := ready.Check(ctx); err != nil {
		t.Errorf("29 s after a successful poll (3 intervals = 30 s): %v", err)
	}

	// SQS failing: the poll errs, the gauges keep their values, and once
	// the last success is older than three intervals readiness fails.
	if err := stack.InjectFault(localaws.Fault{Operation: "sqs:GetQueueAttributes", Status: 500, Code: "InternalError"}); err != nil {
		t.Fatal(err)
	}
	if err := g.Poll(ctx); err == nil {
		t.Error("poll succeeded against a failing SQS")
	}
	check("after a failed poll")
	clock.Advance(2 * time.Second)
	if err := ready.Check(ctx); !errors.Is(err, worker.ErrSQSUnreachable) {
		t.Errorf("31 s after the last success: %v, want ErrSQSUnreachable", err)
	}
	stack.ClearFaults()
	if err := g.Poll(ctx); err != nil {
		t.Fatal(err)
	}
	if err := ready.Check(ctx); err != nil {
		t.Errorf("after SQS recovered: %v", err)
	}
}
