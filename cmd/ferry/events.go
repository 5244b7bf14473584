package main

import (
	"context"
	"encoding/json"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/ferryworks/ferry/config"
	"github.com/ferryworks/ferry/internal/output"
	"github.com/ferryworks/ferry/internal/render"
	"github.com/ferryworks/ferry/queue"
)

const eventsTailUsage = `Print terminal task events from FERRY_EVENTS_QUEUE_URL as they arrive.

Without --ack the events are not consumed: they are held invisible while
tail runs and handed back the moment it stops (Ctrl-C), so another consumer
of the events queue still gets them. With --ack each printed event is
deleted.`

type tailFlags struct {
	ack      bool
	format   *output.Flag
	customer string
	max      int
	idle     time.Duration
}

func newEventsCommand(a *app) *cobra.Command {
	cmd := &cobra.Command{Use: "events", Short: "Read the events queue"}
	f := tailFlags{format: output.NewFlag()}
	tail := &cobra.Command{
		Use:   "tail",
		Short: "Print events as they arrive",
		Long:  eventsTailUsage,
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.tail(cmd.Context(), f)
		},
	}
	fl := tail.Flags()
	fl.BoolVar(&f.ack, "ack", false, "delete each event once printed")
	f.format.Register(fl)
	fl.StringVar(&f.customer, "customer", "", "only events of the customer `ID` (others are left untouched)")
	fl.IntVar(&f.max, "max", 0, "stop after `N` events (0: until interrupted)")
	fl.DurationVar(&f.idle, "idle-exit", 0, "stop after no event arrived for `DURATION` (0: never)")
	cmd.AddCommand(a.settings(tail, config.GroupEventsQueue, config.GroupAWS))
	return cmd
}

func (a *app) tail(ctx context.Context, f tailFlags) error {
	if err := a.need(config.NeedEventsQueue); err != nil {
		return err
	}
	awsCfg, err := a.awsConfig(ctx)
	if err != nil {
		return err
	}
	c, err := queue.NewConsumer(a.sqsClient(awsCfg), queue.ConsumerOptions{
		QueueURL:          a.cfg.EventsQueueURL,
		WaitTime:          2 * time.Second,
		VisibilityTimeout: 30 * time.Second,
		MaxProcessingTime: 12 * time.Hour,
		Logger:            a.log,
	})
	if err != nil {
		return err
	}
	out := output.New(a.stdout, f.format.Format)
	return queue.Tail(ctx, c, queue.TailOptions{Customer: f.customer, Max: f.max, IdleExit: f.idle, Ack: f.ack, Log: a.log},
		func(raw []byte, ev queue.Event) {
			// The event as published, not as this build decodes it.
			_ = out.Item(json.RawMessage(raw), func(w io.Writer) error { render.Event(w, ev); return nil })
		})
}
