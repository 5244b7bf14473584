package worker

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/pprof"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/rs/zerolog"
)

// ReadyCheck is one dependency /readyz asks about.
type ReadyCheck struct {
	Name  string
	Check func(ctx context.Context) error
}

// HealthOptions configures the metrics and health listener.
type HealthOptions struct {
	Addr     string
	Gatherer prometheus.Gatherer
	// Draining, when closed, turns /readyz to 503 at once (shutdown started).
	Draining <-chan struct{}
	Checks   []ReadyCheck
	// PProf mounts /debug/pprof/ (FERRY_PPROF); off by default.
	PProf  bool
	Logger zerolog.Logger
}

// ServeHealth serves /metrics, /healthz (the process is alive) and /readyz
// (not draining and every check passes) on Addr until the returned server is
// shut down.
func ServeHealth(o HealthOptions) (*http.Server, net.Addr, error) {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(o.Gatherer, promhttp.HandlerOpts{}))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok\n")) })
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-o.Draining:
			http.Error(w, "draining", http.StatusServiceUnavailable)
			return
		default:
		}
		ctx, cancel := context.WithTimeout(r.Context(), time.Second)
		defer cancel()
		for _, c := range o.Checks {
			if err := c.Check(ctx); err != nil {
				http.Error(w, c.Name+" unreachable", http.StatusServiceUnavailable)
				return
			}
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
	ln, err := net.Listen("tcp", o.Addr)
	if err != nil {
		return nil, nil, errors.New("metrics listener " + o.Addr + ": " + err.Error())
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	return srv, ln.Addr(), nil
}
