package taskstate_test

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/ferryworks/ferry/internal/testenv"
	"github.com/ferryworks/ferry/taskstate"
)

func TestStateRoundTripAndRedisErrorsCounted(t *testing.T) {
	t.Parallel()
	srv := testenv.StartRedis(t)
	errs := prometheus.NewCounter(prometheus.CounterOpts{Name: "ferry_redis_errors_total"})
	st := &taskstate.State{Redis: srv.Client(), Prefix: "ferry", RedisErrors: errs}
	ctx := context.Background()

	if _, ok, err := st.Terminal(ctx, "t-1"); ok || err != nil {
		t.Fatalf("Terminal before any record = %v, %v", ok, err)
	}
	want := taskstate.Terminal{EventID: "t-1/completed", Type: "task.completed", At: time.Now().UTC().Truncate(time.Second)}
	if err := st.RecordError(ctx, "t-1", taskstate.LastError{Error: "SlowDown"}); err != nil {
		t.Fatal(err)
	}
	if err := st.Finish(ctx, "t-1", want, nil); err != nil {
		t.Fatal(err)
	}
	got, ok, err := st.Terminal(ctx, "t-1")
	if err != nil || !ok || got != want {
		t.Fatalf("Terminal = %+v, %v, %v; want %+v", got, ok, err, want)
	}
	if _, ok, _ := st.LastError(ctx, "t-1"); ok {
		t.Error("the last error outlived the terminal record")
	}
	_, _, lock, err := st.Begin(ctx, "t-2", time.Second)
	if err != nil || lock == nil {
		t.Fatalf("Begin = lock %v, %v", lock != nil, err)
	}
	if _, _, again, _ := st.Begin(ctx, "t-2", time.Second); again != nil {
		t.Fatal("a second Begin of the same task took the lock")
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
	if _, _, _, err := st.Begin(ctx, "t-3", time.Second); err == nil {
		t.Fatal("Begin with Redis down reported no error")
	}
	if n := testutil.ToFloat64(errs); n != 2 {
		t.Errorf("redis errors = %v, want 2", n)
	}
}

func TestStateBeginFinish(t *testing.T) {
	t.Parallel()
	rdb, prefix := testenv.Redis(t)
	st := &taskstate.State{Redis: rdb, Prefix: prefix}
	ctx := context.Background()
	_, done, lock, err := st.Begin(ctx, "t-1", 5*time.Second)
	if err != nil || done || lock == nil {
		t.Fatalf("first Begin = done %v lock %v err %v; want the lock", done, lock != nil, err)
	}
	if _, done2, lock2, err := st.Begin(ctx, "t-1", 5*time.Second); err != nil || done2 || lock2 != nil {
		t.Fatalf("second Begin = done %v lock %v err %v; want busy", done2, lock2 != nil, err)
	}
	if err := st.RecordError(ctx, "t-1", taskstate.LastError{Error: "x"}); err != nil {
		t.Fatal(err)
	}
	want := taskstate.Terminal{EventID: "t-1/completed", Type: "task.completed", At: time.Now().UTC().Truncate(time.Second)}
	if err := st.Finish(ctx, "t-1", want, lock); err != nil {
		t.Fatal(err)
	}
	if err := lock.Unlock(ctx); err != nil { // after Finish: a no-op
		t.Fatal(err)
	}
	got, done, lock3, err := st.Begin(ctx, "t-1", 5*time.Second)
	if err != nil || !done || lock3 != nil || got != want {
		t.Fatalf("Begin after Finish = %+v done %v lock %v err %v; want the terminal record", got, done, lock3 != nil, err)
	}
	if _, ok, _ := st.LastError(ctx, "t-1"); ok {
		t.Error("Finish left the last error")
	}
	if n, _ := rdb.Exists(ctx, prefix+":task:{t-1}:lock").Result(); n != 0 {
		t.Error("Finish left the lock")
	}
}

// TestStateScriptsKeepKeysInOneSlot runs State's multi-key scripts (begin:
// terminal record and lock; finish: terminal record, last error and lock)
// through a client that fails the test when a script's keys span cluster
// slots; against a cluster, Redis itself would refuse them too. (A one-key
// script cannot span slots.)
func TestStateScriptsKeepKeysInOneSlot(t *testing.T) {
	t.Parallel()
	rdb, prefix := testenv.Redis(t)
	log := testenv.CheckScriptSlots(t, rdb)
	st := &taskstate.State{Redis: rdb, Prefix: prefix}
	ctx := context.Background()
	_, _, lock, err := st.Begin(ctx, "t-1/s-1", 5*time.Second)
	if err != nil || lock == nil {
		t.Fatalf("Begin = lock %v, %v", lock != nil, err)
	}
	if err := st.Finish(ctx, "t-1/s-1", taskstate.Terminal{EventID: "e", Type: "task.completed"}, lock); err != nil {
		t.Fatal(err)
	}
	ran := map[int]bool{}
	for _, c := range log.Calls() {
		ran[len(c.Keys)] = true
	}
	if !ran[2] || !ran[3] {
		t.Errorf("begin (2 keys) and finish (3 keys) did not both run through the checked client: %+v", log.Calls())
	}
}
