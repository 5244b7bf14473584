package worker

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"strings"
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

// RedisCheck is a readiness check that pings rdb. While Redis is down the
// worker still runs (credentials fall back to in-process caches), but it is
// reported not ready so the orchestrator and on-call see it.
func RedisCheck(rdb redis.UniversalClient) ReadyCheck {
	return ReadyCheck{Name: "redis", Check: func(ctx context.Context) error { return rdb.Ping(ctx).Err() }}
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
