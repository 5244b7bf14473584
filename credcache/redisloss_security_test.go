package credcache_test

import (
	"context"
	"errors"
	"testing"

	"github.com/ferryworks/ferry/credcache"
	"github.com/ferryworks/ferry/internal/testenv"
)

// A Redis that restarts without persistence comes back empty. For a worker
// that had read a customer's enabled integration, "no record" then is data
// loss, not a Disable: answering ErrNotFound makes the fetcher treat a
// delegated customer as cross-account and read their bucket with the
// fleet's own credentials, which the integration guide forbids ("we never
// fetch their attachments with our own account's credentials"). The
// registry must not turn a vanished record it knew as enabled into "never
// registered"; it may serve the last known integration or fail transiently
// until the record is restored.
func TestRegistryLostRecordIsNotADisable(t *testing.T) {
	t.Parallel()
	rdb, prefix := testenv.Redis(t)
	ctx := context.Background()
	key := newKey(t)
	reg := newRegistry(t, rdb, prefix, key)
	if _, err := reg.Enable(ctx, "acme", "222222222222", ""); err != nil {
		t.Fatal(err)
	}
	if in, err := reg.Get(ctx, "acme"); err != nil || !in.Enabled {
		t.Fatalf("Get before the loss = %+v, %v", in, err)
	}
	// The restart: every key is gone, and nobody called Disable.
	keys := testenv.Keys(t, rdb, prefix+":*")
	if len(keys) == 0 {
		t.Fatal("Enable wrote nothing: the test would prove nothing")
	}
	for _, k := range keys { // one at a time: on a cluster they live in several slots
		if err := rdb.Del(ctx, k).Err(); err != nil {
			t.Fatal(err)
		}
	}
	in, err := reg.Get(ctx, "acme")
	if errors.Is(err, credcache.ErrNotFound) {
		t.Fatalf("after Redis lost its keys, Get says acme was never registered: a delegated customer would be read with the fleet's credentials")
	}
	if err == nil && !in.Enabled {
		t.Fatalf("after Redis lost its keys, Get = %+v: the integration is no longer enabled", in)
	}
}
