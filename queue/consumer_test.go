package queue

import (
	"context"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/sqs"
)

func TestConsumerOptionsDefaults(t *testing.T) {
	t.Parallel()
	o, err := ConsumerOptions{QueueURL: "http://q/1/tasks"}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	want := ConsumerOptions{QueueURL: "http://q/1/tasks", WaitTime: 20 * time.Second, VisibilityTimeout: time.Minute,
		MaxProcessingTime: time.Hour, HeartbeatInterval: 20 * time.Second, RetryBase: 5 * time.Second,
		RetryMax: 15 * time.Minute}
	if o.WaitTime != want.WaitTime || o.VisibilityTimeout != want.VisibilityTimeout || o.MaxProcessingTime != want.MaxProcessingTime ||
		o.HeartbeatInterval != want.HeartbeatInterval || o.RetryBase != want.RetryBase || o.RetryMax != want.RetryMax ||
		o.AckBatchWindow != want.AckBatchWindow {
		t.Errorf("defaults = %+v", o)
	}
	if o, _ := (ConsumerOptions{QueueURL: "u", WaitTime: -1}).withDefaults(); o.WaitTime != 0 {
		t.Errorf("negative WaitTime -> %s, want short polling", o.WaitTime)
	}
}

func TestConsumerOptionsInvalid(t *testing.T) {
	t.Parallel()
	cases := map[string]ConsumerOptions{
		"no queue":           {},
		"wait over 20s":      {QueueURL: "u", WaitTime: 21 * time.Second},
		"visibility < 1s":    {QueueURL: "u", VisibilityTimeout: 500 * time.Millisecond},
		"visibility > 12h":   {QueueURL: "u", VisibilityTimeout: 13 * time.Hour},
		"heartbeat too slow": {QueueURL: "u", VisibilityTimeout: 10 * time.Second, HeartbeatInterval: 6 * time.Second},
		"heartbeat negative": {QueueURL: "u", HeartbeatInterval: -time.Second},
	}
	for name, o := range cases {
		if _, err := NewConsumer(&sqs.Client{}, o); err == nil {
			t.Errorf("%s: NewConsumer accepted %+v", name, o)
		}
	}
	if _, err := NewConsumer(nil, ConsumerOptions{QueueURL: "u"}); err == nil {
		t.Error("NewConsumer accepted a nil client")
	}
	c, err := NewConsumer(&sqs.Client{}, ConsumerOptions{QueueURL: "u"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Receive(context.Background(), 0); err == nil {
		t.Error("Receive(0) accepted")
	}
	if err := c.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
}
