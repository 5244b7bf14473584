package queue

import (
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/ferryworks/ferry/internal/localaws"
	"github.com/ferryworks/ferry/internal/testenv"
)

func TestTail(t *testing.T) {
	t.Parallel()
	e := testenv.NewSharedSQS(t)
	url := e.Queue(t, localaws.Queue{Name: "events"})
	ctx := testenv.Context(t, 90*time.Second)
	p := NewPublisher(e.Client, url)
	for _, ev := range []Event{
		{Type: EventCompleted, TaskID: "t-1", CustomerID: "acme", OccurredAt: time.Now()},
		{Type: EventFailed, TaskID: "t-2", CustomerID: "acme", OccurredAt: time.Now()},
		{Type: EventCompleted, TaskID: "t-3", CustomerID: "globex", OccurredAt: time.Now()},
	} {
		ev.EventID = EventID(ev.TaskID, "", ev.Type)
		if err := p.Publish(ctx, ev); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := e.Client.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(url), MessageBody: aws.String("not an event")}); err != nil {
		t.Fatal(err)
	}
	tail := func(o TailOptions) []string {
		c := consumer(t, e, nil, ConsumerOptions{QueueURL: url, WaitTime: time.Second, VisibilityTimeout: 30 * time.Second})
		var got []string
		if err := Tail(ctx, c, o, func(_ []byte, ev Event) { got = append(got, ev.TaskID) }); err != nil {
			t.Fatal(err)
		}
		return got
	}

	// Looking only: the events are handed back at once when Tail returns
	// (not after the 30 s visibility timeout), so the next tail, which gives
	// up after 5 s without events, gets them again.
	if got := tail(TailOptions{Customer: "acme", Max: 2}); len(got) != 2 {
		t.Fatalf("tail --customer acme --max 2 = %v", got)
	}
	if got := tail(TailOptions{Customer: "acme", Max: 2, Ack: true, IdleExit: 5 * time.Second}); len(got) != 2 {
		t.Fatalf("tail --ack after looking = %v; want acme's 2 events handed back", got)
	}
	// The acked events are gone; the others are still there, and a message
	// that is not an event is never handed over.
	if got := tail(TailOptions{IdleExit: 3 * time.Second}); len(got) != 1 || got[0] != "t-3" {
		t.Fatalf("tail after acking = %v; want only globex's t-3", got)
	}
}
