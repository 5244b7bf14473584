package deadletter

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/time/rate"

	"github.com/ferryworks/ferry/queue"
)

// ReplayOptions says what Replay moves and how fast.
type ReplayOptions struct {
	From, To string // the DLQ, and the queue to move its messages into
	Filter   Filter
	// Limit is the most messages moved or failed (0: no limit).
	Limit int
	// Scan is the most distinct messages read (at least 1).
	Scan int
	// Rate is the most moves per second; 0 or rate.Inf is unlimited.
	Rate rate.Limit
	// DryRun lists exactly what would move and moves nothing.
	DryRun bool
	// Progress, when set, is called after each message read (moved,
	// failed or skipped); see Summary.Progress.
	Progress func(Summary)
	// Log receives the one warning a replay can have: messages that could
	// not be handed back at once (they reappear by themselves).
	Log zerolog.Logger
}

// Item is one message in a replay's summary.
type Item struct {
	MessageID  string `json:"message_id"`
	TaskID     string `json:"task_id,omitempty"`
	CustomerID string `json:"customer_id,omitempty"`
	Error      string `json:"error,omitempty"`
}

// Summary is what a replay did (or, with DryRun, would do).
type Summary struct {
	DryRun bool   `json:"dry_run"`
	From   string `json:"from"`
	To     string `json:"to"`
	// Scanned counts distinct dead letters read.
	Scanned int `json:"scanned"`
	// Moved (or, dry, would move): sent to To and deleted from the DLQ.
	Moved []Item `json:"moved"`
	// Skipped: left in the DLQ because they did not match the filter, were
	// over the limit, or were copies this run had already replayed.
	Skipped int `json:"skipped"`
	// Failed: still in the DLQ (a failed send), or sent but not deleted (a
	// duplicate the fleet's idempotency absorbs); Error says which, and
	// SentNotDeleted counts the latter.
	Failed         []Item `json:"failed"`
	SentNotDeleted int    `json:"sent_not_deleted"`
}

// ErrReplayIntoDLQ refuses a replay whose destination is the DLQ itself.
var ErrReplayIntoDLQ = errors.New("the destination is the DLQ itself")

// Replay moves the dead letters the filter selects from o.From to o.To.
// Each message is sent first and deleted from the DLQ only once its copy
// was accepted: a send failure or a crash leaves the original in the DLQ,
// and at worst a message ends up in both queues, which the fleet's
// idempotency absorbs. Body and attributes are kept; ferry-replayed counts
// the replays. The summary is complete even with an error, which says why
// the replay stopped early.
func (in *Inspector) Replay(ctx context.Context, o ReplayOptions) (Summary, error) {
	sum := Summary{DryRun: o.DryRun, From: o.From, To: o.To, Moved: []Item{}, Failed: []Item{}}
	if o.To == o.From {
		return sum, ErrReplayIntoDLQ
	}
	limit := o.Rate
	if limit <= 0 {
		limit = rate.Inf
	}
	// Every message read stays held until the end, so that the next receive
	// returns new ones; those not moved are handed back at once when done.
	// The hold covers one batch of ten at the requested rate, with margin;
	// a message that reappears anyway is recognised by its id.
	hold := 2 * time.Minute
	if limit != rate.Inf {
		hold = max(hold, time.Duration(float64(20*time.Second)/float64(limit)))
	}
	held := map[string]queue.DLQMessage{}
	movedOriginal := map[string]bool{}
	pace := rate.NewLimiter(limit, 1)
	var runErr error
	budget := func() bool { return o.Limit <= 0 || len(sum.Moved)+len(sum.Failed) < o.Limit }
scan:
	for budget() && sum.Scanned < max(o.Scan, 1) {
		batch, err := in.DL.Hold(ctx, o.From, 10, hold)
		for _, m := range batch {
			if _, again := held[m.MessageID]; again {
				held[m.MessageID] = m // the newest receipt handle is the valid one
				continue
			}
			sum.Scanned++
			r := in.Row(ctx, m)
			item := Item{MessageID: m.MessageID, TaskID: r.TaskID, CustomerID: r.CustomerID}
			// A message this run replayed that failed again and was
			// redriven back must not be replayed in a loop.
			if !o.Filter.Match(r) || !budget() || movedOriginal[m.OriginalMessageID] {
				sum.Skipped++
				held[m.MessageID] = m
				if o.Progress != nil {
					o.Progress(sum)
				}
				continue
			}
			if o.DryRun {
				sum.Moved = append(sum.Moved, item)
				held[m.MessageID] = m
				if o.Progress != nil {
					o.Progress(sum)
				}
				continue
			}
			if err := pace.Wait(ctx); err != nil {
				held[m.MessageID] = m
				runErr = err
				break scan
			}
			if err := in.DL.Move(ctx, o.From, o.To, m); err != nil {
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
			if o.Progress != nil {
				o.Progress(sum)
			}
		}
		if err != nil {
			runErr = err
			break
		}
		if len(batch) == 0 || ctx.Err() != nil {
			break
		}
	}

	back := make([]queue.DLQMessage, 0, len(held))
	for _, m := range held {
		back = append(back, m)
	}
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	if err := in.DL.Return(rctx, o.From, back); err != nil {
		// Not lost: they reappear by themselves once the hold expires.
		o.Log.Warn().Err(err).Dur("hold", hold).Msg("some dead letters were not handed back at once; they reappear when their hold expires")
	}
	if runErr != nil {
		return sum, fmt.Errorf("replay stopped early: %w", runErr)
	}
	return sum, nil
}

// ProgressTotal is what a replay with o counts towards, given the number of
// messages the DLQ holds: with a limit, the messages it may move (at most
// the limit); without, the messages it will read (at most Scan).
func ProgressTotal(o ReplayOptions, queued int) int {
	total := min(queued, max(o.Scan, 1))
	if o.Limit > 0 {
		total = min(total, o.Limit)
	}
	return total
}

// Progress is how far s is towards ProgressTotal for a replay with limit,
// and what it did so far, for a progress report.
func (s Summary) Progress(limit int) (done int, detail string) {
	done = s.Scanned
	if limit > 0 {
		done = len(s.Moved) + len(s.Failed)
	}
	verb := "moved"
	if s.DryRun {
		verb = "would move"
	}
	return done, fmt.Sprintf("%s %d, failed %d, skipped %d", verb, len(s.Moved), len(s.Failed), s.Skipped)
}

func sortBySent(rows []Row) {
	sort.SliceStable(rows, func(i, j int) bool { return rows[i].SentAt.Before(rows[j].SentAt) })
}
