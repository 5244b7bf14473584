// Package worker is ferry's pipeline: it joins the queue (messages in,
// events out) and the fetcher (attachments copied) into Handler, which
// takes one task from message to terminal event, and Pool, which runs
// handlers in bounded slots and drains them on shutdown.
package worker

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"
	"golang.org/x/sync/errgroup"

	"github.com/ferryworks/ferry/admission"
	"github.com/ferryworks/ferry/credcache"
	"github.com/ferryworks/ferry/fetcher"
	"github.com/ferryworks/ferry/internal/redislock"
	"github.com/ferryworks/ferry/queue"
	"github.com/ferryworks/ferry/task"
	"github.com/ferryworks/ferry/taskstate"
)

// Copier copies one attachment; *fetcher.Copier is the production one.
type Copier interface {
	Copy(ctx context.Context, req fetcher.Request) (fetcher.Result, error)
}

// Publisher publishes a terminal event; *queue.Publisher is the production one.
type Publisher interface {
	Publish(ctx context.Context, e queue.Event) error
}

// DeadLetters sends a rejected message to the dead-letter queue.
type DeadLetters interface {
	SendToDLQ(ctx context.Context, dlqURL string, l *queue.Lease, reason, detail string) error
}

// Integrations reads a customer's integration within a caller's Redis
// pipeline; *credcache.Registry is the production one.
type Integrations interface {
	GetPipelined(ctx context.Context, p redis.Pipeliner, customerID string) func() (credcache.Integration, error)
}

// Outcome is what became of one delivery; it labels ferry_tasks_total.
type Outcome string

// The outcomes of a delivery.
const (
	OutcomeCompleted    Outcome = "completed"
	OutcomeAccessDenied Outcome = "access_denied"
	OutcomeFailed       Outcome = "failed"
	// OutcomeRetried: a transient failure; the message comes back after a
	// backoff (and reaches the DLQ after the queue's maxReceiveCount).
	OutcomeRetried Outcome = "retried"
	// OutcomeRejected: not a valid task; sent to the DLQ.
	OutcomeRejected Outcome = "rejected"
	// OutcomeDuplicate: the task already has a terminal event; acknowledged
	// without work.
	OutcomeDuplicate Outcome = "duplicate"
	// OutcomeBusy: another worker is copying the same task right now; the
	// message is requeued with a delay (without spending a receive).
	OutcomeBusy Outcome = "busy"
	// OutcomeReleased: shutdown interrupted the task (or SQS took its lease
	// back); handed back for another worker at once, without spending a
	// receive on standard queues.
	OutcomeReleased Outcome = "released"
	// OutcomeDeferred: the customer already had CustomerMaxInflight tasks
	// running here, or FleetCap's Max across the fleet; the message is
	// requeued with a short delay (spending no receive) so one customer's
	// flood cannot take every slot.
	OutcomeDeferred Outcome = "deferred"
)

// HandlerOptions configures a Handler.
type HandlerOptions struct {
	Copier      Copier
	Publisher   Publisher
	DeadLetters DeadLetters
	DLQURL      string
	State       *taskstate.State
	// Integrations, when set, is read in the round trip that begins each
	// task and handed to every copy of it, so a task costs one Redis round
	// trip fewer and reads its customer's integration once, however many
	// attachments it has; nil leaves the read to the Copier, per copy.
	Integrations Integrations
	Limits       task.Limits
	// Parallelism bounds the attachments of one task copied at once
	// (default 4).
	Parallelism int
	// LockTTL is the per-task lock's lifetime, extended while the task runs
	// (default 30 s).
	LockTTL time.Duration
	// BusyDelay is how long a delivery of a task that another worker is
	// copying waits before it is delivered again (default 15 s).
	BusyDelay time.Duration
	// CustomerMaxInflight caps one customer's tasks running at once in this
	// handler (FERRY_CUSTOMER_MAX_INFLIGHT); 0 is no cap. A delivery over
	// the cap is requeued with DeferDelay (Lease.Requeue), which does not
	// bring it nearer the DLQ.
	CustomerMaxInflight int
	// FleetCap caps one customer's tasks running at once across every
	// worker (FERRY_CUSTOMER_FLEET_MAX_INFLIGHT); nil or Max 0 is no cap. A
	// delivery over it is requeued with DeferDelay like one over
	// CustomerMaxInflight. When Redis cannot answer, the task runs uncapped.
	FleetCap *admission.FleetCap
	// DeferDelay is how long a delivery over a customer cap waits before
	// it is delivered again (default 1 s, whole seconds).
	DeferDelay time.Duration
	// Status, when set, is told the outcome of every task that ends in a
	// terminal event, for the customer's integration status
	// (*credcache.StatusRecorder, which only folds it into memory).
	Status  StatusObserver
	Logger  zerolog.Logger
	Metrics *Metrics
	// Now is the clock for event timestamps (default time.Now).
	Now func() time.Time
}

// StatusObserver receives finished tasks' outcomes per customer; it must
// not block. *credcache.StatusRecorder is the production one.
type StatusObserver interface {
	ObserveTask(customerID string, o credcache.TaskOutcome)
}

// Handler takes one delivery from message to terminal event: decode →
// dedupe → lock → copy every attachment (bounded) → classify → publish the
// event → record the terminal state → ack, in that order, so a crash at any
// point repeats at most an identical event and never loses the task.
type Handler struct {
	o HandlerOptions

	mu       sync.Mutex
	inflight map[string]int // running tasks per customer, with a cap
}

// NewHandler returns a Handler; Copier, Publisher, DeadLetters, DLQURL and
// State are required.
func NewHandler(o HandlerOptions) (*Handler, error) {
	var missing []string
	if o.Copier == nil {
		missing = append(missing, "Copier")
	}
	if o.Publisher == nil {
		missing = append(missing, "Publisher")
	}
	if o.DeadLetters == nil {
		missing = append(missing, "DeadLetters")
	}
	if o.DLQURL == "" {
		missing = append(missing, "DLQURL")
	}
	if o.State == nil || o.State.Redis == nil {
		missing = append(missing, "State")
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("worker: handler needs %s", strings.Join(missing, ", "))
	}
	if o.Parallelism <= 0 {
		o.Parallelism = 4
	}
	if o.LockTTL <= 0 {
		o.LockTTL = 30 * time.Second
	}
	if o.BusyDelay <= 0 {
		o.BusyDelay = 15 * time.Second
	}
	if o.DeferDelay <= 0 {
		o.DeferDelay = time.Second
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Handler{o: o, inflight: map[string]int{}}, nil
}

// Report is what Handle did with one delivery, for the caller's log line.
type Report struct {
	Outcome    Outcome
	TaskID     string
	CustomerID string
	EventID    string
	Bytes      int64
	Err        error
	// Acked, when not nil, answers the delivery's ack, which was queued
	// but not yet sent or answered when Handle returned (nil: deleted);
	// Err does not include it. Wait reads it.
	Acked <-chan error
}

// Wait waits for a pending ack (Acked) and adds its failure to Err.
func (r *Report) Wait() {
	if r.Acked == nil {
		return
	}
	if err := <-r.Acked; err != nil {
		r.Err = errors.Join(r.Err, fmt.Errorf("ack: %w", err))
	}
	r.Acked = nil
}

// Handle processes one delivery and settles its lease (ack, retry later,
// release or dead-letter). ctx is the work context: when it ends (a hard
// shutdown), unfinished work is released for another worker at once.
//
// The delivery is traced as a consumer span continuing the trace the message
// came with; the copies, the AssumeRole calls and the event's publication
// are its children, and the event carries the trace on.
func (h *Handler) Handle(ctx context.Context, l *queue.Lease) Report {
	ctx, span := l.StartProcessSpan(ctx)
	rep := h.handle(ctx, l)
	endProcessSpan(span, rep)
	return rep
}

func (h *Handler) handle(ctx context.Context, l *queue.Lease) Report {
	tk, err := task.Decode(l.Body, h.o.Limits)
	if err == nil {
		err = CheckURIs(tk)
	}
	if err != nil {
		return h.reject(ctx, l, err)
	}
	rep := Report{TaskID: tk.TaskID, CustomerID: tk.CustomerID}
	if !h.admit(tk.CustomerID) {
		return requeued(ctx, l, rep, OutcomeDeferred, h.o.DeferDelay)
	}
	defer h.leave(tk.CustomerID)
	key := tk.DedupeKey()
	log := h.o.Logger.With().Str("task_id", tk.TaskID).Str("customer_id", tk.CustomerID).Str("message_id", l.MessageID).Logger()

	place, ok, err := h.o.FleetCap.Acquire(ctx, tk.CustomerID)
	switch {
	case err != nil:
		// The cap shares load fairly; it is not worth stopping work for.
		log.Warn().Err(err).Msg("fleet-wide cap unavailable; running uncapped")
	case !ok:
		return requeued(ctx, l, rep, OutcomeDeferred, h.o.DeferDelay)
	}
	defer release(ctx, place.Release) // if Redis cannot answer, the place lapses after its TTL

	// Already announced? Else take the task's lock; and read the
	// customer's integration (one round trip).
	t, done, lock, integration, err := h.begin(ctx, key, tk.CustomerID)
	switch {
	case err != nil:
		log.Warn().Err(err).Msg("task state unavailable; proceeding unlocked (an identical event may repeat)")
	case done:
		rep.Outcome, rep.EventID = OutcomeDuplicate, t.EventID
		rep.Acked = l.AckAsync(ctx)
		return rep
	case lock == nil:
		// Not a failure: requeued, so a long copy cannot push a duplicate
		// delivery of its task into the DLQ.
		return requeued(ctx, l, rep, OutcomeBusy, h.o.BusyDelay)
	}
	defer release(ctx, lock.Unlock) // a no-op once Finish released it

	// Work stops if SQS says the lease is gone: another worker may hold the
	// message now, and finishing would only duplicate its work.
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-l.Lost():
			cancel()
		case <-wctx.Done():
		}
	}()

	results, errs := h.copyAll(wctx, tk, l.ReceiveCount, integration)
	for _, r := range results {
		rep.Bytes += r.Size
	}
	if ctx.Err() != nil {
		return h.handBack(l, rep, lock)
	}

	evType, transient := classify(errs)
	if transient != nil {
		if wctx.Err() != nil {
			return h.handBack(l, rep, lock) // the lease was lost
		}
		rep.Outcome, rep.Err = OutcomeRetried, transient
		h.recordError(ctx, log, key, l, tk, errs, transient)
		if _, err := l.RetryLater(ctx); err != nil {
			rep.Err = errors.Join(transient, fmt.Errorf("retry later: %w", err))
		}
		return rep
	}

	ev := h.event(tk, evType, results, errs)
	rep.EventID = ev.EventID
	rep.Outcome = outcomeOf(evType)
	if err := h.o.Publisher.Publish(ctx, ev); err != nil {
		rep.Outcome, rep.Err = OutcomeRetried, fmt.Errorf("publish %s: %w", ev.EventID, err)
		h.recordError(ctx, log, key, l, tk, nil, rep.Err)
		if _, rerr := l.RetryLater(ctx); rerr != nil {
			rep.Err = errors.Join(rep.Err, fmt.Errorf("retry later: %w", rerr))
		}
		return rep
	}
	h.observe(tk.CustomerID, ev.OccurredAt, evType, errs)
	if err := h.o.State.Finish(ctx, key, taskstate.Terminal{EventID: ev.EventID, Type: ev.Type, At: ev.OccurredAt}, lock); err != nil {
		// The event is out; without the record a redelivery republishes the
		// same event id, which consumers deduplicate.
		log.Warn().Err(err).Msg("terminal state not recorded")
	}
	// The task is done once the ack is queued: its slot can take the next
	// delivery while the ack waits for a batch call (the pool waits for
	// the answer before it counts the delivery done).
	rep.Acked = l.AckAsync(ctx)
	return rep
}

// admit takes one of the customer's in-flight places, if the cap allows.
func (h *Handler) admit(customer string) bool {
	if h.o.CustomerMaxInflight <= 0 {
		return true
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.inflight[customer] >= h.o.CustomerMaxInflight {
		return false
	}
	h.inflight[customer]++
	return true
}

func (h *Handler) leave(customer string) {
	if h.o.CustomerMaxInflight <= 0 {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.inflight[customer]--; h.inflight[customer] <= 0 {
		delete(h.inflight, customer)
	}
}

// handBack returns an interrupted delivery to the queue at once: the work
// context ended (the worker is shutting down) or SQS took the lease back,
// not the task. A delivery interrupted by shutdown is requeued
// (Lease.Requeue), not released: a release spends a receive, so a task
// caught by more deploys or scale-ins than the queue's maxReceiveCount would
// reach the DLQ without ever failing. On a FIFO queue Requeue is a release
// (a copy would lose the group's order), and there each interruption still
// counts as a receive. A lost lease is not ours to hand back: the message is
// already visible to others, and a copy would duplicate it. The task's lock
// is dropped first, so the next delivery need not wait for it as busy.
func (h *Handler) handBack(l *queue.Lease, rep Report, lock *redislock.Lock) Report {
	rep.Outcome = OutcomeReleased
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = lock.Unlock(ctx) // best effort: at worst the next delivery waits for it to expire
	select {
	case <-l.Lost():
		return rep
	default:
	}
	if err := l.Requeue(ctx, 0); err != nil && !errors.Is(err, queue.ErrLeaseLost) {
		rep.Err = fmt.Errorf("hand back: %w", err)
	}
	return rep
}

// begin is State.Begin and, with Integrations set, the read of the
// customer's integration in the same pipeline: one round trip (on a
// cluster, one per node, sent at once). integration is nil without
// Integrations, and answers only once: its answer is kept for every
// attachment.
// requeued hands the message back to be received again after delay, without
// spending a receive, and reports outcome.
func requeued(ctx context.Context, l *queue.Lease, rep Report, outcome Outcome, delay time.Duration) Report {
	rep.Outcome = outcome
	rep.Err = l.Requeue(ctx, delay)
	return rep
}

// release gives back what a task held (its lock, its fleet-wide place) when
// the task ends, also when ctx was cancelled by shutdown; a Redis that does
// not answer within 2 s is not waited for, since what was held lapses after
// its TTL.
func release(ctx context.Context, give func(context.Context) error) {
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
	defer cancel()
	_ = give(rctx)
}

func (h *Handler) begin(ctx context.Context, key, customer string) (t taskstate.Terminal, done bool, lock *redislock.Lock,
	integration func() (credcache.Integration, error), err error) {
	if h.o.Integrations == nil {
		t, done, lock, err = h.o.State.Begin(ctx, key, h.o.LockTTL)
		return t, done, lock, nil, err
	}
	var begun func() (taskstate.Terminal, bool, *redislock.Lock, error)
	var read func() (credcache.Integration, error)
	// Each queued command answers for itself; the pipeline's own error is
	// the first of theirs.
	_, _ = h.o.State.Redis.Pipelined(ctx, func(p redis.Pipeliner) error {
		begun = h.o.State.BeginPipelined(ctx, p, key, h.o.LockTTL)
		read = h.o.Integrations.GetPipelined(ctx, p, customer)
		return nil
	})
	t, done, lock, err = begun()
	in, ierr := read()
	return t, done, lock, func() (credcache.Integration, error) { return in, ierr }, err
}

// copyAll copies the task's attachments, at most Parallelism at a time.
// errs[i] is nil when attachment i was copied.
func (h *Handler) copyAll(ctx context.Context, t task.Task, attempt int, integration func() (credcache.Integration, error)) ([]fetcher.Result, []error) {
	results := make([]fetcher.Result, len(t.Attachments))
	errs := make([]error, len(t.Attachments))
	var g errgroup.Group
	g.SetLimit(h.o.Parallelism)
	for i, a := range t.Attachments {
		g.Go(func() error {
			cctx, span := startCopySpan(ctx, i)
			results[i], errs[i] = h.o.Copier.Copy(cctx, fetcher.Request{
				CustomerID: t.CustomerID, TaskID: t.TaskID, Index: i, URI: a.URI, Name: a.Name, Attempt: attempt,
				Integration: integration,
			})
			endCopySpan(span, results[i], errs[i])
			return nil
		})
	}
	_ = g.Wait()
	return results, errs
}

// classify applies the product's rule to the attachments' outcomes: any
// transient failure → retry the task (no event); otherwise any access
// denied → task.access_denied; any other failure → task.failed; all
// copied → task.completed. transient is the first transient error.
func classify(errs []error) (eventType string, transient error) {
	eventType = queue.EventCompleted
	for _, err := range errs {
		if err == nil {
			continue
		}
		var fe *fetcher.Error
		if !errors.As(err, &fe) || fe.Retryable() {
			if transient == nil {
				transient = err
			}
			continue
		}
		if t := EventTypeOf(fe.Kind); t == queue.EventAccessDenied {
			eventType = t
		} else if eventType == queue.EventCompleted {
			eventType = t
		}
	}
	return eventType, transient
}

// observe tells Status what the task says about the customer's
// integration: it completed, or the customer's role refused AssumeRole, or
// neither (it failed elsewhere: the integration was merely used).
func (h *Handler) observe(customerID string, at time.Time, evType string, errs []error) {
	if h.o.Status == nil {
		return
	}
	o := credcache.TaskOutcome{At: at, Completed: evType == queue.EventCompleted}
	for _, err := range errs {
		var fe *fetcher.Error
		if errors.As(err, &fe) && fe.Kind == fetcher.KindAccessDenied && fe.Stage == fetcher.StageAssumeRole {
			o.AssumeRoleRefused = true
			o.Err = &credcache.StatusError{Source: "task", Stage: string(fe.Stage), Code: fe.Code, Message: fe.Message, Hint: fe.Hint, At: at}
			break
		}
	}
	h.o.Status.ObserveTask(customerID, o)
}

// EventTypeOf is the terminal event a failure of kind k leads to when it is
// the task's only failure (an access_denied attachment makes the whole task
// task.access_denied); "" for fetcher.KindTransient, which is retried
// instead of reported.
func EventTypeOf(k fetcher.Kind) string {
	switch k {
	case fetcher.KindTransient:
		return ""
	case fetcher.KindAccessDenied:
		return queue.EventAccessDenied
	}
	return queue.EventFailed
}

func outcomeOf(evType string) Outcome {
	switch evType {
	case queue.EventCompleted:
		return OutcomeCompleted
	case queue.EventAccessDenied:
		return OutcomeAccessDenied
	default:
		return OutcomeFailed
	}
}

func (h *Handler) event(t task.Task, evType string, results []fetcher.Result, errs []error) queue.Event {
	ev := queue.Event{
		Version:      queue.EventVersion,
		EventID:      queue.EventID(t.TaskID, t.SubmissionID, evType),
		Type:         evType,
		TaskID:       t.TaskID,
		CustomerID:   t.CustomerID,
		SubmissionID: t.SubmissionID,
		OccurredAt:   h.o.Now().UTC().Truncate(time.Millisecond),
		Attachments:  make([]queue.AttachmentResult, len(t.Attachments)),
	}
	for i, a := range t.Attachments {
		if errs[i] == nil {
			r := results[i]
			ev.Attachments[i] = queue.AttachmentResult{
				Source: r.Source, Status: "copied", Stored: r.Stored, Size: r.Size,
				SHA256: r.SHA256, ContentType: r.ContentType, Mode: string(r.Mode),
			}
			continue
		}
		ar := queue.AttachmentResult{Source: a.URI, Status: "failed"}
		var fe *fetcher.Error
		if errors.As(errs[i], &fe) {
			if fe.URI != "" {
				ar.Source = fe.URI
			}
			ar.Status, ar.Mode = string(fe.Kind), string(fe.Mode)
			ae := attachmentError(fe)
			ar.Error = &ae
		} else {
			ar.Error = &queue.AttachmentError{Message: errs[i].Error()}
		}
		ev.Attachments[i] = ar
	}
	return ev
}

// attachmentError is what an event and a last error say about an
// attachment's failure.
func attachmentError(fe *fetcher.Error) queue.AttachmentError {
	return queue.AttachmentError{Stage: string(fe.Stage), Code: fe.Code, Message: fe.Message, Hint: fe.Hint}
}

func (h *Handler) recordError(ctx context.Context, log zerolog.Logger, key string, l *queue.Lease, t task.Task, errs []error, cause error) {
	le := taskstate.LastError{MessageID: l.MessageID, ReceiveCount: l.ReceiveCount, At: h.o.Now().UTC(), Error: cause.Error()}
	for i, err := range errs {
		var fe *fetcher.Error
		if err == nil || !errors.As(err, &fe) {
			continue
		}
		le.Attachments = append(le.Attachments, taskstate.AttachmentError{
			Index: i, Source: fe.URI, Kind: string(fe.Kind), AttachmentError: attachmentError(fe),
		})
	}
	if err := h.o.State.RecordError(ctx, key, le); err != nil {
		log.Warn().Err(err).Msg("last error not recorded")
	}
}

// reject dead-letters a message that is not a valid task, announces
// task.failed (invalid_message) when a task id could be read, and deletes
// the original — sending first, deleting after, so nothing is lost.
func (h *Handler) reject(ctx context.Context, l *queue.Lease, cause error) Report {
	rep := Report{Outcome: OutcomeRejected, Err: cause}
	reason, detail := "invalid", cause.Error()
	var ite *task.InvalidError
	if errors.As(cause, &ite) {
		reason, detail, rep.TaskID = ite.Reason, ite.Detail, ite.TaskID
	}
	taskID, customerID, sub := task.BodyIDs(l.Body)
	if rep.TaskID == "" {
		rep.TaskID = taskID
	}
	if task.ValidID(customerID) {
		rep.CustomerID = customerID
	}
	if !task.ValidID(sub) {
		sub = ""
	}
	if err := h.o.DeadLetters.SendToDLQ(ctx, h.o.DLQURL, l, reason, detail); err != nil {
		rep.Outcome, rep.Err = OutcomeRetried, errors.Join(cause, err)
		_, _ = l.RetryLater(ctx)
		return rep
	}
	if rep.TaskID != "" && task.ValidID(rep.TaskID) {
		ev := queue.Event{
			Version: queue.EventVersion, EventID: queue.EventID(rep.TaskID, sub, queue.EventFailed),
			Type: queue.EventFailed, TaskID: rep.TaskID, CustomerID: rep.CustomerID, SubmissionID: sub,
			OccurredAt: h.o.Now().UTC().Truncate(time.Millisecond), Reason: queue.FailedReasonInvalidMessage,
		}
		if err := h.o.Publisher.Publish(ctx, ev); err != nil {
			// The dead letter is safe; retrying may add a second copy of it,
			// which replay deduplicates, but the event must go out.
			rep.Outcome, rep.Err = OutcomeRetried, errors.Join(cause, fmt.Errorf("publish %s: %w", ev.EventID, err))
			_, _ = l.RetryLater(ctx)
			return rep
		}
		rep.EventID = ev.EventID
	}
	if err := l.Ack(ctx); err != nil {
		rep.Err = errors.Join(cause, fmt.Errorf("ack: %w", err))
	}
	return rep
}

// CheckURIs rejects a task naming an attachment ferry can never fetch (an
// ftp:// URI, an s3:// URI without a key…) with a *task.InvalidError
// whose Reason is invalid_uri. The worker dead-letters such a task before any
// work is done; producers (ferry enqueue) call it to refuse it before
// sending.
func CheckURIs(t task.Task) error {
	for i, a := range t.Attachments {
		if _, err := fetcher.ParseURI(a.URI); err != nil {
			return &task.InvalidError{Reason: "invalid_uri", Detail: fmt.Sprintf("attachment %d: %v", i, err), TaskID: t.TaskID}
		}
	}
	return nil
}
