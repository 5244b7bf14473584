package credcache

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"
)

// Defaults of StatusCensusOptions.
const (
	DefaultCensusEvery = 5 * time.Minute
	DefaultCensusRead  = time.Minute
)

// StatusCensusOptions configures a StatusCensus.
type StatusCensusOptions struct {
	// Every is how often the fleet counts integrations by status (default
	// 5 m): one process per interval, whichever takes the turn first.
	Every time.Duration
	// Read is how often each process reads the last count into its gauge
	// (default 1 m).
	Read   time.Duration
	Logger zerolog.Logger
}

// StatusCensus exports ferry_integrations{status}: how many integrations
// are pending, active and failing.
//
// Counting means walking the whole registry (a SCAN and two small reads per
// customer), too much to do on every scrape or in every replica. Counters
// kept in Redis beside each status would be cheap to read, but they live in
// no customer's slot, so on a Redis Cluster they could not change in the same
// transaction as the status and would drift for good after any failed
// write. So the fleet takes turns: every Every, the first process to take a
// Redis key (SET NX with that lifetime) counts and stores the result, and
// every process copies the stored count into its gauge every Read. The
// gauge is the same in every replica; aggregate it with max(), not sum().
type StatusCensus struct {
	reg   *Registry
	o     StatusCensusOptions
	gauge *prometheus.GaugeVec
	log   zerolog.Logger
}

// NewStatusCensus creates the census and registers ferry_integrations with
// prom (nil: not registered). Nothing is counted until Run or Refresh.
func NewStatusCensus(prom prometheus.Registerer, reg *Registry, o StatusCensusOptions) *StatusCensus {
	if o.Every <= 0 {
		o.Every = DefaultCensusEvery
	}
	if o.Read <= 0 {
		o.Read = DefaultCensusRead
	}
	c := &StatusCensus{reg: reg, o: o, log: throttled(o.Logger), gauge: prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "ferry_integrations",
		Help: "Integrations by status (pending, active, failing), counted fleet-wide every few minutes; the same in every replica: aggregate with max().",
	}, []string{"status"})}
	if prom != nil {
		prom.MustRegister(c.gauge)
	}
	return c
}

// Gauge is the ferry_integrations collector.
func (c *StatusCensus) Gauge() *prometheus.GaugeVec { return c.gauge }

func (c *StatusCensus) censusKey() string { return c.reg.prefix + ":integrations:census" }
func (c *StatusCensus) turnKey() string   { return c.reg.prefix + ":integrations:census:turn" }

type censusRecord struct {
	At     time.Time      `json:"at"`
	Counts map[Status]int `json:"counts"`
}

// Run refreshes at once and then every Read until ctx ends.
func (c *StatusCensus) Run(ctx context.Context) {
	t := time.NewTicker(c.o.Read)
	defer t.Stop()
	for {
		rctx, cancel := context.WithTimeout(ctx, c.o.Read)
		if err := c.Refresh(rctx); err != nil && ctx.Err() == nil {
			c.log.Warn().Err(err).Msg("integration census not refreshed; ferry_integrations keeps its last values")
		}
		cancel()
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Refresh counts the registry if it is this process's turn, then sets the
// gauge from the last stored count. Without any stored count yet the gauge
// keeps what it had (nothing, at first): a missing series, not a false 0.
func (c *StatusCensus) Refresh(ctx context.Context) error {
	rdb := c.reg.rdb
	turn, err := rdb.SetNX(ctx, c.turnKey(), time.Now().UTC().Format(time.RFC3339), c.o.Every).Result()
	if err != nil {
		c.reg.metrics.redisError()
		return err
	}
	if turn {
		counts, err := c.reg.countStatuses(ctx)
		if err != nil {
			c.reg.metrics.redisError()
			// Give the turn back so another process (or the next tick)
			// counts instead of leaving the count stale for a whole turn.
			_ = rdb.Del(context.WithoutCancel(ctx), c.turnKey()).Err()
			return err
		}
		b, _ := json.Marshal(censusRecord{At: time.Now().UTC(), Counts: counts})
		// Kept for three turns: a fleet that stops counting loses the
		// gauge rather than reporting an old count forever.
		if err := rdb.Set(ctx, c.censusKey(), b, 3*c.o.Every).Err(); err != nil {
			c.reg.metrics.redisError()
			return err
		}
	}
	raw, err := rdb.Get(ctx, c.censusKey()).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil
	}
	if err != nil {
		c.reg.metrics.redisError()
		return err
	}
	var rec censusRecord
	if err := json.Unmarshal(raw, &rec); err != nil {
		return err
	}
	for _, s := range Statuses() {
		c.gauge.WithLabelValues(string(s)).Set(float64(rec.Counts[s]))
	}
	return nil
}
