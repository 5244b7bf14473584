package queue_test

import (
	"errors"
	"fmt"

	"github.com/ferryworks/ferry/queue"
)

func ExampleDecodeTask() {
	body := []byte(`{"version":1,"task_id":"t-123","customer_id":"acme",
	  "attachments":[{"uri":"s3://acme-data/img/1.jpg"}]}`)
	task, err := queue.DecodeTask(body, queue.Limits{})
	fmt.Println(task.TaskID, task.CustomerID, len(task.Attachments), err)

	_, err = queue.DecodeTask([]byte(`{"version":1,"task_id":"t-124","attachments":[]}`), queue.Limits{})
	var invalid *queue.InvalidTaskError
	if errors.As(err, &invalid) {
		fmt.Println(invalid.Reason, invalid.TaskID)
	}
	// Output:
	// t-123 acme 1 <nil>
	// missing_customer_id t-124
}

func ExampleEventID() {
	fmt.Println(queue.EventID("t-123", "", queue.EventCompleted))
	fmt.Println(queue.EventID("t-123", "s-2", queue.EventAccessDenied))
	// Output:
	// t-123/completed
	// t-123/s-2/access_denied
}
