package worker

import (
	"context"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"github.com/ferryworks/ferry/admission"
	"github.com/ferryworks/ferry/credcache"
	"github.com/ferryworks/ferry/fetcher"
	"github.com/ferryworks/ferry/internal/buildinfo"
	"github.com/ferryworks/ferry/queue"
	"github.com/ferryworks/ferry/task"
	"github.com/ferryworks/ferry/taskstate"
)

// Service is a whole worker process (`ferry work`): where tasks come from,
// how attachments are reached, where events go, and what it serves. Run
// builds its parts and runs them.
type Service struct {
	// AWS is the fleet's SDK configuration; the SQS client (tasks, dead
	// letters, events queue, queue gauges) and the SNS client (events
	// topic) are made from it.
	AWS aws.Config
	// Redis need not answer at start: the worker starts, turns ready once
	// SQS answers, and tasks that need Redis are retried with backoff until
	// it does (ferry_redis_up says when).
	Redis       redis.UniversalClient
	RedisPrefix string
	// Credentials are the integration registry's and credential cache's
	// options, Copy the copier's (fetcher.NewAccess); their Metrics are set
	// here.
	Credentials credcache.Options
	Copy        fetcher.Options

	QueueURL string
	DLQURL   string
	// VisibilityTimeout is the tasks queue's lease; a dead worker's task
	// lock expires on the same horizon.
	VisibilityTimeout time.Duration
	MaxProcessingTime time.Duration
	// EventsQueueURL and EventsTopicARN are where terminal events go: one,
	// or both (each exactly once, Fanout).
	EventsQueueURL string
	EventsTopicARN string

	Slots               int
	ShutdownTimeout     time.Duration
	TaskParallelism     int
	MaxAttachments      int
	CustomerMaxInflight int
	// FleetMaxInflight and FleetLeaseTTL are the fleet-wide per-customer
	// cap (admission.Options Max and LeaseTTL).
	FleetMaxInflight int
	FleetLeaseTTL    time.Duration

	// MetricsAddr is where /metrics, /healthz and /readyz are served; ""
	// serves nothing.
	MetricsAddr string
	PProf       bool
	Logger      zerolog.Logger
}

// HealthListenError is a MetricsAddr that cannot be listened on.
type HealthListenError struct{ Err error }

func (e *HealthListenError) Error() string { return e.Err.Error() }
func (e *HealthListenError) Unwrap() error { return e.Err }

// Run builds the worker and runs it until ctx is done or the process gets
// SIGINT or SIGTERM: then it stops receiving, lets in-flight tasks finish
// within ShutdownTimeout, hands the rest back and returns. A second signal
// stops at once (unfinished messages come back after their visibility
// timeout). It serves its own metrics: Go runtime, process, build and every
// part's collectors.
func (s Service) Run(ctx context.Context) error {
	log := s.Logger
	// Two-stage stop: the first signal drains, the second stops at once.
	soft, stopSoft := context.WithCancel(context.Background())
	defer stopSoft()
	hard, stopHard := context.WithCancel(context.Background())
	defer stopHard()
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigs)
	returned := make(chan struct{})
	defer close(returned)
	go func() {
		select {
		case <-sigs:
		case <-ctx.Done():
		case <-returned: // failed to start
			return
		}
		log.Info().Msg("shutting down: draining in-flight tasks")
		stopSoft()
		select {
		case <-sigs:
			log.Warn().Msg("second signal: stopping at once")
			stopHard()
		case <-hard.Done():
		}
	}()

	reg := prometheus.NewRegistry()
	redisWatch := NewRedisWatch(reg, s.Redis, 0, log)
	go redisWatch.Run(soft)
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	buildinfo.Register(reg)

	s.Credentials.Metrics = credcache.NewMetrics(reg)
	s.Copy.Metrics = fetcher.NewMetrics(reg)
	access, err := fetcher.NewAccess(s.Credentials, s.Copy)
	if err != nil {
		return err
	}
	statuses := credcache.NewStatusRecorder(access.Registry, credcache.StatusRecorderOptions{Logger: log})
	go statuses.Run(soft)
	go credcache.NewStatusCensus(reg, access.Registry, credcache.StatusCensusOptions{Logger: log}).Run(soft)

	sqsAPI := sqs.NewFromConfig(s.AWS)
	qm := queue.NewMetrics(reg)
	consumer, err := queue.NewConsumer(sqsAPI, queue.ConsumerOptions{
		QueueURL:          s.QueueURL,
		VisibilityTimeout: s.VisibilityTimeout,
		MaxProcessingTime: s.MaxProcessingTime,
		Logger:            log,
		Metrics:           qm,
	})
	if err != nil {
		return err
	}
	dl := queue.NewDeadLetter(sqsAPI)
	dl.Metrics = qm
	redisErrors := s.Credentials.Metrics.RedisErrors
	state := &taskstate.State{Redis: s.Redis, Prefix: s.RedisPrefix, RedisErrors: redisErrors}
	publisher := s.publisher(sqsAPI, state, qm)
	wm := NewMetrics(reg)
	fleetCap, err := admission.New(admission.Options{Redis: s.Redis, Prefix: s.RedisPrefix,
		Max: s.FleetMaxInflight, LeaseTTL: s.FleetLeaseTTL, RedisErrors: redisErrors, Logger: log})
	if err != nil {
		return err
	}
	// Places are renewed until the pool has drained, past the first signal.
	renew, stopRenew := context.WithCancel(context.Background())
	defer stopRenew()
	go fleetCap.Run(renew)
	handler, err := NewHandler(HandlerOptions{
		Copier:      access.Copier,
		Publisher:   publisher,
		DeadLetters: dl,
		DLQURL:      s.DLQURL,
		State:       state,
		// Read with each task's begin, in one round trip.
		Integrations: access.Registry,
		Limits:       task.Limits{MaxAttachments: s.MaxAttachments},
		Parallelism:  s.TaskParallelism,
		// A dead worker's task lock expires on the same horizon as its SQS
		// lease, so the redelivered message is not held up for longer.
		LockTTL:             s.VisibilityTimeout,
		BusyDelay:           min(max(s.VisibilityTimeout/2, time.Second), time.Minute),
		CustomerMaxInflight: s.CustomerMaxInflight,
		FleetCap:            fleetCap,
		Status:              statuses,
		Logger:              log,
		Metrics:             wm,
	})
	if err != nil {
		return err
	}
	pool, err := NewPool(PoolOptions{
		Receiver:        consumer,
		Handler:         handler,
		Slots:           s.Slots,
		ShutdownTimeout: s.ShutdownTimeout,
		Logger:          log,
		Metrics:         wm,
	})
	if err != nil {
		return err
	}

	if s.MetricsAddr != "" {
		// The queue gauges' last successful poll is also readiness's proof
		// that SQS answers.
		gauges, err := NewQueueGauges(reg, QueueGaugesOptions{SQS: sqsAPI, Logger: log,
			Queues: []WatchedQueue{{Label: "tasks", URL: s.QueueURL}, {Label: "dlq", URL: s.DLQURL}}})
		if err != nil {
			return err
		}
		go gauges.Run(soft)
		var srv *http.Server
		var addr net.Addr
		srv, addr, err = ServeHealth(HealthOptions{
			Addr: s.MetricsAddr, Gatherer: reg, Draining: pool.Draining(), PProf: s.PProf, Logger: log,
			Checks: []ReadyCheck{gauges.ReachableCheck(0)},
		})
		if err != nil {
			return &HealthListenError{Err: err}
		}
		log.Info().Str("addr", addr.String()).Msg("metrics listening")
		defer func() {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			_ = srv.Shutdown(ctx)
		}()
	}
	log.Info().Str("version", buildinfo.Get().Version).Str("revision", buildinfo.Get().Revision).Int("slots", s.Slots).Str("queue", s.QueueURL).Str("bucket", s.Copy.Bucket).
		Str("cross_account", string(s.Copy.CrossAccount)).Msg("worker started")
	err = pool.RunUntil(soft, hard)
	// The outcomes of the tasks that drained after the first signal.
	fctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	statuses.Flush(fctx, true)
	cancel()
	log.Info().Msg("worker stopped")
	return err
}

// publisher is where terminal events go: the events queue, the SNS topic,
// or both, each exactly once (Fanout).
func (s Service) publisher(sqsAPI queue.SQSAPI, state *taskstate.State, m *queue.Metrics) Publisher {
	var dests []Destination
	if s.EventsQueueURL != "" {
		p := queue.NewPublisher(sqsAPI, s.EventsQueueURL)
		p.Metrics = m
		dests = append(dests, Destination{Name: "queue", Publisher: p})
	}
	if s.EventsTopicARN != "" {
		p := queue.NewTopicPublisher(sns.NewFromConfig(s.AWS), s.EventsTopicARN)
		p.Metrics = m
		dests = append(dests, Destination{Name: "topic", Publisher: p})
	}
	if len(dests) == 1 {
		return dests[0].Publisher
	}
	return &Fanout{Destinations: dests, State: state, Logger: s.Logger}
}
