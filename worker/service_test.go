package worker_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/ferryworks/ferry/credcache"
	"github.com/ferryworks/ferry/fetcher"
	"github.com/ferryworks/ferry/internal/demo"
	"github.com/ferryworks/ferry/internal/testenv"
	"github.com/ferryworks/ferry/queue"
	"github.com/ferryworks/ferry/worker"
)

// service is the worker of the fleet's world as `ferry work` builds it.
func (f *fleet) service(log io.Writer) worker.Service {
	w := f.w
	return worker.Service{
		AWS: w.FleetConfig, Redis: w.Redis, RedisPrefix: w.Prefix,
		Credentials: credcache.Options{Redis: w.Redis, Prefix: w.Prefix, Keys: demo.DevCacheKeys(),
			STS: w.Stack.STSClient(w.Fleet, demo.DefaultRegion)},
		Copy: fetcher.Options{S3: f.s3, Redis: w.Redis, RedisPrefix: w.Prefix, Bucket: w.Manifest.InternalBucket,
			CrossAccount: fetcher.PolicyRequireOwner, StreamPutMax: fetcher.DefaultStreamPutMax},
		QueueURL: f.queueURL, DLQURL: f.dlqURL, EventsQueueURL: f.events,
		VisibilityTimeout: 10 * time.Second, MaxProcessingTime: time.Minute,
		Slots: 2, ShutdownTimeout: 10 * time.Second,
		MetricsAddr: "127.0.0.1:0",
		Logger:      zerolog.New(log),
	}
}

// getHealth fetches path from the service's health server.
func getHealth(t *testing.T, addr, path string) (int, string) {
	t.Helper()
	resp, err := http.Get("http://" + addr + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

func TestService(t *testing.T) {
	t.Parallel()
	w := testenv.NewWorld(t)
	f := newFleet(t, w)
	acme := w.Customer(t, "acme")

	var log testenv.LockedBuffer
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- f.service(&log).Run(ctx) }()

	f.enqueue(t, newTask("t-svc", "acme", s3uri(acme, acme.Objects[0])))
	evs := f.collect(t, 1, 90*time.Second, time.Second)
	if ev := evs[0]; ev.TaskID != "t-svc" || ev.Type != queue.EventCompleted || len(ev.Attachments) != 1 ||
		ev.Attachments[0].Mode != string(fetcher.ModeDelegated) {
		t.Fatalf("event %+v, want t-svc completed with its attachment read delegated", ev)
	}

	m := regexp.MustCompile(`"addr":"([^"]+)","message":"metrics listening"`).FindStringSubmatch(log.String())
	if m == nil {
		t.Fatalf("no metrics address logged:\n%s", log.String())
	}
	addr := m[1]
	// Ready once the queue gauges have polled SQS.
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(100 * time.Millisecond) {
		code, body := getHealth(t, addr, "/readyz")
		if code == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz still %d after a minute: %s", code, body)
		}
	}
	// Every part counts on the one registry the service serves.
	_, metrics := getHealth(t, addr, "/metrics")
	for _, name := range []string{"go_goroutines", "ferry_build_info", "ferry_redis_up 1", "ferry_sts_assume_role_total",
		"ferry_attachments_total", "ferry_queue_messages_received_total", "ferry_events_published_total",
		"ferry_tasks_total", "ferry_queue_messages{"} {
		if !strings.Contains(metrics, name) {
			t.Errorf("/metrics lacks %s", name)
		}
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run after its context ended: %v", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("Run did not return within a minute of its context ending")
	}
	out := log.String()
	started := `"slots":2,"queue":"` + f.queueURL + `","bucket":"` + w.Manifest.InternalBucket + `","cross_account":"require-owner","message":"worker started"`
	for _, want := range []string{started, `"message":"shutting down: draining in-flight tasks"`, `"message":"worker stopped"`} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %s:\n%s", want, out)
		}
	}

	// A metrics address in use stops the service before it receives.
	held, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	svc := f.service(io.Discard)
	svc.MetricsAddr = held.Addr().String()
	var le *worker.HealthListenError
	if err := svc.Run(context.Background()); !errors.As(err, &le) || !strings.Contains(err.Error(), held.Addr().String()) {
		t.Fatalf("metrics address in use: err = %v, want a HealthListenError naming it", err)
	}
}
