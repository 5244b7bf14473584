package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/ferryworks/ferry/config"
	"github.com/ferryworks/ferry/deadletter"
	"github.com/ferryworks/ferry/internal/output"
	"github.com/ferryworks/ferry/internal/progress"
	"github.com/ferryworks/ferry/queue"
	"github.com/ferryworks/ferry/task"
	"github.com/ferryworks/ferry/taskstate"
)

const dlqUsage = `Inspect and replay FERRY_DLQ_URL, the tasks queue's dead-letter queue.

  ls                  one row per message: id, task, customer, receives, age, last error
  show ID             one message: body, attributes, last error with its hint
  replay              move messages back to FERRY_QUEUE_URL (or --to URL)
  purge --yes         delete every message in the DLQ and abort the multipart
                      uploads their tasks' killed attempts left open in
                      FERRY_BUCKET

Reading never consumes: messages ls and show read are made visible again at
once. The last error comes from Redis (FERRY_REDIS_URL; what ferry recorded
for the task's last failed attempt) or, for messages ferry dead-lettered as
invalid, from their ferry-reject-reason/-detail attributes. Without Redis the
commands still work, without last errors.

--filter takes comma-separated key=value pairs, all of which must match:
  customer=GLOB   customer id (e.g. acme, acme-*)
  task=GLOB       task id
  error=TEXT      case-insensitive substring of the last error or reject reason`

const dlqScanDefault = 10000

func newDLQCommand(a *app) *cobra.Command {
	cmd := &cobra.Command{Use: "dlq", Short: "Inspect, replay and purge the dead-letter queue", Long: dlqUsage}
	cmd.AddCommand((&dlqListCommand{app: a}).command(), (&dlqShowCommand{app: a}).command(),
		(&dlqReplayCommand{app: a}).command(), (&dlqPurgeCommand{app: a}).command())
	return cmd
}

// dlqSelection are the flags that choose dead letters.
type dlqSelection struct {
	filter string
	limit  int
	scan   int
}

func (s *dlqSelection) register(c *cobra.Command) {
	c.Flags().StringVar(&s.filter, "filter", "", "only messages matching `FILTER`: "+deadletter.FilterSyntax)
	c.Flags().IntVar(&s.limit, "limit", 0, "at most `N` messages (0: all)")
	c.Flags().IntVar(&s.scan, "scan", dlqScanDefault, "read at most `N` messages from the DLQ")
}

func (s *dlqSelection) parseFilter() (deadletter.Filter, error) {
	f, err := deadletter.ParseFilter(s.filter)
	if err != nil {
		return f, usagef("--filter %v", err)
	}
	return f, nil
}

func addOutput(c *cobra.Command) *output.Flag {
	f := output.NewFlag()
	f.Register(c.Flags())
	return f
}

// inspector opens the DLQ for reading, with task state from Redis when it
// answers: an on-call tool must work while Redis is down, so without it the
// listing goes on without last errors and says so.
func (a *app) inspector(ctx context.Context, reqs ...config.Requirement) (*deadletter.Inspector, error) {
	if err := a.need(append([]config.Requirement{config.NeedDLQ}, reqs...)...); err != nil {
		return nil, err
	}
	awsCfg, err := a.awsConfig(ctx)
	if err != nil {
		return nil, err
	}
	in := &deadletter.Inspector{DL: queue.NewDeadLetter(a.sqsClient(awsCfg)), Now: time.Now()}
	// Reading a large DLQ takes a while; the messages stay hidden until the
	// whole read is done so that none is listed twice.
	in.DL.PeekVisibility = time.Minute
	if a.cfg.RedisURL == "" {
		in.StateNote = "FERRY_REDIS_URL is not set: last errors are not shown"
		return in, nil
	}
	rdb, err := a.redisClient(ctx)
	if err != nil {
		a.log.Warn().Err(err).Msg("redis unavailable: last errors are not shown")
		in.StateNote = "redis unavailable: last errors are not shown"
		return in, nil
	}
	in.State = &taskstate.State{Redis: rdb, Prefix: a.cfg.RedisPrefix}
	return in, nil
}

func (a *app) stateNote(in *deadletter.Inspector) {
	if in.StateNote != "" {
		fmt.Fprintln(a.stderr, "note:", in.StateNote)
	}
}

// dlqListCommand is `ferry dlq ls`.
type dlqListCommand struct {
	app    *app
	format *output.Flag
	sel    dlqSelection
}

func (c *dlqListCommand) command() *cobra.Command {
	cmd := &cobra.Command{
		Use: "ls", Short: "List dead letters with their last error", Long: dlqUsage, Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return c.Run(cmd.Context()) },
	}
	c.format = addOutput(cmd)
	c.sel.register(cmd)
	return c.app.settings(cmd, config.GroupDLQ, config.GroupRedis, config.GroupAWS)
}

func (c *dlqListCommand) Run(ctx context.Context) error {
	a := c.app
	filter, err := c.sel.parseFilter()
	if err != nil {
		return err
	}
	in, err := a.inspector(ctx)
	if err != nil {
		return err
	}
	rows, read, lerr := in.List(ctx, a.cfg.DLQURL, deadletter.ListOptions{Filter: filter, Limit: c.sel.limit, Scan: c.sel.scan})
	if c.format.Format == output.Text {
		_ = deadletter.WriteTable(a.stdout, rows)
		fmt.Fprintf(a.stderr, "%d of %d dead letters shown\n", len(rows), read)
	} else {
		out := output.New(a.stdout, c.format.Format)
		for _, r := range rows {
			_ = out.Item(r.Brief(), nil) // show has attributes and body; ls stays one short line per message
		}
	}
	a.stateNote(in)
	if lerr != nil {
		return fmt.Errorf("listing may be incomplete: %w", lerr)
	}
	return nil
}

// dlqShowCommand is `ferry dlq show ID`.
type dlqShowCommand struct {
	app    *app
	format *output.Flag
	scan   int
}

func (c *dlqShowCommand) command() *cobra.Command {
	cmd := &cobra.Command{
		Use: "show ID", Short: "Show one dead letter: body, attributes, last error and hint", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error { return c.Run(cmd.Context(), args[0]) },
	}
	c.format = addOutput(cmd)
	cmd.Flags().IntVar(&c.scan, "scan", dlqScanDefault, "read at most `N` messages looking for ID")
	return c.app.settings(cmd, config.GroupDLQ, config.GroupRedis, config.GroupAWS)
}

func (c *dlqShowCommand) Run(ctx context.Context, id string) error {
	a := c.app
	in, err := a.inspector(ctx)
	if err != nil {
		return err
	}
	r, ok, read, ferr := in.Find(ctx, a.cfg.DLQURL, id, c.scan)
	if !ok {
		if ferr != nil {
			return fmt.Errorf("message %s not found among %d dead letters read: %w", id, read, ferr)
		}
		return fmt.Errorf("message %s is not in %s (%d dead letters read)", id, deadletter.QueueLabel(a.cfg.DLQURL), read)
	}
	if err := output.New(a.stdout, c.format.Format).Document(r, func(w io.Writer) error {
		deadletter.WriteDetail(w, r, in.State != nil)
		return nil
	}); err != nil {
		return err
	}
	a.stateNote(in)
	return nil
}

const dlqReplayUsage = `Move dead letters back to FERRY_QUEUE_URL (or --to URL) so the fleet
processes them again.

Each message is sent first and deleted from the DLQ only once its copy was
accepted: a send failure or a crash leaves the original in the DLQ, and at
worst a message ends up in both queues, which the fleet's idempotency absorbs.
Body and attributes are kept; ferry-replayed counts the replays.

What happens to a replayed task: one whose terminal event was already
published is acknowledged without work; one that never completed is
processed again.

--dry-run lists exactly the messages that would move and moves nothing.
Exit status 1 when any message failed to move (the summary says why).`

// dlqReplayCommand is `ferry dlq replay`.
type dlqReplayCommand struct {
	app    *app
	format *output.Flag
	sel    dlqSelection
	to     string
	rate   string
	dryRun bool
}

func (c *dlqReplayCommand) command() *cobra.Command {
	cmd := &cobra.Command{
		Use: "replay", Short: "Move dead letters back to the tasks queue", Long: dlqReplayUsage, Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return c.Run(cmd.Context()) },
	}
	c.format = addOutput(cmd)
	c.sel.register(cmd)
	cmd.Flags().StringVar(&c.to, "to", "", "queue `URL` to replay into (default FERRY_QUEUE_URL)")
	cmd.Flags().StringVar(&c.rate, "rate", "", "at most `RATE` messages, e.g. 50/s or 600/m (default unlimited)")
	cmd.Flags().BoolVar(&c.dryRun, "dry-run", false, "list what would move; move nothing")
	return c.app.settings(cmd, config.GroupDLQ, config.GroupTasks, config.GroupRedis, config.GroupAWS, config.GroupProgress)
}

func (c *dlqReplayCommand) Run(ctx context.Context) error {
	a := c.app
	filter, err := c.sel.parseFilter()
	if err != nil {
		return err
	}
	limit, err := deadletter.ParseRate(c.rate)
	if err != nil {
		return usagef("--rate %v", err)
	}
	var reqs []config.Requirement
	if c.to == "" {
		reqs = append(reqs, config.NeedQueue)
	}
	in, err := a.inspector(ctx, reqs...)
	if err != nil {
		return err
	}
	to := c.to
	if to == "" {
		to = a.cfg.QueueURL
	}
	awsCfg, err := a.awsConfig(ctx)
	if err != nil {
		return err
	}
	opts := deadletter.ReplayOptions{From: a.cfg.DLQURL, To: to, Filter: filter, Limit: c.sel.limit, Scan: c.sel.scan,
		Rate: limit, DryRun: c.dryRun, Log: a.log}
	queued, err := deadletter.Count(ctx, a.sqsClient(awsCfg), a.cfg.DLQURL)
	if err != nil {
		return err
	}
	prog := a.progress(progress.Options{What: "replay", Unit: "messages", Total: deadletter.ProgressTotal(opts, queued)})
	opts.Progress = func(s deadletter.Summary) { prog.Update(s.Progress(c.sel.limit)) }
	sum, rerr := in.Replay(ctx, opts)
	prog.Finish()
	if errors.Is(rerr, deadletter.ErrReplayIntoDLQ) {
		return usagef("--to is the DLQ itself")
	}
	_ = output.New(a.stdout, c.format.Format).Document(sum, func(w io.Writer) error {
		deadletter.WriteSummary(w, sum)
		return nil
	})
	a.stateNote(in)
	if rerr != nil {
		return rerr
	}
	if len(sum.Failed) > 0 {
		return exitError{1}
	}
	return nil
}

// dlqPurgeCommand is `ferry dlq purge`.
type dlqPurgeCommand struct {
	app    *app
	format *output.Flag
	yes    bool
	scan   int
}

func (c *dlqPurgeCommand) command() *cobra.Command {
	cmd := &cobra.Command{
		Use: "purge", Short: "Delete every message in the dead-letter queue and the uploads their tasks left open (needs --yes)", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return c.Run(cmd.Context()) },
	}
	c.format = addOutput(cmd)
	cmd.Flags().BoolVar(&c.yes, "yes", false, "really delete; without it purge only says how many it would remove")
	cmd.Flags().IntVar(&c.scan, "scan", dlqScanDefault, "read at most `N` messages to find the uploads their tasks left open")
	return c.app.settings(cmd, config.GroupDLQ, config.GroupCopy, config.GroupS3, config.GroupTaskLimits, config.GroupAWS, config.GroupProgress)
}

func (c *dlqPurgeCommand) Run(ctx context.Context) error {
	a := c.app
	if err := a.need(config.NeedDLQ, config.NeedBucket); err != nil {
		return err
	}
	awsCfg, err := a.awsConfig(ctx)
	if err != nil {
		return err
	}
	api := a.sqsClient(awsCfg)
	n, err := deadletter.Count(ctx, api, a.cfg.DLQURL)
	if err != nil {
		return err
	}
	name := deadletter.QueueLabel(a.cfg.DLQURL)
	if !c.yes {
		return usagef("purge would remove about %d messages from %s; nothing was deleted. Run `ferry dlq ls` to see them, then `ferry dlq purge --yes`", n, name)
	}
	// The tasks are read before the purge: afterwards nothing says which
	// keys their killed attempts left uploads under.
	in := &deadletter.Inspector{DL: queue.NewDeadLetter(api)}
	in.DL.PeekVisibility = time.Minute
	tasks, read, err := in.Tasks(ctx, a.cfg.DLQURL, c.scan, task.Limits{MaxAttachments: a.cfg.MaxAttachments})
	if err != nil {
		return fmt.Errorf("read the dead letters (to abort their open uploads) failed after %d; nothing was deleted, run the purge again: %w", read, err)
	}
	if err := deadletter.Purge(ctx, api, a.cfg.DLQURL); err != nil {
		return err
	}
	prog := a.progress(progress.Options{What: "purge", Unit: "messages", Total: n})
	left, err := deadletter.WaitPurged(ctx, api, a.cfg.DLQURL, n, time.Second, func(gone int) { prog.Update(gone, "") })
	prog.Finish()
	if err != nil {
		return err
	}
	up := deadletter.Uploads{S3: a.s3Client(awsCfg), Bucket: a.cfg.Bucket, KeyPrefix: a.cfg.KeyPrefix}
	cleaned, cerr := up.Abort(ctx, tasks)
	doc := map[string]any{"queue": a.cfg.DLQURL, "purged": n, "left": left, "read": read, "uploads": cleaned}
	if err := output.New(a.stdout, c.format.Format).Document(doc, func(w io.Writer) error {
		if left > 0 {
			fmt.Fprintf(w, "purged about %d messages from %s; %d are there now (arrived since, or SQS is still purging)\n", n, name, left)
		} else {
			fmt.Fprintf(w, "purged about %d messages from %s; it is empty\n", n, name)
		}
		_, err := fmt.Fprintf(w, "aborted %d multipart uploads left open by %d of their tasks' attachments in %s\n", cleaned.Aborted, cleaned.Attachments, a.cfg.Bucket)
		return err
	}); err != nil {
		return err
	}
	if read < n {
		fmt.Fprintf(a.stderr, "note: only %d of about %d dead letters were read (--scan %d): uploads the others left open stay until the bucket's lifecycle rule aborts them (docs/runbook.md)\n", read, n, c.scan)
	}
	return cerr
}
