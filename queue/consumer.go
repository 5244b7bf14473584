package queue

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
	smithytime "github.com/aws/smithy-go/time"
	"github.com/rs/zerolog"
)

// ConsumerOptions configures a Consumer. Zero durations mean the defaults.
type ConsumerOptions struct {
	// QueueURL is the queue to consume (required).
	QueueURL string
	// WaitTime is the long-poll wait of one Receive, at most 20 s (default
	// 20 s). A negative value short-polls.
	WaitTime time.Duration
	// VisibilityTimeout is the lease length requested on receive and on
	// every heartbeat extension, whole seconds, 1 s–12 h (default 60 s). A
	// worker that dies loses its messages for at most this long.
	VisibilityTimeout time.Duration
	// MaxProcessingTime caps how long the heartbeat keeps a lease alive after
	// receipt (default 1 h); past it the message becomes visible again and
	// another worker may take it.
	MaxProcessingTime time.Duration
	// HeartbeatInterval is how long after the last extension a lease is
	// extended again (default VisibilityTimeout/3, at most half of it).
	HeartbeatInterval time.Duration
	// RetryBase and RetryMax shape Lease.RetryLater's backoff (defaults
	// 5 s and 15 min).
	RetryBase, RetryMax time.Duration
	// AckBatchWindow is how long an ack or visibility change may linger for
	// others to share its batch call. The default, 0, commits as a group:
	// sent at once when no batch call is in flight, else together with
	// everything that arrived meanwhile, so batching grows with load and a
	// lone ack costs one round trip. A full batch of 10 is sent at once.
	AckBatchWindow time.Duration
	// Logger receives warnings about lost leases, capped extensions and
	// SQS errors; the zero value logs nothing.
	Logger zerolog.Logger
	// Metrics is optional.
	Metrics *Metrics
}

func (o ConsumerOptions) withDefaults() (ConsumerOptions, error) {
	if o.QueueURL == "" {
		return o, errors.New("queue: ConsumerOptions.QueueURL is required")
	}
	switch {
	case o.WaitTime == 0:
		o.WaitTime = 20 * time.Second
	case o.WaitTime < 0:
		o.WaitTime = 0
	case o.WaitTime > 20*time.Second:
		return o, fmt.Errorf("queue: WaitTime %s exceeds SQS's 20s", o.WaitTime)
	}
	if o.VisibilityTimeout == 0 {
		o.VisibilityTimeout = 60 * time.Second
	}
	if o.VisibilityTimeout < time.Second || o.VisibilityTimeout > MaxVisibility {
		return o, fmt.Errorf("queue: VisibilityTimeout %s outside 1s-12h", o.VisibilityTimeout)
	}
	o.VisibilityTimeout = o.VisibilityTimeout.Truncate(time.Second)
	if o.MaxProcessingTime == 0 {
		o.MaxProcessingTime = time.Hour
	}
	if o.MaxProcessingTime > MaxVisibility {
		o.MaxProcessingTime = MaxVisibility
	}
	if o.HeartbeatInterval == 0 {
		o.HeartbeatInterval = o.VisibilityTimeout / 3
	}
	// An extension happens up to 1.5 intervals after the last one (the
	// heartbeat ticks every half interval), so half the lease is the most
	// that still leaves room for the call itself.
	if o.HeartbeatInterval <= 0 || o.HeartbeatInterval > o.VisibilityTimeout/2 {
		return o, fmt.Errorf("queue: HeartbeatInterval %s must be in (0, VisibilityTimeout/2]", o.HeartbeatInterval)
	}
	if o.RetryBase == 0 {
		o.RetryBase = 5 * time.Second
	}
	if o.RetryMax == 0 {
		o.RetryMax = 15 * time.Minute
	}
	return o, nil
}

// Consumer leases messages from one SQS queue. It keeps every unsettled
// lease invisible with a single background heartbeat, and batches deletes
// and visibility changes into SQS batch calls. It is safe for concurrent use.
type Consumer struct {
	api  SQSAPI
	opts ConsumerOptions
	log  zerolog.Logger
	m    *Metrics

	mu        sync.Mutex
	inflight  map[*Lease]struct{}
	groupTail map[string]*Lease
	closed    bool

	recvErrs atomic.Int32

	// hbMu keeps a heartbeat extension from landing after a Release or
	// RetryLater of the same message, which would hide it again.
	hbMu    sync.Mutex
	deletes *batcher
	changes *batcher

	ctx     context.Context // lifetime of background SQS calls
	cancel  context.CancelFunc
	hbStop  chan struct{}
	hbDone  chan struct{}
	closeMu sync.Mutex
}

// NewConsumer validates opts and starts the consumer's heartbeat and batch
// goroutines; call Close to stop them and flush pending acks.
func NewConsumer(api SQSAPI, opts ConsumerOptions) (*Consumer, error) {
	if api == nil {
		return nil, errors.New("queue: NewConsumer needs an SQS client")
	}
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	c := &Consumer{
		api:       api,
		opts:      opts,
		log:       opts.Logger.With().Str("queue", queueName(opts.QueueURL)).Logger(),
		m:         opts.Metrics,
		inflight:  map[*Lease]struct{}{},
		groupTail: map[string]*Lease{},
		ctx:       ctx,
		cancel:    cancel,
		hbStop:    make(chan struct{}),
		hbDone:    make(chan struct{}),
	}
	c.deletes = newBatcher(opts.AckBatchWindow, c.flushDeletes)
	c.changes = newBatcher(opts.AckBatchWindow, c.flushChanges)
	go c.deletes.run(ctx)
	go c.changes.run(ctx)
	go c.heartbeat()
	return c, nil
}

// Lease is one received message, held invisible to other consumers until it
// is settled with Ack, RetryLater, Release or ReleaseAfter (exactly one of
// them; a second returns ErrSettled). Until then the Consumer's heartbeat
// extends its visibility, up to MaxProcessingTime. Leases come only from
// Consumer.Receive; a Lease built any other way cannot be settled.
type Lease struct {
	MessageID string
	Body      []byte
	// Attributes are the message's String and Number message attributes.
	Attributes map[string]string
	// ReceiveCount is SQS's ApproximateReceiveCount, including this receipt.
	ReceiveCount    int
	GroupID         string
	DeduplicationID string
	SentAt          time.Time
	ReceivedAt      time.Time

	c        *Consumer
	handle   string // receipt handle; never logged
	msgAttrs map[string]types.MessageAttributeValue
	// awsTraceHeader is the AWSTraceHeader system attribute (X-Ray).
	awsTraceHeader string

	// Guarded by c.mu.
	state      leaseState
	nextExtend time.Time
	capped     bool
	prev       *Lease // earlier unsettled lease of the same FIFO group

	lost     chan struct{}
	lostOnce sync.Once
	turn     chan struct{}
	turnOnce sync.Once
}

type leaseState int

const (
	leaseActive leaseState = iota
	leaseSettling
	leaseAcked
	leaseReleased
	leaseLost
	leaseFailed
)

// Lost is closed when the consumer learns that SQS no longer honours the
// lease (an extension or settle was refused); work on it may be duplicated
// elsewhere, and settling it returns ErrLeaseLost.
func (l *Lease) Lost() <-chan struct{} { return l.lost }

// Ack deletes the message. It is batched with other acks (up to
// AckBatchWindow, or while an earlier batch call is in flight) and returns once the batch call answered, after a few
// retries of transient failures. ErrLeaseLost means the message is not
// ours any more (it may be redelivered); any other error means the delete
// did not happen and the message will be redelivered after its visibility
// timeout: processing must be idempotent (at-least-once).
func (l *Lease) Ack(ctx context.Context) error {
	if err := l.begin(); err != nil {
		return err
	}
	return l.c.deletes.submit(ctx, &settleReq{l: l, ack: true, done: make(chan error, 1)})
}

// AckAsync is Ack without the wait: it queues the delete and returns a
// channel that yields what Ack would have returned once the batch call
// answered (one value; read it once). A caller can so free the resources
// of a finished task while its ack shares a batch call with others. Close
// flushes queued acks, and a FIFO group's next lease waits for this one's
// answer as it waits for Ack.
func (l *Lease) AckAsync(ctx context.Context) <-chan error {
	r := &settleReq{l: l, ack: true, done: make(chan error, 1)}
	if err := l.begin(); err != nil {
		r.done <- err
		return r.done
	}
	if err := l.c.deletes.enqueue(ctx, r); err != nil {
		r.done <- err
	}
	return r.done
}

// RetryLater makes the message visible again after an exponential backoff
// with full jitter computed from ReceiveCount: a random delay in
// [0, min(RetryMax, RetryBase·2^(ReceiveCount-1))], also capped by SQS's
// 12 h visibility limit. It returns the delay chosen. Every redelivery
// increments the receive count, and once it exceeds the queue's
// maxReceiveCount SQS moves the message to the dead-letter queue instead of
// delivering it.
func (l *Lease) RetryLater(ctx context.Context) (time.Duration, error) {
	d := RetryDelay(l.c.opts.RetryBase, l.c.opts.RetryMax, l.ReceiveCount)
	if err := l.changeVisibility(ctx, d, true); err != nil {
		return d, err
	}
	return d, nil
}

// Release makes the message visible again at once, for any consumer. SQS
// counts the next delivery as another receive, so releasing repeatedly
// brings the message nearer its queue's maxReceiveCount and the DLQ.
func (l *Lease) Release(ctx context.Context) error {
	return l.changeVisibility(ctx, 0, false)
}

// ReleaseAfter makes the message visible again after d (clamped to
// 0–12 h, whole seconds). Like Release, the next delivery counts as a
// receive towards the queue's maxReceiveCount.
func (l *Lease) ReleaseAfter(ctx context.Context, d time.Duration) error {
	return l.changeVisibility(ctx, d, false)
}

// Requeue hands the message back for later without spending its receive
// count: it sends a copy (same body and attributes, plus ferry-deferred
// counting requeues) with a delivery delay of d (whole seconds, at most
// 15 min), then deletes this message. Sending first and deleting after means
// a failure in between duplicates the message rather than losing it. Use it
// for deliveries put off for reasons that are not failures (a customer's
// in-flight cap), so a busy customer's messages never reach the DLQ. FIFO
// queues take no per-message delay and must keep their order, so there
// Requeue is ReleaseAfter.
func (l *Lease) Requeue(ctx context.Context, d time.Duration) error {
	if isFIFO(l.c.opts.QueueURL) {
		return l.ReleaseAfter(ctx, d)
	}
	n, _ := strconv.Atoi(l.Attributes[AttrDeferred])
	attrs := copyAttrs(l.msgAttrs, AttrDeferred)
	attrs[AttrDeferred] = types.MessageAttributeValue{DataType: aws.String("Number"), StringValue: aws.String(strconv.Itoa(n + 1))}
	delay := int32(min(max(d, 0), 15*time.Minute) / time.Second)
	if _, err := l.c.api.SendMessage(ctx, &sqs.SendMessageInput{
		QueueUrl: aws.String(l.c.opts.QueueURL), MessageBody: aws.String(string(l.Body)),
		MessageAttributes: attrs, DelaySeconds: delay,
	}); err != nil {
		l.c.m.sqsError("SendMessage")
		// Not requeued: let it come back by itself after the same delay.
		return errors.Join(fmt.Errorf("queue: requeue %s: %w", l.MessageID, err), l.ReleaseAfter(ctx, d))
	}
	return l.Ack(ctx)
}

func (l *Lease) changeVisibility(ctx context.Context, d time.Duration, retry bool) error {
	// SQS caps the total visibility since receipt at 12 h.
	if left := MaxVisibility - time.Since(l.ReceivedAt); d > left {
		d = left
	}
	if d < 0 {
		d = 0
	}
	if err := l.begin(); err != nil {
		return err
	}
	return l.c.changes.submit(ctx, &settleReq{
		l: l, visibility: int32(d / time.Second), retry: retry, done: make(chan error, 1),
	})
}

// begin moves the lease from active to settling and stops its heartbeat.
func (l *Lease) begin() error {
	c := l.c
	c.mu.Lock()
	defer c.mu.Unlock()
	switch l.state {
	case leaseActive:
	case leaseLost:
		return ErrLeaseLost
	default:
		return ErrSettled
	}
	l.state = leaseSettling
	delete(c.inflight, l)
	return nil
}

// finish records the outcome of a settle call and lets the next lease of
// the group proceed.
func (l *Lease) finish(req *settleReq, err error) {
	c := l.c
	c.mu.Lock()
	switch {
	case err == nil && req.retry:
		l.state = leaseReleased
		c.m.add(mRetried, 1)
	case err == nil && req.ack:
		l.state = leaseAcked
		c.m.add(mAcked, 1)
	case err == nil:
		l.state = leaseReleased
		c.m.add(mReleased, 1)
	case errors.Is(err, ErrLeaseLost):
		l.state = leaseLost
	default:
		l.state = leaseFailed
	}
	c.untailLocked(l)
	c.mu.Unlock()
	if errors.Is(err, ErrLeaseLost) {
		l.markLost()
	}
	l.endTurn()
}

func (l *Lease) markLost() {
	l.lostOnce.Do(func() {
		close(l.lost)
		l.c.m.add(mLeaseLost, 1)
	})
}

func (l *Lease) endTurn() { l.turnOnce.Do(func() { close(l.turn) }) }

// settling says whether a settle call for the lease is queued or in flight.
func (l *Lease) settling() bool {
	l.c.mu.Lock()
	defer l.c.mu.Unlock()
	return l.state == leaseSettling
}

func (l *Lease) acked() bool {
	l.c.mu.Lock()
	defer l.c.mu.Unlock()
	return l.state == leaseAcked
}

func (c *Consumer) untailLocked(l *Lease) {
	if l.GroupID != "" && c.groupTail[l.GroupID] == l {
		delete(c.groupTail, l.GroupID)
	}
}

// Receive long-polls once for up to min(max, 10) messages and returns them
// as leases, possibly none. It is safe to call from several goroutines.
// After consecutive SQS errors it sleeps an increasing backoff (up to 10 s,
// cut short by ctx) before returning the error, so a caller's receive loop
// does not hammer a failing endpoint. After Close it returns ErrClosed.
func (c *Consumer) Receive(ctx context.Context, max int) ([]*Lease, error) {
	if max <= 0 {
		return nil, fmt.Errorf("queue: Receive max must be positive, got %d", max)
	}
	if c.isClosed() {
		return nil, ErrClosed
	}
	start := time.Now()
	out, err := c.api.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{
		QueueUrl:            aws.String(c.opts.QueueURL),
		MaxNumberOfMessages: int32(min(max, maxBatchEntries)),
		WaitTimeSeconds:     int32(c.opts.WaitTime / time.Second),
		VisibilityTimeout:   int32(c.opts.VisibilityTimeout / time.Second),
		MessageSystemAttributeNames: []types.MessageSystemAttributeName{
			types.MessageSystemAttributeNameApproximateReceiveCount,
			types.MessageSystemAttributeNameSentTimestamp,
			types.MessageSystemAttributeNameMessageGroupId,
			types.MessageSystemAttributeNameMessageDeduplicationId,
			types.MessageSystemAttributeNameAWSTraceHeader,
		},
		MessageAttributeNames: []string{"All"},
	})
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		c.m.sqsError("ReceiveMessage")
		n := c.recvErrs.Add(1)
		ceil := backoffCeiling(200*time.Millisecond, 10*time.Second, int(n))
		d := ceil/2 + RetryDelay(ceil/2, ceil/2, 1)
		c.log.Warn().Err(err).Int32("consecutive_errors", n).Dur("backoff", d).Msg("receive failed")
		_ = smithytime.SleepWithContext(ctx, d)
		return nil, fmt.Errorf("queue: receive from %s: %w", queueName(c.opts.QueueURL), err)
	}
	c.recvErrs.Store(0)
	now := time.Now()
	leases := make([]*Lease, 0, len(out.Messages))
	for _, m := range out.Messages {
		l := c.newLease(m, now)
		c.m.receivedAge(l.SentAt, now)
		leases = append(leases, l)
	}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		// The messages would otherwise stay hidden for a whole visibility
		// timeout; hand them straight back.
		c.releaseNow(leases)
		return nil, ErrClosed
	}
	for _, l := range leases {
		// The visibility clock started somewhere during the poll; counting
		// from its start errs on the side of extending early.
		l.nextExtend = start.Add(c.opts.HeartbeatInterval)
		c.inflight[l] = struct{}{}
		if l.GroupID != "" {
			l.prev = c.groupTail[l.GroupID]
			c.groupTail[l.GroupID] = l
		}
	}
	c.mu.Unlock()
	c.m.add(mReceived, len(leases))
	return leases, nil
}

// readReceived reads what a received message carries besides its body: its
// String and Number message attributes, SQS's ApproximateReceiveCount and
// when it was sent (the system attributes ReceiveMessage asks for).
func readReceived(m types.Message) (attrs map[string]string, receiveCount int, sentAt time.Time) {
	attrs = map[string]string{}
	for k, v := range m.MessageAttributes {
		if v.StringValue != nil {
			attrs[k] = *v.StringValue
		}
	}
	receiveCount, _ = strconv.Atoi(m.Attributes[string(types.MessageSystemAttributeNameApproximateReceiveCount)])
	if ms, err := strconv.ParseInt(m.Attributes[string(types.MessageSystemAttributeNameSentTimestamp)], 10, 64); err == nil {
		sentAt = time.UnixMilli(ms)
	}
	return attrs, receiveCount, sentAt
}

func (c *Consumer) newLease(m types.Message, now time.Time) *Lease {
	l := &Lease{
		MessageID:  aws.ToString(m.MessageId),
		Body:       []byte(aws.ToString(m.Body)),
		ReceivedAt: now,
		c:          c,
		handle:     aws.ToString(m.ReceiptHandle),
		msgAttrs:   m.MessageAttributes,
		lost:       make(chan struct{}),
		turn:       make(chan struct{}),
	}
	l.Attributes, l.ReceiveCount, l.SentAt = readReceived(m)
	l.GroupID = m.Attributes[string(types.MessageSystemAttributeNameMessageGroupId)]
	l.DeduplicationID = m.Attributes[string(types.MessageSystemAttributeNameMessageDeduplicationId)]
	l.awsTraceHeader = m.Attributes[string(types.MessageSystemAttributeNameAWSTraceHeader)]
	return l
}

// releaseNow makes leases visible again in one best-effort pass; used when
// they can no longer be handed to a caller.
func (c *Consumer) releaseNow(leases []*Lease) {
	if len(leases) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, chunk := range chunkBySize(make([]int, len(leases)), maxBatchEntries, 1) {
		entries := make([]types.ChangeMessageVisibilityBatchRequestEntry, 0, len(chunk))
		for _, i := range chunk {
			entries = append(entries, types.ChangeMessageVisibilityBatchRequestEntry{
				Id: aws.String(strconv.Itoa(i)), ReceiptHandle: aws.String(leases[i].handle), VisibilityTimeout: 0,
			})
		}
		if _, err := c.api.ChangeMessageVisibilityBatch(ctx, &sqs.ChangeMessageVisibilityBatchInput{
			QueueUrl: aws.String(c.opts.QueueURL), Entries: entries,
		}); err != nil {
			c.m.sqsError("ChangeMessageVisibilityBatch")
			c.log.Warn().Err(err).Int("messages", len(entries)).Msg("could not release messages received during close")
		}
	}
}

func (c *Consumer) isClosed() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closed
}

// Close stops the heartbeat, flushes queued acks and visibility changes,
// and makes Receive return ErrClosed. Leases still unsettled are left to
// their visibility timeout (the caller releases the ones it will not run).
// If ctx ends first, pending SQS calls are abandoned and ctx's error is
// returned. Close is idempotent.
func (c *Consumer) Close(ctx context.Context) error {
	c.closeMu.Lock()
	defer c.closeMu.Unlock()
	c.mu.Lock()
	already := c.closed
	c.closed = true
	c.mu.Unlock()
	if already {
		return nil
	}
	close(c.hbStop)
	<-c.hbDone
	c.deletes.close()
	c.changes.close()
	done := make(chan struct{})
	go func() {
		<-c.deletes.stopped
		<-c.changes.stopped
		close(done)
	}()
	select {
	case <-done:
		c.cancel()
		return nil
	case <-ctx.Done():
		c.cancel()
		<-done
		return fmt.Errorf("queue: close: %w", ctx.Err())
	}
}

// heartbeat extends due leases every half interval until Close.
func (c *Consumer) heartbeat() {
	defer close(c.hbDone)
	tick := max(c.opts.HeartbeatInterval/2, 10*time.Millisecond)
	t := time.NewTicker(tick)
	defer t.Stop()
	for {
		select {
		case <-c.hbStop:
			return
		case <-t.C:
			c.extendDue(time.Now())
		}
	}
}

type extension struct {
	l   *Lease
	vis int32
}

// extendDue extends every active lease whose next extension time has come,
// in ChangeMessageVisibilityBatch calls of up to 10. Failures are retried on
// the next tick, which bounds the retry rate; refused handles mark the lease
// lost.
func (c *Consumer) extendDue(now time.Time) {
	var due []extension
	var capped []*Lease
	c.mu.Lock()
	for l := range c.inflight {
		if l.capped || l.state != leaseActive || now.Before(l.nextExtend) {
			continue
		}
		left := l.ReceivedAt.Add(c.opts.MaxProcessingTime).Sub(now)
		if left <= 0 {
			l.capped = true
			capped = append(capped, l)
			continue
		}
		vis := min(c.opts.VisibilityTimeout, left.Round(time.Second))
		due = append(due, extension{l: l, vis: int32(max(vis, time.Second) / time.Second)})
	}
	c.mu.Unlock()
	for _, l := range capped {
		c.log.Warn().Str("message_id", l.MessageID).Dur("max_processing_time", c.opts.MaxProcessingTime).
			Msg("lease reached max processing time; no longer extended, the message will be redelivered")
		// A successor in the group must not wait for a lease that is
		// about to be redelivered.
		l.endTurn()
	}
	if len(due) == 0 {
		return
	}
	c.hbMu.Lock()
	defer c.hbMu.Unlock()
	for start := 0; start < len(due); start += maxBatchEntries {
		chunk := due[start:min(start+maxBatchEntries, len(due))]
		c.extendChunk(chunk)
	}
}

func (c *Consumer) extendChunk(chunk []extension) {
	idx := make([]int, len(chunk))
	for i := range idx {
		idx[i] = i
	}
	sent := time.Now()
	o, err := changeVisibility(c.ctx, c.api, c.opts.QueueURL, idx, func(i int) (string, int32) { return chunk[i].l.handle, chunk[i].vis })
	if err != nil {
		if c.ctx.Err() == nil {
			c.m.sqsError("ChangeMessageVisibilityBatch")
			c.log.Warn().Err(err).Int("leases", len(chunk)).Msg("heartbeat extension failed; retrying on next tick")
		}
		return
	}
	var lost []*Lease
	c.mu.Lock()
	for i, e := range chunk {
		if e.l.state != leaseActive {
			continue // settled meanwhile; its settle call decides
		}
		if o.ok[i] {
			e.l.nextExtend = sent.Add(c.opts.HeartbeatInterval)
			c.m.add(mExtended, 1)
			continue
		}
		f, failed := o.failed[i]
		if !failed {
			continue
		}
		c.m.sqsError("ChangeMessageVisibilityBatch")
		if be := batchEntryError("ChangeMessageVisibilityBatch", f); errors.Is(be, ErrLeaseLost) {
			e.l.state = leaseLost
			delete(c.inflight, e.l)
			c.untailLocked(e.l)
			lost = append(lost, e.l)
		}
	}
	c.mu.Unlock()
	for _, l := range lost {
		c.log.Warn().Str("message_id", l.MessageID).Msg("lease lost: SQS refused to extend it")
		l.markLost()
		l.endTurn()
	}
}

// flushDeletes sends one batch of acks.
func (c *Consumer) flushDeletes(ctx context.Context, reqs []*settleReq) {
	const op = "DeleteMessageBatch"
	errs := runBatch(ctx, op, len(reqs), c.m, func(ctx context.Context, idx []int) (batchOutcome, error) {
		entries := make([]types.DeleteMessageBatchRequestEntry, len(idx))
		for j, i := range idx {
			entries[j] = types.DeleteMessageBatchRequestEntry{Id: aws.String(strconv.Itoa(i)), ReceiptHandle: aws.String(reqs[i].l.handle)}
		}
		out, err := c.api.DeleteMessageBatch(ctx, &sqs.DeleteMessageBatchInput{QueueUrl: aws.String(c.opts.QueueURL), Entries: entries})
		if err != nil {
			return batchOutcome{}, err
		}
		ids := successIDs(out.Successful, func(e types.DeleteMessageBatchResultEntry) *string { return e.Id })
		return outcomeOf(ids, out.Failed), nil
	})
	c.settle(reqs, errs, "ack")
}

// flushChanges sends one batch of settling visibility changes.
func (c *Consumer) flushChanges(ctx context.Context, reqs []*settleReq) {
	const op = "ChangeMessageVisibilityBatch"
	c.hbMu.Lock()
	defer c.hbMu.Unlock()
	errs := runBatch(ctx, op, len(reqs), c.m, func(ctx context.Context, idx []int) (batchOutcome, error) {
		return changeVisibility(ctx, c.api, c.opts.QueueURL, idx, func(i int) (string, int32) { return reqs[i].l.handle, reqs[i].visibility })
	})
	c.settle(reqs, errs, "release")
}

func (c *Consumer) settle(reqs []*settleReq, errs []error, what string) {
	for i, r := range reqs {
		err := errs[i]
		if err != nil {
			if errors.Is(err, ErrLeaseLost) {
				err = fmt.Errorf("%s message %s: %w: %w", what, r.l.MessageID, ErrLeaseLost, err)
			} else {
				err = fmt.Errorf("%s message %s: %w", what, r.l.MessageID, err)
			}
			c.log.Warn().Err(err).Str("message_id", r.l.MessageID).Msg("settling lease failed")
		}
		r.l.finish(r, err)
		r.done <- err
	}
}

// queueName is the last path element of a queue URL, for logs and errors.
func queueName(url string) string {
	for i := len(url) - 1; i >= 0; i-- {
		if url[i] == '/' {
			return url[i+1:]
		}
	}
	return url
}

// settleReq is one queued ack or visibility change.
type settleReq struct {
	l          *Lease
	ack        bool  // a delete; otherwise a visibility change
	visibility int32 // seconds
	retry      bool  // the change is a RetryLater (for metrics)
	done       chan error
}

// batcher collects settle requests for up to window (or until 10 are
// queued) and flushes them with at most 4 batch calls in flight.
type batcher struct {
	in      chan *settleReq
	window  time.Duration
	flush   func(context.Context, []*settleReq)
	stop    chan struct{}
	stopped chan struct{}
	once    sync.Once
	// queued counts requests taken in, so tests can tell a request is
	// waiting in a batch.
	queued atomic.Int64
}

func newBatcher(window time.Duration, flush func(context.Context, []*settleReq)) *batcher {
	return &batcher{
		in: make(chan *settleReq), window: window, flush: flush,
		stop: make(chan struct{}), stopped: make(chan struct{}),
	}
}

func (b *batcher) close() { b.once.Do(func() { close(b.stop) }) }

// submit queues r and waits for its batch to be answered. If ctx ends
// after r was queued, the call still happens; only the wait is abandoned.
func (b *batcher) submit(ctx context.Context, r *settleReq) error {
	if err := b.enqueue(ctx, r); err != nil {
		return err
	}
	select {
	case err := <-r.done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// enqueue hands r to the batcher; the answer arrives on r.done. An error
// means r was not queued (and its lease is finished with that error).
func (b *batcher) enqueue(ctx context.Context, r *settleReq) error {
	select {
	case b.in <- r:
		return nil
	case <-b.stopped:
		r.l.finish(r, ErrClosed)
		return ErrClosed
	case <-ctx.Done():
		r.l.finish(r, ctx.Err())
		return ctx.Err()
	}
}

// run sends batches. With no window it commits as a group: a request is
// sent at once when no batch call is in flight, and requests arriving while
// calls are in flight are sent together when one returns, so batches grow
// with load while a lone ack costs one round trip. With a window, a request
// lingers up to the window for companions. Up to maxInflightBatches calls
// run at once; a full batch of maxBatchEntries is sent at once either way.
func (b *batcher) run(ctx context.Context) {
	done := make(chan struct{}, maxInflightBatches)
	inflight := 0
	var pending []*settleReq
	var timer *time.Timer
	var timerC <-chan time.Time
	send := func() {
		if timer != nil {
			timer.Stop()
			timer, timerC = nil, nil
		}
		for len(pending) > 0 && inflight < maxInflightBatches {
			n := min(len(pending), maxBatchEntries)
			batch := pending[:n:n]
			pending = pending[n:]
			inflight++
			go func() {
				defer func() { done <- struct{}{} }()
				b.flush(ctx, batch)
			}()
		}
		if len(pending) == 0 {
			pending = nil
		}
	}
	for {
		select {
		case r := <-b.in:
			b.queued.Add(1)
			pending = append(pending, r)
			switch {
			case len(pending) >= maxBatchEntries:
				send()
			case b.window > 0:
				if timer == nil {
					timer = time.NewTimer(b.window)
					timerC = timer.C
				}
			case inflight == 0:
				send()
			}
		case <-done:
			inflight--
			if b.window == 0 || len(pending) >= maxBatchEntries {
				send()
			}
		case <-timerC:
			timer, timerC = nil, nil
			send()
		case <-b.stop:
			for {
				select {
				case r := <-b.in:
					pending = append(pending, r)
					continue
				default:
				}
				break
			}
			for len(pending) > 0 || inflight > 0 {
				send()
				<-done
				inflight--
			}
			close(b.stopped)
			return
		}
	}
}
