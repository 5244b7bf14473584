package queue

import (
	"context"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
	smithytime "github.com/aws/smithy-go/time"
)

// SQS batch limits.
const (
	maxBatchEntries = 10
	// maxInflightBatches bounds the batch calls of one kind in flight at once.
	maxInflightBatches = 4
	maxBatchBytes      = 256 * 1024
	// batchAttempts bounds how often one batch entry is tried when SQS
	// reports it failed without the sender at fault (or the call failed).
	batchAttempts = 4
)

// chunkBySize splits item indexes into groups of at most maxEntries whose
// sizes sum to at most maxBytes, keeping order. An item larger than maxBytes
// on its own gets a group of its own; the caller rejects it.
func chunkBySize(sizes []int, maxEntries, maxBytes int) [][]int {
	var out [][]int
	var cur []int
	total := 0
	for i, s := range sizes {
		if len(cur) > 0 && (len(cur) == maxEntries || total+s > maxBytes) {
			out = append(out, cur)
			cur, total = nil, 0
		}
		cur = append(cur, i)
		total += s
	}
	if len(cur) > 0 {
		out = append(out, cur)
	}
	return out
}

// batchOutcome is what one batch call said about its entries: failed holds
// the Failed entries by index; indexes in neither list are treated as
// transient failures.
type batchOutcome struct {
	ok     map[int]bool
	failed map[int]types.BatchResultErrorEntry
}

// batchCall sends the items with the given indexes, entry Id = the index.
type batchCall func(ctx context.Context, idx []int) (batchOutcome, error)

// runBatch sends n items through call, retrying entries that failed without
// sender fault and whole calls that failed, with capped backoff, at most
// batchAttempts times. It returns one error per item (nil = done).
func runBatch(ctx context.Context, op string, n int, m *Metrics, call batchCall) []error {
	errs := make([]error, n)
	pending := make([]int, n)
	for i := range pending {
		pending[i] = i
	}
	for attempt := 1; len(pending) > 0; attempt++ {
		out, err := call(ctx, pending)
		if err != nil {
			m.sqsError(op)
			for _, i := range pending {
				errs[i] = err
			}
			if attempt >= batchAttempts || !pause(ctx, attempt) {
				return errs
			}
			continue
		}
		var retry []int
		for _, i := range pending {
			switch f, failed := out.failed[i]; {
			case out.ok[i]:
				errs[i] = nil
			case failed:
				m.sqsError(op)
				errs[i] = batchEntryError(op, f)
				if !f.SenderFault {
					retry = append(retry, i)
				}
			default:
				errs[i] = &BatchEntryError{Operation: op, Code: "MissingResult", Message: "entry absent from the response"}
				retry = append(retry, i)
			}
		}
		pending = retry
		if len(pending) > 0 && (attempt >= batchAttempts || !pause(ctx, attempt)) {
			return errs
		}
	}
	return errs
}

// pause sleeps an equal-jitter backoff for retry number attempt (100 ms
// doubling, capped at 5 s); half fixed so a retry never comes back at once.
func pause(ctx context.Context, attempt int) bool {
	c := backoffCeiling(100*time.Millisecond, 5*time.Second, attempt)
	return smithytime.SleepWithContext(ctx, c/2+RetryDelay(c/2, c/2, 1)) == nil
}

func outcomeOf(successIDs []string, failed []types.BatchResultErrorEntry) batchOutcome {
	o := batchOutcome{ok: map[int]bool{}, failed: map[int]types.BatchResultErrorEntry{}}
	for _, id := range successIDs {
		if i, err := strconv.Atoi(id); err == nil {
			o.ok[i] = true
		}
	}
	for _, f := range failed {
		if i, err := strconv.Atoi(aws.ToString(f.Id)); err == nil {
			o.failed[i] = f
		}
	}
	return o
}

// successIDs are the entry Ids of a batch response's Successful entries; id
// reads one entry's.
func successIDs[E any](successful []E, id func(E) *string) []string {
	ids := make([]string, len(successful))
	for j, s := range successful {
		ids[j] = aws.ToString(id(s))
	}
	return ids
}

// changeVisibility makes one ChangeMessageVisibilityBatch call on queueURL
// for the items at idx (entry Id = the index); entry gives an item's receipt
// handle and its new visibility timeout in seconds.
func changeVisibility(ctx context.Context, api SQSAPI, queueURL string, idx []int, entry func(i int) (handle string, timeout int32)) (batchOutcome, error) {
	in := &sqs.ChangeMessageVisibilityBatchInput{QueueUrl: aws.String(queueURL), Entries: make([]types.ChangeMessageVisibilityBatchRequestEntry, len(idx))}
	for j, i := range idx {
		handle, timeout := entry(i)
		in.Entries[j] = types.ChangeMessageVisibilityBatchRequestEntry{
			Id: aws.String(strconv.Itoa(i)), ReceiptHandle: aws.String(handle), VisibilityTimeout: timeout,
		}
	}
	out, err := api.ChangeMessageVisibilityBatch(ctx, in)
	if err != nil {
		return batchOutcome{}, err
	}
	ids := successIDs(out.Successful, func(e types.ChangeMessageVisibilityBatchResultEntry) *string { return e.Id })
	return outcomeOf(ids, out.Failed), nil
}
