package worker

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

func TestTaskDurationByOutcome(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg)
	m.done(OutcomeCompleted, 2*time.Second)
	m.done(OutcomeCompleted, time.Second)
	m.done(OutcomeDuplicate, time.Millisecond)

	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	counts := map[string]uint64{}
	sums := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() != "ferry_task_duration_seconds" {
			continue
		}
		for _, met := range mf.GetMetric() {
			for _, l := range met.GetLabel() {
				if l.GetName() == "outcome" {
					counts[l.GetValue()] = met.GetHistogram().GetSampleCount()
					sums[l.GetValue()] = met.GetHistogram().GetSampleSum()
				}
			}
		}
	}
	if counts["completed"] != 2 || sums["completed"] != 3 {
		t.Errorf("completed: count %d sum %v, want 2 and 3", counts["completed"], sums["completed"])
	}
	if counts["duplicate"] != 1 {
		t.Errorf("duplicate: count %d, want 1", counts["duplicate"])
	}
	if c, ok := counts["retried"]; !ok || c != 0 {
		t.Errorf("retried: count %d (present %v), want a zero series before any retry", c, ok)
	}
}
