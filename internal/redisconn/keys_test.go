package redisconn_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/ferryworks/ferry/internal/redisconn"
	"github.com/ferryworks/ferry/internal/testenv"
)

// Keys finds every matching key, including on a cluster, where the keys
// spread over every master and SCAN answers for one node only.
func TestKeysEveryNode(t *testing.T) {
	rdb, prefix := testenv.Redis(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var want []string
	for i := range 60 {
		// Each key its own hash tag: on a cluster they land on every shard.
		k := fmt.Sprintf("%s:{k%d}:v", prefix, i)
		if err := rdb.Set(ctx, k, "x", time.Minute).Err(); err != nil {
			t.Fatal(err)
		}
		want = append(want, k)
	}
	if err := rdb.Set(ctx, prefix+"-other:{k1}:v", "x", time.Minute).Err(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rdb.Del(context.Background(), prefix+"-other:{k1}:v") })
	got, err := redisconn.Keys(ctx, rdb, prefix+":*")
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("Keys found %d keys, want the %d set (and not the other prefix's): %v", len(got), len(want), got)
	}
}
