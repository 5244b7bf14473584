// Package redislock is the fleet's one lock on a Redis key: a random token
// set with NX and a TTL, extended and released only by the holder of that
// token. A holder whose lock expired (a long GC pause, a partition) can
// therefore never extend or release a lock someone else has taken since.
package redislock

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// Client is what a Lock needs of a Redis client; redis.UniversalClient
// satisfies it.
type Client interface {
	redis.Scripter
	SetNX(ctx context.Context, key string, value any, expiration time.Duration) *redis.BoolCmd
}

// unlockScript deletes the lock only if it still holds our token.
var unlockScript = redis.NewScript(`
if redis.call("GET", KEYS[1]) == ARGV[1] then
	return redis.call("DEL", KEYS[1])
end
return 0`)

// extendScript extends the lock only if it still holds our token.
var extendScript = redis.NewScript(`
if redis.call("GET", KEYS[1]) == ARGV[1] then
	return redis.call("PEXPIRE", KEYS[1], ARGV[2])
end
return 0`)

// Lock is one attempt at holding a lock on a Redis key. It is not held
// until TryLock reports true, or until a caller's own script has run
// `SET Key() Token() NX PX TTL` successfully (to take the lock in the same
// round trip as other work).
type Lock struct {
	rdb   Client
	key   string
	token string
	ttl   time.Duration

	kept bool // Keep started the extension goroutine
	stop chan struct{}
	done chan struct{}
	once sync.Once
}

// New returns an attempt at the lock on key, with a fresh random token, that
// expires ttl after it is taken unless Keep extends it.
func New(rdb Client, key string, ttl time.Duration) *Lock {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand does not fail on supported platforms
	}
	return &Lock{rdb: rdb, key: key, token: hex.EncodeToString(b), ttl: ttl,
		stop: make(chan struct{}), done: make(chan struct{})}
}

// Key is the Redis key the lock lives at.
func (l *Lock) Key() string { return l.key }

// Token is the value the lock holds while it is ours.
func (l *Lock) Token() string { return l.token }

// TTL is how long the lock lives unless extended.
func (l *Lock) TTL() time.Duration { return l.ttl }

// TryLock takes the lock if nobody holds it; false means someone does. An
// error means Redis could not answer, and the lock is not ours.
func (l *Lock) TryLock(ctx context.Context) (bool, error) {
	return l.rdb.SetNX(ctx, l.key, l.token, l.ttl).Result()
}

// Keep extends the held lock by its TTL every third of its TTL, in the
// background, until Unlock or StopKeeping. A failed extension is not
// retried early: the next tick tries again, and if Redis stays away the lock
// expires, which is the point of a TTL. Call it at most once, after the lock
// was taken.
func (l *Lock) Keep() {
	l.kept = true
	go func() {
		defer close(l.done)
		t := time.NewTicker(l.ttl / 3)
		defer t.Stop()
		for {
			select {
			case <-l.stop:
				return
			case <-t.C:
				ctx, cancel := context.WithTimeout(context.Background(), l.ttl/3)
				_ = extendScript.Run(ctx, l.rdb, []string{l.key}, l.token, l.ttl.Milliseconds()).Err()
				cancel()
			}
		}
	}()
}

// StopKeeping stops extending the lock without releasing it, for a caller
// that releases it in its own script (comparing Token). It reports false
// when the lock was already stopped or unlocked.
func (l *Lock) StopKeeping() bool {
	stopped := false
	l.once.Do(func() {
		close(l.stop)
		if l.kept {
			<-l.done
		}
		stopped = true
	})
	return stopped
}

// Unlock stops extending the lock and deletes it if it still holds our
// token; after it expired and someone else took it, Unlock leaves theirs
// alone. A second Unlock, or one after StopKeeping, does nothing. A nil Lock
// is a lock never taken: Unlock does nothing.
func (l *Lock) Unlock(ctx context.Context) error {
	if l == nil || !l.StopKeeping() {
		return nil
	}
	return unlockScript.Run(ctx, l.rdb, []string{l.key}, l.token).Err()
}
