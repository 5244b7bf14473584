package worker_test

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/ferryworks/ferry/internal/testenv"
	"github.com/ferryworks/ferry/worker"
)

func TestStateRoundTripAndRedisErrorsCounted(t *testing.T) {
	t.Parallel()
	srv := testenv.StartRedis(t)
	errs := prometheus.NewCounter(prometheus.CounterOpts{Name: "ferry_redis_errors_total"})
	st := &worker.State{Redis: srv.Client(), Prefix: "ferry", RedisErrors: errs}
	ctx := context.Background()

	if _, ok, err := st.Terminal(ctx, "t-1"); ok || err != nil {
		t.Fatalf("Terminal before any record = %v, %v", ok, err)
	}
	want := worker.Terminal{EventID: "t-1/completed", Type: "task.completed", At: time.Now().UTC().Truncate(time.Second)}
	if err := st.RecordError(ctx, "t-1", worker.LastError{Error: "SlowDown"}); err != nil {
		t.Fatal(err)
	}
	if err := st.RecordTerminal(ctx, "t-1", want); err != nil {
		t.Fatal(err)
	}
	got, ok, err := st.Terminal(ctx, "t-1")
	if err != nil || !ok || got != want {
		t.Fatalf("Terminal = %+v, %v, %v; want %+v", got, ok, err, want)
	}
	if _, ok, _ := st.LastError(ctx, "t-1"); ok {
		t.Error("the last error outlived the terminal record")
	}
	lock, held, err := st.Lock(ctx, "t-2", time.Second)
	if err != nil || !held {
		t.Fatalf("Lock = %v, %v", held, err)
	}
	if _, again, _ := st.Lock(ctx, "t-2", time.Second); again {
		t.Fatal("a second Lock of the same task was granted")
	}
	if err := lock.Unlock(ctx); err != nil {
		t.Fatal(err)
	}
	if testutil.ToFloat64(errs) != 0 {
		t.Fatalf("redis errors = %v before the outage", testutil.ToFloat64(errs))
	}

	srv.Stop()
	if _, _, err := st.Terminal(ctx, "t-1"); err == nil {
		t.Fatal("Terminal with Redis down reported no error")
	}
	if _, _, err := st.Lock(ctx, "t-3", time.Second); err == nil {
		t.Fatal("Lock with Redis down reported no error")
	}
	if n := testutil.ToFloat64(errs); n != 2 {
		t.Errorf("redis errors = %v, want 2", n)
	}
}
