package queue

import (
	"strings"
	"time"
)

// EventVersion is the schema version written into every Event.
const EventVersion = 1

// Terminal event types. Exactly one is published per task (per submission).
const (
	EventCompleted    = "task.completed"
	EventAccessDenied = "task.access_denied"
	EventFailed       = "task.failed"
)

// FailedReasonInvalidMessage is the Event.Reason of a task.failed event for a
// message that could not be decoded as a task.
const FailedReasonInvalidMessage = "invalid_message"

// Event is a terminal task event, the body of a message on the events queue.
type Event struct {
	Version      int                `json:"version"`
	EventID      string             `json:"event_id"`
	Type         string             `json:"type"`
	TaskID       string             `json:"task_id"`
	CustomerID   string             `json:"customer_id"`
	SubmissionID string             `json:"submission_id,omitempty"`
	OccurredAt   time.Time          `json:"occurred_at"`
	Reason       string             `json:"reason,omitempty"`
	Attachments  []AttachmentResult `json:"attachments,omitempty"`
}

// AttachmentResult is the outcome for one attachment of a task.
type AttachmentResult struct {
	Source      string           `json:"source"`
	Status      string           `json:"status"`
	Stored      string           `json:"stored,omitempty"`
	Size        int64            `json:"size,omitempty"`
	SHA256      string           `json:"sha256,omitempty"`
	ContentType string           `json:"content_type,omitempty"`
	Mode        string           `json:"mode,omitempty"`
	Error       *AttachmentError `json:"error,omitempty"`
}

// AttachmentError says where and why an attachment could not be copied, with
// a hint the customer can act on.
type AttachmentError struct {
	Stage   string `json:"stage"`
	Code    string `json:"code"`
	Message string `json:"message"`
	Hint    string `json:"hint,omitempty"`
}

// EventID returns the deterministic id of a task's terminal event:
// "t-123/completed", or "t-123/s-2/completed" with a submission id. A
// redelivered message therefore republishes the same id, which lets event
// consumers deduplicate.
func EventID(taskID, submissionID, eventType string) string {
	suffix := strings.TrimPrefix(eventType, "task.")
	if submissionID == "" {
		return taskID + "/" + suffix
	}
	return taskID + "/" + submissionID + "/" + suffix
}

// Described is a code of the event contract with what it means, for the
// error catalogue (docs/errors.md).
type Described struct {
	Code    string
	Meaning string
}

// EventTypes lists the terminal event types and when each is published.
func EventTypes() []Described {
	return []Described{
		{EventCompleted, "every attachment was copied"},
		{EventAccessDenied, "some attachment was refused for the customer's grants (status access_denied), and none failed transiently: the hint says what the customer must change"},
		{EventFailed, "some attachment does not exist, is invalid or too large (and none was refused), or the message was not a valid task (reason invalid_message, no attachments)"},
	}
}

// FailedReasons lists the values of Event.Reason on task.failed.
func FailedReasons() []Described {
	return []Described{
		{FailedReasonInvalidMessage, "the message could not be read as a task (not JSON, a missing or invalid field, an attachment URI no worker can fetch): it was moved to the DLQ with the reason as an attribute; fix the producer and send a corrected task"},
	}
}
