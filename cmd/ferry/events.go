package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/ferryworks/ferry/config"
	"github.com/ferryworks/ferry/queue"
)

const eventsTailUsage = `Print terminal task events from FERRY_EVENTS_QUEUE_URL as they arrive.

Without --ack the events are not consumed: they are held invisible while
tail runs and handed back the moment it stops (Ctrl-C), so another consumer
of the events queue still gets them. With --ack each printed event is
deleted.`

type tailFlags struct {
	ack      bool
	output   string
	customer string
	max      int
	idle     time.Duration
}

func newEventsCommand(a *app) *cobra.Command {
	cmd := &cobra.Command{Use: "events", Short: "Read the events queue"}
	var f tailFlags
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
	fl.StringVarP(&f.output, "output", "o", "text", "output format: text or json")
	fl.StringVar(&f.customer, "customer", "", "only events of this customer (others are left untouched)")
	fl.IntVar(&f.max, "max", 0, "stop after this many events (0: until interrupted)")
	fl.DurationVar(&f.idle, "idle-exit", 0, "stop after no event arrived for this long (0: never)")
	cmd.AddCommand(tail)
	return cmd
}

func (a *app) tail(ctx context.Context, f tailFlags) error {
	if err := outputFormat(f.output); err != nil {
		return err
	}
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
	return queue.Tail(ctx, c, queue.TailOptions{Customer: f.customer, Max: f.max, IdleExit: f.idle, Ack: f.ack, Log: a.log},
		func(raw []byte, ev queue.Event) { printEvent(a.stdout, f.output, raw, ev) })
}

// printEvent writes one event: the raw JSON with -o json, else a summary
// line and one indented line per attachment, with the hint when it failed.
func printEvent(w io.Writer, format string, raw []byte, ev queue.Event) {
	if format == "json" {
		fmt.Fprintln(w, strings.TrimSpace(string(raw)))
		return
	}
	fmt.Fprintf(w, "%s  %-19s %-10s %s", ev.OccurredAt.Local().Format(time.TimeOnly), ev.Type, ev.CustomerID, ev.TaskID)
	if ev.Reason != "" {
		fmt.Fprintf(w, "  reason=%s", ev.Reason)
	}
	fmt.Fprintln(w)
	for _, at := range ev.Attachments {
		switch {
		case at.Error == nil:
			fmt.Fprintf(w, "    %-13s %-13s %s -> %s (%d bytes)\n", at.Status, at.Mode, at.Source, at.Stored, at.Size)
		default:
			fmt.Fprintf(w, "    %-13s %-13s %s  [%s %s]\n", at.Status, at.Mode, at.Source, at.Error.Stage, at.Error.Code)
			if at.Error.Hint != "" {
				fmt.Fprintf(w, "                  hint: %s\n", at.Error.Hint)
			}
		}
	}
}
