package queue_test

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/ferryworks/ferry/queue"
)

// knownReasons are the machine codes a rejection may carry; anything else
// would break DLQ filters and the task.failed contract.
var knownReasons = map[string]bool{
	queue.ReasonTooLarge: true, queue.ReasonNotJSON: true, queue.ReasonInvalidField: true,
	queue.ReasonUnknownVersion: true, queue.ReasonMissingTaskID: true, queue.ReasonInvalidTaskID: true,
	queue.ReasonMissingCustomerID: true, queue.ReasonInvalidCustomerID: true, queue.ReasonInvalidSubmissionID: true,
	queue.ReasonNoAttachments: true, queue.ReasonTooManyAttachments: true, queue.ReasonEmptyURI: true,
}

// FuzzDecodeTask feeds arbitrary message bodies to the decoder every worker
// runs first. Whatever the body, DecodeTask must not panic; a rejection is
// an *InvalidTaskError with a known reason whose detail never quotes the
// body; an accepted task satisfies every rule a producer is held to (valid
// ids, 1..limit attachments, no empty URI) and survives an encode/decode
// round trip unchanged, so the dedupe key and stored keys built from it are
// stable.
func FuzzDecodeTask(f *testing.F) {
	seeds := []string{
		`{"version":1,"task_id":"t-123","customer_id":"acme","attachments":[{"uri":"s3://acme-data/img/1.jpg"}]}`,
		`{"version":1,"task_id":"t-1","customer_id":"acme","submission_id":"retry-1","attachments":[{"uri":"https://example.com/a.png","name":"a.png"}]}`,
		`{"version":2,"task_id":"t","customer_id":"c","attachments":[{"uri":"x"}]}`,
		`{"version":1,"task_id":"../x","customer_id":"c","attachments":[{"uri":"x"}]}`,
		`{"version":1,"task_id":"t","customer_id":"{c}","attachments":[{"uri":"x"}]}`,
		`{"version":1,"task_id":"t","customer_id":"c","attachments":[]}`,
		`{"version":1,"task_id":"t","customer_id":"c","attachments":[{"uri":""}]}`,
		`{"version":1,"task_id":7,"customer_id":"c","attachments":[{"uri":"x"}]}`,
		`{"version":"1","task_id":"t","customer_id":"c","attachments":[{"uri":"x"}]}`,
		`{"version":1,"task_id":"t","task_id":"u","customer_id":"c","attachments":[{"uri":"x"}]}`,
		`{"version":1,"TASK_ID":"t","customer_id":"c","attachments":[{"uri":"x"}]}`,
		`{"version":1,"task_id":"t\u0000","customer_id":"c","attachments":[{"uri":"x"}]}`,
		`[1,2,3]`, `null`, `"str"`, `{}`, `{"version":1e400}`, "\xff\xfe", `not json`, ``,
	}
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	limits := queue.Limits{MaxAttachments: 5, MaxBodyBytes: 4096}
	f.Fuzz(func(t *testing.T, body []byte) {
		task, err := queue.DecodeTask(body, limits)
		if err != nil {
			var ite *queue.InvalidTaskError
			if !errors.As(err, &ite) || !errors.Is(err, queue.ErrInvalidTask) {
				t.Fatalf("DecodeTask error %T %v is not an *InvalidTaskError", err, err)
			}
			if !knownReasons[ite.Reason] {
				t.Fatalf("unknown reason %q (%v)", ite.Reason, err)
			}
			if len(body) >= 16 && strings.Contains(ite.Detail, string(body)) {
				t.Fatalf("detail quotes the body: %q", ite.Detail)
			}
			return
		}
		if !queue.ValidID(task.TaskID) || !queue.ValidID(task.CustomerID) {
			t.Fatalf("accepted invalid ids %q / %q", task.TaskID, task.CustomerID)
		}
		if task.SubmissionID != "" && !queue.ValidID(task.SubmissionID) {
			t.Fatalf("accepted invalid submission id %q", task.SubmissionID)
		}
		if n := len(task.Attachments); n == 0 || n > limits.MaxAttachments {
			t.Fatalf("accepted %d attachments (limit %d)", n, limits.MaxAttachments)
		}
		for i, a := range task.Attachments {
			if a.URI == "" {
				t.Fatalf("accepted empty uri at %d", i)
			}
		}
		if strings.ContainsAny(task.DedupeKey(), "{} \n") {
			t.Fatalf("dedupe key %q would break a Redis hash tag", task.DedupeKey())
		}
		enc, err := queue.EncodeTask(task, queue.Limits{MaxAttachments: limits.MaxAttachments})
		if err != nil {
			t.Fatalf("EncodeTask refused a decoded task: %v", err)
		}
		again, err := queue.DecodeTask(enc, queue.Limits{MaxAttachments: limits.MaxAttachments})
		if err != nil {
			t.Fatalf("re-decode of %s: %v", enc, err)
		}
		if !reflect.DeepEqual(normalise(task), normalise(again)) {
			t.Fatalf("round trip changed the task:\n%+v\n%+v", task, again)
		}
		if !json.Valid(enc) {
			t.Fatalf("EncodeTask produced invalid JSON %q", enc)
		}
	})
}

// normalise maps invalid UTF-8 the way encoding/json does on the way out, so
// the round-trip comparison checks meaning rather than byte identity.
func normalise(t queue.Task) queue.Task {
	b, _ := json.Marshal(t)
	var out queue.Task
	_ = json.Unmarshal(b, &out)
	return out
}
