package queue

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
)

// Message attributes ferry adds to dead-lettered and replayed messages.
const (
	AttrRejectReason      = "ferry-reject-reason"
	AttrRejectDetail      = "ferry-reject-detail"
	AttrOriginalMessageID = "ferry-original-message-id"
	AttrReplayed          = "ferry-replayed"
	// AttrDeferred counts how often Lease.Requeue put the message off.
	AttrDeferred = "ferry-deferred"
)

// SQS allows 10 message attributes per message; the original attributes
// plus ferry's own must fit.
const maxMessageAttributes = 10

// maxDetailLen keeps the reject detail attribute readable and well under
// the message size limit.
const maxDetailLen = 1024

// DeadLetter sends messages to dead-letter queues and reads and replays
// them without consuming them (`ferry dlq`).
type DeadLetter struct {
	api SQSAPI
	// Metrics is optional.
	Metrics *Metrics
	// PeekVisibility is how long Peek hides the messages it reads before
	// making them visible again (default 30 s); if that release fails they
	// come back by themselves after this long.
	PeekVisibility time.Duration
}

// NewDeadLetter returns a DeadLetter using api.
func NewDeadLetter(api SQSAPI) *DeadLetter { return &DeadLetter{api: api} }

// SendToDLQ copies a leased message to dlqURL: the raw body and the
// original message attributes, plus ferry-reject-reason, ferry-reject-detail
// and ferry-original-message-id. On a FIFO DLQ it keeps the group id and
// derives the deduplication id from the original message id. It does not
// touch the lease: the caller acks it after SendToDLQ succeeded, so a
// failure in between duplicates the dead letter rather than losing it.
func (d *DeadLetter) SendToDLQ(ctx context.Context, dlqURL string, l *Lease, reason, detail string) error {
	if len(detail) > maxDetailLen {
		detail = detail[:maxDetailLen]
	}
	attrs := copyAttrs(l.msgAttrs, AttrRejectReason, AttrRejectDetail, AttrOriginalMessageID)
	attrs[AttrRejectReason] = stringAttr(reason)
	if detail != "" {
		attrs[AttrRejectDetail] = stringAttr(detail)
	}
	attrs[AttrOriginalMessageID] = stringAttr(l.MessageID)
	in := &sqs.SendMessageInput{
		QueueUrl:          aws.String(dlqURL),
		MessageBody:       aws.String(string(l.Body)),
		MessageAttributes: attrs,
	}
	if isFIFO(dlqURL) {
		in.MessageGroupId = aws.String(fifoGroup(l.GroupID, l.Attributes))
		in.MessageDeduplicationId = aws.String(DeduplicationID("dlq-" + l.MessageID))
	}
	if _, err := d.api.SendMessage(ctx, in); err != nil {
		d.Metrics.sqsError("SendMessage")
		return fmt.Errorf("dead-letter message %s to %s: %w", l.MessageID, queueName(dlqURL), err)
	}
	d.Metrics.deadLettered(reason)
	return nil
}

// ErrNotDeleted marks a Move whose copy was sent but whose original could
// not be deleted: the message is now in both queues (a duplicate the fleet's
// idempotency absorbs), not lost and not unmoved.
var ErrNotDeleted = errors.New("sent, but the original was not deleted")

// DLQMessage is a message read from a dead-letter queue.
type DLQMessage struct {
	MessageID string
	Body      string
	// Attributes are the String and Number message attributes, including
	// ferry's reject and replay attributes.
	Attributes map[string]string
	// ReceiveCount is the DLQ's own receive count (reading counts too).
	ReceiveCount int
	GroupID      string
	SentAt       time.Time
	// OriginalMessageID is ferry-original-message-id when set, else
	// MessageID (SQS redrive keeps the message id).
	OriginalMessageID string
	// ReplayCount is ferry-replayed: how often it was replayed before.
	ReplayCount int

	handle   string
	msgAttrs map[string]types.MessageAttributeValue
}

// Peek reads up to n messages from dlqURL and makes them visible again
// at once, so reading does not consume them. Reading counts as a receive
// on the DLQ (DLQs normally have no redrive of their own, so it is
// harmless).
func (d *DeadLetter) Peek(ctx context.Context, dlqURL string, n int) ([]DLQMessage, error) {
	msgs, err := d.Hold(ctx, dlqURL, n, d.peekVisibility())
	if rerr := d.Return(ctx, dlqURL, msgs); rerr != nil && err == nil {
		err = rerr
	}
	for i := range msgs {
		msgs[i].handle = "" // returned; the handle must not be used to delete
	}
	return msgs, err
}

func (d *DeadLetter) peekVisibility() time.Duration {
	if d.PeekVisibility > 0 {
		return d.PeekVisibility
	}
	return 30 * time.Second
}

// Hold receives up to n messages from dlqURL and keeps them invisible
// for hold (whole seconds, at least 1 s), so they can be moved with Move.
// Messages not moved must be handed back with Return, or they reappear
// after hold by themselves.
func (d *DeadLetter) Hold(ctx context.Context, dlqURL string, n int, hold time.Duration) ([]DLQMessage, error) {
	vis := int32(max(hold, time.Second) / time.Second)
	var out []DLQMessage
	for len(out) < n {
		r, err := d.api.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{
			QueueUrl:            aws.String(dlqURL),
			MaxNumberOfMessages: int32(min(n-len(out), maxBatchEntries)),
			VisibilityTimeout:   vis,
			// A short poll asks a sample of SQS's servers and may come back
			// empty while messages exist; a long poll asks them all, returns
			// at once while there are messages, and costs a second at the end.
			WaitTimeSeconds: 1,
			MessageSystemAttributeNames: []types.MessageSystemAttributeName{
				types.MessageSystemAttributeNameApproximateReceiveCount,
				types.MessageSystemAttributeNameSentTimestamp,
				types.MessageSystemAttributeNameMessageGroupId,
			},
			MessageAttributeNames: []string{"All"},
		})
		if err != nil {
			d.Metrics.sqsError("ReceiveMessage")
			return out, fmt.Errorf("read dead letters from %s: %w", queueName(dlqURL), err)
		}
		if len(r.Messages) == 0 {
			break
		}
		for _, m := range r.Messages {
			out = append(out, dlqMessage(m))
		}
	}
	return out, nil
}

func dlqMessage(m types.Message) DLQMessage {
	dm := DLQMessage{
		MessageID: aws.ToString(m.MessageId),
		Body:      aws.ToString(m.Body),
		GroupID:   m.Attributes[string(types.MessageSystemAttributeNameMessageGroupId)],
		handle:    aws.ToString(m.ReceiptHandle),
		msgAttrs:  m.MessageAttributes,
	}
	dm.Attributes, dm.ReceiveCount, dm.SentAt = readReceived(m)
	dm.OriginalMessageID = dm.Attributes[AttrOriginalMessageID]
	if dm.OriginalMessageID == "" {
		dm.OriginalMessageID = dm.MessageID
	}
	dm.ReplayCount, _ = strconv.Atoi(dm.Attributes[AttrReplayed])
	return dm
}

// Return makes held messages visible again at once.
func (d *DeadLetter) Return(ctx context.Context, dlqURL string, msgs []DLQMessage) error {
	var errs []error
	for start := 0; start < len(msgs); start += maxBatchEntries {
		chunk := msgs[start:min(start+maxBatchEntries, len(msgs))]
		res := runBatch(ctx, "ChangeMessageVisibilityBatch", len(chunk), d.Metrics, func(ctx context.Context, idx []int) (batchOutcome, error) {
			return changeVisibility(ctx, d.api, dlqURL, idx, func(i int) (string, int32) { return chunk[i].handle, 0 })
		})
		for i, err := range res {
			if err != nil {
				errs = append(errs, fmt.Errorf("return dead letter %s: %w", chunk[i].MessageID, err))
			}
		}
	}
	return errors.Join(errs...)
}

// Move replays a held message from the queue from to the queue to: it sends
// a copy (body and attributes, ferry-replayed set to msg.ReplayCount+1; on
// FIFO keeping the group id, deduplicated by original message id and replay
// count) and deletes the original only after the send succeeded. A failed
// delete leaves the original in from and the copy in to; the copy's
// deterministic deduplication id and the task's idempotency key keep a
// second replay harmless. msg must come from Hold, not Peek.
func (d *DeadLetter) Move(ctx context.Context, from, to string, msg DLQMessage) error {
	if msg.handle == "" {
		return fmt.Errorf("move dead letter %s: not held (use Hold, not Peek)", msg.MessageID)
	}
	replay := msg.ReplayCount + 1
	attrs := copyAttrs(msg.msgAttrs, AttrReplayed, AttrOriginalMessageID)
	attrs[AttrReplayed] = types.MessageAttributeValue{DataType: aws.String("Number"), StringValue: aws.String(strconv.Itoa(replay))}
	attrs[AttrOriginalMessageID] = stringAttr(msg.OriginalMessageID)
	in := &sqs.SendMessageInput{QueueUrl: aws.String(to), MessageBody: aws.String(msg.Body), MessageAttributes: attrs}
	if isFIFO(to) {
		in.MessageGroupId = aws.String(fifoGroup(msg.GroupID, msg.Attributes))
		in.MessageDeduplicationId = aws.String(DeduplicationID(msg.OriginalMessageID + "-replay-" + strconv.Itoa(replay)))
	}
	if _, err := d.api.SendMessage(ctx, in); err != nil {
		d.Metrics.sqsError("SendMessage")
		return fmt.Errorf("move dead letter %s: send to %s: %w", msg.MessageID, queueName(to), err)
	}
	if _, err := d.api.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: aws.String(from), ReceiptHandle: aws.String(msg.handle)}); err != nil {
		d.Metrics.sqsError("DeleteMessage")
		if leaseLostErr(err) {
			err = fmt.Errorf("%w: %w", ErrLeaseLost, err)
		}
		return fmt.Errorf("move dead letter %s: %w: delete from %s: %w", msg.MessageID, ErrNotDeleted, queueName(from), err)
	}
	return nil
}

// copyAttrs clones message attributes, dropping the names ferry is about to
// set, and drops foreign attributes if SQS's limit of 10 would be exceeded
// (ferry's own attributes matter more to whoever reads the dead letter).
func copyAttrs(src map[string]types.MessageAttributeValue, reserve ...string) map[string]types.MessageAttributeValue {
	out := maps.Clone(src)
	if out == nil {
		out = map[string]types.MessageAttributeValue{}
	}
	for _, k := range reserve {
		delete(out, k)
	}
	for k := range out {
		if len(out)+len(reserve) <= maxMessageAttributes {
			break
		}
		if k != AttrCustomerID && k != AttrTaskID && k != AttrRejectReason && k != AttrRejectDetail {
			delete(out, k)
		}
	}
	return out
}

// fifoGroup is the group to keep on a FIFO copy: the original group, else
// the customer, else a fixed group (a FIFO send needs one).
func fifoGroup(group string, attrs map[string]string) string {
	if group != "" {
		return group
	}
	if c := attrs[AttrCustomerID]; c != "" {
		return c
	}
	return "ferry-dead-letters"
}
