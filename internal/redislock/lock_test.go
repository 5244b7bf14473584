package redislock_test

import (
	"context"
	"testing"
	"time"

	"github.com/ferryworks/ferry/internal/redislock"
	"github.com/ferryworks/ferry/internal/testenv"
)

func TestLockIsExclusiveAndOnlyItsHolderReleasesIt(t *testing.T) {
	t.Parallel()
	rdb, prefix := testenv.Redis(t)
	ctx := context.Background()
	key := prefix + ":lock"

	a := redislock.New(rdb, key, time.Minute)
	if ok, err := a.TryLock(ctx); !ok || err != nil {
		t.Fatalf("first TryLock = %v, %v; want the lock", ok, err)
	}
	b := redislock.New(rdb, key, time.Minute)
	if ok, err := b.TryLock(ctx); ok || err != nil {
		t.Fatalf("second TryLock = %v, %v; want it held", ok, err)
	}
	if err := b.Unlock(ctx); err != nil {
		t.Fatal(err)
	}
	if got, _ := rdb.Get(ctx, key).Result(); got != a.Token() {
		t.Fatalf("a non-holder's Unlock changed the lock to %q", got)
	}

	// a's lock expires and c takes it: a's late Unlock must leave c's alone.
	rdb.Del(ctx, key)
	c := redislock.New(rdb, key, time.Minute)
	if ok, err := c.TryLock(ctx); !ok || err != nil {
		t.Fatalf("TryLock after expiry = %v, %v", ok, err)
	}
	if err := a.Unlock(ctx); err != nil {
		t.Fatal(err)
	}
	if got, _ := rdb.Get(ctx, key).Result(); got != c.Token() {
		t.Fatalf("an expired holder's Unlock released the new holder's lock (now %q)", got)
	}
	if err := c.Unlock(ctx); err != nil {
		t.Fatal(err)
	}
	if n, _ := rdb.Exists(ctx, key).Result(); n != 0 {
		t.Fatal("Unlock by the holder left the lock")
	}
	if err := c.Unlock(ctx); err != nil {
		t.Fatalf("second Unlock = %v, want nil", err)
	}
	var never *redislock.Lock
	if err := never.Unlock(ctx); err != nil {
		t.Fatalf("Unlock of a nil lock = %v", err)
	}
}

func TestKeepExtendsTheLockUntilStopped(t *testing.T) {
	t.Parallel()
	rdb, prefix := testenv.Redis(t)
	ctx := context.Background()
	key := prefix + ":lock"
	l := redislock.New(rdb, key, 3*time.Second)
	if ok, err := l.TryLock(ctx); !ok || err != nil {
		t.Fatalf("TryLock = %v, %v", ok, err)
	}
	l.Keep()
	// Without extension the TTL only falls; seeing it rise proves Keep ran.
	lowest := rdb.PTTL(ctx, key).Val()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ttl := rdb.PTTL(ctx, key).Val()
		if ttl <= 0 {
			t.Fatalf("the kept lock is gone (PTTL %v)", ttl)
		}
		if ttl > lowest {
			break
		}
		lowest = ttl
		if time.Now().After(deadline) {
			t.Fatal("Keep never extended the lock")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if !l.StopKeeping() {
		t.Fatal("StopKeeping of a kept lock reported it already stopped")
	}
	if err := l.Unlock(ctx); err != nil { // after StopKeeping: a no-op
		t.Fatal(err)
	}
	if got, _ := rdb.Get(ctx, key).Result(); got != l.Token() {
		t.Fatalf("Unlock after StopKeeping released the lock (now %q); the caller releases it", got)
	}
}
