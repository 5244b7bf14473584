// Package taskstate is the fleet's memory of tasks in Redis: which tasks
// reached a terminal event, which task is being copied right now, and the
// last error of a task that is being retried. The worker writes it; the
// dead-letter tooling reads it to say why a message was dead-lettered and
// whether replaying it would do anything.
package taskstate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/ferryworks/ferry/internal/redislock"
	"github.com/ferryworks/ferry/queue"
)

// State reads and writes task state: a terminal record (so a redelivered or
// resubmitted message is acknowledged without copying or announcing again),
// a per-task lock (so two deliveries of one task do not copy it twice at
// once), and the last error of a task being retried.
//
// Keys, with the task's deduplication key (task id plus submission id) in a
// hash tag so all of one task's keys share a cluster slot:
//
//	PREFIX:task:{KEY}        terminal event id and type   (TerminalTTL)
//	PREFIX:task:{KEY}:lock   random token, SET NX PX      (lock TTL)
//	PREFIX:task:{KEY}:error  last error, JSON             (TerminalTTL)
type State struct {
	Redis  redis.UniversalClient
	Prefix string
	// TerminalTTL is how long terminal states and last errors are kept; it
	// should outlive the queues' retention so that a replay from the DLQ is
	// still recognised. Default 14 days.
	TerminalTTL time.Duration
	// RedisErrors counts failed Redis calls (ferry_redis_errors_total, the
	// counter credcache registers); nil counts nothing.
	RedisErrors prometheus.Counter
}

// failed counts a Redis failure and returns err.
func (s *State) failed(err error) error {
	if s.RedisErrors != nil {
		s.RedisErrors.Inc()
	}
	return err
}

// Terminal records a task's terminal event.
type Terminal struct {
	EventID string    `json:"event_id"`
	Type    string    `json:"type"`
	At      time.Time `json:"at"`
}

// LastError is what ferry recorded about a task's most recent failed attempt.
type LastError struct {
	MessageID    string            `json:"message_id"`
	ReceiveCount int               `json:"receive_count"`
	At           time.Time         `json:"at"`
	Error        string            `json:"error"`
	Attachments  []AttachmentError `json:"attachments,omitempty"`
}

// AttachmentError is one attachment's failure within a LastError: what the
// task's event would say about it (queue.AttachmentError), plus which
// attachment it was and whether retrying could help (Kind).
type AttachmentError struct {
	Index  int    `json:"index"`
	Source string `json:"source"`
	Kind   string `json:"kind"`
	queue.AttachmentError
}

func (s *State) prefix() string {
	if s.Prefix == "" {
		return "ferry"
	}
	return s.Prefix
}

func (s *State) ttl() time.Duration {
	if s.TerminalTTL <= 0 {
		return 14 * 24 * time.Hour
	}
	return s.TerminalTTL
}

func (s *State) key(dedupe string, suffix string) string {
	return s.prefix() + ":task:{" + dedupe + "}" + suffix
}

// Terminal returns the task's terminal record; ok is false when none was
// recorded. An error means Redis could not answer: the caller proceeds, and
// at worst announces an identical event again.
func (s *State) Terminal(ctx context.Context, dedupe string) (Terminal, bool, error) {
	return getJSON[Terminal](ctx, s, s.key(dedupe, ""), "task state")
}

// getJSON reads the JSON record at key; ok is false when there is none. what
// names the record in errors.
func getJSON[T any](ctx context.Context, s *State, key, what string) (v T, ok bool, err error) {
	raw, err := s.Redis.Get(ctx, key).Bytes()
	if errors.Is(err, redis.Nil) {
		return v, false, nil
	}
	if err != nil {
		return v, false, s.failed(fmt.Errorf("read %s: %w", what, err))
	}
	if err := json.Unmarshal(raw, &v); err != nil {
		var zero T
		return zero, false, fmt.Errorf("decode %s: %w", what, err)
	}
	return v, true, nil
}

// RecordError stores the last error of a task that will be retried; Finish
// drops it once the task reaches its terminal event.
func (s *State) RecordError(ctx context.Context, dedupe string, e LastError) error {
	raw, _ := json.Marshal(e)
	if err := s.Redis.Set(ctx, s.key(dedupe, ":error"), raw, s.ttl()).Err(); err != nil {
		return s.failed(fmt.Errorf("record last error: %w", err))
	}
	return nil
}

// LastError returns the last error recorded for a task; ok is false when
// there is none.
func (s *State) LastError(ctx context.Context, dedupe string) (LastError, bool, error) {
	return getJSON[LastError](ctx, s, s.key(dedupe, ":error"), "last error")
}

// beginScript answers, in one round trip, whether the task already has a
// terminal record ({1, record}) or else takes its lock ({2}) or finds it
// held by another worker ({3}).
var beginScript = redis.NewScript(`
local t = redis.call("GET", KEYS[1])
if t then return {1, t} end
if redis.call("SET", KEYS[2], ARGV[1], "NX", "PX", ARGV[2]) then return {2, ""} end
return {3, ""}`)

// finishScript records the terminal state, drops the last error and
// releases the lock if it is still ours, in one round trip.
var finishScript = redis.NewScript(`
redis.call("SET", KEYS[1], ARGV[1], "EX", ARGV[2])
redis.call("DEL", KEYS[2])
if ARGV[3] ~= "" and redis.call("GET", KEYS[3]) == ARGV[3] then redis.call("DEL", KEYS[3]) end
return 1`)

// Begin opens a task's attempt in one round trip. When the task already
// reached a terminal event it returns that record (done is true) and takes
// no lock: the caller acknowledges without copying. Otherwise it takes the
// task's lock for ttl, kept alive in the background until Finish or
// lock.Unlock, or reports it held by another worker (lock nil, done false):
// the caller retries later. An error means Redis could not answer; the
// caller proceeds unlocked.
func (s *State) Begin(ctx context.Context, dedupe string, ttl time.Duration) (t Terminal, done bool, lock *redislock.Lock, err error) {
	var begun func() (Terminal, bool, *redislock.Lock, error)
	_, _ = s.Redis.Pipelined(ctx, func(p redis.Pipeliner) error {
		begun = s.BeginPipelined(ctx, p, dedupe, ttl)
		return nil
	})
	return begun()
}

// BeginPipelined is Begin as part of a caller's pipeline, so it shares a
// round trip with other commands (the worker reads the customer's
// integration in the same one). It queues the script on p and returns the
// function that answers as Begin would once p has been executed. The
// script's keys share the task's hash tag, so on a cluster it runs on one
// node; a pipeline may span nodes (the client splits it per node).
func (s *State) BeginPipelined(ctx context.Context, p redis.Pipeliner, dedupe string, ttl time.Duration) func() (Terminal, bool, *redislock.Lock, error) {
	l := redislock.New(s.Redis, s.key(dedupe, ":lock"), ttl)
	keys := []string{s.key(dedupe, ""), l.Key()}
	args := []any{l.Token(), ttl.Milliseconds()}
	// EVALSHA alone: a script's result in a pipeline is not known when
	// queued, so the load-on-NOSCRIPT of Script.Run happens afterwards
	// (once per server) in a round trip of its own.
	cmd := beginScript.EvalSha(ctx, p, keys, args...)
	return func() (Terminal, bool, *redislock.Lock, error) {
		res, err := cmd.Slice()
		if err != nil && redis.HasErrorPrefix(err, "NOSCRIPT") {
			res, err = beginScript.Run(ctx, s.Redis, keys, args...).Slice()
		}
		if err != nil {
			return Terminal{}, false, nil, s.failed(fmt.Errorf("begin task: %w", err))
		}
		switch code, _ := res[0].(int64); code {
		case 1:
			var t Terminal
			raw, _ := res[1].(string)
			if err := json.Unmarshal([]byte(raw), &t); err != nil {
				return Terminal{}, false, nil, fmt.Errorf("decode task state: %w", err)
			}
			return t, true, nil, nil
		case 2:
			l.Keep()
			return Terminal{}, false, l, nil
		default:
			return Terminal{}, false, nil, nil
		}
	}
}

// Finish closes a task's attempt in one round trip: it records the terminal
// event (so later deliveries of the task are acknowledged by Begin), drops
// the last error and releases the lock Begin took if it is still ours.
// lock may be nil (the task ran unlocked); a later lock.Unlock does nothing.
func (s *State) Finish(ctx context.Context, dedupe string, t Terminal, lock *redislock.Lock) error {
	token := ""
	if lock != nil {
		lock.StopKeeping()
		token = lock.Token()
	}
	raw, _ := json.Marshal(t)
	if err := finishScript.Run(ctx, s.Redis, []string{s.key(dedupe, ""), s.key(dedupe, ":error"), s.key(dedupe, ":lock")},
		raw, int64(s.ttl()/time.Second), token).Err(); err != nil {
		return s.failed(fmt.Errorf("record task state: %w", err))
	}
	return nil
}
