package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"golang.org/x/sync/errgroup"

	"github.com/ferryworks/ferry/queue"
	"github.com/ferryworks/ferry/task"
)

// stream is a set of tasks the driver submits: either closed-loop (at most
// window outstanding; 0 means all at once) or open-loop at a fixed interval.
type stream struct {
	tasks    []task.Task
	window   int
	interval time.Duration
	// wait says whether the run ends only when every task of the stream
	// has its event (the noisy customer's backlog does not).
	wait bool
}

// taskRecord is one task's timeline.
type taskRecord struct {
	stream   int
	enqueued time.Time
	occurred time.Time // the event's occurred_at
	received time.Time
	typ      string
}

// loadResult is what a driven load measured.
type loadResult struct {
	start, end time.Time
	records    map[string]*taskRecord
}

// latencies returns the enqueue → occurred_at latencies of stream s's
// finished tasks, sorted, and how many did not finish.
func (lr *loadResult) latencies(s int) ([]time.Duration, int) {
	var out []time.Duration
	missing := 0
	for _, r := range lr.records {
		if r.stream != s {
			continue
		}
		if r.typ == "" {
			missing++
			continue
		}
		// occurred_at is truncated to milliseconds; never report less than 0.
		out = append(out, max(r.occurred.Sub(r.enqueued), 0))
	}
	slices.Sort(out)
	return out, missing
}

// failures counts finished tasks whose event was not task.completed.
func (lr *loadResult) failures() int {
	n := 0
	for _, r := range lr.records {
		if r.typ != "" && r.typ != queue.EventCompleted {
			n++
		}
	}
	return n
}

// drive submits the streams to tasksURL and collects their events from
// eventsURL until every waited-for task has one, or timeout passes (an
// error then). Enqueue times are taken just before each SendMessageBatch.
func drive(ctx context.Context, api *sqs.Client, tasksURL, eventsURL string, streams []stream, timeout time.Duration) (*loadResult, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	lr := &loadResult{records: map[string]*taskRecord{}}
	var mu sync.Mutex
	pending := 0
	tokens := make([]chan struct{}, len(streams))
	for i, s := range streams {
		for _, t := range s.tasks {
			lr.records[t.TaskID] = &taskRecord{stream: i}
		}
		if s.wait {
			pending += len(s.tasks)
		}
		if s.window > 0 {
			tokens[i] = make(chan struct{}, s.window)
		}
	}
	allDone := make(chan struct{})
	if pending == 0 {
		close(allDone)
	}

	g, gctx := errgroup.WithContext(ctx)
	collectCtx, stopCollect := context.WithCancel(gctx)
	defer stopCollect()
	lr.start = time.Now()
	// Collectors: four long polls keep up with several thousand events a
	// second, far more than the fleet produces here.
	var cg sync.WaitGroup
	for range 4 {
		cg.Add(1)
		go func() {
			defer cg.Done()
			for collectCtx.Err() == nil {
				out, err := api.ReceiveMessage(collectCtx, &sqs.ReceiveMessageInput{
					QueueUrl: aws.String(eventsURL), MaxNumberOfMessages: 10, WaitTimeSeconds: 1,
				})
				if err != nil {
					continue
				}
				now := time.Now()
				var del []sqstypes.DeleteMessageBatchRequestEntry
				for i, m := range out.Messages {
					del = append(del, sqstypes.DeleteMessageBatchRequestEntry{Id: aws.String(fmt.Sprint(i)), ReceiptHandle: m.ReceiptHandle})
					var ev queue.Event
					if json.Unmarshal([]byte(aws.ToString(m.Body)), &ev) != nil {
						continue
					}
					mu.Lock()
					r, ok := lr.records[ev.TaskID]
					if ok && r.typ == "" {
						r.typ, r.occurred, r.received = ev.Type, ev.OccurredAt, now
						if tokens[r.stream] != nil {
							select {
							case <-tokens[r.stream]:
							default:
							}
						}
						if streams[r.stream].wait {
							pending--
							if pending == 0 {
								close(allDone)
							}
						}
					}
					mu.Unlock()
				}
				if len(del) > 0 {
					_, _ = api.DeleteMessageBatch(context.WithoutCancel(collectCtx), &sqs.DeleteMessageBatchInput{QueueUrl: aws.String(eventsURL), Entries: del})
				}
			}
		}()
	}

	p := queue.NewProducer(api, tasksURL, task.Limits{})
	for i, s := range streams {
		g.Go(func() error {
			var tick *time.Ticker
			if s.interval > 0 {
				tick = time.NewTicker(s.interval)
				defer tick.Stop()
			}
			for off := 0; off < len(s.tasks); {
				n := min(10, len(s.tasks)-off)
				if s.window > 0 {
					n = min(n, s.window)
				}
				if tick != nil {
					n = 1
					select {
					case <-tick.C:
					case <-gctx.Done():
						return gctx.Err()
					}
				}
				for range n {
					if tokens[i] == nil {
						break
					}
					select {
					case tokens[i] <- struct{}{}:
					case <-gctx.Done():
						return gctx.Err()
					}
				}
				chunk := s.tasks[off : off+n]
				now := time.Now()
				mu.Lock()
				for _, t := range chunk {
					lr.records[t.TaskID].enqueued = now
				}
				mu.Unlock()
				for _, res := range p.Send(gctx, chunk) {
					if res.Err != nil {
						return fmt.Errorf("enqueue %s: %w", res.TaskID, res.Err)
					}
				}
				off += n
			}
			return nil
		})
	}
	g.Go(func() error {
		select {
		case <-allDone:
			return nil
		case <-gctx.Done():
			return gctx.Err()
		}
	})
	err := g.Wait()
	mu.Lock()
	lr.end = time.Now()
	mu.Unlock()
	stopCollect()
	cg.Wait()
	if err != nil {
		mu.Lock()
		defer mu.Unlock()
		missing := 0
		for _, r := range lr.records {
			if r.typ == "" && streams[r.stream].wait {
				missing++
			}
		}
		if errors.Is(err, context.DeadlineExceeded) {
			return lr, fmt.Errorf("%d tasks without an event after %s", missing, timeout)
		}
		return lr, err
	}
	// The run ends at the last waited-for event, not when the collectors
	// noticed it.
	lr.end = lr.start
	for _, r := range lr.records {
		if streams[r.stream].wait && r.received.After(lr.end) {
			lr.end = r.received
		}
	}
	return lr, nil
}
