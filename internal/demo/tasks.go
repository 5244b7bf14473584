package demo

import (
	"github.com/ferryworks/ferry/queue"
)

// DemoTask is a task of the demo set with the outcome it is meant to have.
type DemoTask struct {
	Task     queue.Task
	Expected string // the terminal event type
	Why      string
}

// Tasks is one task per access path of the demo world, each with the
// terminal event it should end in: what `make run` enqueues so a newcomer
// sees every outcome with its hint.
func Tasks(m Manifest) []DemoTask {
	uri := func(c ManifestCustomer, key string) queue.Attachment {
		return queue.Attachment{URI: "s3://" + c.Bucket + "/" + key}
	}
	var out []DemoTask
	add := func(id, customer, want, why string, atts ...queue.Attachment) {
		out = append(out, DemoTask{
			Task:     queue.Task{Version: queue.TaskVersion, TaskID: id, CustomerID: customer, Attachments: atts},
			Expected: want, Why: why,
		})
	}
	for _, c := range m.Customers {
		var atts []queue.Attachment
		for _, k := range c.Objects {
			atts = append(atts, uri(c, k))
		}
		want := queue.EventCompleted
		if c.Expected == ExpectAccessDenied {
			want = queue.EventAccessDenied
		}
		add("demo-"+c.ID, c.ID, want, c.Note, atts...)
	}
	if acme, ok := m.Customer("acme"); ok {
		add("demo-acme-missing", "acme", queue.EventFailed,
			"one object exists, the other does not: the role may list the bucket, so the answer is not_found",
			uri(acme, acme.Objects[0]), uri(acme, "img/does-not-exist.jpg"))
		if globex, ok := m.Customer("globex"); ok {
			add("demo-confused-deputy", globex.ID, queue.EventAccessDenied,
				"globex names acme's bucket; globex registered its account, so S3 refuses a bucket globex does not own",
				uri(acme, acme.Objects[0]))
		}
	}
	return out
}
