package credcache

import (
	"context"
	"sync"
	"time"

	"github.com/rs/zerolog"
)

// DefaultStatusWriteInterval is how often at most one process writes one
// customer's status.
const DefaultStatusWriteInterval = time.Minute

// StatusRecorderOptions configures a StatusRecorder.
type StatusRecorderOptions struct {
	// Interval is the least time between two writes of one customer's
	// status by this process (default DefaultStatusWriteInterval).
	Interval time.Duration
	// Tick is how often pending observations are looked at (default
	// Interval/12, at least a second): the first observation of a customer
	// is written within a Tick, later ones within Interval+Tick.
	Tick   time.Duration
	Logger zerolog.Logger
	// Now is the clock (tests); default time.Now.
	Now func() time.Time
}

// StatusRecorder keeps integration statuses current from the workers' task
// outcomes without costing the tasks anything: ObserveTask only folds the
// outcome into an in-process memo, and Run writes each customer's memo to
// Redis at most once per Interval. A failed write is logged (throttled) and
// its observations are kept for the next one; no task ever waits on or
// fails over the status.
type StatusRecorder struct {
	reg *Registry
	o   StatusRecorderOptions
	log zerolog.Logger

	mu      sync.Mutex
	pending map[string]*statusMemo
}

// statusMemo is one customer's observations since this process last wrote
// its status.
type statusMemo struct {
	d         statusDelta
	lastWrite time.Time
}

// NewStatusRecorder returns a recorder writing through reg.
func NewStatusRecorder(reg *Registry, o StatusRecorderOptions) *StatusRecorder {
	if o.Interval <= 0 {
		o.Interval = DefaultStatusWriteInterval
	}
	if o.Tick <= 0 {
		o.Tick = max(o.Interval/12, time.Second)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &StatusRecorder{reg: reg, o: o, log: throttled(o.Logger), pending: map[string]*statusMemo{}}
}

// ObserveTask folds one finished task of customerID into the memo. It
// never blocks on Redis.
func (s *StatusRecorder) ObserveTask(customerID string, o TaskOutcome) {
	if s == nil {
		return
	}
	if o.At.IsZero() {
		o.At = s.o.Now()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	d := &s.memoLocked(customerID).d
	d.lastUsed = later(d.lastUsed, o.At)
	switch {
	case o.Completed:
		d.lastSuccess = later(d.lastSuccess, o.At)
		d.refusals = 0 // refusals count after the last success only
	case o.AssumeRoleRefused:
		d.refusals++
		if o.Err != nil {
			e := *o.Err
			if e.Source == "" {
				e.Source = "task"
			}
			if e.At.IsZero() {
				e.At = o.At
			}
			d.err = &e
		}
	}
}

// Run writes due memos every Tick until ctx ends, then writes what is
// still pending once more (best effort, within two seconds), so a worker
// that drains does not lose its last minute of outcomes.
func (s *StatusRecorder) Run(ctx context.Context) {
	t := time.NewTicker(s.o.Tick)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
			s.Flush(fctx, true)
			cancel()
			return
		case <-t.C:
			s.Flush(ctx, false)
		}
	}
}

// Flush writes the memo of every customer whose last write is at least
// Interval old (all of them with force). It returns the number of
// customers written.
func (s *StatusRecorder) Flush(ctx context.Context, force bool) int {
	now := s.o.Now()
	type due struct {
		id string
		d  statusDelta
	}
	var work []due
	s.mu.Lock()
	for id, m := range s.pending {
		if m.d.empty() {
			if now.Sub(m.lastWrite) >= s.o.Interval {
				delete(s.pending, id) // nothing new for a whole interval: forget it
			}
			continue
		}
		if force || now.Sub(m.lastWrite) >= s.o.Interval {
			work = append(work, due{id, m.d})
			m.d, m.lastWrite = statusDelta{}, now
		}
	}
	s.mu.Unlock()
	written := 0
	for _, w := range work {
		if err := s.reg.applyStatus(ctx, w.id, w.d); err != nil {
			s.log.Warn().Err(err).Str("customer_id", w.id).Msg("integration status not written; kept for the next write")
			s.requeue(w.id, w.d)
			continue
		}
		written++
	}
	return written
}

// requeue puts a delta that could not be written back in front of what was
// observed since.
func (s *StatusRecorder) requeue(id string, old statusDelta) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.memoLocked(id)
	m.d = old.then(m.d)
}

// memoLocked is the customer's memo, created empty when it has none; the
// caller holds s.mu.
func (s *StatusRecorder) memoLocked(customerID string) *statusMemo {
	m := s.pending[customerID]
	if m == nil {
		m = &statusMemo{}
		s.pending[customerID] = m
	}
	return m
}

// then is d followed by next, as one delta.
func (d statusDelta) then(next statusDelta) statusDelta {
	out := next
	out.lastUsed = later(d.lastUsed, next.lastUsed)
	if next.lastSuccess.IsZero() {
		out.lastSuccess = d.lastSuccess
		out.refusals = d.refusals + next.refusals
		if out.err == nil {
			out.err = d.err
		}
	}
	return out
}
