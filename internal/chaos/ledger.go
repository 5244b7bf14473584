package chaos

import (
	"encoding/json"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/ferryworks/ferry/queue"
)

// ledger records what the fleet announced and dead-lettered, per task.
type ledger struct {
	mu       sync.Mutex
	tasks    map[string]*entry
	byMarker map[string]*entry
	// unexpected are DLQ bodies and events that belong to no planned task.
	unexpected []string
	events     int
	// outage is the window of a Redis outage; events that arrive inside it
	// are counted to show the fleet kept working.
	outageFrom, outageTo time.Time
	duringOutage         map[string]int
	// occurred is when each event delivered says it occurred (the
	// worker's clock, the campaign's machine): the fleet's output over
	// time, in which a stall is a gap.
	occurred []time.Time
}

type entry struct {
	p        planned
	types    map[string]int // event type → deliveries
	ids      map[string]int // event id → deliveries
	dlq      int
	copied   []queue.AttachmentResult
	lastSeen time.Time
	// sent is when the task's first message was accepted by SQS; first is
	// when its first event occurred.
	sent, first time.Time
}

func newLedger(tasks []planned) *ledger {
	l := &ledger{tasks: map[string]*entry{}, byMarker: map[string]*entry{}, duringOutage: map[string]int{}}
	for _, p := range tasks {
		e := &entry{p: p, types: map[string]int{}, ids: map[string]int{}}
		l.tasks[p.ID] = e
		if p.Marker != "" {
			l.byMarker[p.Marker] = e
		}
	}
	return l
}

func (l *ledger) setOutage(from, to time.Time) {
	l.mu.Lock()
	l.outageFrom, l.outageTo = from, to
	l.mu.Unlock()
}

func (l *ledger) addEvent(ev queue.Event, at time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.events++
	if !l.outageFrom.IsZero() && !at.Before(l.outageFrom) && (l.outageTo.IsZero() || at.Before(l.outageTo)) {
		l.duringOutage[ev.Type]++
	}
	e, ok := l.tasks[ev.TaskID]
	if !ok {
		l.unexpected = append(l.unexpected, "event "+ev.EventID)
		return
	}
	if !ev.OccurredAt.IsZero() {
		l.occurred = append(l.occurred, ev.OccurredAt)
		if e.first.IsZero() || ev.OccurredAt.Before(e.first) {
			e.first = ev.OccurredAt
		}
	}
	e.types[ev.Type]++
	e.ids[ev.EventID]++
	e.lastSeen = at
	for _, a := range ev.Attachments {
		if a.Status == "copied" {
			e.copied = append(e.copied, a)
		}
	}
}

// markSent records that SQS accepted a message of each task at at; a task
// keeps its first time.
func (l *ledger) markSent(ids []string, at time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, id := range ids {
		if e, ok := l.tasks[id]; ok && e.sent.IsZero() {
			e.sent = at
		}
	}
}

// bodies are the messages sent for the tasks ids.
func (l *ledger) bodies(ids []string) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, id := range ids {
		if e, ok := l.tasks[id]; ok {
			out = append(out, e.p.Bodies...)
		}
	}
	return out
}

func (l *ledger) addDLQ(body string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	var p struct {
		TaskID any `json:"task_id"`
	}
	if json.Unmarshal([]byte(body), &p) == nil {
		if id, ok := p.TaskID.(string); ok {
			if e, ok := l.tasks[id]; ok {
				e.dlq++
				return
			}
			if e, ok := l.byMarker[id]; ok {
				e.dlq++
				return
			}
		}
	}
	for m, e := range l.byMarker {
		if strings.Contains(body, m) {
			e.dlq++
			return
		}
	}
	if len(body) > 80 {
		body = body[:80] + "…"
	}
	l.unexpected = append(l.unexpected, "dead letter "+body)
}

// settled reports whether every task has what it must end with: its
// terminal event, or a dead letter.
func (l *ledger) settled() (done, total int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, e := range l.tasks {
		if e.settled() {
			done++
		}
	}
	return done, len(l.tasks)
}

func (e *entry) settled() bool {
	switch {
	case e.p.WantDLQ && e.p.WantEvent != "":
		return e.dlq > 0 && len(e.types) > 0
	case e.p.WantDLQ:
		return e.dlq > 0
	default:
		return len(e.types) > 0 || e.dlq > 0
	}
}

// tally is the ledger's verdict on outcomes.
type tally struct {
	ByType          map[string]int
	Lost            []string
	Conflicting     []string
	Wrong           []string
	DuplicateEvents int
	DLQ             int
	DLQInvalid      int
	DLQExhausted    []string // valid tasks that reached the DLQ without an event
	DLQAfterEvent   int      // valid tasks in the DLQ that also have their event
	DLQCopies       int      // dead letters beyond the first per task
	MissingFromDLQ  []string
	Unexpected      []string
	DuringOutage    map[string]int
	Events          int
}

func (l *ledger) tally() tally {
	l.mu.Lock()
	defer l.mu.Unlock()
	t := tally{ByType: map[string]int{}, DuringOutage: map[string]int{}, Unexpected: append([]string(nil), l.unexpected...), Events: l.events}
	for k, v := range l.duringOutage {
		t.DuringOutage[k] = v
	}
	for id, e := range l.tasks {
		t.DLQ += e.dlq
		if e.dlq > 1 {
			t.DLQCopies += e.dlq - 1
		}
		for _, n := range e.ids {
			t.DuplicateEvents += n - 1
		}
		if len(e.types) > 1 {
			t.Conflicting = append(t.Conflicting, id)
		}
		for typ := range e.types {
			t.ByType[typ]++
			if e.p.WantEvent != "" && typ != e.p.WantEvent {
				t.Wrong = append(t.Wrong, id+" got "+typ+" want "+e.p.WantEvent)
			}
		}
		if e.p.WantEvent == "" && len(e.types) > 0 {
			t.Wrong = append(t.Wrong, id+" announced, want no event")
		}
		switch {
		case e.p.WantDLQ:
			if e.dlq == 0 {
				t.MissingFromDLQ = append(t.MissingFromDLQ, id)
			} else {
				t.DLQInvalid++
			}
			if e.p.WantEvent != "" && len(e.types) == 0 {
				t.Lost = append(t.Lost, id+" (no task.failed for an invalid message)")
			}
		case len(e.types) == 0 && e.dlq == 0:
			t.Lost = append(t.Lost, id)
		case len(e.types) == 0:
			t.DLQExhausted = append(t.DLQExhausted, id)
		case e.dlq > 0:
			t.DLQAfterEvent++
		}
	}
	for _, s := range [][]string{t.Lost, t.Conflicting, t.Wrong, t.DLQExhausted, t.MissingFromDLQ} {
		sort.Strings(s)
	}
	return t
}

// copies returns every copied attachment announced, once per stored key.
func (l *ledger) copies() []queue.AttachmentResult {
	l.mu.Lock()
	defer l.mu.Unlock()
	seen := map[string]bool{}
	var out []queue.AttachmentResult
	for _, e := range l.tasks {
		for _, a := range e.copied {
			if !seen[a.Stored] {
				seen[a.Stored] = true
				out = append(out, a)
			}
		}
	}
	return out
}
