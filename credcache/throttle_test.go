package credcache

import (
	"bytes"
	"encoding/json"
	"errors"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"
)

// logLines decodes the JSON lines zerolog wrote into level→messages.
func logLines(t *testing.T, buf *bytes.Buffer) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	dec := json.NewDecoder(buf)
	for dec.More() {
		var l struct{ Level, Message string }
		if err := dec.Decode(&l); err != nil {
			t.Fatal(err)
		}
		out[l.Level] = append(out[l.Level], l.Message)
	}
	return out
}

// TestRegistryLossIsLoggedRightAfterARedisWarning: the "Redis unavailable"
// warning and the "registry missing (data loss?)" error are throttled
// separately, so the error that follows a warning within the interval (a
// Redis restart that lost the data) is logged; each repeats at most once
// per interval.
func TestRegistryLossIsLoggedRightAfterARedisWarning(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	// The client is never used: no command is sent.
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	t.Cleanup(func() { _ = rdb.Close() })
	r, err := NewRegistry(Options{Redis: rdb, Keys: [][]byte{make([]byte, 32)}, Logger: zerolog.New(&buf)})
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		r.redisFailed(errors.New("dial tcp 127.0.0.1:6379: connect: connection refused"))
		r.warnLost()
	}
	got := logLines(t, &buf)
	if len(got["warn"]) != 1 || len(got["error"]) != 1 {
		t.Fatalf("want one warning and one error, got %q", got)
	}
}

func TestCacheRedisWarningIsThrottled(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	// Neither client is used: no command or call is sent.
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	t.Cleanup(func() { _ = rdb.Close() })
	c, err := New(Options{Redis: rdb, STS: sts.New(sts.Options{Region: "us-east-1"}), Keys: [][]byte{make([]byte, 32)}, Logger: zerolog.New(&buf)})
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		c.redisFailed(errors.New("connection refused"))
	}
	if got := logLines(t, &buf); len(got["warn"]) != 1 {
		t.Fatalf("want one warning, got %q", got)
	}
}
