package worker

import (
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the pipeline's Prometheus collectors. A nil *Metrics counts
// nothing.
type Metrics struct {
	tasks        *prometheus.CounterVec
	taskDuration *prometheus.HistogramVec
	inflight     atomic.Int64
	slots        atomic.Int64
}

// NewMetrics registers the worker's collectors with reg: ferry_tasks_total
// {outcome}, ferry_task_duration_seconds{outcome}, ferry_inflight_tasks,
// ferry_worker_slots and ferry_busy_ratio (in-flight ÷ slots, the signal an
// autoscaler scales on).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		tasks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ferry_tasks_total", Help: "Deliveries handled, by outcome.",
		}, []string{"outcome"}),
		// By outcome: a completed copy and an instant duplicate ack are
		// different populations, and one histogram would blur both.
		taskDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "ferry_task_duration_seconds", Help: "Time from receipt to settling a delivery, by outcome.",
			Buckets: prometheus.ExponentialBuckets(0.005, 2.5, 14),
		}, []string{"outcome"}),
	}
	inflight := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "ferry_inflight_tasks", Help: "Deliveries being handled now."},
		func() float64 { return float64(m.inflight.Load()) })
	slots := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "ferry_worker_slots", Help: "Deliveries this process handles at once at most."},
		func() float64 { return float64(m.slots.Load()) })
	busy := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "ferry_busy_ratio", Help: "In-flight deliveries divided by worker slots."},
		func() float64 {
			if s := m.slots.Load(); s > 0 {
				return float64(m.inflight.Load()) / float64(s)
			}
			return 0
		})
	reg.MustRegister(m.tasks, m.taskDuration, inflight, slots, busy)
	for _, o := range []Outcome{OutcomeCompleted, OutcomeAccessDenied, OutcomeFailed, OutcomeRetried, OutcomeRejected, OutcomeDuplicate, OutcomeBusy, OutcomeReleased, OutcomeDeferred} {
		m.tasks.WithLabelValues(string(o))
		m.taskDuration.WithLabelValues(string(o))
	}
	return m
}

func (m *Metrics) done(o Outcome, d time.Duration) {
	if m == nil {
		return
	}
	m.tasks.WithLabelValues(string(o)).Inc()
	m.taskDuration.WithLabelValues(string(o)).Observe(d.Seconds())
}

func (m *Metrics) setSlots(n int) {
	if m != nil {
		m.slots.Store(int64(n))
	}
}

func (m *Metrics) inflightAdd(d int64) {
	if m != nil {
		m.inflight.Add(d)
	}
}
