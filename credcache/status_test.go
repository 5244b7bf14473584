package credcache_test

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/rs/zerolog"

	"github.com/ferryworks/ferry/credcache"
	"github.com/ferryworks/ferry/internal/testenv"
)

func statusOf(t *testing.T, reg *credcache.Registry, id string) credcache.IntegrationStatus {
	t.Helper()
	ctx := context.Background()
	in, err := reg.Get(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	st, err := reg.Status(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// An integration's status through its life, kept in Redis: pending until
// something shows whether it works, failing after a failed verification,
// active after a completed task, failing after FailingAfter refusals at
// assume_role reported by two workers, pending again once changed.
func TestIntegrationStatusLifecycle(t *testing.T) {
	t.Parallel()
	rdb, prefix := testenv.Redis(t)
	key := newKey(t)
	reg := newRegistry(t, rdb, prefix, key)
	ctx := context.Background()
	if _, err := reg.Enable(ctx, "acme", "111122223333", ""); err != nil {
		t.Fatal(err)
	}
	if st := statusOf(t, reg, "acme"); st.Status != credcache.StatusPending || !st.LastUsed.IsZero() {
		t.Fatalf("a new integration: %+v, want pending", st)
	}

	at := time.Now().UTC().Truncate(time.Millisecond)
	fail := &credcache.StatusError{Source: "verify", Stage: "assume_role", Code: "AccessDenied", Message: "not authorized", Hint: "fix the trust policy", At: at}
	if err := reg.RecordVerification(ctx, "acme", at, fail); err != nil {
		t.Fatal(err)
	}
	st := statusOf(t, reg, "acme")
	if st.Status != credcache.StatusFailing || st.LastError == nil || *st.LastError != *fail || !st.LastVerified.Equal(at) {
		t.Fatalf("after a failed verification: %+v (error %+v)", st, st.LastError)
	}

	// Two workers, each with its own memo and clock.
	clock := testenv.FixedClock(at)
	w1 := credcache.NewStatusRecorder(newRegistry(t, testenv.RedisClient(t), prefix, key), credcache.StatusRecorderOptions{Now: clock.Now, Logger: zerolog.Nop()})
	w2 := credcache.NewStatusRecorder(newRegistry(t, testenv.RedisClient(t), prefix, key), credcache.StatusRecorderOptions{Now: clock.Now, Logger: zerolog.Nop()})
	w1.ObserveTask("acme", credcache.TaskOutcome{Completed: true})
	if n := w1.Flush(ctx, false); n != 1 {
		t.Fatalf("first flush wrote %d customers, want 1", n)
	}
	st = statusOf(t, reg, "acme")
	if st.Status != credcache.StatusActive || !st.LastUsed.Equal(at) || !st.LastSuccess.Equal(at) {
		t.Fatalf("after a completed task: %+v", st)
	}

	refused := credcache.TaskOutcome{AssumeRoleRefused: true, Err: &credcache.StatusError{Stage: "assume_role", Code: "AccessDenied", Hint: "h"}}
	clock.Advance(time.Second)
	w1.ObserveTask("acme", refused)
	if n := w1.Flush(ctx, false); n != 0 {
		t.Fatalf("a second write within the interval: %d", n)
	}
	for range credcache.FailingAfter - 1 {
		w2.ObserveTask("acme", refused)
	}
	w2.ObserveTask("nobody", refused) // no integration: no status
	if n := w2.Flush(ctx, false); n != 2 {
		t.Fatalf("w2 wrote %d customers, want 2", n)
	}
	if st := statusOf(t, reg, "acme"); st.Status != credcache.StatusActive || st.AssumeRoleFailures != credcache.FailingAfter-1 {
		t.Fatalf("below the threshold: %+v", st)
	}
	if keys := testenv.Keys(t, rdb, prefix+":{nobody}:*"); len(keys) != 0 {
		t.Fatalf("a customer without an integration got keys %v", keys)
	}
	clock.Advance(credcache.DefaultStatusWriteInterval)
	if n := w1.Flush(ctx, false); n != 1 {
		t.Fatalf("w1 after the interval wrote %d", n)
	}
	st = statusOf(t, reg, "acme")
	if st.Status != credcache.StatusFailing || st.AssumeRoleFailures != credcache.FailingAfter || st.LastError == nil ||
		st.LastError.Source != "task" || st.LastError.Code != "AccessDenied" || !st.LastError.At.Equal(at.Add(time.Second)) {
		t.Fatalf("at the threshold: %+v (error %+v)", st, st.LastError)
	}

	// Changing the integration makes the old verdict moot.
	time.Sleep(2 * time.Millisecond) // a later UpdatedAt
	if _, err := reg.Enable(ctx, "acme", "444455556666", ""); err != nil {
		t.Fatal(err)
	}
	if st := statusOf(t, reg, "acme"); st.Status != credcache.StatusPending || !st.LastUsed.Equal(at.Add(time.Second)) || st.LastError != nil {
		t.Fatalf("after a change: %+v, want pending keeping last_used", st)
	}
	if err := reg.RecordVerification(ctx, "acme", at.Add(3*time.Second), nil); err != nil {
		t.Fatal(err)
	}
	if st := statusOf(t, reg, "acme"); st.Status != credcache.StatusActive {
		t.Fatalf("after a good verification: %+v", st)
	}
}

// A write that fails is not lost: its observations go out with the next.
func TestStatusRecorderKeepsWhatRedisRefused(t *testing.T) {
	t.Parallel()
	srv := testenv.StartRedis(t)
	rdb := srv.Client()
	key := newKey(t)
	reg := newRegistry(t, rdb, "ferry", key)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := reg.Enable(ctx, "acme", "111122223333", ""); err != nil {
		t.Fatal(err)
	}
	clock := testenv.FixedClock(time.Now())
	rec := credcache.NewStatusRecorder(reg, credcache.StatusRecorderOptions{Now: clock.Now, Logger: zerolog.Nop()})
	for range credcache.FailingAfter {
		rec.ObserveTask("acme", credcache.TaskOutcome{AssumeRoleRefused: true, Err: &credcache.StatusError{Stage: "assume_role", Code: "AccessDenied"}})
	}
	srv.Stop()
	if n := rec.Flush(ctx, false); n != 0 {
		t.Fatalf("wrote %d with Redis down", n)
	}
	srv.Start() // empty: the integration is restored, as after a loss
	restored := newRegistry(t, rdb, "ferry", key)
	if _, err := restored.Enable(ctx, "acme", "111122223333", ""); err != nil {
		t.Fatal(err)
	}
	clock.Advance(credcache.DefaultStatusWriteInterval)
	if n := rec.Flush(ctx, false); n != 1 {
		t.Fatalf("wrote %d once Redis is back", n)
	}
	if st := statusOf(t, restored, "acme"); st.Status != credcache.StatusFailing || st.AssumeRoleFailures != credcache.FailingAfter {
		t.Fatalf("after the retried write: %+v", st)
	}
}

// ferry_integrations counts the registry by status; replicas share one
// count, made by whichever takes the turn.
func TestStatusCensus(t *testing.T) {
	t.Parallel()
	rdb, prefix := testenv.Redis(t)
	key := newKey(t)
	reg := newRegistry(t, rdb, prefix, key)
	ctx := context.Background()
	for _, id := range []string{"a", "b", "c", "d"} {
		if _, err := reg.Enable(ctx, id, "111122223333", ""); err != nil {
			t.Fatal(err)
		}
	}
	now := time.Now()
	if err := reg.RecordVerification(ctx, "a", now, nil); err != nil {
		t.Fatal(err)
	}
	if err := reg.RecordVerification(ctx, "b", now, &credcache.StatusError{Source: "verify", Stage: "assume_role"}); err != nil {
		t.Fatal(err)
	}
	if err := reg.RecordVerification(ctx, "c", now, &credcache.StatusError{Source: "verify", Stage: "head_bucket"}); err != nil {
		t.Fatal(err)
	}
	want := map[credcache.Status]float64{credcache.StatusPending: 1, credcache.StatusActive: 1, credcache.StatusFailing: 2}

	var censuses []*credcache.StatusCensus
	for range 2 {
		r := newRegistry(t, testenv.RedisClient(t), prefix, key)
		censuses = append(censuses, credcache.NewStatusCensus(prometheus.NewRegistry(), r, credcache.StatusCensusOptions{Logger: zerolog.Nop()}))
	}
	for i, c := range censuses {
		if err := c.Refresh(ctx); err != nil {
			t.Fatalf("census %d: %v", i, err)
		}
		for s, n := range want {
			if got := testutil.ToFloat64(c.Gauge().WithLabelValues(string(s))); got != n {
				t.Errorf("census %d: ferry_integrations{status=%q} = %v, want %v", i, s, got, n)
			}
		}
	}
	// Within the turn nobody counts again: a change shows at the next turn.
	if err := reg.RecordVerification(ctx, "d", now, nil); err != nil {
		t.Fatal(err)
	}
	if err := censuses[1].Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if got := testutil.ToFloat64(censuses[1].Gauge().WithLabelValues(string(credcache.StatusActive))); got != 1 {
		t.Errorf("counted again within the turn: active = %v", got)
	}
	if err := rdb.Del(ctx, prefix+":integrations:census:turn").Err(); err != nil {
		t.Fatal(err)
	}
	if err := censuses[1].Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if got := testutil.ToFloat64(censuses[1].Gauge().WithLabelValues(string(credcache.StatusActive))); got != 2 {
		t.Errorf("the next turn's count: active = %v, want 2", got)
	}
}
