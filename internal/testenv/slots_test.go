package testenv

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/ferryworks/ferry/internal/redisconn"
)

func TestSlotKnownValues(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		key  string
		slot int
	}{
		// CRC16/XMODEM's check value is 0x31C3 for "123456789".
		{"123456789", 0x31C3},
		// Values from the Redis Cluster specification and CLUSTER KEYSLOT.
		{"foo", 12182},
		{"somekey", 11058},
		{"{user1000}.following", Slot("user1000")},
		{"foo{}{bar}", Slot("foo{}{bar}")}, // an empty tag: the whole key
		{"foo{{bar}}zap", Slot("{bar")},
		{"foo{bar}{zap}", Slot("bar")},
	} {
		if got := Slot(tc.key); got != tc.slot {
			t.Errorf("Slot(%q) = %d, want %d", tc.key, got, tc.slot)
		}
	}
	if Slot("foo{}{bar}") == Slot("bar") {
		t.Error("an empty hash tag must not select the next one")
	}
}

// TestSlotMatchesCluster checks Slot against the real cluster's CLUSTER
// KEYSLOT when the tests run on one.
func TestSlotMatchesCluster(t *testing.T) {
	t.Parallel()
	if !RedisCluster() {
		// Against one server the known values above are the check; CLUSTER
		// KEYSLOT is refused there.
		return
	}
	c := RedisClient(t)
	ctx := context.Background()
	for i := range 200 {
		key := fmt.Sprintf("ferry:{cust-%d}:creds", i)
		if i%2 == 1 {
			key = fmt.Sprintf("ferry:task:{t-%d/s-%d}:lock", i, i)
		}
		want, err := c.ClusterKeySlot(ctx, key).Result()
		if err != nil {
			t.Fatal(err)
		}
		if got := Slot(key); got != int(want) {
			t.Fatalf("Slot(%q) = %d, CLUSTER KEYSLOT = %d", key, got, want)
		}
	}
}

// recordingTB captures what CheckScriptSlots reports.
type recordingTB struct {
	testing.TB
	mu       sync.Mutex
	errs     []string
	cleanups []func()
}

func (r *recordingTB) Helper() {}
func (r *recordingTB) Errorf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.errs = append(r.errs, fmt.Sprintf(format, args...))
}
func (r *recordingTB) Cleanup(f func()) { r.cleanups = append(r.cleanups, f) }

func TestCheckScriptSlotsFlagsCrossSlotScripts(t *testing.T) {
	t.Parallel()
	// A client of its own: RedisClient's would report to t itself.
	c, err := redisconn.Open(RedisURL(t), redisMode())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	prefix := "ferrytest-slots-" + randHex(4)
	rec := &recordingTB{TB: t}
	log := CheckScriptSlots(rec, c)
	same := redis.NewScript(`return redis.call("SET", KEYS[1], ARGV[1]) and redis.call("DEL", KEYS[2])`)
	if err := same.Run(ctx, c, []string{prefix + ":{a}:x", prefix + ":{a}:y"}, "1").Err(); err != nil {
		t.Fatalf("a one-slot script failed: %v", err)
	}
	cross := []string{prefix + ":{a}:x", prefix + ":{b}:y"}
	if Slot(cross[0]) == Slot(cross[1]) {
		t.Fatal("the test's keys share a slot: pick others")
	}
	err = same.Run(ctx, c, cross, "1").Err()
	if RedisCluster() && (err == nil || !strings.Contains(err.Error(), "CROSSSLOT")) {
		t.Errorf("the cluster ran a cross-slot script: %v", err)
	}
	c.Del(ctx, prefix+":{a}:x", prefix+":{a}:y")
	c.Del(ctx, prefix+":{b}:y")
	for _, f := range rec.cleanups {
		f()
	}
	if len(rec.errs) != 1 || !strings.Contains(rec.errs[0], "one cluster slot") {
		t.Errorf("CheckScriptSlots reported %q, want one cross-slot finding", rec.errs)
	}
	if n := len(log.Calls()); n < 2 {
		t.Errorf("the log holds %d scripts, want at least 2", n)
	}
}
