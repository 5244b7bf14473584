package worker

import (
	"testing"
	"time"

	"github.com/ferryworks/ferry/credcache"
	"github.com/ferryworks/ferry/fetcher"
	"github.com/ferryworks/ferry/queue"
)

type observed struct {
	customer string
	o        credcache.TaskOutcome
}

type statusLog []observed

func (l *statusLog) ObserveTask(customerID string, o credcache.TaskOutcome) {
	*l = append(*l, observed{customerID, o})
}

// What a finished task tells the integration status: completed, refused at
// assume_role (with the hint), or merely used.
func TestObserveTaskOutcomes(t *testing.T) {
	t.Parallel()
	var log statusLog
	h := &Handler{o: HandlerOptions{Status: &log}}
	at := time.Date(2026, 12, 2, 8, 0, 0, 0, time.UTC)
	refused := &fetcher.Error{Kind: fetcher.KindAccessDenied, Stage: fetcher.StageAssumeRole, Code: "AccessDenied", Message: "not authorized", Hint: "fix the trust policy"}
	elsewhere := &fetcher.Error{Kind: fetcher.KindAccessDenied, Stage: fetcher.StageGetObject, Code: "AccessDenied"}
	h.observe("a", at, queue.EventCompleted, []error{nil})
	h.observe("b", at, queue.EventAccessDenied, []error{nil, refused})
	h.observe("c", at, queue.EventAccessDenied, []error{elsewhere})
	want := []observed{
		{"a", credcache.TaskOutcome{At: at, Completed: true}},
		{"b", credcache.TaskOutcome{At: at, AssumeRoleRefused: true, Err: &credcache.StatusError{Source: "task", Stage: "assume_role", Code: "AccessDenied", Message: "not authorized", Hint: "fix the trust policy", At: at}}},
		{"c", credcache.TaskOutcome{At: at}},
	}
	if len(log) != len(want) {
		t.Fatalf("observed %+v", log)
	}
	for i, w := range want {
		g := log[i]
		if g.customer != w.customer || g.o.Completed != w.o.Completed || g.o.AssumeRoleRefused != w.o.AssumeRoleRefused || !g.o.At.Equal(at) ||
			(w.o.Err == nil) != (g.o.Err == nil) || (w.o.Err != nil && *w.o.Err != *g.o.Err) {
			t.Errorf("observation %d: %+v (err %+v), want %+v", i, g, g.o.Err, w)
		}
	}
	(&Handler{}).observe("d", at, queue.EventCompleted, nil) // no observer: nothing happens
}
