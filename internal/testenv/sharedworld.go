package testenv

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ferryworks/ferry/internal/demo"
	"github.com/ferryworks/ferry/internal/localaws"
)

// sharedDemo is the demo world SharedWorld seeds once into SharedLocalAWS.
var sharedDemo struct {
	once  sync.Once
	m     demo.Manifest
	fleet localaws.Account
	err   error
}

// SharedWorld is NewWorld on the test binary's shared stack
// (SharedLocalAWS): the demo customers, their buckets, objects, keys and
// roles are seeded once, by the first caller, and only read by the tests
// that share them. What a test writes stays its own: it gets a tasks queue,
// DLQ, events queue and internal bucket of its own (the demo names with a
// random suffix, demo.SeedFleetResources), DefaultSpareAccounts fresh spare
// accounts, and the demo integrations under a Redis prefix of its own. The
// rule of SharedLocalAWS applies: a test that injects faults or reads the
// stack's counts uses NewWorld, and the package's TestMain calls Main
// (or Run).
func SharedWorld(t testing.TB) *World {
	t.Helper()
	return onTestRedis(t, SharedWorldOn)
}

// SharedWorldOn is SharedWorld with its integrations in the given Redis
// (e.g. a StartRedis server the test will stop) under prefix; Env's
// FERRY_REDIS_URL is redisURL.
func SharedWorldOn(t testing.TB, rdb redis.UniversalClient, redisURL, prefix string) *World {
	t.Helper()
	stack := SharedLocalAWS(t)
	sharedDemo.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		m, env, err := demo.Seed(ctx, stack, redisURL)
		sharedDemo.m, sharedDemo.fleet, sharedDemo.err = m, fleetOf(m, env), err
	})
	if sharedDemo.err != nil {
		t.Fatalf("seed the shared demo world: %v", sharedDemo.err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	m := sharedDemo.m
	// RegisterIntegrations writes into the customers it registers.
	m.Customers = slices.Clone(sharedDemo.m.Customers)
	suffix := "-" + randHex(4)
	var err error
	if m.Queues, err = demo.SeedFleetResources(ctx, stack, sharedDemo.fleet, suffix); err != nil {
		t.Fatalf("the test's queues and internal bucket: %v", err)
	}
	m.InternalBucket = demo.InternalBucket + suffix
	if m.SpareAccounts, err = demo.NewSpareAccounts(stack, make([]string, demo.DefaultSpareAccounts)...); err != nil {
		t.Fatal(err)
	}
	return worldOf(t, stack, m, demo.FleetEnv(stack.URL, sharedDemo.fleet, m, redisURL), rdb, prefix)
}
