package credcache

import (
	"testing"
	"time"
)

// The status rules, step by step: what each observation does to the
// stored record.
func TestStatusTransitions(t *testing.T) {
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	denied := &StatusError{Source: "task", Stage: "assume_role", Code: "AccessDenied", At: at(1)}
	verifyErr := &StatusError{Source: "verify", Stage: "head_bucket", Code: "Forbidden", At: at(2)}
	refusals := func(n int, when int) statusDelta {
		return statusDelta{lastUsed: at(when), refusals: n, err: denied}
	}
	steps := []struct {
		name  string
		d     statusDelta
		state Status
		fails int
	}{
		{"a task that failed elsewhere says nothing of the role", statusDelta{lastUsed: at(1)}, "", 0},
		{"refusals below the threshold leave it pending", refusals(FailingAfter-1, 2), "", FailingAfter - 1},
		{"one more in another window reaches the threshold", refusals(1, 3), StatusFailing, FailingAfter},
		{"a completed task makes it active and resets the count", statusDelta{lastUsed: at(4), lastSuccess: at(4)}, StatusActive, 0},
		{"refusals after a success in the same window count", statusDelta{lastUsed: at(5), lastSuccess: at(4), refusals: 1, err: denied}, StatusActive, 1},
		{"a failed verification makes it failing at once", statusDelta{verify: true, at: at(6), err: verifyErr}, StatusFailing, 1},
		{"a task that failed elsewhere keeps it failing", statusDelta{lastUsed: at(7)}, StatusFailing, 1},
		{"a completed task makes it active again", statusDelta{lastUsed: at(8), lastSuccess: at(8)}, StatusActive, 0},
		{"refusals up to the threshold make it failing", refusals(FailingAfter, 9), StatusFailing, FailingAfter},
		{"a good verification makes it active", statusDelta{verify: true, verifyOK: true, at: at(10)}, StatusActive, 0},
	}
	var s statusRecord
	for _, st := range steps {
		s = s.apply(st.d)
		if s.state != st.state || s.assumeFails != st.fails {
			t.Fatalf("%s: state %q fails %d, want %q %d", st.name, s.state, s.assumeFails, st.state, st.fails)
		}
	}
	if !s.lastUsed.Equal(at(9)) || !s.lastSuccess.Equal(at(10)) || !s.verifiedAt.Equal(at(10)) {
		t.Errorf("times: used %v success %v verified %v", s.lastUsed, s.lastSuccess, s.verifiedAt)
	}
	if s.err == nil || s.err.Code != "AccessDenied" {
		t.Errorf("the last error is kept once active again: %+v", s.err)
	}
	// Round trip through the stored form.
	s.basis = basisOf(t0)
	enc := map[string]string{}
	for k, v := range s.encode() {
		enc[k] = v.(string)
	}
	if got := decodeStatus(enc); got.state != s.state || !got.lastUsed.Equal(s.lastUsed) || got.err == nil || *got.err != *s.err || got.basis != s.basis {
		t.Errorf("decoded %+v, want %+v", got, s)
	}
	// A record about an older version of the integration is pending.
	if v := s.view(t0); v.Status != StatusActive {
		t.Errorf("view of the same integration: %s", v.Status)
	}
	if v := s.view(t0.Add(time.Second)); v.Status != StatusPending || !v.LastUsed.Equal(s.lastUsed) || v.LastError != nil {
		t.Errorf("view of a changed integration: %+v, want pending keeping last_used", v)
	}
}

// A delta that could not be written, followed by what came after, is the
// same as both observed in one window.
func TestStatusDeltaThen(t *testing.T) {
	t0 := time.Now()
	e1 := &StatusError{Code: "one"}
	a := statusDelta{lastUsed: t0, refusals: 2, err: e1}
	b := statusDelta{lastUsed: t0.Add(time.Second), refusals: 1}
	if got := a.then(b); got.refusals != 3 || got.err != e1 || !got.lastUsed.Equal(t0.Add(time.Second)) {
		t.Errorf("refusals then refusals: %+v", got)
	}
	c := statusDelta{lastUsed: t0.Add(2 * time.Second), lastSuccess: t0.Add(2 * time.Second)}
	if got := a.then(c); got.refusals != 0 || got.lastSuccess.IsZero() {
		t.Errorf("refusals then a success: %+v", got)
	}
	if got := c.then(b); got.refusals != 1 || !got.lastSuccess.Equal(c.lastSuccess) {
		t.Errorf("a success then refusals: %+v", got)
	}
}
