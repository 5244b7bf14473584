// Package testenv gives integration tests the real parts they stand on: a
// Redis from FERRY_REDIS_URL with a key prefix of their own, a localaws
// stack per test, and the demo world, per test or shared by a test binary's
// tests (SharedWorld).
package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/redis/go-redis/v9"

	"github.com/ferryworks/ferry/internal/demo"
	"github.com/ferryworks/ferry/internal/localaws"
	"github.com/ferryworks/ferry/internal/redisconn"
)

// RedisCluster reports whether FERRY_REDIS_MODE selects a Redis Cluster
// (.ci/with-redis-cluster.sh sets it), in which case FERRY_REDIS_URL is a
// cluster URL.
func RedisCluster() bool {
	return redisMode() == redisconn.Cluster
}

// redisMode is FERRY_REDIS_MODE as ferry reads it (case-insensitive).
func redisMode() redisconn.Mode {
	return redisconn.Mode(strings.ToLower(strings.TrimSpace(os.Getenv("FERRY_REDIS_MODE"))))
}

// Integration marks t as an integration test: one that stands on real parts
// (Redis, a local AWS, a built binary or script) and takes seconds. `go test
// -short` (make check, the edit loop) skips it; make test, which CI runs,
// never passes -short and so runs every one. The helpers below that start
// real parts call it themselves.
func Integration(t testing.TB) {
	t.Helper()
	if testing.Short() {
		t.Skip("integration test: skipped with -short (make check); make test runs it")
	}
}

// RedisURL returns FERRY_REDIS_URL. Without it the test fails when CI is set
// (CI must run every test) and is skipped otherwise, with a message saying how
// to run it (make test starts a throwaway redis-server).
func RedisURL(t testing.TB) string {
	t.Helper()
	Integration(t)
	u := os.Getenv("FERRY_REDIS_URL")
	if u == "" {
		if os.Getenv("CI") != "" {
			t.Fatal("FERRY_REDIS_URL is not set but CI is: integration tests need Redis; run them with `make test`")
		}
		t.Skip("FERRY_REDIS_URL not set; run `make test`, which starts a throwaway redis-server")
	}
	return u
}

// Redis returns a client for the test Redis (one server, or a cluster when
// FERRY_REDIS_MODE=cluster) and a key prefix unique to this test; keys under
// the prefix are deleted when the test ends. Every script the test runs
// through the client is checked to keep its keys in one cluster slot (see
// CheckScriptSlots), in both modes.
func Redis(t testing.TB) (redis.UniversalClient, string) {
	t.Helper()
	c := RedisClient(t)
	prefix := "ferrytest-" + sanitize(t.Name()) + "-" + randHex(4)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		del := func(ctx context.Context, c redis.UniversalClient) error {
			iter := c.Scan(ctx, 0, prefix+":*", 500).Iterator()
			for iter.Next(ctx) {
				c.Del(ctx, iter.Val())
			}
			return iter.Err()
		}
		if cc, ok := c.(*redis.ClusterClient); ok {
			// SCAN covers one node; every master holds a share of the keys.
			_ = cc.ForEachMaster(ctx, func(ctx context.Context, n *redis.Client) error { return del(ctx, n) })
		} else {
			_ = del(ctx, c)
		}
	})
	return c, prefix
}

// RedisClient returns another client of the test Redis (as a separate
// worker process would have its own), closed when the test ends, with its
// scripts checked like Redis's.
func RedisClient(t testing.TB) redis.UniversalClient {
	t.Helper()
	c, err := redisconn.Open(RedisURL(t), redisMode())
	if err != nil {
		t.Fatalf("FERRY_REDIS_URL: %v", err)
	}
	t.Cleanup(func() { _ = c.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.Ping(ctx).Err(); err != nil {
		t.Fatalf("redis at FERRY_REDIS_URL not reachable: %v", err)
	}
	CheckScriptSlots(t, c)
	return c
}

// Keys returns the keys matching pattern on every master (KEYS and SCAN
// answer for one node of a cluster). For tests only: it walks the keyspace.
func Keys(t testing.TB, c redis.UniversalClient, pattern string) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	keys, err := redisconn.Keys(ctx, c, pattern)
	if err != nil {
		t.Fatalf("scan %s: %v", pattern, err)
	}
	return keys
}

// LocalAWS starts a localaws stack for this test, serving https as AWS
// does in production (so uploads travel aws-chunked with trailing
// checksums), and stops it at cleanup. Its Config trusts the stack's CA.
func LocalAWS(t testing.TB) *localaws.Stack {
	t.Helper()
	return StartLocalAWS(t, localaws.Options{TLS: true})
}

// LocalAWSPlainHTTP is LocalAWS over plain http, for the tests that keep
// an http variant.
func LocalAWSPlainHTTP(t testing.TB) *localaws.Stack {
	t.Helper()
	return StartLocalAWS(t, localaws.Options{})
}

// StartLocalAWS starts a localaws stack with opts and stops it at cleanup.
func StartLocalAWS(t testing.TB, opts localaws.Options) *localaws.Stack {
	t.Helper()
	Integration(t)
	s, err := localaws.Start(opts)
	if err != nil {
		t.Fatalf("start localaws: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// CABundle writes the stack's CA to a file of this test and returns its
// path, for AWS_CA_BUNDLE; "" for a plain-http stack.
func CABundle(t testing.TB, s *localaws.Stack) string {
	t.Helper()
	if !s.TLS() {
		return ""
	}
	path := filepath.Join(t.TempDir(), "localaws-ca.pem")
	if err := os.WriteFile(path, s.CAPEM(), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func sanitize(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' {
			return r
		}
		return '_'
	}, s)
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// World is the demo world (internal/demo) seeded into a localaws stack of
// this test's own, with the demo integrations registered under a Redis
// prefix of its own: the same world `make run` serves.
type World struct {
	Stack    *localaws.Stack
	Manifest demo.Manifest
	Env      demo.Env
	Redis    redis.UniversalClient
	Prefix   string
	// Fleet is the fleet's account; FleetConfig signs as it.
	Fleet       localaws.Account
	FleetConfig aws.Config
}

// NewWorld seeds the demo world for this test.
func NewWorld(t testing.TB) *World {
	t.Helper()
	return onTestRedis(t, NewWorldOn)
}

// onTestRedis is world (NewWorldOn, SharedWorldOn) on the test Redis, under
// a prefix of this test's own.
func onTestRedis(t testing.TB, world func(t testing.TB, rdb redis.UniversalClient, redisURL, prefix string) *World) *World {
	t.Helper()
	rdb, prefix := Redis(t)
	return world(t, rdb, RedisURL(t), prefix)
}

// NewWorldOn seeds the demo world with its integrations in the given Redis
// (e.g. a StartRedis server the test will stop) under prefix. The stack
// serves https; Env points AWS_CA_BUNDLE at its CA, as devstack -tls does.
func NewWorldOn(t testing.TB, rdb redis.UniversalClient, redisURL, prefix string) *World {
	t.Helper()
	return newWorld(t, LocalAWS(t), rdb, redisURL, prefix)
}

// NewWorldWith is NewWorld on a stack started with opts, e.g. an IAMDelay
// that holds back roles the test creates through the IAM API (the demo
// world's own roles are in force at once).
func NewWorldWith(t testing.TB, opts localaws.Options) *World {
	t.Helper()
	rdb, prefix := Redis(t)
	return newWorld(t, StartLocalAWS(t, opts), rdb, RedisURL(t), prefix)
}

// NewPlainHTTPWorld is NewWorld over plain http.
func NewPlainHTTPWorld(t testing.TB) *World {
	t.Helper()
	rdb, prefix := Redis(t)
	return newWorld(t, LocalAWSPlainHTTP(t), rdb, RedisURL(t), prefix)
}

func newWorld(t testing.TB, stack *localaws.Stack, rdb redis.UniversalClient, redisURL, prefix string) *World {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	m, env, err := demo.Seed(ctx, stack, redisURL)
	if err != nil {
		t.Fatalf("seed demo world: %v", err)
	}
	return worldOf(t, stack, m, env, rdb, prefix)
}

// worldOf registers m's integrations in rdb under prefix and returns the
// World, its Env trusting the stack's CA.
func worldOf(t testing.TB, stack *localaws.Stack, m demo.Manifest, env demo.Env, rdb redis.UniversalClient, prefix string) *World {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := demo.RegisterIntegrations(ctx, rdb, prefix, &m); err != nil {
		t.Fatalf("register demo integrations: %v", err)
	}
	if ca := CABundle(t, stack); ca != "" {
		env = env.WithCABundle(ca)
	}
	fleet := fleetOf(m, env)
	return &World{Stack: stack, Manifest: m, Env: env, Redis: rdb, Prefix: prefix, Fleet: fleet,
		FleetConfig: stack.Config(fleet, demo.DefaultRegion)}
}

// fleetOf is the fleet's account as env signs for it.
func fleetOf(m demo.Manifest, env demo.Env) localaws.Account {
	return localaws.Account{ID: m.FleetAccountID, AccessKeyID: env.Lookup("AWS_ACCESS_KEY_ID"), SecretAccessKey: env.Lookup("AWS_SECRET_ACCESS_KEY")}
}

// Customer returns the manifest entry of a demo customer or fails the test.
func (w *World) Customer(t testing.TB, id string) demo.ManifestCustomer {
	t.Helper()
	c, ok := w.Manifest.Customer(id)
	if !ok {
		t.Fatalf("no demo customer %q", id)
	}
	return c
}

// RedisServer is a private redis-server a test may stop (an outage) and
// start again on the same port (a restart that lost every key).
type RedisServer struct {
	Addr string
	URL  string
	t    testing.TB
	mu   sync.Mutex
	cmd  *exec.Cmd
}

// StartRedis runs a private redis-server on a free loopback port with no
// persistence; it is stopped when the test ends. It follows RedisURL's rule
// for when Redis is missing.
func StartRedis(t testing.TB) *RedisServer {
	t.Helper()
	RedisURL(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	s := &RedisServer{Addr: addr, URL: "redis://" + addr + "/0", t: t}
	s.Start()
	t.Cleanup(s.Stop)
	return s
}

// Start starts the server (again) and waits until it answers.
func (s *RedisServer) Start() {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	_, port, _ := net.SplitHostPort(s.Addr)
	cmd := exec.Command("redis-server", "--port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no")
	if err := cmd.Start(); err != nil {
		s.t.Fatalf("start redis-server: %v", err)
	}
	s.cmd = cmd
	c := redis.NewClient(&redis.Options{Addr: s.Addr})
	defer c.Close()
	for i := 0; c.Ping(context.Background()).Err() != nil; i++ {
		if i == 200 {
			s.t.Fatal("redis-server did not answer")
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// Stop kills the server (every key is lost).
func (s *RedisServer) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		_ = s.cmd.Process.Kill()
		_ = s.cmd.Wait()
		s.cmd = nil
	}
}

// Client returns a client of the server with short timeouts, closed at the
// end of the test.
func (s *RedisServer) Client() *redis.Client {
	c := redis.NewClient(&redis.Options{Addr: s.Addr, DialTimeout: time.Second, ReadTimeout: time.Second, WriteTimeout: time.Second})
	s.t.Cleanup(func() { _ = c.Close() })
	return c
}
