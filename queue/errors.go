package queue

import (
	"errors"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/aws/smithy-go"
)

var (
	// ErrSettled is returned when a lease is acked, retried or released a
	// second time; the second call does not reach SQS.
	ErrSettled = errors.New("queue: lease already settled")
	// ErrLeaseLost means SQS no longer recognises the lease: the receipt
	// handle expired or the message was deleted or redelivered elsewhere.
	// The work may be done twice; the message is not ours to settle.
	ErrLeaseLost = errors.New("queue: lease lost")
	// ErrClosed is returned by a Consumer after Close.
	ErrClosed = errors.New("queue: consumer closed")
	// ErrGroupHalted is returned by Sequencer.Run when an earlier message of
	// the same FIFO group was not acknowledged: the lease is released
	// instead of run, so the group is never processed out of order.
	ErrGroupHalted = errors.New("queue: earlier message of the group was not acknowledged")
)

// BatchEntryError is one failed entry of an SQS batch call (the Failed list
// of SendMessageBatch, DeleteMessageBatch or ChangeMessageVisibilityBatch).
// Entries with SenderFault false are retried a few times before surfacing.
type BatchEntryError struct {
	Operation   string
	Code        string
	Message     string
	SenderFault bool
}

// Error names the batch operation, SQS's error code and its message.
func (e *BatchEntryError) Error() string {
	return fmt.Sprintf("%s entry failed: %s: %s", e.Operation, e.Code, e.Message)
}

// Is makes errors.Is(err, ErrLeaseLost) true when the entry failed because
// the receipt handle is no longer valid.
func (e *BatchEntryError) Is(target error) bool {
	return target == ErrLeaseLost && leaseLostCode(e.Code, e.Message)
}

func batchEntryError(op string, f types.BatchResultErrorEntry) *BatchEntryError {
	return &BatchEntryError{Operation: op, Code: aws.ToString(f.Code), Message: aws.ToString(f.Message), SenderFault: f.SenderFault}
}

// leaseLostCode recognises every way SQS says a receipt handle is no longer
// good: expired or malformed handles, deleted messages, and messages whose
// visibility can no longer be changed because they are not in flight.
func leaseLostCode(code, msg string) bool {
	switch code {
	case "ReceiptHandleIsInvalid", "AWS.SimpleQueueService.ReceiptHandleIsInvalid",
		"MessageNotInflight", "AWS.SimpleQueueService.MessageNotInflight":
		return true
	case "InvalidParameterValue":
		m := strings.ToLower(msg)
		return strings.Contains(m, "receipt handle") || strings.Contains(m, "does not exist") ||
			strings.Contains(m, "not available for visibility")
	}
	return false
}

// leaseLostErr classifies an API error from a single-handle call.
func leaseLostErr(err error) bool {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return leaseLostCode(ae.ErrorCode(), ae.ErrorMessage())
	}
	return false
}
