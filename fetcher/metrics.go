package fetcher

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the Copier's Prometheus collectors. A nil *Metrics counts
// nothing.
type Metrics struct {
	bytes       *prometheus.CounterVec
	duration    *prometheus.HistogramVec
	attachments *prometheus.CounterVec
}

// NewMetrics creates the collectors and registers them with reg (nil: not
// registered): ferry_copied_bytes_total{mode}, ferry_copy_duration_seconds{mode}
// and ferry_attachments_total{outcome,mode}, where outcome is copied, skipped
// or the error kind. It panics if they are already registered with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		bytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ferry_copied_bytes_total", Help: "Bytes copied into internal storage.",
		}, []string{"mode"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "ferry_copy_duration_seconds", Help: "Duration of successful attachment copies.",
			Buckets: prometheus.ExponentialBuckets(0.01, 2, 16),
		}, []string{"mode"}),
		attachments: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ferry_attachments_total", Help: "Attachments handled, by outcome (copied, skipped, or error kind) and mode.",
		}, []string{"outcome", "mode"}),
	}
	if reg != nil {
		reg.MustRegister(m.bytes, m.duration, m.attachments)
	}
	return m
}

func (m *Metrics) observe(mode Mode, outcome string, size int64, took time.Duration) {
	if m == nil {
		return
	}
	md := string(mode)
	if md == "" {
		md = "none"
	}
	m.attachments.WithLabelValues(outcome, md).Inc()
	if outcome == "copied" {
		m.bytes.WithLabelValues(md).Add(float64(size))
		m.duration.WithLabelValues(md).Observe(took.Seconds())
	}
}
