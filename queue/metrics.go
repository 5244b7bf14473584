package queue

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the queue package's Prometheus counters. A nil *Metrics is
// valid and records nothing, so tests and tools need not register any.
type Metrics struct {
	sqsErrors  *prometheus.CounterVec
	received   prometheus.Counter
	acked      prometheus.Counter
	retried    prometheus.Counter
	released   prometheus.Counter
	leaseLost  prometheus.Counter
	extended   prometheus.Counter
	deadLetter *prometheus.CounterVec
	published  *prometheus.CounterVec
	age        prometheus.Histogram
}

// NewMetrics creates the counters and registers them with reg; registering
// twice with one registry panics, as prometheus.MustRegister does.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		sqsErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ferry_sqs_errors_total",
			Help: "SQS API calls or batch entries (and SNS publications, operation SNS.Publish) that failed, by operation.",
		}, []string{"operation"}),
		received: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "ferry_queue_messages_received_total",
			Help: "Messages leased from the tasks queue.",
		}),
		acked: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "ferry_queue_messages_acked_total",
			Help: "Messages deleted after processing.",
		}),
		retried: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "ferry_queue_messages_retried_total",
			Help: "Messages put back with a backoff delay (RetryLater).",
		}),
		released: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "ferry_queue_messages_released_total",
			Help: "Messages made visible again without processing (Release, ReleaseAfter).",
		}),
		leaseLost: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "ferry_queue_leases_lost_total",
			Help: "Leases SQS no longer recognised when they were extended or settled.",
		}),
		extended: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "ferry_queue_lease_extensions_total",
			Help: "Visibility extensions made by the heartbeat.",
		}),
		deadLetter: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ferry_queue_dead_letters_total",
			Help: "Messages sent to a dead-letter queue by ferry, by reason.",
		}, []string{"reason"}),
		published: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ferry_events_published_total",
			Help: "Events published, by type.",
		}, []string{"type"}),
		// SQS's ApproximateAgeOfOldestMessage is a CloudWatch metric that
		// GetQueueAttributes does not return; the age of what workers
		// receive is the queue's age as ferry sees it.
		age: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "ferry_queue_message_age_seconds",
			Help:    "Time a message waited in the tasks queue, from when it was (last) sent to its receipt.",
			Buckets: prometheus.ExponentialBuckets(0.1, 3, 11),
		}),
	}
	reg.MustRegister(m.sqsErrors, m.received, m.acked, m.retried, m.released,
		m.leaseLost, m.extended, m.deadLetter, m.published, m.age)
	return m
}

func (m *Metrics) sqsError(op string) {
	if m != nil {
		m.sqsErrors.WithLabelValues(op).Inc()
	}
}

func (m *Metrics) add(c func(*Metrics) prometheus.Counter, n int) {
	if m != nil && n > 0 {
		c(m).Add(float64(n))
	}
}

func (m *Metrics) receivedAge(sentAt, now time.Time) {
	if m != nil && !sentAt.IsZero() {
		m.age.Observe(max(now.Sub(sentAt), 0).Seconds())
	}
}

func (m *Metrics) deadLettered(reason string) {
	if m != nil {
		m.deadLetter.WithLabelValues(reason).Inc()
	}
}

func (m *Metrics) publishedEvent(typ string) {
	if m != nil {
		m.published.WithLabelValues(typ).Inc()
	}
}

func mReceived(m *Metrics) prometheus.Counter  { return m.received }
func mAcked(m *Metrics) prometheus.Counter     { return m.acked }
func mRetried(m *Metrics) prometheus.Counter   { return m.retried }
func mReleased(m *Metrics) prometheus.Counter  { return m.released }
func mLeaseLost(m *Metrics) prometheus.Counter { return m.leaseLost }
func mExtended(m *Metrics) prometheus.Counter  { return m.extended }
