package taskstate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/redis/go-redis/v9"

	"github.com/ferryworks/ferry/queue"
	"github.com/ferryworks/ferry/task"
)

// A task's event published to more than one destination (the events queue
// and an SNS topic) is kept until every destination took it:
//
//	PREFIX:task:{KEY}:event      the event as first built, JSON  (TerminalTTL)
//	PREFIX:task:{KEY}:published  destinations that took it, set  (TerminalTTL)
//
// so that a retry after a partial publication sends the very same event
// (same id, same occurred_at, same type) and only where it is missing.

// Publication opens the publication of a task's event: it stores e unless
// an event is already stored for the task, and returns the stored one with
// the destinations that already took it. A retry therefore republishes the
// first attempt's event, whatever the new attempt built. An error means
// Redis could not answer: the caller publishes e everywhere (consumers
// deduplicate by event id).
func (s *State) Publication(ctx context.Context, e queue.Event) (queue.Event, map[string]bool, error) {
	dedupe := task.Task{TaskID: e.TaskID, SubmissionID: e.SubmissionID}.DedupeKey()
	raw, err := json.Marshal(e)
	if err != nil {
		return e, nil, fmt.Errorf("encode event: %w", err)
	}
	var prev *redis.StatusCmd
	var done *redis.StringSliceCmd
	_, err = s.Redis.Pipelined(ctx, func(p redis.Pipeliner) error {
		prev = p.SetArgs(ctx, s.key(dedupe, ":event"), raw, redis.SetArgs{Mode: "NX", Get: true, TTL: s.ttl()})
		done = p.SMembers(ctx, s.key(dedupe, ":published"))
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return e, nil, s.failed(fmt.Errorf("open publication: %w", err))
	}
	if stored, err := prev.Result(); err == nil && stored != "" {
		var first queue.Event
		if err := json.Unmarshal([]byte(stored), &first); err != nil {
			return e, nil, fmt.Errorf("decode stored event: %w", err)
		}
		e = first
	}
	published := map[string]bool{}
	for _, d := range done.Val() {
		published[d] = true
	}
	return e, published, nil
}

// Published records that destination took the task's event.
func (s *State) Published(ctx context.Context, e queue.Event, destination string) error {
	dedupe := task.Task{TaskID: e.TaskID, SubmissionID: e.SubmissionID}.DedupeKey()
	key := s.key(dedupe, ":published")
	_, err := s.Redis.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.SAdd(ctx, key, destination)
		p.Expire(ctx, key, s.ttl())
		return nil
	})
	if err != nil {
		return s.failed(fmt.Errorf("record publication to %s: %w", destination, err))
	}
	return nil
}
