package task_test

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/ferryworks/ferry/task"
)

// knownReasons are the machine codes a rejection may carry; anything else
// would break DLQ filters and the task.failed contract.
var knownReasons = map[string]bool{
	task.ReasonTooLarge: true, task.ReasonNotJSON: true, task.ReasonInvalidField: true,
	task.ReasonUnknownVersion: true, task.ReasonMissingTaskID: true, task.ReasonInvalidTaskID: true,
	task.ReasonMissingCustomerID: true, task.ReasonInvalidCustomerID: true, task.ReasonInvalidSubmissionID: true,
	task.ReasonNoAttachments: true, task.ReasonTooManyAttachments: true, task.ReasonEmptyURI: true,
}

// FuzzDecodeTask feeds arbitrary message bodies to the decoder every worker
// runs first. Whatever the body, Decode must not panic; a rejection is
// an *InvalidError with a known reason whose detail never quotes the
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
	limits := task.Limits{MaxAttachments: 5, MaxBodyBytes: 4096}
	f.Fuzz(func(t *testing.T, body []byte) {
		got, err := task.Decode(body, limits)
		if err != nil {
			var ite *task.InvalidError
			if !errors.As(err, &ite) || !errors.Is(err, task.ErrInvalid) {
				t.Fatalf("Decode error %T %v is not an *InvalidError", err, err)
			}
			if !knownReasons[ite.Reason] {
				t.Fatalf("unknown reason %q (%v)", ite.Reason, err)
			}
			if len(body) >= 16 && strings.Contains(ite.Detail, string(body)) {
				t.Fatalf("detail quotes the body: %q", ite.Detail)
			}
			return
		}
		if !task.ValidID(got.TaskID) || !task.ValidID(got.CustomerID) {
			t.Fatalf("accepted invalid ids %q / %q", got.TaskID, got.CustomerID)
		}
		if got.SubmissionID != "" && !task.ValidID(got.SubmissionID) {
			t.Fatalf("accepted invalid submission id %q", got.SubmissionID)
		}
		if n := len(got.Attachments); n == 0 || n > limits.MaxAttachments {
			t.Fatalf("accepted %d attachments (limit %d)", n, limits.MaxAttachments)
		}
		for i, a := range got.Attachments {
			if a.URI == "" {
				t.Fatalf("accepted empty uri at %d", i)
			}
		}
		if strings.ContainsAny(got.DedupeKey(), "{} \n") {
			t.Fatalf("dedupe key %q would break a Redis hash tag", got.DedupeKey())
		}
		enc, err := task.Encode(got, task.Limits{MaxAttachments: limits.MaxAttachments})
		if err != nil {
			t.Fatalf("Encode refused a decoded task: %v", err)
		}
		again, err := task.Decode(enc, task.Limits{MaxAttachments: limits.MaxAttachments})
		if err != nil {
			t.Fatalf("re-decode of %s: %v", enc, err)
		}
		if !reflect.DeepEqual(normalise(got), normalise(again)) {
			t.Fatalf("round trip changed the task:\n%+v\n%+v", got, again)
		}
		if !json.Valid(enc) {
			t.Fatalf("Encode produced invalid JSON %q", enc)
		}
	})
}

// normalise maps invalid UTF-8 the way encoding/json does on the way out, so
// the round-trip comparison checks meaning rather than byte identity.
func normalise(t task.Task) task.Task {
	b, _ := json.Marshal(t)
	var out task.Task
	_ = json.Unmarshal(b, &out)
	return out
}
