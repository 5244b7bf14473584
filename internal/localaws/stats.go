package localaws

import (
	"sync"
	"sync/atomic"
)

// Outcomes counted per operation by Stats.
const (
	outcomeOK       = "ok"
	outcomeDenied   = "denied"
	outcomeError    = "error"
	outcomeFault    = "fault"
	outcomeNotFound = "not_found"
	outcomeRedirect = "redirect"
)

var outcomeNames = [...]string{outcomeOK, outcomeDenied, outcomeError, outcomeFault, outcomeNotFound, outcomeRedirect}

func outcomeIndex(o string) int {
	for i, n := range outcomeNames {
		if n == o {
			return i
		}
	}
	return 2 // error
}

type opCounters [len(outcomeNames)]atomic.Int64

// statSet counts calls; the map grows once per operation name, after which
// counting takes only a read lock and an atomic add.
type statSet struct {
	mu  sync.RWMutex
	ops map[string]*opCounters
}

func (ss *statSet) init() { ss.ops = map[string]*opCounters{} }

func (ss *statSet) add(op, outcome string) {
	ss.mu.RLock()
	c, ok := ss.ops[op]
	ss.mu.RUnlock()
	if !ok {
		ss.mu.Lock()
		if c, ok = ss.ops[op]; !ok {
			c = new(opCounters)
			ss.ops[op] = c
		}
		ss.mu.Unlock()
	}
	c[outcomeIndex(outcome)].Add(1)
}

// outcomeForStatus classifies an HTTP status the way Stats reports it.
func outcomeForStatus(status int) string {
	switch {
	case status < 300:
		return outcomeOK
	case status == 301 || status == 307:
		return outcomeRedirect
	case status == 304:
		return outcomeOK
	case status == 401 || status == 403:
		return outcomeDenied
	case status == 404:
		return outcomeNotFound
	default:
		return outcomeError
	}
}

// Stats returns call counts per operation and outcome ("ok", "denied",
// "error", "fault", "not_found", "redirect"), e.g.
// {"sts:AssumeRole":{"ok":3,"denied":1}}. Outcomes with no calls are left
// out.
func (s *Stack) Stats() map[string]map[string]int64 {
	s.stats.mu.RLock()
	defer s.stats.mu.RUnlock()
	out := make(map[string]map[string]int64, len(s.stats.ops))
	for op, c := range s.stats.ops {
		m := map[string]int64{}
		for i := range c {
			if n := c[i].Load(); n != 0 {
				m[outcomeNames[i]] = n
			}
		}
		if len(m) > 0 {
			out[op] = m
		}
	}
	return out
}

// ResetStats zeroes the counters.
func (s *Stack) ResetStats() {
	s.stats.mu.Lock()
	s.stats.ops = map[string]*opCounters{}
	s.stats.mu.Unlock()
}
