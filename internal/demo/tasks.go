package demo

import (
	"encoding/json"
	"fmt"

	"github.com/ferryworks/ferry/task"
)

// The terminal event types a demo task is meant to end in.
const (
	EventCompleted    = "task.completed"
	EventAccessDenied = "task.access_denied"
	EventFailed       = "task.failed"
)

// DemoTask is a task of the demo set with the outcome it is meant to have.
type DemoTask struct {
	Task     task.Task
	Expected string // the terminal event type
	Why      string
}

// Tasks is one task per access path of the demo world, each with the
// terminal event it should end in: what `make run` enqueues so a newcomer
// sees every outcome with its hint.
func Tasks(m Manifest) []DemoTask {
	uri := func(c ManifestCustomer, key string) task.Attachment {
		return task.Attachment{URI: "s3://" + c.Bucket + "/" + key}
	}
	var out []DemoTask
	add := func(id, customer, want, why string, atts ...task.Attachment) {
		out = append(out, DemoTask{
			Task:     task.Task{Version: task.Version, TaskID: id, CustomerID: customer, Attachments: atts},
			Expected: want, Why: why,
		})
	}
	for _, c := range m.Customers {
		var atts []task.Attachment
		for _, k := range c.Objects {
			atts = append(atts, uri(c, k))
		}
		want := EventCompleted
		if c.Expected == ExpectAccessDenied {
			want = EventAccessDenied
		}
		add("demo-"+c.ID, c.ID, want, c.Note, atts...)
	}
	for _, c := range m.Customers {
		if c.UngrantedObject != "" {
			add("demo-"+c.ID+"-no-acl", c.ID, EventAccessDenied,
				"no bucket policy, and this object's ACL grants the fleet nothing", uri(c, c.UngrantedObject))
		}
	}
	if acme, ok := m.Customer("acme"); ok {
		add("demo-acme-missing", "acme", EventFailed,
			"one object exists, the other does not: the role may list the bucket, so the answer is not_found",
			uri(acme, acme.Objects[0]), uri(acme, "img/does-not-exist.jpg"))
		if globex, ok := m.Customer("globex"); ok {
			add("demo-confused-deputy", globex.ID, EventAccessDenied,
				"globex names acme's bucket; globex registered its account, so S3 refuses a bucket globex does not own",
				uri(acme, acme.Objects[0]))
		}
	}
	return out
}

// TasksJSONLines is Tasks as `ferry enqueue --file` reads them: one task
// document per line, what `devstack -tasks-file` writes.
func TasksJSONLines(m Manifest) ([]byte, error) {
	var lines []byte
	for _, dt := range Tasks(m) {
		b, err := json.Marshal(dt.Task)
		if err != nil {
			return nil, fmt.Errorf("encode demo task %s: %w", dt.Task.TaskID, err)
		}
		lines = append(append(lines, b...), '\n')
	}
	return lines, nil
}
