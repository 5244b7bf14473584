package main

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/spf13/cobra"

	"github.com/ferryworks/ferry/config"
	"github.com/ferryworks/ferry/queue"
	"github.com/ferryworks/ferry/worker"
)

const workUsage = `Run a worker: receive task submissions from FERRY_QUEUE_URL, copy their
attachments into FERRY_BUCKET and publish one terminal event per task to
FERRY_EVENTS_QUEUE_URL.

On SIGTERM or SIGINT the worker stops receiving, lets in-flight tasks finish
within FERRY_SHUTDOWN_TIMEOUT, releases the rest for other workers and exits 0.
A second signal exits at once (unfinished messages come back after their
visibility timeout).`

func newWorkCommand(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "work",
		Short: "Run a worker",
		Long:  workUsage,
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.work(cmd.Context())
		},
	}
}

func (a *app) work(parent context.Context) error {
	if err := a.need(config.WorkerNeeds...); err != nil {
		return err
	}
	// Two-stage stop: the first signal drains, the second stops at once.
	soft, stopSoft := context.WithCancel(context.Background())
	defer stopSoft()
	hard, stopHard := context.WithCancel(context.Background())
	defer stopHard()
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigs)
	go func() {
		select {
		case <-sigs:
		case <-parent.Done():
		}
		a.log.Info().Msg("shutting down: draining in-flight tasks")
		stopSoft()
		select {
		case <-sigs:
			a.log.Warn().Msg("second signal: stopping at once")
			stopHard()
		case <-hard.Done():
		}
	}()

	setup, cancelSetup := context.WithTimeout(soft, 30*time.Second)
	defer cancelSetup()
	awsCfg, err := a.awsConfig(setup)
	if err != nil {
		return err
	}
	rdb, err := a.redisClient(setup)
	if err != nil {
		return err
	}
	a.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	_, copier, err := a.access(awsCfg, rdb, a.cfg.Bucket, true)
	if err != nil {
		return err
	}

	sqsAPI := a.sqsClient(awsCfg)
	qm := queue.NewMetrics(a.reg)
	consumer, err := queue.NewConsumer(sqsAPI, queue.ConsumerOptions{
		QueueURL:          a.cfg.QueueURL,
		VisibilityTimeout: a.cfg.VisibilityTimeout,
		MaxProcessingTime: a.cfg.MaxProcessingTime,
		Logger:            a.log,
		Metrics:           qm,
	})
	if err != nil {
		return err
	}
	dl := queue.NewDeadLetter(sqsAPI)
	dl.Metrics = qm
	publisher := queue.NewPublisher(sqsAPI, a.cfg.EventsQueueURL)
	wm := worker.NewMetrics(a.reg)
	handler, err := worker.NewHandler(worker.HandlerOptions{
		Copier:      copier,
		Publisher:   publisher,
		DeadLetters: dl,
		DLQURL:      a.cfg.DLQURL,
		State:       &worker.State{Redis: rdb, Prefix: a.cfg.RedisPrefix},
		Limits:      queue.Limits{MaxAttachments: a.cfg.MaxAttachments},
		Parallelism: a.cfg.TaskParallelism,
		Logger:      a.log,
		Metrics:     wm,
	})
	if err != nil {
		return err
	}
	pool, err := worker.NewPool(worker.PoolOptions{
		Receiver:        consumer,
		Handler:         handler,
		Slots:           a.cfg.Concurrency,
		ShutdownTimeout: a.cfg.ShutdownTimeout,
		Logger:          a.log,
		Metrics:         wm,
	})
	if err != nil {
		return err
	}

	var srv *http.Server
	if a.cfg.MetricsAddr != "" {
		srv, err = a.serveMetrics(pool, func(ctx context.Context) error { return rdb.Ping(ctx).Err() })
		if err != nil {
			return err
		}
		defer func() {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			_ = srv.Shutdown(ctx)
		}()
	}
	a.log.Info().Int("slots", a.cfg.Concurrency).Str("queue", a.cfg.QueueURL).Str("bucket", a.cfg.Bucket).
		Str("cross_account", string(a.cfg.CrossAccount)).Msg("worker started")
	err = pool.RunUntil(soft, hard)
	a.log.Info().Msg("worker stopped")
	return err
}

// serveMetrics serves /metrics, /healthz (alive) and /readyz (not draining
// and Redis answering) on FERRY_METRICS_ADDR, and /debug/pprof with FERRY_PPROF.
func (a *app) serveMetrics(pool *worker.Pool, ping func(context.Context) error) (*http.Server, error) {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(a.reg, promhttp.HandlerOpts{Registry: a.reg}))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok\n")) })
	var redisOK atomic.Bool
	redisOK.Store(true)
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-pool.Draining():
			http.Error(w, "draining", http.StatusServiceUnavailable)
			return
		default:
		}
		ctx, cancel := context.WithTimeout(r.Context(), time.Second)
		defer cancel()
		if err := ping(ctx); err != nil {
			http.Error(w, "redis unreachable", http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ready\n"))
	})
	if a.cfg.PProf {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	}
	ln, err := net.Listen("tcp", a.cfg.MetricsAddr)
	if err != nil {
		return nil, errors.New("FERRY_METRICS_ADDR " + a.cfg.MetricsAddr + ": " + err.Error() + " (choose a free address, or set it empty to disable metrics)")
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	a.log.Info().Str("addr", ln.Addr().String()).Msg("metrics listening")
	return srv, nil
}
