package worker

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"
)

// ReadyCheck is one dependency /readyz asks about. Check should answer
// within the context's deadline (one second): a kubelet probe that times out
// counts as a failure anyway.
type ReadyCheck struct {
	Name  string
	Check func(ctx context.Context) error
}

// RedisWatch exports ferry_redis_up: 1 while Redis answers PING (every
// master, on a cluster), 0 while it does not. Redis health is a metric and
// an alert (FerryRedisDown), deliberately not a readiness condition: while
// Redis is down the worker keeps receiving, tasks that need Redis are
// retried with backoff until it is back, and if it made every pod unready
// at once the PodDisruptionBudget would block node drains for the whole
// outage.
type RedisWatch struct {
	rdb      redis.UniversalClient
	up       prometheus.Gauge
	interval time.Duration
	log      zerolog.Logger
	// state is the last ping's outcome (0 unknown, 1 up, 2 down), so a
	// change is logged once, not every interval.
	state atomic.Int32
}

// NewRedisWatch registers ferry_redis_up with reg (nil: not registered;
// it panics on a duplicate, as prometheus.MustRegister does) and reports 0
// until the first successful ping. interval <= 0 means 5 s.
func NewRedisWatch(reg prometheus.Registerer, rdb redis.UniversalClient, interval time.Duration, log zerolog.Logger) *RedisWatch {
	if interval <= 0 {
		interval = 5 * time.Second
	}
	w := &RedisWatch{rdb: rdb, interval: interval, log: log,
		up: prometheus.NewGauge(prometheus.GaugeOpts{Name: "ferry_redis_up",
			Help: "1 when this worker's last PING reached Redis (every master of a cluster), else 0."})}
	if reg != nil {
		reg.MustRegister(w.up)
	}
	return w
}

// Run pings at once and then every interval until ctx ends.
func (w *RedisWatch) Run(ctx context.Context) {
	t := time.NewTicker(w.interval)
	defer t.Stop()
	for {
		pctx, cancel := context.WithTimeout(ctx, min(w.interval, 2*time.Second))
		err := w.Ping(pctx)
		cancel()
		switch {
		case ctx.Err() != nil:
		case err != nil && w.state.Swap(2) != 2:
			w.log.Warn().Err(err).Msg("redis does not answer: tasks that need it are retried with backoff until it does")
		case err == nil && w.state.Swap(1) == 2:
			w.log.Info().Msg("redis answers again")
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Ping pings Redis once and sets ferry_redis_up from the answer.
func (w *RedisWatch) Ping(ctx context.Context) error {
	var err error
	if cc, ok := w.rdb.(*redis.ClusterClient); ok {
		err = cc.ForEachMaster(ctx, func(ctx context.Context, c *redis.Client) error { return c.Ping(ctx).Err() })
	} else {
		err = w.rdb.Ping(ctx).Err()
	}
	if err != nil {
		w.up.Set(0)
		return err
	}
	w.up.Set(1)
	return nil
}

// HealthOptions configures the metrics and health listener.
type HealthOptions struct {
	Addr     string
	Gatherer prometheus.Gatherer
	// Draining, when closed, turns /readyz to 503 at once (shutdown started),
	// so load balancers and rollouts stop counting on this worker before it
	// has finished its in-flight tasks.
	Draining <-chan struct{}
	Checks   []ReadyCheck
	// PProf mounts /debug/pprof/ (FERRY_PPROF); off by default.
	PProf  bool
	Logger zerolog.Logger
}

// ServeHealth serves /metrics, /healthz (the process is alive: 200 as long
// as it can answer) and /readyz (200 when not draining and every check
// passes, else 503 naming what failed) on Addr until the returned server is
// shut down. It fails at once when Addr cannot be listened on.
func ServeHealth(o HealthOptions) (*http.Server, net.Addr, error) {
	ln, err := net.Listen("tcp", o.Addr)
	if err != nil {
		return nil, nil, fmt.Errorf("metrics listener %s: %w", o.Addr, err)
	}
	srv := &http.Server{Handler: HealthHandler(o), ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			o.Logger.Error().Err(err).Msg("metrics listener stopped")
		}
	}()
	return srv, ln.Addr(), nil
}

// HealthHandler is the handler ServeHealth serves, for callers that run
// their own listener.
func HealthHandler(o HealthOptions) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(o.Gatherer, promhttp.HandlerOpts{}))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok\n")) })
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-o.Draining:
			http.Error(w, "draining: shutdown started", http.StatusServiceUnavailable)
			return
		default:
		}
		ctx, cancel := context.WithTimeout(r.Context(), time.Second)
		defer cancel()
		var failed []string
		for _, c := range o.Checks {
			if err := c.Check(ctx); err != nil {
				// The reason goes to the log, not the body: probe bodies end
				// up in events and dashboards, and a dependency's error may
				// carry an address.
				o.Logger.Warn().Err(err).Str("check", c.Name).Msg("not ready")
				failed = append(failed, c.Name)
			}
		}
		if len(failed) > 0 {
			http.Error(w, "unreachable: "+strings.Join(failed, ", "), http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ready\n"))
	})
	if o.PProf {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	}
	return mux
}
