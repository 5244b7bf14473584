package worker

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/ferryworks/ferry/fetcher"
	"github.com/ferryworks/ferry/queue"
	"github.com/ferryworks/ferry/task"
	"github.com/ferryworks/ferry/taskstate"
)

func TestClassify(t *testing.T) {
	t.Parallel()
	denied := &fetcher.Error{Kind: fetcher.KindAccessDenied, Stage: fetcher.StageAssumeRole}
	notFound := &fetcher.Error{Kind: fetcher.KindNotFound, Stage: fetcher.StageGetObject}
	tooLarge := &fetcher.Error{Kind: fetcher.KindTooLarge, Stage: fetcher.StageGetObject}
	transient := &fetcher.Error{Kind: fetcher.KindTransient, Stage: fetcher.StageGetObject, Code: "SlowDown"}
	untyped := errors.New("boom")
	cases := []struct {
		name      string
		errs      []error
		want      string
		transient error
	}{
		{"all copied", []error{nil, nil}, queue.EventCompleted, nil},
		{"one denied", []error{nil, denied}, queue.EventAccessDenied, nil},
		{"denied beats not found", []error{notFound, denied}, queue.EventAccessDenied, nil},
		{"not found", []error{nil, notFound}, queue.EventFailed, nil},
		{"too large", []error{tooLarge}, queue.EventFailed, nil},
		{"transient retries even with a denial", []error{denied, transient}, queue.EventAccessDenied, transient},
		{"untyped error is transient", []error{untyped}, queue.EventCompleted, untyped},
		{"first transient reported", []error{nil, transient, untyped}, queue.EventCompleted, transient},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			got, tr := classify(c.errs)
			if tr != c.transient {
				t.Fatalf("transient = %v, want %v", tr, c.transient)
			}
			if c.transient == nil && got != c.want {
				t.Fatalf("event = %s, want %s", got, c.want)
			}
		})
	}
}

func TestEventAttachments(t *testing.T) {
	t.Parallel()
	h, err := NewHandler(HandlerOptions{Copier: nopCopier{}, Publisher: nopPublisher{}, DeadLetters: nopDLQ{}, DLQURL: "x", State: &taskstate.State{Redis: nil}})
	if err == nil {
		t.Fatal("NewHandler accepted a State without Redis")
	}
	h = &Handler{o: HandlerOptions{Now: func() time.Time { return time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC) }}}
	tk := task.Task{Version: 1, TaskID: "t-1", CustomerID: "acme", SubmissionID: "s-2", Attachments: []task.Attachment{
		{URI: "s3://acme-data/a.jpg"}, {URI: "s3://acme-data/b.jpg"},
	}}
	res := []fetcher.Result{{Source: "s3://acme-data/a.jpg", Stored: "s3://ferry-internal/acme/t-1/0-a.jpg", Size: 5, SHA256: "ab", ContentType: "image/jpeg", Mode: fetcher.ModeDelegated}, {}}
	errs := []error{nil, &fetcher.Error{Kind: fetcher.KindAccessDenied, Stage: fetcher.StageGetObject, Mode: fetcher.ModeDelegated, Code: "AccessDenied", Hint: "grant it", URI: "s3://acme-data/b.jpg"}}
	ev := h.event(tk, queue.EventAccessDenied, res, errs)
	if ev.EventID != "t-1/s-2/access_denied" || ev.Type != queue.EventAccessDenied || ev.SubmissionID != "s-2" {
		t.Fatalf("event header = %+v", ev)
	}
	a0, a1 := ev.Attachments[0], ev.Attachments[1]
	if a0.Status != "copied" || a0.Stored == "" || a0.Mode != "delegated" || a0.Error != nil {
		t.Fatalf("copied attachment = %+v", a0)
	}
	if a1.Status != "access_denied" || a1.Error == nil || a1.Error.Stage != "get_object" || a1.Error.Hint != "grant it" || a1.Stored != "" {
		t.Fatalf("denied attachment = %+v", a1)
	}
}

type nopCopier struct{}

func (nopCopier) Copy(context.Context, fetcher.Request) (fetcher.Result, error) {
	return fetcher.Result{}, nil
}

type nopPublisher struct{}

func (nopPublisher) Publish(context.Context, queue.Event) error { return nil }

type nopDLQ struct{}

func (nopDLQ) SendToDLQ(context.Context, string, *queue.Lease, string, string) error { return nil }
