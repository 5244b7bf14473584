// Package deadletter is the on-call side of the tasks queue's dead-letter
// queue: it joins each dead letter with what the fleet recorded about its
// task (taskstate), selects them with a small filter language, replays them
// into the tasks queue without ever losing one, and renders all of it for
// people. queue.DeadLetter does the SQS work underneath.
package deadletter

import (
	"context"
	"encoding/json"
	"strings"
	"time"

	"github.com/ferryworks/ferry/queue"
	"github.com/ferryworks/ferry/task"
	"github.com/ferryworks/ferry/taskstate"
)

// Row is a dead letter joined with what ferry knows about its task; it is
// also the JSON shape `ferry dlq ls` and `show` print.
type Row struct {
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
}

// Brief is the row without attributes and body, one short line in a listing.
func (r Row) Brief() Row {
	r.Attributes, r.Body, r.BodyText = nil, nil, ""
	return r
}

func (r Row) searchText() string {
	parts := []string{r.Error, r.RejectReason, r.RejectDetail}
	if r.LastError != nil {
		for _, at := range r.LastError.Attachments {
			parts = append(parts, at.Kind, at.Stage, at.Code, at.Message)
		}
	}
	return strings.Join(parts, "\n")
}

// RejectHint is what to do about a message ferry refused as invalid: it
// will be refused again, so replaying it is pointless.
const RejectHint = "ferry rejected this message as invalid and will reject it again on replay: fix the producer and enqueue a corrected task, then purge or leave this one"

// Inspector reads a dead-letter queue and joins each message with its task's
// state.
type Inspector struct {
	DL *queue.DeadLetter
	// State is where the worker recorded last errors and terminal events;
	// nil lists without them (an on-call tool must work while Redis is down).
	State *taskstate.State
	// StateNote says why last errors are missing, when they are; the
	// Inspector sets it when Redis fails mid-listing.
	StateNote string
	// Now is the time ages are counted from; zero means time.Now at the
	// first row.
	Now time.Time
}

// Row joins a dead letter with the task's last error and terminal state.
// Redis failures leave those out and set StateNote.
func (in *Inspector) Row(ctx context.Context, m queue.DLQMessage) Row {
	if in.Now.IsZero() {
		in.Now = time.Now()
	}
	r := Row{
		MessageID: m.MessageID, ReceiveCount: m.ReceiveCount, ReplayCount: m.ReplayCount,
		SentAt: m.SentAt.UTC(), RejectReason: m.Attributes[queue.AttrRejectReason],
		RejectDetail: m.Attributes[queue.AttrRejectDetail], Attributes: m.Attributes,
	}
	if m.OriginalMessageID != m.MessageID {
		r.OriginalMessageID = m.OriginalMessageID
	}
	if !m.SentAt.IsZero() {
		r.AgeSeconds = int64(in.Now.Sub(m.SentAt) / time.Second)
	}
	r.TaskID, r.CustomerID, r.SubmissionID = task.BodyIDs([]byte(m.Body))
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
	if in.State != nil && task.ValidID(r.TaskID) && (r.SubmissionID == "" || task.ValidID(r.SubmissionID)) {
		key := task.Task{TaskID: r.TaskID, SubmissionID: r.SubmissionID}.DedupeKey()
		le, ok, err := in.State.LastError(ctx, key)
		if err == nil && ok {
			r.LastError = &le
		}
		t, ok, terr := in.State.Terminal(ctx, key)
		if terr == nil && ok {
			r.Terminal = &t
		}
		if err != nil || terr != nil {
			in.StateNote = "redis errors while reading last errors: some are not shown"
		}
	}
	switch {
	case r.RejectReason != "":
		r.Error = "rejected: " + r.RejectReason
		if r.RejectDetail != "" {
			r.Error += ": " + r.RejectDetail
		}
		r.Hint = RejectHint
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

// ListOptions selects what List returns.
type ListOptions struct {
	Filter Filter
	// Limit is the most rows returned (0: all).
	Limit int
	// Scan is the most messages read from the queue (at least 1).
	Scan int
}

// List reads up to o.Scan dead letters without consuming them (they are
// visible again when it returns) and returns those the filter selects,
// oldest first, with how many were read. An error with rows means the
// listing may be incomplete.
func (in *Inspector) List(ctx context.Context, dlqURL string, o ListOptions) (rows []Row, read int, err error) {
	msgs, err := in.DL.Peek(ctx, dlqURL, max(o.Scan, 1))
	for _, m := range msgs {
		r := in.Row(ctx, m)
		if !o.Filter.Match(r) {
			continue
		}
		rows = append(rows, r)
		if o.Limit > 0 && len(rows) >= o.Limit {
			break
		}
	}
	sortBySent(rows)
	return rows, len(msgs), err
}

// Find reads up to scan dead letters without consuming them, looking for id
// (a message id, or the id the message had before it was dead-lettered or
// replayed). ok is false when it is not among the read ones; err says why
// the read stopped early, if it did.
func (in *Inspector) Find(ctx context.Context, dlqURL, id string, scan int) (r Row, ok bool, read int, err error) {
	msgs, err := in.DL.Peek(ctx, dlqURL, max(scan, 1))
	for _, m := range msgs {
		if m.MessageID == id || m.OriginalMessageID == id {
			return in.Row(ctx, m), true, len(msgs), err
		}
	}
	return Row{}, false, len(msgs), err
}
