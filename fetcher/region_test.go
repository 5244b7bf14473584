package fetcher

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"
)

// TestRegionCacheRedisDownIsLoggedOnce: with Redis unreachable every lookup
// fails; the region cache falls back to memory and says so once per
// interval, not once per request.
func TestRegionCacheRedisDownIsLoggedOnce(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	// Nothing listens on port 1: every command fails with connection refused.
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1, DialerRetries: 1, DialTimeout: time.Second})
	t.Cleanup(func() { _ = rdb.Close() })
	rc := newRegionCache(rdb, "p", time.Hour, zerolog.New(&buf))
	ctx := context.Background()
	for range 3 {
		if _, ok := rc.get(ctx, "b-unknown"); ok {
			t.Fatal("get found a region with Redis down and nothing in memory")
		}
		rc.put(ctx, "b", "eu-west-1")
	}
	if region, ok := rc.get(ctx, "b"); !ok || region != "eu-west-1" {
		t.Fatalf("in-process fallback: get = %q, %v", region, ok)
	}
	if n := strings.Count(buf.String(), `"level":"warn"`); n != 1 {
		t.Fatalf("want one warning, got %d:\n%s", n, buf.String())
	}
}
