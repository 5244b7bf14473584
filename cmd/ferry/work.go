package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/spf13/cobra"

	"github.com/ferryworks/ferry/admission"
	"github.com/ferryworks/ferry/config"
	"github.com/ferryworks/ferry/credcache"
	"github.com/ferryworks/ferry/internal/buildinfo"
	"github.com/ferryworks/ferry/queue"
	"github.com/ferryworks/ferry/taskstate"
	"github.com/ferryworks/ferry/worker"
)

const workUsage = `Run a worker: receive task submissions from FERRY_QUEUE_URL, copy their
attachments into FERRY_BUCKET and publish one terminal event per task to
FERRY_EVENTS_QUEUE_URL, FERRY_EVENTS_TOPIC_ARN (SNS), or both.

On SIGTERM or SIGINT the worker stops receiving, lets in-flight tasks finish
within FERRY_SHUTDOWN_TIMEOUT, hands the rest back for other workers and exits 0.
A second signal exits at once (unfinished messages come back after their
visibility timeout).`

func newWorkCommand(a *app) *cobra.Command {
	return a.settings(&cobra.Command{
		Use:         "work",
		Short:       "Run a worker",
		Long:        workUsage,
		Args:        cobra.NoArgs,
		Annotations: map[string]string{serviceAnnotation: "true"},
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.work(cmd.Context())
		},
	}, config.Groups()...)
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
	// Redis need not answer yet: the worker starts, turns ready once SQS
	// answers, and tasks that need Redis are retried with backoff until it
	// does (ferry_redis_up says when).
	rdb, err := a.openRedis()
	if err != nil {
		return err
	}
	redisWatch := worker.NewRedisWatch(a.reg, rdb, 0, a.log)
	go redisWatch.Run(soft)
	a.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	buildinfo.Register(a.reg)

	registry, copier, err := a.access(awsCfg, rdb, a.cfg.Bucket, true)
	if err != nil {
		return err
	}
	statuses := credcache.NewStatusRecorder(registry, credcache.StatusRecorderOptions{Logger: a.log})
	go statuses.Run(soft)
	go credcache.NewStatusCensus(a.reg, registry, credcache.StatusCensusOptions{Logger: a.log}).Run(soft)

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
	state := &taskstate.State{Redis: rdb, Prefix: a.cfg.RedisPrefix, RedisErrors: a.credMetrics.RedisErrors}
	publisher := a.eventPublisher(awsCfg, sqsAPI, state, qm)
	wm := worker.NewMetrics(a.reg)
	fleetCap, err := admission.New(admission.Options{Redis: rdb, Prefix: a.cfg.RedisPrefix,
		Max: a.cfg.CustomerFleetMaxInflight, LeaseTTL: a.cfg.CustomerFleetLeaseTTL,
		RedisErrors: a.credMetrics.RedisErrors, Logger: a.log})
	if err != nil {
		return err
	}
	// Places are renewed until the pool has drained, past the first signal.
	renew, stopRenew := context.WithCancel(context.Background())
	defer stopRenew()
	go fleetCap.Run(renew)
	handler, err := worker.NewHandler(worker.HandlerOptions{
		Copier:      copier,
		Publisher:   publisher,
		DeadLetters: dl,
		DLQURL:      a.cfg.DLQURL,
		State:       state,
		// Read with each task's begin, in one round trip.
		Integrations: registry,
		Limits:       queue.Limits{MaxAttachments: a.cfg.MaxAttachments},
		Parallelism:  a.cfg.TaskParallelism,
		// A dead worker's task lock expires on the same horizon as its SQS
		// lease, so the redelivered message is not held up for longer.
		LockTTL:             a.cfg.VisibilityTimeout,
		BusyDelay:           min(max(a.cfg.VisibilityTimeout/2, time.Second), time.Minute),
		CustomerMaxInflight: a.cfg.CustomerMaxInflight,
		FleetCap:            fleetCap,
		Status:              statuses,
		Logger:              a.log,
		Metrics:             wm,
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
		// The queue gauges' last successful poll is also readiness's proof
		// that SQS answers.
		gauges, err := worker.NewQueueGauges(a.reg, worker.QueueGaugesOptions{SQS: sqsAPI, Logger: a.log,
			Queues: []worker.WatchedQueue{{Label: "tasks", URL: a.cfg.QueueURL}, {Label: "dlq", URL: a.cfg.DLQURL}}})
		if err != nil {
			return err
		}
		go gauges.Run(soft)
		var addr net.Addr
		srv, addr, err = worker.ServeHealth(worker.HealthOptions{
			Addr: a.cfg.MetricsAddr, Gatherer: a.reg, Draining: pool.Draining(), PProf: a.cfg.PProf, Logger: a.log,
			Checks: []worker.ReadyCheck{gauges.ReachableCheck(0)},
		})
		if err != nil {
			return fmt.Errorf("%w (FERRY_METRICS_ADDR: choose a free address, or off to disable)", err)
		}
		a.log.Info().Str("addr", addr.String()).Msg("metrics listening")
		defer func() {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			_ = srv.Shutdown(ctx)
		}()
	}
	a.log.Info().Str("version", buildinfo.Get().Version).Str("revision", buildinfo.Get().Revision).Int("slots", a.cfg.Concurrency).Str("queue", a.cfg.QueueURL).Str("bucket", a.cfg.Bucket).
		Str("cross_account", string(a.cfg.CrossAccount)).Msg("worker started")
	err = pool.RunUntil(soft, hard)
	// The outcomes of the tasks that drained after the first signal.
	fctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	statuses.Flush(fctx, true)
	cancel()
	a.log.Info().Msg("worker stopped")
	return err
}
