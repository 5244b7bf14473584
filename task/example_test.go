package task_test

import (
	"errors"
	"fmt"

	"github.com/ferryworks/ferry/task"
)

func ExampleDecode() {
	body := []byte(`{"version":1,"task_id":"t-123","customer_id":"acme",
	  "attachments":[{"uri":"s3://acme-data/img/1.jpg"}]}`)
	t, err := task.Decode(body, task.Limits{})
	fmt.Println(t.TaskID, t.CustomerID, len(t.Attachments), err)

	_, err = task.Decode([]byte(`{"version":1,"task_id":"t-124","attachments":[]}`), task.Limits{})
	var invalid *task.InvalidError
	if errors.As(err, &invalid) {
		fmt.Println(invalid.Reason, invalid.TaskID)
	}
	// Output:
	// t-123 acme 1 <nil>
	// missing_customer_id t-124
}
