package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/ferryworks/ferry/config"
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

func (a *app) work(ctx context.Context) error {
	if err := a.need(config.WorkerNeeds...); err != nil {
		return err
	}
	setup, cancelSetup := context.WithTimeout(ctx, 30*time.Second)
	defer cancelSetup()
	awsCfg, err := a.awsConfig(setup)
	if err != nil {
		return err
	}
	rdb, err := a.openRedis() // need not answer yet (worker.Service.Redis)
	if err != nil {
		return err
	}
	err = worker.Service{
		AWS:                 awsCfg,
		Redis:               rdb,
		RedisPrefix:         a.cfg.RedisPrefix,
		Credentials:         a.credOptions(rdb, a.stsClient(awsCfg)),
		Copy:                a.copyOptions(awsCfg, rdb, a.cfg.Bucket),
		QueueURL:            a.cfg.QueueURL,
		DLQURL:              a.cfg.DLQURL,
		VisibilityTimeout:   a.cfg.VisibilityTimeout,
		MaxProcessingTime:   a.cfg.MaxProcessingTime,
		EventsQueueURL:      a.cfg.EventsQueueURL,
		EventsTopicARN:      a.cfg.EventsTopicARN,
		Slots:               a.cfg.Concurrency,
		ShutdownTimeout:     a.cfg.ShutdownTimeout,
		TaskParallelism:     a.cfg.TaskParallelism,
		MaxAttachments:      a.cfg.MaxAttachments,
		CustomerMaxInflight: a.cfg.CustomerMaxInflight,
		FleetMaxInflight:    a.cfg.CustomerFleetMaxInflight,
		FleetLeaseTTL:       a.cfg.CustomerFleetLeaseTTL,
		MetricsAddr:         a.cfg.MetricsAddr,
		PProf:               a.cfg.PProf,
		Logger:              a.log,
	}.Run(ctx)
	if le := (*worker.HealthListenError)(nil); errors.As(err, &le) {
		return fmt.Errorf("%w (FERRY_METRICS_ADDR: choose a free address, or off to disable)", err)
	}
	return err
}
