package credcache

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the cache's Prometheus collectors. A nil *Metrics counts
// nothing, so tests and tools can leave Options.Metrics unset.
type Metrics struct {
	// AssumeRole counts STS AssumeRole calls by result: ok, denied (the
	// customer's role refused us; cached for Options.DeniedTTL) or error
	// (throttling, 5xx, network: not cached).
	AssumeRole *prometheus.CounterVec
	// Lookups counts credential lookups by where they were answered: l1
	// (in-process), l2 (Redis), miss (went to STS or waited for the fleet's
	// one STS call) or denied_cached (a recent refusal answered).
	Lookups *prometheus.CounterVec
	// RedisErrors counts failed Redis calls; while it grows the fleet runs on
	// in-process caches and calls STS more often.
	RedisErrors prometheus.Counter

	// Resolved children: WithLabelValues hashes its labels on every call,
	// too slow for the L1 path that runs on every signed S3 request.
	assume  map[string]prometheus.Counter
	lookups map[string]prometheus.Counter
}

// NewMetrics creates the collectors and registers them with reg (nil: not
// registered, still counted). Registering twice with one registry panics, as
// prometheus.MustRegister does: create one Metrics per process.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		AssumeRole: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ferry_sts_assume_role_total",
			Help: "STS AssumeRole calls made for delegated customers, by result (ok, denied, error).",
		}, []string{"result"}),
		Lookups: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ferry_credcache_lookups_total",
			Help: "Credential lookups by where they were answered (l1, l2, miss, denied_cached).",
		}, []string{"result"}),
		RedisErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "ferry_redis_errors_total",
			Help: "Failed Redis calls made by the credential cache and integration registry.",
		}),
	}
	// Creating every child up front also makes dashboards see zeros instead
	// of missing series.
	m.assume = map[string]prometheus.Counter{}
	for _, r := range []string{"ok", "denied", "error"} {
		m.assume[r] = m.AssumeRole.WithLabelValues(r)
	}
	m.lookups = map[string]prometheus.Counter{}
	for _, r := range []string{"l1", "l2", "miss", "denied_cached"} {
		m.lookups[r] = m.Lookups.WithLabelValues(r)
	}
	if reg != nil {
		reg.MustRegister(m.AssumeRole, m.Lookups, m.RedisErrors)
	}
	return m
}

func (m *Metrics) assumeRole(result string) {
	if m != nil {
		m.assume[result].Inc()
	}
}

func (m *Metrics) lookup(result string) {
	if m != nil {
		m.lookups[result].Inc()
	}
}

func (m *Metrics) redisError() {
	if m != nil {
		m.RedisErrors.Inc()
	}
}
