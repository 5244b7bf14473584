package localaws

import "sync"

// inflightSet counts the authenticated requests being served per operation
// and the most served at once, so a test can check a concurrency bound as
// the service saw it (e.g. a customer's bucket read by at most N tasks).
// The zero value is ready to use.
type inflightSet struct {
	mu   sync.Mutex
	now  map[string]int
	peak map[string]int
}

// enter counts one request of op in progress; call the result when it ends.
func (s *inflightSet) enter(op string) (leave func()) {
	s.mu.Lock()
	if s.now == nil {
		s.now, s.peak = map[string]int{}, map[string]int{}
	}
	s.now[op]++
	if s.now[op] > s.peak[op] {
		s.peak[op] = s.now[op]
	}
	s.mu.Unlock()
	return func() {
		s.mu.Lock()
		s.now[op]--
		s.mu.Unlock()
	}
}

// PeakInFlight returns the most requests of op ("s3:GetObject", …) the gate
// was serving at once since the stack started or ResetPeakInFlight; an
// injected latency counts as serving.
func (s *Stack) PeakInFlight(op string) int {
	s.inflight.mu.Lock()
	defer s.inflight.mu.Unlock()
	return s.inflight.peak[op]
}

// ResetPeakInFlight makes every peak the number in progress now.
func (s *Stack) ResetPeakInFlight() {
	s.inflight.mu.Lock()
	defer s.inflight.mu.Unlock()
	for op := range s.inflight.peak {
		s.inflight.peak[op] = s.inflight.now[op]
	}
}
