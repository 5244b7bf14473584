package localaws

import (
	"net/http"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	snstypes "github.com/aws/aws-sdk-go-v2/service/sns/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/aws/aws-sdk-go-v2/service/sts"
)

// sns:Publish is checked against the caller's IAM policies and the topic's
// account; subscriptions deliver to SQS, and a filter policy on a message
// attribute selects what a subscriber receives.
func TestSNSGateAndSubscriptions(t *testing.T) {
	t.Parallel()
	s := startStack(t, Options{})
	ctx := testCtx(t)
	fleet := mustAccount(t, s, "111111111111")
	other := mustAccount(t, s, "999999999999")
	root := s.SNSClient(fleet, "")
	topic, err := root.CreateTopic(ctx, &sns.CreateTopicInput{Name: aws.String("ferry-events")})
	if err != nil {
		t.Fatal(err)
	}
	elsewhere, err := root.CreateTopic(ctx, &sns.CreateTopicInput{Name: aws.String("not-ours")})
	if err != nil {
		t.Fatal(err)
	}
	all, err := s.CreateQueue(ctx, Queue{Name: "all-events"})
	if err != nil {
		t.Fatal(err)
	}
	denied, err := s.CreateQueue(ctx, Queue{Name: "denied-events"})
	if err != nil {
		t.Fatal(err)
	}
	sq := s.SQSClient(fleet, "")
	subscribe := func(queueURL, filter string) {
		attrs, err := sq.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: aws.String(queueURL), AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameQueueArn}})
		if err != nil {
			t.Fatal(err)
		}
		sa := map[string]string{"RawMessageDelivery": "true"}
		if filter != "" {
			sa["FilterPolicy"] = filter
		}
		if _, err := root.Subscribe(ctx, &sns.SubscribeInput{TopicArn: topic.TopicArn, Protocol: aws.String("sqs"),
			Endpoint: aws.String(attrs.Attributes["QueueArn"]), Attributes: sa}); err != nil {
			t.Fatal(err)
		}
	}
	subscribe(all, "")
	subscribe(denied, `{"type":["task.access_denied"]}`)

	// A role whose policy allows publishing to ferry-events only.
	roleARN, err := s.PutRole(Role{AccountID: fleet.ID, Name: "publisher",
		TrustPolicy: `{"Statement":{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111111111111:root"},"Action":"sts:AssumeRole"}}`,
		Policies:    []string{`{"Statement":{"Effect":"Allow","Action":"sns:Publish","Resource":"` + aws.ToString(topic.TopicArn) + `"}}`}})
	if err != nil {
		t.Fatal(err)
	}
	out, err := s.STSClient(fleet, "").AssumeRole(ctx, &sts.AssumeRoleInput{RoleArn: aws.String(roleARN), RoleSessionName: aws.String("sns-test")})
	if err != nil {
		t.Fatal(err)
	}
	c := out.Credentials
	role := sns.NewFromConfig(s.configFor(credentials.NewStaticCredentialsProvider(*c.AccessKeyId, *c.SecretAccessKey, *c.SessionToken), "us-east-1"),
		func(o *sns.Options) { o.RetryMaxAttempts = 1 })

	publish := func(client *sns.Client, arn *string, typ string) error {
		_, err := client.Publish(ctx, &sns.PublishInput{TopicArn: arn, Message: aws.String(`{"type":"` + typ + `"}`),
			MessageAttributes: map[string]snstypes.MessageAttributeValue{"type": {DataType: aws.String("String"), StringValue: aws.String(typ)}}})
		return err
	}
	if err := publish(role, topic.TopicArn, "task.completed"); err != nil {
		t.Fatalf("role allowed to publish: %v", err)
	}
	if err := publish(role, topic.TopicArn, "task.access_denied"); err != nil {
		t.Fatalf("role allowed to publish: %v", err)
	}
	if code, status := apiCode(publish(role, elsewhere.TopicArn, "task.completed")); code != "AuthorizationError" || status != http.StatusForbidden {
		t.Errorf("role publishing to a topic its policy does not name: %s %d, want AuthorizationError 403", code, status)
	}
	otherClient := sns.NewFromConfig(s.Config(other, ""), func(o *sns.Options) { o.RetryMaxAttempts = 1 })
	if code, _ := apiCode(publish(otherClient, topic.TopicArn, "task.completed")); code != "AuthorizationError" {
		t.Errorf("another account publishing to the fleet's topic: %q, want AuthorizationError", code)
	}

	received := func(queueURL string) []string {
		var bodies []string
		for range 3 {
			out, err := sq.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(queueURL), MaxNumberOfMessages: 10,
				WaitTimeSeconds: 1, MessageAttributeNames: []string{"All"}})
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range out.Messages {
				if m.MessageAttributes["type"].StringValue == nil {
					t.Errorf("delivered without the type attribute: %s", aws.ToString(m.Body))
				}
				bodies = append(bodies, aws.ToString(m.Body))
			}
		}
		return bodies
	}
	if got := received(all); len(got) != 2 {
		t.Errorf("unfiltered subscriber got %v, want both events", got)
	}
	if got := received(denied); len(got) != 1 || got[0] != `{"type":"task.access_denied"}` {
		t.Errorf("filtered subscriber got %v, want only the access_denied event", got)
	}
}
