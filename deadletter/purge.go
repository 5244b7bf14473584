package deadletter

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
)

// QueueAPI is the part of the SQS client Count and Purge use.
type QueueAPI interface {
	GetQueueAttributes(ctx context.Context, in *sqs.GetQueueAttributesInput, optFns ...func(*sqs.Options)) (*sqs.GetQueueAttributesOutput, error)
	PurgeQueue(ctx context.Context, in *sqs.PurgeQueueInput, optFns ...func(*sqs.Options)) (*sqs.PurgeQueueOutput, error)
}

// Count is the queue's approximate number of messages in every state
// (visible, in flight, delayed).
func Count(ctx context.Context, api QueueAPI, url string) (int, error) {
	out, err := api.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: aws.String(url),
		AttributeNames: []types.QueueAttributeName{types.QueueAttributeNameApproximateNumberOfMessages,
			types.QueueAttributeNameApproximateNumberOfMessagesNotVisible, types.QueueAttributeNameApproximateNumberOfMessagesDelayed}})
	if err != nil {
		return 0, fmt.Errorf("count messages in %s: %w", QueueLabel(url), err)
	}
	n := 0
	for _, v := range out.Attributes {
		c, _ := strconv.Atoi(v)
		n += c
	}
	return n, nil
}

// Purge deletes every message in the queue. SQS finishes it in the
// background (up to 60 s) and allows one purge per queue per 60 s; a second
// one in that time is refused with an error saying so.
func Purge(ctx context.Context, api QueueAPI, url string) error {
	name := QueueLabel(url)
	if _, err := api.PurgeQueue(ctx, &sqs.PurgeQueueInput{QueueUrl: aws.String(url)}); err != nil {
		var inProgress *types.PurgeQueueInProgress
		if errors.As(err, &inProgress) {
			return fmt.Errorf("purge %s: a purge is already running (SQS allows one per 60 s): %w", name, err)
		}
		return fmt.Errorf("purge %s: %w", name, err)
	}
	return nil
}

// QueueLabel is the queue's name: the last path element of its URL.
func QueueLabel(url string) string {
	if i := strings.LastIndexByte(url, '/'); i >= 0 && i < len(url)-1 {
		return url[i+1:]
	}
	return url
}
