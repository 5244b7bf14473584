package main

import (
	"context"
	"encoding/json"
	"sort"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/ferryworks/ferry/internal/demo"
	"github.com/ferryworks/ferry/internal/localaws"
	"github.com/ferryworks/ferry/internal/testenv"
	"github.com/ferryworks/ferry/queue"
)

// A worker with FERRY_EVENTS_TOPIC_ARN beside the events queue publishes
// each terminal event to both, once each: the topic's subscribers filter on
// the type attribute, and when the queue refuses the event after the topic
// took it, the retry sends the identical event to the queue alone.
func TestEventsToSNSTopicAndQueue(t *testing.T) {
	t.Parallel()
	w := testenv.NewWorld(t) // its own stack: it injects a fault
	ctx := context.Background()
	snsAPI := w.Stack.SNSClient(w.Fleet, demo.DefaultRegion)
	sqsAPI := sqs.NewFromConfig(w.FleetConfig)
	topic, err := snsAPI.CreateTopic(ctx, &sns.CreateTopicInput{Name: aws.String("ferry-events")})
	if err != nil {
		t.Fatal(err)
	}
	subscribe := func(name, filter string) string {
		url, err := w.Stack.CreateQueue(ctx, localaws.Queue{Name: name})
		if err != nil {
			t.Fatal(err)
		}
		attrs, err := sqsAPI.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: aws.String(url),
			AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameQueueArn}})
		if err != nil {
			t.Fatal(err)
		}
		sa := map[string]string{"RawMessageDelivery": "true"}
		if filter != "" {
			sa["FilterPolicy"] = filter
		}
		if _, err := snsAPI.Subscribe(ctx, &sns.SubscribeInput{TopicArn: topic.TopicArn, Protocol: aws.String("sqs"),
			Endpoint: aws.String(attrs.Attributes[string(sqstypes.QueueAttributeNameQueueArn)]), Attributes: sa}); err != nil {
			t.Fatal(err)
		}
		return url
	}
	all := subscribe("sub-all", "")
	denied := subscribe("sub-denied", `{"type":["task.access_denied"]}`)

	env := worldEnv(w, "FERRY_EVENTS_TOPIC_ARN="+aws.ToString(topic.TopicArn))
	ferry(t, env, "enqueue", "--customer", "acme", "--task", "sns-ok", "--uri", "s3://acme-data/img/1.jpg").want(t, 0)
	ferry(t, env, "enqueue", "--customer", "initech", "--task", "sns-denied", "--uri", "s3://initech-data/img/1.jpg").want(t, 0)

	// The events queue refuses every event until the topic has both.
	if err := w.Stack.InjectFault(localaws.Fault{Operation: "sqs:SendMessage", Status: 500, Code: "InternalError"}); err != nil {
		t.Fatal(err)
	}
	stop, _ := startMetricsWorker(t, env)
	defer stop()

	viaTopic := drain(t, sqsAPI, all, 2, 90*time.Second)
	if got := drain(t, sqsAPI, w.Manifest.Queues.Events, 0, 2*time.Second); len(got) != 0 {
		t.Fatalf("the events queue got %v while it refused SendMessage", got)
	}
	w.Stack.ClearFaults()
	viaQueue := drain(t, sqsAPI, w.Manifest.Queues.Events, 2, 90*time.Second)
	// The retry published the stored event: byte for byte what the topic
	// delivered, occurred_at included.
	sort.Strings(viaTopic)
	sort.Strings(viaQueue)
	for i := range viaTopic {
		if viaTopic[i] != viaQueue[i] {
			t.Errorf("the queue's event differs from the topic's:\n%s\n%s", viaQueue[i], viaTopic[i])
		}
	}
	types := map[string]string{}
	for _, b := range viaTopic {
		var ev queue.Event
		if err := json.Unmarshal([]byte(b), &ev); err != nil {
			t.Fatalf("topic delivered %q: %v", b, err)
		}
		types[ev.TaskID] = ev.Type
	}
	if types["sns-ok"] != queue.EventCompleted || types["sns-denied"] != queue.EventAccessDenied {
		t.Errorf("event types %v", types)
	}
	// No second copy anywhere: the retry skipped the topic.
	if extra := drain(t, sqsAPI, all, 0, 3*time.Second); len(extra) != 0 {
		t.Errorf("the topic delivered again after the retry: %v", extra)
	}
	got := drain(t, sqsAPI, denied, 1, 30*time.Second)
	var ev queue.Event
	if err := json.Unmarshal([]byte(got[0]), &ev); err != nil || ev.TaskID != "sns-denied" || ev.Type != queue.EventAccessDenied {
		t.Errorf("the filtered subscriber got %s", got[0])
	}
	if extra := drain(t, sqsAPI, denied, 0, 2*time.Second); len(extra) != 0 {
		t.Errorf("the filtered subscriber also got %v", extra)
	}
}

// drain receives and deletes messages until n arrived (failing after
// timeout), or for the whole timeout when n is 0; it returns their bodies.
func drain(t *testing.T, api *sqs.Client, url string, n int, timeout time.Duration) []string {
	t.Helper()
	var out []string
	deadline := time.Now().Add(timeout)
	for (n == 0 || len(out) < n) && time.Now().Before(deadline) {
		res, err := api.ReceiveMessage(context.Background(), &sqs.ReceiveMessageInput{QueueUrl: aws.String(url), MaxNumberOfMessages: 10, WaitTimeSeconds: 1})
		if err != nil {
			t.Fatalf("receive from %s: %v", url, err)
		}
		for _, m := range res.Messages {
			out = append(out, aws.ToString(m.Body))
			if _, err := api.DeleteMessage(context.Background(), &sqs.DeleteMessageInput{QueueUrl: aws.String(url), ReceiptHandle: m.ReceiptHandle}); err != nil {
				t.Fatal(err)
			}
		}
	}
	if n > 0 && len(out) < n {
		t.Fatalf("%s: got %d messages, want %d: %v", url, len(out), n, out)
	}
	return out
}
