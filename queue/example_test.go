package queue_test

import (
	"fmt"

	"github.com/ferryworks/ferry/queue"
)

func ExampleEventID() {
	fmt.Println(queue.EventID("t-123", "", queue.EventCompleted))
	fmt.Println(queue.EventID("t-123", "s-2", queue.EventAccessDenied))
	// Output:
	// t-123/completed
	// t-123/s-2/access_denied
}
