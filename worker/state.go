package worker

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
)

// State is the fleet's memory of tasks in Redis: which tasks reached a
// terminal event (so a redelivered or resubmitted message is acknowledged
// without copying or announcing again), which task is being copied right now
// (so two deliveries of one task do not copy it twice at once), and the last
// error of a task that is being retried (for the dead-letter tooling).
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

// AttachmentError is one attachment's failure within a LastError.
type AttachmentError struct {
	Index   int    `json:"index"`
	Source  string `json:"source"`
	Kind    string `json:"kind"`
	Stage   string `json:"stage"`
	Code    string `json:"code,omitempty"`
	Message string `json:"message,omitempty"`
	Hint    string `json:"hint,omitempty"`
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
	raw, err := s.Redis.Get(ctx, s.key(dedupe, "")).Bytes()
	if errors.Is(err, redis.Nil) {
		return Terminal{}, false, nil
	}
	if err != nil {
		return Terminal{}, false, s.failed(fmt.Errorf("read task state: %w", err))
	}
	var t Terminal
	if err := json.Unmarshal(raw, &t); err != nil {
		return Terminal{}, false, fmt.Errorf("decode task state: %w", err)
	}
	return t, true, nil
}

// RecordError stores the last error of a task that will be retried.
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
	raw, err := s.Redis.Get(ctx, s.key(dedupe, ":error")).Bytes()
	if errors.Is(err, redis.Nil) {
		return LastError{}, false, nil
	}
	if err != nil {
		return LastError{}, false, s.failed(fmt.Errorf("read last error: %w", err))
	}
	var e LastError
	if err := json.Unmarshal(raw, &e); err != nil {
		return LastError{}, false, fmt.Errorf("decode last error: %w", err)
	}
	return e, true, nil
}

// unlockScript deletes the lock only if it still holds our token, so a worker
// whose lock expired cannot release another worker's lock.
var unlockScript = redis.NewScript(`if redis.call("GET", KEYS[1]) == ARGV[1] then return redis.call("DEL", KEYS[1]) else return 0 end`)

// extendScript extends the lock only if it still holds our token.
var extendScript = redis.NewScript(`if redis.call("GET", KEYS[1]) == ARGV[1] then return redis.call("PEXPIRE", KEYS[1], ARGV[2]) else return 0 end`)

// TaskLock is a held per-task lock.
type TaskLock struct {
	s     *State
	key   string
	token string
	ttl   time.Duration
	stop  chan struct{}
	done  chan struct{}
	once  sync.Once
}

func (s *State) newLock(dedupe string, ttl time.Duration) *TaskLock {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return &TaskLock{s: s, key: s.key(dedupe, ":lock"), token: hex.EncodeToString(b), ttl: ttl,
		stop: make(chan struct{}), done: make(chan struct{})}
}

func (l *TaskLock) keep() {
	defer close(l.done)
	t := time.NewTicker(l.ttl / 3)
	defer t.Stop()
	for {
		select {
		case <-l.stop:
			return
		case <-t.C:
			ctx, cancel := context.WithTimeout(context.Background(), l.ttl/3)
			_ = extendScript.Run(ctx, l.s.Redis, []string{l.key}, l.token, l.ttl.Milliseconds()).Err()
			cancel()
		}
	}
}

// Unlock stops extending the lock and releases it if it is still ours. It
// may be called after Finish released it (then it does nothing).
func (l *TaskLock) Unlock(ctx context.Context) error {
	if l == nil || !l.stopKeeping() {
		return nil
	}
	return unlockScript.Run(ctx, l.s.Redis, []string{l.key}, l.token).Err()
}

// stopKeeping stops the extension goroutine; false when it was already
// stopped.
func (l *TaskLock) stopKeeping() bool {
	stopped := false
	l.once.Do(func() {
		close(l.stop)
		<-l.done
		stopped = true
	})
	return stopped
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

// Begin is Terminal and Lock in one round trip: it returns the task's
// terminal record when there is one (done is true), else takes the task's
// lock (lock non-nil) or reports it held by another worker (both nil/false).
// An error means Redis could not answer; the caller proceeds unlocked.
func (s *State) Begin(ctx context.Context, dedupe string, ttl time.Duration) (t Terminal, done bool, lock *TaskLock, err error) {
	l := s.newLock(dedupe, ttl)
	res, err := beginScript.Run(ctx, s.Redis, []string{s.key(dedupe, ""), l.key}, l.token, ttl.Milliseconds()).Slice()
	if err != nil {
		return Terminal{}, false, nil, s.failed(fmt.Errorf("begin task: %w", err))
	}
	switch code, _ := res[0].(int64); code {
	case 1:
		raw, _ := res[1].(string)
		if err := json.Unmarshal([]byte(raw), &t); err != nil {
			return Terminal{}, false, nil, fmt.Errorf("decode task state: %w", err)
		}
		return t, true, nil, nil
	case 2:
		go l.keep()
		return Terminal{}, false, l, nil
	default:
		return Terminal{}, false, nil, nil
	}
}

// Finish is RecordTerminal and Unlock in one round trip. lock may be nil
// (the task ran unlocked).
func (s *State) Finish(ctx context.Context, dedupe string, t Terminal, lock *TaskLock) error {
	token := ""
	if lock != nil {
		lock.stopKeeping()
		token = lock.token
	}
	raw, _ := json.Marshal(t)
	if err := finishScript.Run(ctx, s.Redis, []string{s.key(dedupe, ""), s.key(dedupe, ":error"), s.key(dedupe, ":lock")},
		raw, int64(s.ttl()/time.Second), token).Err(); err != nil {
		return s.failed(fmt.Errorf("record task state: %w", err))
	}
	return nil
}
