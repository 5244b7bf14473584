package queue

import (
	"encoding/json"
	"testing"
	"time"
)

func TestEventID(t *testing.T) {
	t.Parallel()
	cases := []struct {
		task, sub, typ, want string
	}{
		{"t-123", "", EventCompleted, "t-123/completed"},
		{"t-123", "s-2", EventCompleted, "t-123/s-2/completed"},
		{"t-123", "", EventAccessDenied, "t-123/access_denied"},
		{"t-123", "s-2", EventFailed, "t-123/s-2/failed"},
	}
	for _, tc := range cases {
		if got := EventID(tc.task, tc.sub, tc.typ); got != tc.want {
			t.Errorf("EventID(%q, %q, %q) = %q, want %q", tc.task, tc.sub, tc.typ, got, tc.want)
		}
	}
}

// TestEventJSON pins the field names to the example event in
// docs/architecture.md (Wire contracts), which event consumers rely on.
func TestEventJSON(t *testing.T) {
	t.Parallel()
	e := Event{
		Version: 1, EventID: "t-123/completed", Type: EventCompleted, TaskID: "t-123", CustomerID: "acme",
		OccurredAt: time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC),
		Attachments: []AttachmentResult{
			{Source: "s3://acme-data/img/1.jpg", Status: "copied", Stored: "s3://ferry-internal/acme/t-123/0-1.jpg",
				Size: 5120, SHA256: "ab", ContentType: "image/jpeg", Mode: "delegated"},
			{Source: "s3://acme-data/x", Status: "access_denied", Mode: "delegated",
				Error: &AttachmentError{Stage: "assume_role", Code: "AccessDenied", Message: "m", Hint: "h"}},
		},
	}
	b, err := json.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"version":1,"event_id":"t-123/completed","type":"task.completed","task_id":"t-123","customer_id":"acme",` +
		`"occurred_at":"2026-11-27T10:00:00Z","attachments":[` +
		`{"source":"s3://acme-data/img/1.jpg","status":"copied","stored":"s3://ferry-internal/acme/t-123/0-1.jpg","size":5120,"sha256":"ab","content_type":"image/jpeg","mode":"delegated"},` +
		`{"source":"s3://acme-data/x","status":"access_denied","mode":"delegated","error":{"stage":"assume_role","code":"AccessDenied","message":"m","hint":"h"}}]}`
	if string(b) != want {
		t.Errorf("event JSON\n got %s\nwant %s", b, want)
	}
	failed := Event{Version: 1, EventID: "t-1/s-1/failed", Type: EventFailed, TaskID: "t-1", CustomerID: "c",
		SubmissionID: "s-1", Reason: FailedReasonInvalidMessage, OccurredAt: e.OccurredAt}
	b, _ = json.Marshal(failed)
	want = `{"version":1,"event_id":"t-1/s-1/failed","type":"task.failed","task_id":"t-1","customer_id":"c","submission_id":"s-1","occurred_at":"2026-11-27T10:00:00Z","reason":"invalid_message"}`
	if string(b) != want {
		t.Errorf("failed event JSON\n got %s\nwant %s", b, want)
	}
}
