package taskstate

import (
	"context"
	"testing"
	"time"

	"github.com/ferryworks/ferry/internal/testenv"
	"github.com/ferryworks/ferry/queue"
)

// The first attempt's event is the one every later attempt publishes, and
// the destinations that took it are remembered.
func TestPublication(t *testing.T) {
	t.Parallel()
	rdb, prefix := testenv.Redis(t)
	s := &State{Redis: rdb, Prefix: prefix}
	ctx := context.Background()
	first := queue.Event{Version: 1, EventID: "t-1/access_denied", Type: queue.EventAccessDenied, TaskID: "t-1",
		CustomerID: "acme", OccurredAt: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	ev, done, err := s.Publication(ctx, first)
	if err != nil || ev.EventID != first.EventID || len(done) != 0 {
		t.Fatalf("first attempt: %+v %v %v", ev, done, err)
	}
	if err := s.Published(ctx, ev, "topic"); err != nil {
		t.Fatal(err)
	}
	retry := first
	retry.Type, retry.EventID, retry.OccurredAt = queue.EventCompleted, "t-1/completed", first.OccurredAt.Add(time.Minute)
	ev, done, err = s.Publication(ctx, retry)
	if err != nil {
		t.Fatal(err)
	}
	if ev.EventID != first.EventID || ev.Type != first.Type || !ev.OccurredAt.Equal(first.OccurredAt) {
		t.Errorf("retry got %+v, want the first attempt's event", ev)
	}
	if !done["topic"] || done["queue"] {
		t.Errorf("published to %v, want topic only", done)
	}
	other, done, err := s.Publication(ctx, queue.Event{Version: 1, EventID: "t-1/s-2/completed", Type: queue.EventCompleted, TaskID: "t-1", SubmissionID: "s-2"})
	if err != nil || other.EventID != "t-1/s-2/completed" || len(done) != 0 {
		t.Errorf("a new submission is a new task: %+v %v %v", other, done, err)
	}
	if ttl := rdb.TTL(ctx, s.key("t-1", ":published")).Val(); ttl <= 0 {
		t.Errorf("published set without a TTL: %v", ttl)
	}
}
