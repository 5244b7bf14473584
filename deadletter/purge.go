package deadletter

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

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

// WaitPurged follows a purge of a queue that held n messages until the
// queue is empty or SQS's 60 s to finish a purge are over, calling removed
// with the number of messages gone after each look, every interval. It
// returns how many are left: messages that arrived during the purge, or a
// purge SQS has not finished yet.
func WaitPurged(ctx context.Context, api QueueAPI, url string, n int, interval time.Duration, removed func(int)) (left int, err error) {
	deadline := time.Now().Add(purgeTime)
	for {
		left, err = Count(ctx, api, url)
		if err != nil {
			return left, err
		}
		if removed != nil {
			removed(max(0, n-left))
		}
		if left == 0 || !time.Now().Before(deadline) {
			return left, nil
		}
		select {
		case <-ctx.Done():
			return left, ctx.Err()
		case <-time.After(interval):
		}
	}
}

// purgeTime is how long SQS may take to finish a purge
// (https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_PurgeQueue.html).
const purgeTime = 60 * time.Second

// QueueLabel is the queue's name: the last path element of its URL.
func QueueLabel(url string) string {
	if i := strings.LastIndexByte(url, '/'); i >= 0 && i < len(url)-1 {
		return url[i+1:]
	}
	return url
}
