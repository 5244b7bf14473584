package deadletter_test

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"golang.org/x/time/rate"

	"github.com/ferryworks/ferry/deadletter"
	"github.com/ferryworks/ferry/internal/localaws"
	"github.com/ferryworks/ferry/internal/testenv"
	"github.com/ferryworks/ferry/queue"
	"github.com/ferryworks/ferry/task"
	"github.com/ferryworks/ferry/taskstate"
)

// TestListFindReplay drives the library the way `ferry dlq` does, against a
// real SQS (localaws) and real Redis: the join with task state, the filter,
// Find by id, and a replay that moves only what the filter selects.
func TestListFindReplay(t *testing.T) {
	t.Parallel()
	e := testenv.NewSharedSQS(t)
	rdb, prefix := testenv.Redis(t)
	ctx := context.Background()
	api := e.Client
	dlq := e.Queue(t, localaws.Queue{Name: "tasks-dlq"})
	tasksURL := e.Queue(t, localaws.Queue{Name: "tasks", DeadLetter: "tasks-dlq"})
	att := []task.Attachment{{URI: "s3://acme-data/img/1.jpg"}}
	ids := map[string]string{}
	for _, r := range queue.NewProducer(api, dlq, task.Limits{}).Send(ctx, []task.Task{
		{Version: 1, TaskID: "t-1", CustomerID: "acme", Attachments: att},
		{Version: 1, TaskID: "t-2", CustomerID: "acme", Attachments: att},
		{Version: 1, TaskID: "t-3", CustomerID: "globex", Attachments: att},
	}) {
		if r.Err != nil {
			t.Fatal(r.Err)
		}
		ids[r.TaskID] = r.MessageID
	}
	st := &taskstate.State{Redis: rdb, Prefix: prefix}
	if err := st.RecordError(ctx, "t-1", taskstate.LastError{Error: "copy: 1 attachment not copied", Attachments: []taskstate.AttachmentError{{
		Kind: "throttled", AttachmentError: queue.AttachmentError{Stage: "get_object", Code: "SlowDown", Hint: "it clears by itself"}}}}); err != nil {
		t.Fatal(err)
	}
	if err := st.Finish(ctx, "t-2", taskstate.Terminal{EventID: "t-2/completed", Type: queue.EventCompleted, At: time.Now()}, nil); err != nil {
		t.Fatal(err)
	}

	in := &deadletter.Inspector{DL: queue.NewDeadLetter(api), State: st}
	rows, read, err := in.List(ctx, dlq, deadletter.ListOptions{Scan: 100})
	if err != nil || read != 3 || len(rows) != 3 {
		t.Fatalf("List = %d rows of %d read, %v; want 3 of 3", len(rows), read, err)
	}
	by := map[string]deadletter.Row{}
	for _, r := range rows {
		by[r.TaskID] = r
	}
	if r := by["t-1"]; r.LastError == nil || r.Hint != "it clears by itself" || !strings.Contains(r.Error, "not copied") {
		t.Errorf("t-1 row = %+v; want its last error and hint", r)
	}
	if r := by["t-2"]; r.Terminal == nil || !strings.Contains(r.Error, "already published") {
		t.Errorf("t-2 row = %+v; want its terminal record", r)
	}
	if in.StateNote != "" {
		t.Errorf("StateNote = %q with Redis up", in.StateNote)
	}

	r, ok, _, err := in.Find(ctx, dlq, ids["t-1"], 100)
	if !ok || err != nil || r.TaskID != "t-1" {
		t.Fatalf("Find = %+v, %v, %v", r, ok, err)
	}
	var detail bytes.Buffer
	deadletter.WriteDetail(&detail, r, true)
	for _, want := range []string{"task       t-1", "SlowDown", "hint: it clears by itself", "no terminal event yet"} {
		if !strings.Contains(detail.String(), want) {
			t.Errorf("detail lacks %q:\n%s", want, detail.String())
		}
	}
	if _, ok, _, _ := in.Find(ctx, dlq, "no-such-id", 100); ok {
		t.Error("Find found a message id that is not there")
	}

	filter, err := deadletter.ParseFilter("customer=acme")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := in.Replay(ctx, deadletter.ReplayOptions{From: dlq, To: dlq}); err != deadletter.ErrReplayIntoDLQ {
		t.Errorf("replay into the DLQ itself = %v, want ErrReplayIntoDLQ", err)
	}
	dry, err := in.Replay(ctx, deadletter.ReplayOptions{From: dlq, To: tasksURL, Filter: filter, Scan: 100, DryRun: true})
	if err != nil || len(dry.Moved) != 2 || dry.Skipped != 1 {
		t.Fatalf("dry run = %+v, %v; want 2 to move, 1 skipped", dry, err)
	}
	// Progress is reported for every message read, towards the messages
	// the replay reads (or, with a limit, may move).
	var progressed int
	var last deadletter.Summary
	opts := deadletter.ReplayOptions{From: dlq, To: tasksURL, Filter: filter, Scan: 100, Rate: rate.Limit(100),
		Progress: func(s deadletter.Summary) { progressed++; last = s }}
	sum, err := in.Replay(ctx, opts)
	if err != nil || len(sum.Moved) != 2 || len(sum.Failed) != 0 || sum.Skipped != 1 || progressed != 3 {
		t.Fatalf("replay = %+v (progress %d), %v; want 2 moved, 1 skipped", sum, progressed, err)
	}
	if done, detail := last.Progress(0); done != 3 || done != deadletter.ProgressTotal(opts, 3) || detail != "moved 2, failed 0, skipped 1" {
		t.Errorf("progress at the end: %d of %d, %q", done, deadletter.ProgressTotal(opts, 3), detail)
	}
	if done, _ := last.Progress(2); done != 2 || deadletter.ProgressTotal(deadletter.ReplayOptions{Limit: 2, Scan: 100}, 3) != 2 {
		t.Errorf("with --limit 2 the total is 2 and the moves count: done %d", done)
	}
	rows, _, err = in.List(ctx, dlq, deadletter.ListOptions{Scan: 100})
	if err != nil || len(rows) != 1 || rows[0].TaskID != "t-3" {
		t.Fatalf("after replay the DLQ holds %+v, %v; want only t-3", rows, err)
	}
	var out bytes.Buffer
	deadletter.WriteSummary(&out, sum)
	if !strings.Contains(out.String(), "moved 2, skipped 1, failed 0") {
		t.Errorf("summary:\n%s", out.String())
	}
}
