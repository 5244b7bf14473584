package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/spf13/cobra"

	"github.com/ferryworks/ferry/config"
	"github.com/ferryworks/ferry/queue"
	"github.com/ferryworks/ferry/taskstate"
)

const dlqUsage = `Inspect and replay FERRY_DLQ_URL, the tasks queue's dead-letter queue.

  ls                  one row per message: id, task, customer, receives, age, last error
  show ID             one message: body, attributes, last error with its hint
  replay              move messages back to FERRY_QUEUE_URL (or --to URL)
  purge --yes         delete every message in the DLQ

Reading never consumes: messages ls and show read are made visible again at
once. The last error comes from Redis (FERRY_REDIS_URL; what ferry recorded
for the task's last failed attempt) or, for messages ferry dead-lettered as
invalid, from their ferry-reject-reason/-detail attributes. Without Redis the
commands still work, without last errors.

--filter takes comma-separated key=value pairs, all of which must match:
  customer=GLOB   customer id (e.g. acme, acme-*)
  task=GLOB       task id
  error=TEXT      case-insensitive substring of the last error or reject reason`

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

const dlqScanDefault = 10000

type dlqFlags struct {
	output string
	filter string
	limit  int
	scan   int
	// replay
	to     string
	rate   string
	dryRun bool
	// purge
	yes bool
}

func newDLQCommand(a *app) *cobra.Command {
	cmd := &cobra.Command{Use: "dlq", Short: "Inspect, replay and purge the dead-letter queue", Long: dlqUsage}

	var lf dlqFlags
	ls := &cobra.Command{
		Use: "ls", Short: "List dead letters with their last error", Long: dlqUsage, Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return a.dlqList(cmd.Context(), lf) },
	}
	addOutput(ls, &lf)
	addSelection(ls, &lf)

	var sf dlqFlags
	show := &cobra.Command{
		Use: "show ID", Short: "Show one dead letter: body, attributes, last error and hint", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error { return a.dlqShow(cmd.Context(), sf, args[0]) },
	}
	addOutput(show, &sf)
	show.Flags().IntVar(&sf.scan, "scan", dlqScanDefault, "read at most this many messages looking for ID")

	var rf dlqFlags
	replay := &cobra.Command{
		Use: "replay", Short: "Move dead letters back to the tasks queue", Long: dlqReplayUsage, Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return a.dlqReplay(cmd.Context(), rf) },
	}
	addOutput(replay, &rf)
	addSelection(replay, &rf)
	replay.Flags().StringVar(&rf.to, "to", "", "queue URL to replay into (default FERRY_QUEUE_URL)")
	replay.Flags().StringVar(&rf.rate, "rate", "", "at most this many messages per second, e.g. 50/s or 600/m (default unlimited)")
	replay.Flags().BoolVar(&rf.dryRun, "dry-run", false, "list what would move; move nothing")

	var pf dlqFlags
	purge := &cobra.Command{
		Use: "purge", Short: "Delete every message in the dead-letter queue (needs --yes)", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return a.dlqPurge(cmd.Context(), pf) },
	}
	addOutput(purge, &pf)
	purge.Flags().BoolVar(&pf.yes, "yes", false, "really delete; without it purge only says how many it would remove")

	cmd.AddCommand(ls, show, replay, purge)
	return cmd
}

func addOutput(c *cobra.Command, f *dlqFlags) {
	c.Flags().StringVarP(&f.output, "output", "o", "text", "output format: text (a table) or json (one object per line)")
}

func addSelection(c *cobra.Command, f *dlqFlags) {
	c.Flags().StringVar(&f.filter, "filter", "", "only messages matching customer=GLOB,task=GLOB,error=TEXT")
	c.Flags().IntVar(&f.limit, "limit", 0, "at most this many messages (0: all)")
	c.Flags().IntVar(&f.scan, "scan", dlqScanDefault, "read at most this many messages from the DLQ")
}

// dlqFilter selects dead letters; empty fields match everything.
type dlqFilter struct {
	customer, task, errText string
}

func parseDLQFilter(s string) (dlqFilter, error) {
	var f dlqFilter
	if strings.TrimSpace(s) == "" {
		return f, nil
	}
	for _, part := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok || v == "" {
			return f, usagef("--filter %q: want key=value pairs (customer=, task=, error=)", part)
		}
		switch k {
		case "customer", "task":
			if _, err := path.Match(v, ""); err != nil {
				return f, usagef("--filter %s=%q: bad pattern: %v", k, v, err)
			}
			if k == "customer" {
				f.customer = v
			} else {
				f.task = v
			}
		case "error":
			f.errText = strings.ToLower(v)
		default:
			return f, usagef("--filter: unknown key %q (want customer, task or error)", k)
		}
	}
	return f, nil
}

func (f dlqFilter) match(r dlqRow) bool {
	if f.customer != "" {
		if ok, _ := path.Match(f.customer, r.CustomerID); !ok {
			return false
		}
	}
	if f.task != "" {
		if ok, _ := path.Match(f.task, r.TaskID); !ok {
			return false
		}
	}
	if f.errText != "" && !strings.Contains(strings.ToLower(r.searchText()), f.errText) {
		return false
	}
	return true
}

// dlqRow is a dead letter joined with what ferry knows about its task; it is
// also the -o json shape of ls and show.
type dlqRow struct {
	MessageID         string               `json:"message_id"`
	OriginalMessageID string               `json:"original_message_id,omitempty"`
	TaskID            string               `json:"task_id,omitempty"`
	CustomerID        string               `json:"customer_id,omitempty"`
	SubmissionID      string               `json:"submission_id,omitempty"`
	ReceiveCount      int                  `json:"receive_count"`
	ReplayCount       int                  `json:"replay_count"`
	SentAt            time.Time            `json:"sent_at"`
	AgeSeconds        int64                `json:"age_seconds"`
	RejectReason      string               `json:"reject_reason,omitempty"`
	RejectDetail      string               `json:"reject_detail,omitempty"`
	LastError         *taskstate.LastError `json:"last_error,omitempty"`
	// Terminal is set when the task's terminal event was already published:
	// a replay is then acknowledged without work.
	Terminal *taskstate.Terminal `json:"terminal,omitempty"`
	// Error is the one-line summary the table shows.
	Error string `json:"error"`
	// Hint says what to do about Error, when ferry knows.
	Hint       string            `json:"hint,omitempty"`
	Attributes map[string]string `json:"attributes,omitempty"`
	Body       json.RawMessage   `json:"body,omitempty"`
	BodyText   string            `json:"body_text,omitempty"`

	msg queue.DLQMessage
}

func (r dlqRow) searchText() string {
	parts := []string{r.Error, r.RejectReason, r.RejectDetail}
	if r.LastError != nil {
		for _, at := range r.LastError.Attachments {
			parts = append(parts, at.Kind, at.Stage, at.Code, at.Message)
		}
	}
	return strings.Join(parts, "\n")
}

// rejectHint is what to do about a message ferry refused as invalid: it
// will be refused again, so replaying it is pointless.
const rejectHint = "ferry rejected this message as invalid and will reject it again on replay: fix the producer and enqueue a corrected task, then purge or leave this one"

// dlqEnv is what the dlq subcommands share.
type dlqEnv struct {
	sqs   *sqs.Client
	dl    *queue.DeadLetter
	state *taskstate.State // nil without Redis
	// stateNote says why last errors are missing, when they are.
	stateNote string
	now       time.Time
}

func (a *app) dlqSetup(ctx context.Context, reqs ...config.Requirement) (*dlqEnv, error) {
	if err := a.need(append([]config.Requirement{config.NeedDLQ}, reqs...)...); err != nil {
		return nil, err
	}
	awsCfg, err := a.awsConfig(ctx)
	if err != nil {
		return nil, err
	}
	api := a.sqsClient(awsCfg)
	e := &dlqEnv{sqs: api, dl: queue.NewDeadLetter(api), now: time.Now()}
	// Reading a large DLQ takes a while; the messages stay hidden until the
	// whole read is done so that none is listed twice.
	e.dl.PeekVisibility = time.Minute
	switch {
	case a.cfg.RedisURL == "":
		e.stateNote = "FERRY_REDIS_URL is not set: last errors are not shown"
	default:
		// An on-call tool must work while Redis is down: list without last
		// errors rather than fail.
		rdb, err := a.redisClient(ctx)
		if err != nil {
			a.log.Warn().Err(err).Msg("redis unavailable: last errors are not shown")
			e.stateNote = "redis unavailable: last errors are not shown"
		} else {
			e.state = &taskstate.State{Redis: rdb, Prefix: a.cfg.RedisPrefix}
		}
	}
	return e, nil
}

// row joins a dead letter with the task's last error and terminal state.
func (e *dlqEnv) row(ctx context.Context, m queue.DLQMessage) dlqRow {
	r := dlqRow{
		MessageID: m.MessageID, ReceiveCount: m.ReceiveCount, ReplayCount: m.ReplayCount,
		SentAt: m.SentAt.UTC(), RejectReason: m.Attributes[queue.AttrRejectReason],
		RejectDetail: m.Attributes[queue.AttrRejectDetail], Attributes: m.Attributes, msg: m,
	}
	if m.OriginalMessageID != m.MessageID {
		r.OriginalMessageID = m.OriginalMessageID
	}
	if !m.SentAt.IsZero() {
		r.AgeSeconds = int64(e.now.Sub(m.SentAt) / time.Second)
	}
	r.TaskID, r.CustomerID, r.SubmissionID = queue.BodyIDs([]byte(m.Body))
	if r.TaskID == "" {
		r.TaskID = m.Attributes[queue.AttrTaskID]
	}
	if r.CustomerID == "" {
		r.CustomerID = m.Attributes[queue.AttrCustomerID]
	}
	if json.Valid([]byte(m.Body)) {
		r.Body = json.RawMessage(m.Body)
	} else {
		r.BodyText = m.Body
	}
	if e.state != nil && queue.ValidID(r.TaskID) && (r.SubmissionID == "" || queue.ValidID(r.SubmissionID)) {
		key := queue.Task{TaskID: r.TaskID, SubmissionID: r.SubmissionID}.DedupeKey()
		le, ok, err := e.state.LastError(ctx, key)
		if err == nil && ok {
			r.LastError = &le
		}
		t, ok, terr := e.state.Terminal(ctx, key)
		if terr == nil && ok {
			r.Terminal = &t
		}
		if err != nil || terr != nil {
			e.stateNote = "redis errors while reading last errors: some are not shown"
		}
	}
	switch {
	case r.RejectReason != "":
		r.Error = "rejected: " + r.RejectReason
		if r.RejectDetail != "" {
			r.Error += ": " + r.RejectDetail
		}
		r.Hint = rejectHint
	case r.LastError != nil:
		r.Error = r.LastError.Error
		for _, at := range r.LastError.Attachments {
			if at.Hint != "" {
				r.Hint = at.Hint
				break
			}
		}
	case r.Terminal != nil:
		r.Error = "no error recorded; terminal event " + r.Terminal.Type + " already published"
	}
	return r
}

func (a *app) dlqList(ctx context.Context, f dlqFlags) error {
	if err := outputFormat(f.output); err != nil {
		return err
	}
	filter, err := parseDLQFilter(f.filter)
	if err != nil {
		return err
	}
	e, err := a.dlqSetup(ctx)
	if err != nil {
		return err
	}
	msgs, perr := e.dl.Peek(ctx, a.cfg.DLQURL, max(f.scan, 1))
	var rows []dlqRow
	for _, m := range msgs {
		r := e.row(ctx, m)
		if !filter.match(r) {
			continue
		}
		rows = append(rows, r)
		if f.limit > 0 && len(rows) >= f.limit {
			break
		}
	}
	sort.SliceStable(rows, func(i, j int) bool { return rows[i].SentAt.Before(rows[j].SentAt) })
	if f.output == "json" {
		enc := json.NewEncoder(a.stdout)
		for _, r := range rows {
			r.Attributes, r.Body, r.BodyText = nil, nil, "" // show has them; ls stays one short line per message
			_ = enc.Encode(r)
		}
	} else {
		tw := tabwriter.NewWriter(a.stdout, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "MESSAGE ID\tTASK\tCUSTOMER\tRECEIVES\tAGE\tLAST ERROR")
		for _, r := range rows {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\n", r.MessageID, dash(r.TaskID), dash(r.CustomerID),
				r.ReceiveCount, age(time.Duration(r.AgeSeconds)*time.Second), dash(oneLine(r.Error, 100)))
		}
		_ = tw.Flush()
		fmt.Fprintf(a.stderr, "%d of %d dead letters shown\n", len(rows), len(msgs))
	}
	if e.stateNote != "" {
		fmt.Fprintln(a.stderr, "note:", e.stateNote)
	}
	if perr != nil {
		return fmt.Errorf("listing may be incomplete: %w", perr)
	}
	return nil
}

func (a *app) dlqShow(ctx context.Context, f dlqFlags, id string) error {
	if err := outputFormat(f.output); err != nil {
		return err
	}
	e, err := a.dlqSetup(ctx)
	if err != nil {
		return err
	}
	msgs, perr := e.dl.Peek(ctx, a.cfg.DLQURL, max(f.scan, 1))
	var found *queue.DLQMessage
	for i := range msgs {
		if msgs[i].MessageID == id || msgs[i].OriginalMessageID == id {
			found = &msgs[i]
			break
		}
	}
	if found == nil {
		if perr != nil {
			return fmt.Errorf("message %s not found among %d dead letters read: %w", id, len(msgs), perr)
		}
		return fmt.Errorf("message %s is not in %s (%d dead letters read)", id, queueLabel(a.cfg.DLQURL), len(msgs))
	}
	r := e.row(ctx, *found)
	if f.output == "json" {
		return json.NewEncoder(a.stdout).Encode(r)
	}
	w := a.stdout
	fmt.Fprintf(w, "message    %s\n", r.MessageID)
	if r.OriginalMessageID != "" {
		fmt.Fprintf(w, "original   %s\n", r.OriginalMessageID)
	}
	fmt.Fprintf(w, "task       %s\ncustomer   %s\n", dash(r.TaskID), dash(r.CustomerID))
	if r.SubmissionID != "" {
		fmt.Fprintf(w, "submission %s\n", r.SubmissionID)
	}
	fmt.Fprintf(w, "sent       %s (%s ago)\nreceives   %d\nreplays    %d\n", r.SentAt.Format(time.RFC3339),
		age(time.Duration(r.AgeSeconds)*time.Second), r.ReceiveCount, r.ReplayCount)
	fmt.Fprintln(w, "\nattributes:")
	keys := make([]string, 0, len(r.Attributes))
	for k := range r.Attributes {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(w, "  %s = %s\n", k, r.Attributes[k])
	}
	fmt.Fprintln(w, "\nbody:")
	var pretty bytes.Buffer
	if json.Indent(&pretty, []byte(found.Body), "  ", "  ") == nil {
		fmt.Fprintf(w, "  %s\n", pretty.String())
	} else {
		fmt.Fprintf(w, "  %s\n", found.Body)
	}
	fmt.Fprintln(w, "\nlast error:")
	switch {
	case r.RejectReason != "":
		fmt.Fprintf(w, "  %s\n  hint: %s\n", r.Error, r.Hint)
	case r.LastError != nil:
		le := r.LastError
		fmt.Fprintf(w, "  %s (receive %d of message %s): %s\n", le.At.Format(time.RFC3339), le.ReceiveCount, le.MessageID, le.Error)
		for _, at := range le.Attachments {
			fmt.Fprintf(w, "  [%d] %s  %s %s %s: %s\n", at.Index, at.Source, at.Kind, at.Stage, at.Code, at.Message)
			if at.Hint != "" {
				fmt.Fprintf(w, "      hint: %s\n", at.Hint)
			}
		}
	default:
		fmt.Fprintln(w, "  none recorded")
	}
	fmt.Fprintln(w, "\nreplay:")
	switch {
	case r.RejectReason != "":
		fmt.Fprintln(w, "  would be rejected again")
	case r.Terminal != nil:
		fmt.Fprintf(w, "  terminal event %s (%s) already published at %s: a replay is acknowledged without work\n",
			r.Terminal.EventID, r.Terminal.Type, r.Terminal.At.Format(time.RFC3339))
	case e.state == nil:
		fmt.Fprintln(w, "  unknown (no Redis): a task without a terminal event is processed again")
	default:
		fmt.Fprintln(w, "  no terminal event yet: a replay processes the task again")
	}
	if e.stateNote != "" {
		fmt.Fprintln(a.stderr, "note:", e.stateNote)
	}
	return nil
}

// replayItem is one message in a replay's summary.
type replayItem struct {
	MessageID  string `json:"message_id"`
	TaskID     string `json:"task_id,omitempty"`
	CustomerID string `json:"customer_id,omitempty"`
	Error      string `json:"error,omitempty"`
}

// replaySummary is what replay did (or, with --dry-run, would do).
type replaySummary struct {
	DryRun bool   `json:"dry_run"`
	From   string `json:"from"`
	To     string `json:"to"`
	// Scanned counts distinct dead letters read.
	Scanned int `json:"scanned"`
	// Moved (or, dry, would move): sent to To and deleted from the DLQ.
	Moved []replayItem `json:"moved"`
	// Skipped: left in the DLQ because they did not match the filter, were
	// over --limit, or were copies this run had already replayed.
	Skipped int `json:"skipped"`
	// Failed: still in the DLQ (a failed send), or sent but not deleted (a
	// duplicate the fleet's idempotency absorbs); Error says which, and
	// SentNotDeleted counts the latter.
	Failed         []replayItem `json:"failed"`
	SentNotDeleted int          `json:"sent_not_deleted"`
}

func (a *app) dlqReplay(ctx context.Context, f dlqFlags) error {
	if err := outputFormat(f.output); err != nil {
		return err
	}
	filter, err := parseDLQFilter(f.filter)
	if err != nil {
		return err
	}
	rate, err := parseRate(f.rate)
	if err != nil {
		return err
	}
	var reqs []config.Requirement
	if f.to == "" {
		reqs = append(reqs, config.NeedQueue)
	}
	e, err := a.dlqSetup(ctx, reqs...)
	if err != nil {
		return err
	}
	to := f.to
	if to == "" {
		to = a.cfg.QueueURL
	}
	from := a.cfg.DLQURL
	if to == from {
		return usagef("--to is the DLQ itself")
	}
	sum := replaySummary{DryRun: f.dryRun, From: from, To: to, Moved: []replayItem{}, Failed: []replayItem{}}
	prog := a.newProgress(ctx, e, from)

	// Every message read stays held until the end, so that the next receive
	// returns new ones; those not moved are handed back at once when done.
	// The hold covers one batch of ten at the requested rate, with margin;
	// a message that reappears anyway is recognised by its id.
	hold := 2 * time.Minute
	if rate > 0 {
		hold = max(hold, time.Duration(float64(20*time.Second)/rate))
	}
	held := map[string]queue.DLQMessage{}
	movedOriginal := map[string]bool{}
	pace := newPacer(rate)
	var runErr error
	budget := func() bool { return f.limit <= 0 || len(sum.Moved)+len(sum.Failed) < f.limit }
scan:
	for budget() && sum.Scanned < max(f.scan, 1) {
		batch, err := e.dl.Hold(ctx, from, 10, hold)
		for _, m := range batch {
			if _, again := held[m.MessageID]; again {
				held[m.MessageID] = m // the newest receipt handle is the valid one
				continue
			}
			sum.Scanned++
			r := e.row(ctx, m)
			item := replayItem{MessageID: m.MessageID, TaskID: r.TaskID, CustomerID: r.CustomerID}
			// A message this run replayed that failed again and was
			// redriven back must not be replayed in a loop.
			if !filter.match(r) || !budget() || movedOriginal[m.OriginalMessageID] {
				sum.Skipped++
				held[m.MessageID] = m
				continue
			}
			if f.dryRun {
				sum.Moved = append(sum.Moved, item)
				held[m.MessageID] = m
				continue
			}
			if err := pace.wait(ctx); err != nil {
				held[m.MessageID] = m
				runErr = err
				break scan
			}
			if err := e.dl.Move(ctx, from, to, m); err != nil {
				// Whether the send or the delete failed, the original is
				// still in the DLQ: make it visible again with the rest.
				item.Error = err.Error()
				sum.Failed = append(sum.Failed, item)
				if errors.Is(err, queue.ErrNotDeleted) {
					sum.SentNotDeleted++
					movedOriginal[m.OriginalMessageID] = true
				}
				held[m.MessageID] = m
			} else {
				sum.Moved = append(sum.Moved, item)
				movedOriginal[m.OriginalMessageID] = true
			}
			prog.update(sum)
		}
		if err != nil {
			runErr = err
			break
		}
		if len(batch) == 0 || ctx.Err() != nil {
			break
		}
	}
	prog.done()

	back := make([]queue.DLQMessage, 0, len(held))
	for _, m := range held {
		back = append(back, m)
	}
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	if err := e.dl.Return(rctx, from, back); err != nil {
		// Not lost: they reappear by themselves once the hold expires.
		a.log.Warn().Err(err).Dur("hold", hold).Msg("some dead letters were not handed back at once; they reappear when their hold expires")
	}

	a.printReplay(f.output, sum)
	if e.stateNote != "" {
		fmt.Fprintln(a.stderr, "note:", e.stateNote)
	}
	if runErr != nil {
		return fmt.Errorf("replay stopped early: %w", runErr)
	}
	if len(sum.Failed) > 0 {
		return exitError{1}
	}
	return nil
}

func (a *app) printReplay(format string, s replaySummary) {
	if format == "json" {
		_ = json.NewEncoder(a.stdout).Encode(s)
		return
	}
	verb := "moved"
	if s.DryRun {
		verb = "would move"
	}
	for _, it := range s.Moved {
		fmt.Fprintf(a.stdout, "%s  %s  task=%s customer=%s\n", verb, it.MessageID, dash(it.TaskID), dash(it.CustomerID))
	}
	for _, it := range s.Failed {
		fmt.Fprintf(a.stdout, "failed  %s  task=%s customer=%s: %s\n", it.MessageID, dash(it.TaskID), dash(it.CustomerID), it.Error)
	}
	fmt.Fprintf(a.stdout, "%s %d, skipped %d, failed %d (of %d read from %s, to %s)\n", verb, len(s.Moved), s.Skipped,
		len(s.Failed), s.Scanned, queueLabel(s.From), queueLabel(s.To))
	if s.SentNotDeleted > 0 {
		fmt.Fprintf(a.stdout, "%d of the failed were sent but are still in the DLQ too: a duplicate the fleet absorbs; a later replay sends them again\n", s.SentNotDeleted)
	}
	if s.DryRun {
		fmt.Fprintln(a.stdout, "dry run: nothing was moved")
	}
}

func (a *app) dlqPurge(ctx context.Context, f dlqFlags) error {
	if err := outputFormat(f.output); err != nil {
		return err
	}
	if err := a.need(config.NeedDLQ); err != nil {
		return err
	}
	awsCfg, err := a.awsConfig(ctx)
	if err != nil {
		return err
	}
	api := a.sqsClient(awsCfg)
	n, err := queueCount(ctx, api, a.cfg.DLQURL)
	if err != nil {
		return err
	}
	name := queueLabel(a.cfg.DLQURL)
	if !f.yes {
		return usagef("purge would remove about %d messages from %s; nothing was deleted. Run `ferry dlq ls` to see them, then `ferry dlq purge --yes`", n, name)
	}
	if _, err := api.PurgeQueue(ctx, &sqs.PurgeQueueInput{QueueUrl: aws.String(a.cfg.DLQURL)}); err != nil {
		var inProgress *types.PurgeQueueInProgress
		if errors.As(err, &inProgress) {
			return fmt.Errorf("purge %s: a purge is already running (SQS allows one per 60 s): %w", name, err)
		}
		return fmt.Errorf("purge %s: %w", name, err)
	}
	if f.output == "json" {
		return json.NewEncoder(a.stdout).Encode(map[string]any{"queue": a.cfg.DLQURL, "purged": n})
	}
	fmt.Fprintf(a.stdout, "purged about %d messages from %s (SQS may take up to 60 s to finish)\n", n, name)
	return nil
}

// queueCount is the queue's approximate number of messages in every state.
func queueCount(ctx context.Context, api *sqs.Client, url string) (int, error) {
	out, err := api.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: aws.String(url),
		AttributeNames: []types.QueueAttributeName{types.QueueAttributeNameApproximateNumberOfMessages,
			types.QueueAttributeNameApproximateNumberOfMessagesNotVisible, types.QueueAttributeNameApproximateNumberOfMessagesDelayed}})
	if err != nil {
		return 0, fmt.Errorf("count messages in %s: %w", queueLabel(url), err)
	}
	n := 0
	for _, v := range out.Attributes {
		c, _ := strconv.Atoi(v)
		n += c
	}
	return n, nil
}

// parseRate reads --rate: "N", "N/s" or "N/m"; "" or 0 is unlimited.
func parseRate(s string) (float64, error) {
	if s == "" {
		return 0, nil
	}
	num, unit, _ := strings.Cut(s, "/")
	v, err := strconv.ParseFloat(num, 64)
	if err != nil || v < 0 {
		return 0, usagef("--rate %q: want N/s or N/m (e.g. 50/s)", s)
	}
	switch unit {
	case "", "s":
	case "m":
		v /= 60
	default:
		return 0, usagef("--rate %q: unit must be /s or /m", s)
	}
	return v, nil
}

// pacer spaces calls to at most rate per second (0: unlimited).
type pacer struct {
	every time.Duration
	next  time.Time
}

func newPacer(rate float64) *pacer {
	if rate <= 0 {
		return &pacer{}
	}
	return &pacer{every: time.Duration(float64(time.Second) / rate)}
}

func (p *pacer) wait(ctx context.Context) error {
	if p.every == 0 {
		return ctx.Err()
	}
	now := time.Now()
	if p.next.After(now) {
		t := time.NewTimer(p.next.Sub(now))
		defer t.Stop()
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
		now = p.next
	}
	p.next = now.Add(p.every)
	return nil
}

// progress draws a one-line progress bar on stderr when it is a terminal;
// anywhere else it draws nothing, so logs and pipes stay clean.
type progress struct {
	w     io.Writer
	total int
	last  time.Time
	on    bool
}

func (a *app) newProgress(ctx context.Context, e *dlqEnv, url string) *progress {
	p := &progress{w: a.stderr}
	f, ok := a.stderr.(*os.File)
	if !ok {
		return p
	}
	if st, err := f.Stat(); err != nil || st.Mode()&os.ModeCharDevice == 0 {
		return p
	}
	p.on = true
	p.total, _ = queueCount(ctx, e.sqs, url)
	return p
}

func (p *progress) update(s replaySummary) {
	if !p.on || time.Since(p.last) < 100*time.Millisecond {
		return
	}
	p.last = time.Now()
	done := len(s.Moved) + len(s.Failed) + s.Skipped
	const width = 30
	fill := 0
	if p.total > 0 {
		fill = min(width, done*width/p.total)
	}
	fmt.Fprintf(p.w, "\r[%s%s] %d/%d  moved %d  failed %d ", strings.Repeat("#", fill), strings.Repeat(".", width-fill),
		done, p.total, len(s.Moved), len(s.Failed))
}

func (p *progress) done() {
	if p.on {
		fmt.Fprint(p.w, "\r\033[K")
	}
}

func queueLabel(url string) string {
	if i := strings.LastIndexByte(url, '/'); i >= 0 && i < len(url)-1 {
		return url[i+1:]
	}
	return url
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// oneLine shortens s to one line of at most n runes for a table cell.
func oneLine(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}

// age renders a duration the way people read queue ages: 45s, 12m, 3h10m, 2d4h.
func age(d time.Duration) string {
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh%02dm", int(d.Hours()), int(d.Minutes())%60)
	default:
		return fmt.Sprintf("%dd%dh", int(d.Hours())/24, int(d.Hours())%24)
	}
}
