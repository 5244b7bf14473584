package task

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// Version is the only task schema version this package understands;
// a message with any other version is rejected as unknown_version.
const Version = 1

// Defaults for Limits; the body limit is SQS's classic maximum message size.
const (
	DefaultMaxAttachments = 100
	DefaultMaxBodyBytes   = 256 * 1024
	maxIDLen              = 128
)

// Reasons an InvalidError carries. They are short, stable machine codes:
// they end up in DLQ message attributes and task.failed events, so changing
// one breaks whoever filters on it.
const (
	ReasonTooLarge            = "too_large"
	ReasonNotJSON             = "not_json"
	ReasonInvalidField        = "invalid_field"
	ReasonUnknownVersion      = "unknown_version"
	ReasonMissingTaskID       = "missing_task_id"
	ReasonInvalidTaskID       = "invalid_task_id"
	ReasonMissingCustomerID   = "missing_customer_id"
	ReasonInvalidCustomerID   = "invalid_customer_id"
	ReasonInvalidSubmissionID = "invalid_submission_id"
	ReasonNoAttachments       = "no_attachments"
	ReasonTooManyAttachments  = "too_many_attachments"
	ReasonEmptyURI            = "empty_uri"
)

// Limits bounds what a task may contain. The zero value means the defaults
// (100 attachments, 256 KiB body).
type Limits struct {
	// MaxAttachments is the most attachments one task may name; more is
	// rejected as too_many_attachments. 0 means DefaultMaxAttachments.
	MaxAttachments int
	// MaxBodyBytes is the largest encoded task accepted; larger is rejected
	// as too_large. 0 means DefaultMaxBodyBytes.
	MaxBodyBytes int
}

func (l Limits) withDefaults() Limits {
	if l.MaxAttachments <= 0 {
		l.MaxAttachments = DefaultMaxAttachments
	}
	if l.MaxBodyBytes <= 0 {
		l.MaxBodyBytes = DefaultMaxBodyBytes
	}
	return l
}

// Task is one task submission, the body of a message on the tasks queue.
type Task struct {
	Version      int          `json:"version"`
	TaskID       string       `json:"task_id"`
	CustomerID   string       `json:"customer_id"`
	SubmissionID string       `json:"submission_id,omitempty"`
	Attachments  []Attachment `json:"attachments"`
}

// Attachment names one object to copy: an s3:// URI, an S3 https URL or a
// plain https URL, with an optional file name for the stored copy.
type Attachment struct {
	URI  string `json:"uri"`
	Name string `json:"name,omitempty"`
}

// InvalidError says why a message is not a valid task. Such a message is
// never retried: the worker sends it to the DLQ with Reason as an attribute
// and, when TaskID is set, publishes task.failed with reason invalid_message.
type InvalidError struct {
	// Reason is a short machine code, one of the Reason* constants.
	Reason string
	// Detail is a human-readable explanation; it never contains the body.
	Detail string
	// TaskID is the task id when one could be read, even if it is the
	// task id itself that is invalid; empty otherwise.
	TaskID string
}

// Error describes the rejection with its reason code and detail.
func (e *InvalidError) Error() string {
	if e.TaskID != "" {
		return fmt.Sprintf("invalid task %q: %s: %s", e.TaskID, e.Reason, e.Detail)
	}
	return fmt.Sprintf("invalid task: %s: %s", e.Reason, e.Detail)
}

// ErrInvalid matches every *InvalidError with errors.Is.
var ErrInvalid = errors.New("invalid task")

// Is makes errors.Is(err, ErrInvalid) true for any InvalidError.
func (e *InvalidError) Is(target error) bool { return target == ErrInvalid }

// Decode parses and validates a message body. Any problem is returned as
// an *InvalidError whose TaskID is filled in whenever the body carried a
// readable task_id string, so the caller can still announce the failure.
func Decode(body []byte, limits Limits) (Task, error) {
	limits = limits.withDefaults()
	if len(body) > limits.MaxBodyBytes {
		return Task{}, &InvalidError{
			Reason: ReasonTooLarge,
			Detail: fmt.Sprintf("body is %d bytes, limit %d", len(body), limits.MaxBodyBytes),
			TaskID: peekTaskID(body),
		}
	}
	if !json.Valid(body) {
		return Task{}, &InvalidError{Reason: ReasonNotJSON, Detail: "body is not valid JSON"}
	}
	if ke := checkKeys(body); ke != nil {
		return Task{}, &InvalidError{Reason: ReasonInvalidField, Detail: ke.detail, TaskID: ke.taskID}
	}
	var t Task
	if err := json.Unmarshal(body, &t); err != nil {
		detail := "body is not a JSON object"
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) && te.Field != "" {
			return Task{}, &InvalidError{
				Reason: ReasonInvalidField,
				Detail: fmt.Sprintf("field %s: expected %s, got %s", te.Field, te.Type, te.Value),
				TaskID: peekTaskID(body),
			}
		}
		return Task{}, &InvalidError{Reason: ReasonNotJSON, Detail: detail}
	}
	if err := t.Validate(limits); err != nil {
		return Task{}, err
	}
	return t, nil
}

// peekTaskID reads task_id from a body that failed full decoding, so the
// failure can still be reported against the task.
func peekTaskID(body []byte) string {
	id, _, _ := BodyIDs(body)
	return id
}

// BodyIDs reads the ids a message body carries even when it is not a valid
// task (too large, a field of the wrong type, a dead letter), so the message
// can still be reported against its task and customer. Each is "" when the
// body is not a JSON object or the field is absent or not a string. None is
// checked: use ValidID before putting one in a key or an event.
func BodyIDs(body []byte) (taskID, customerID, submissionID string) {
	var p struct {
		TaskID       any `json:"task_id"`
		CustomerID   any `json:"customer_id"`
		SubmissionID any `json:"submission_id"`
	}
	if json.Unmarshal(body, &p) != nil {
		return "", "", ""
	}
	str := func(v any) string { s, _ := v.(string); return s }
	return str(p.TaskID), str(p.CustomerID), str(p.SubmissionID)
}

// Validate checks a task against the schema and limits; the error is an
// *InvalidError. The body-size limit is checked by Decode and
// Encode, which see the encoded form.
func (t Task) Validate(limits Limits) error {
	limits = limits.withDefaults()
	bad := func(reason, format string, args ...any) error {
		return &InvalidError{Reason: reason, Detail: fmt.Sprintf(format, args...), TaskID: t.TaskID}
	}
	if t.Version != Version {
		return bad(ReasonUnknownVersion, "version %d is not supported (want %d)", t.Version, Version)
	}
	if t.TaskID == "" {
		return bad(ReasonMissingTaskID, "task_id is required")
	}
	if err := checkID(t.TaskID); err != "" {
		return bad(ReasonInvalidTaskID, "task_id %s", err)
	}
	if t.CustomerID == "" {
		return bad(ReasonMissingCustomerID, "customer_id is required")
	}
	if err := checkID(t.CustomerID); err != "" {
		return bad(ReasonInvalidCustomerID, "customer_id %s", err)
	}
	if t.SubmissionID != "" {
		if err := checkID(t.SubmissionID); err != "" {
			return bad(ReasonInvalidSubmissionID, "submission_id %s", err)
		}
	}
	if len(t.Attachments) == 0 {
		return bad(ReasonNoAttachments, "attachments must name at least one object")
	}
	if len(t.Attachments) > limits.MaxAttachments {
		return bad(ReasonTooManyAttachments, "%d attachments, limit %d", len(t.Attachments), limits.MaxAttachments)
	}
	for i, a := range t.Attachments {
		if a.URI == "" {
			return bad(ReasonEmptyURI, "attachments[%d].uri is empty", i)
		}
	}
	return nil
}

// ValidID reports whether s is acceptable as a task, customer or submission
// id: 1–128 characters of [A-Za-z0-9._:-], and neither "." nor "..". Ids
// become parts of S3 keys and Redis keys, which is why slashes, braces and
// whitespace are refused.
func ValidID(s string) bool { return checkID(s) == "" }

func checkID(s string) string {
	if len(s) == 0 || len(s) > maxIDLen {
		return fmt.Sprintf("must be 1-%d characters, got %d", maxIDLen, len(s))
	}
	if s == "." || s == ".." {
		return "must not be . or .."
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9',
			c == '.', c == '_', c == ':', c == '-':
		default:
			return fmt.Sprintf("contains %q at %d; allowed are A-Z a-z 0-9 . _ : -", c, i)
		}
	}
	return ""
}

// DedupeKey is the task's idempotency key: the task id, plus "/" and the
// submission id when one is set. A task whose terminal event was published
// under this key is not processed again; a new submission id reprocesses it.
func (t Task) DedupeKey() string {
	if t.SubmissionID == "" {
		return t.TaskID
	}
	return t.TaskID + "/" + t.SubmissionID
}

// Encode validates the task and returns its JSON body; a task that would
// be rejected by Decode is refused here with the same *InvalidError,
// so producers cannot put an undecodable message on the queue.
func Encode(t Task, limits Limits) ([]byte, error) {
	limits = limits.withDefaults()
	if err := t.Validate(limits); err != nil {
		return nil, err
	}
	b, err := json.Marshal(t)
	if err != nil {
		return nil, fmt.Errorf("encode task %s: %w", t.TaskID, err)
	}
	if len(b) > limits.MaxBodyBytes {
		return nil, &InvalidError{
			Reason: ReasonTooLarge,
			Detail: fmt.Sprintf("encoded task is %d bytes, limit %d", len(b), limits.MaxBodyBytes),
			TaskID: t.TaskID,
		}
	}
	return b, nil
}

// ReadAll reads tasks as producers write them: one JSON task object, a
// JSON array of them, or JSON lines (one object per line). A task without a
// version gets Version. The tasks are not validated (Encode does
// that, one by one); a malformed input is an error naming the line.
func ReadAll(r io.Reader) ([]Task, error) {
	raw, err := io.ReadAll(r)
	if err != nil {
		return nil, err
	}
	trimmed := bytes.TrimSpace(raw)
	var ts []Task
	if len(trimmed) > 0 && trimmed[0] == '[' {
		if err := json.Unmarshal(trimmed, &ts); err != nil {
			return nil, fmt.Errorf("not a JSON array of tasks: %v", err)
		}
	} else {
		dec := json.NewDecoder(bytes.NewReader(raw))
		for {
			var t Task
			start := dec.InputOffset()
			if err := dec.Decode(&t); err == io.EOF {
				break
			} else if err != nil {
				// The task that failed starts after the blank space that
				// follows the previous one.
				rest := raw[start:]
				at := start + int64(len(rest)-len(bytes.TrimLeft(rest, " \t\r\n")))
				line := 1 + bytes.Count(raw[:at], []byte("\n"))
				return nil, fmt.Errorf("line %d: not a JSON task: %v", line, err)
			}
			ts = append(ts, t)
		}
	}
	for i := range ts {
		if ts[i].Version == 0 {
			ts[i].Version = Version
		}
	}
	return ts, nil
}
