package credcache_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/ferryworks/ferry/credcache"
	"github.com/ferryworks/ferry/internal/localaws"
	"github.com/ferryworks/ferry/internal/testenv"
)

// fixture is one localaws stack with a fleet account, one Redis prefix and a
// registry sealing with key.
type fixture struct {
	st     *localaws.Stack
	fleet  localaws.Account
	rdb    redis.UniversalClient
	prefix string
	key    []byte
	reg    *credcache.Registry
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	f := &fixture{st: testenv.LocalAWS(t), key: newKey(t)}
	f.rdb, f.prefix = testenv.Redis(t)
	var err error
	if f.fleet, err = f.st.NewAccount(""); err != nil {
		t.Fatal(err)
	}
	f.reg = newRegistry(t, f.rdb, f.prefix, f.key)
	return f
}

// customer creates a customer account with the integration role trusting the
// fleet with the external ID the registry generated, and enables it.
func (f *fixture) customer(t testing.TB, id string) credcache.Integration {
	t.Helper()
	acct, err := f.st.NewAccount("")
	if err != nil {
		t.Fatal(err)
	}
	in, err := f.reg.Enable(context.Background(), id, acct.ID, "")
	if err != nil {
		t.Fatal(err)
	}
	f.putRole(t, in, in.ExternalID)
	return in
}

func (f *fixture) putRole(t testing.TB, in credcache.Integration, trustedExternalID string) {
	t.Helper()
	if _, err := f.st.PutRole(localaws.Role{
		AccountID:   in.AccountID,
		Name:        credcache.DefaultRoleName,
		TrustPolicy: credcache.TrustPolicy(f.fleet.ID, trustedExternalID),
		Policies:    []string{credcache.RolePolicy("bucket-" + in.CustomerID)},
	}); err != nil {
		t.Fatal(err)
	}
}

func (f *fixture) sts(mut ...func(*sts.Options)) *sts.Client {
	return sts.NewFromConfig(f.st.Config(f.fleet, "us-east-1"), mut...)
}

// cache returns a Cache on its own Redis connection and STS client, as a
// separate worker process would have.
func (f *fixture) cache(t testing.TB, mut func(*credcache.Options)) *credcache.Cache {
	t.Helper()
	o := credcache.Options{Redis: testenv.RedisClient(t), Prefix: f.prefix, Keys: [][]byte{f.key}, STS: f.sts()}
	if mut != nil {
		mut(&o)
	}
	c, err := credcache.New(o)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func (f *fixture) assumed(outcome string) int64 {
	return f.st.Stats()["sts:AssumeRole"][outcome]
}

// acme is the setup most tests start from: a fixture with the customer
// "acme" enabled, and a context that ends with the test.
func acme(t testing.TB) (*fixture, credcache.Integration, context.Context) {
	t.Helper()
	f := newFixture(t)
	return f, f.customer(t, "acme"), testenv.Context(t, time.Minute)
}

// twoProcesses returns the caches of two worker processes sharing one
// Redis, and the registry of the metrics they both count in.
func (f *fixture) twoProcesses(t testing.TB) (c1, c2 *credcache.Cache, reg *prometheus.Registry) {
	t.Helper()
	reg = prometheus.NewRegistry()
	m := credcache.NewMetrics(reg)
	c1 = f.cache(t, func(o *credcache.Options) { o.Metrics = m })
	c2 = f.cache(t, func(o *credcache.Options) { o.Metrics = m })
	return c1, c2, reg
}

// counter reads one series from a registry without the testutil module.
func counter(t testing.TB, reg *prometheus.Registry, name, result string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			match := result == ""
			for _, l := range m.GetLabel() {
				if l.GetName() == "result" && l.GetValue() == result {
					match = true
				}
			}
			if match {
				return m.GetCounter().GetValue()
			}
		}
	}
	t.Fatalf("no series %s{result=%q}", name, result)
	return 0
}

func TestCredentialsAssumeOnceThenCache(t *testing.T) {
	t.Parallel()
	f, in, ctx := acme(t)
	c1, c2, reg := f.twoProcesses(t)

	got, err := c1.Credentials(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	if !got.CanExpire || got.Expires.IsZero() || got.AccessKeyID == "" || got.SessionToken == "" || got.AccountID != in.AccountID {
		t.Fatalf("credentials lack expiry or session: CanExpire=%v Expires=%v", got.CanExpire, got.Expires)
	}
	again, err := c1.Credentials(ctx, in)
	if err != nil || again != got {
		t.Fatalf("second lookup differs (err %v)", err)
	}
	fromL2, err := c2.Credentials(ctx, in)
	if err != nil || fromL2.AccessKeyID != got.AccessKeyID || !fromL2.Expires.Equal(got.Expires) {
		t.Fatalf("another process got other credentials (err %v)", err)
	}
	if n := f.assumed("ok"); n != 1 {
		t.Fatalf("AssumeRole ok = %d, want 1", n)
	}
	for result, want := range map[string]float64{"miss": 1, "l1": 1, "l2": 1, "denied_cached": 0} {
		if got := counter(t, reg, "ferry_credcache_lookups_total", result); got != want {
			t.Errorf("lookups{%s} = %v, want %v", result, got, want)
		}
	}
	if got := counter(t, reg, "ferry_sts_assume_role_total", "ok"); got != 1 {
		t.Errorf("assume_role{ok} = %v, want 1", got)
	}

	// Nothing in Redis shows a credential or the external ID.
	secrets := []string{got.AccessKeyID, got.SecretAccessKey, got.SessionToken, in.ExternalID}
	vals := rawValues(t, f.rdb, f.prefix)
	if _, ok := vals[f.prefix+":{acme}:creds"]; !ok {
		t.Fatalf("no creds key in %v", keysOf(vals))
	}
	for k, v := range vals {
		for _, s := range secrets {
			if strings.Contains(v, s) {
				t.Fatalf("%s holds a secret in clear", k)
			}
		}
	}
}

func keysOf(m map[string]string) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	return ks
}

func TestProviderOnSharedS3Client(t *testing.T) {
	t.Parallel()
	f, in, ctx := acme(t)
	bucket := "bucket-acme"
	if err := f.st.CreateBucket(ctx, localaws.Bucket{Name: bucket, Owner: in.AccountID}); err != nil {
		t.Fatal(err)
	}
	body := []byte("attachment bytes")
	if err := f.st.PutObject(ctx, bucket, "k", bytes.NewReader(body), int64(len(body)), "text/plain"); err != nil {
		t.Fatal(err)
	}
	c := f.cache(t, nil)
	shared := s3.NewFromConfig(f.st.Config(f.fleet, "us-east-1"), func(o *s3.Options) { o.UsePathStyle = true })

	// The fleet's own credentials are refused: the bucket grants nobody.
	if _, err := shared.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String("k")}); err == nil {
		t.Fatal("fleet credentials read a bucket that grants nothing")
	}
	out, err := shared.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String("k")},
		func(o *s3.Options) { o.Credentials = c.Provider(in) })
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(out.Body)
	_ = out.Body.Close()
	if !bytes.Equal(got, body) {
		t.Fatalf("read %q", got)
	}

	// A provider for an integration without a role fails, it does not fall
	// back to the client's credentials.
	_, err = shared.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String("k")},
		func(o *s3.Options) { o.Credentials = c.Provider(credcache.Integration{CustomerID: "acme"}) })
	var ae *credcache.AssumeRoleError
	if !errors.As(err, &ae) || !errors.Is(err, credcache.ErrNotDelegated) {
		t.Fatalf("GetObject with a role-less provider = %v, want ErrNotDelegated", err)
	}
}

func TestRefreshWindow(t *testing.T) {
	t.Parallel()
	f, in, ctx := acme(t)
	clk := testenv.FixedClock(time.Now())
	opts := func(o *credcache.Options) {
		o.SessionDuration = 15 * time.Minute // STS's minimum
		o.RefreshWindow = 5 * time.Minute
		o.Now = clk.Now
	}
	c := f.cache(t, opts)

	first, err := c.Credentials(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	ttl := f.rdb.PTTL(ctx, f.prefix+":{acme}:creds").Val()
	if ttl <= 9*time.Minute || ttl > 10*time.Minute+5*time.Second {
		t.Fatalf("Redis TTL = %v, want about expiry - refresh window = 10m", ttl)
	}

	clk.Advance(9 * time.Minute) // still a minute before the refresh window
	if got, err := c.Credentials(ctx, in); err != nil || got.AccessKeyID != first.AccessKeyID {
		t.Fatalf("inside lifetime: new credentials (err %v)", err)
	}
	if got, err := f.cache(t, opts).Credentials(ctx, in); err != nil || got.AccessKeyID != first.AccessKeyID {
		t.Fatalf("inside lifetime, from Redis: new credentials (err %v)", err)
	}
	if n := f.assumed("ok"); n != 1 {
		t.Fatalf("AssumeRole ok = %d before the refresh window, want 1", n)
	}

	clk.Advance(2 * time.Minute) // inside the refresh window
	second, err := c.Credentials(ctx, in)
	if err != nil || second.AccessKeyID == first.AccessKeyID {
		t.Fatalf("inside the refresh window the old credentials were reused (err %v)", err)
	}
	if n := f.assumed("ok"); n != 2 {
		t.Fatalf("AssumeRole ok = %d after the refresh window, want 2", n)
	}
}

func TestFanInOneAssumeRolePerCustomer(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	customers := []credcache.Integration{f.customer(t, "c1"), f.customer(t, "c2"), f.customer(t, "c3")}
	const caches, goroutines = 4, 50
	ctx := testenv.Context(t, time.Minute)

	var mu sync.Mutex
	seen := map[string]map[string]bool{} // customer → access key IDs handed out
	var wg sync.WaitGroup
	errs := make(chan error, caches*goroutines*len(customers))
	start := make(chan struct{})
	for range caches {
		c := f.cache(t, nil)
		for g := range goroutines {
			wg.Go(func() {
				<-start
				for i := range customers {
					in := customers[(g+i)%len(customers)]
					cr, err := c.Credentials(ctx, in)
					if err != nil {
						errs <- err
						return
					}
					mu.Lock()
					if seen[in.CustomerID] == nil {
						seen[in.CustomerID] = map[string]bool{}
					}
					seen[in.CustomerID][cr.AccessKeyID] = true
					mu.Unlock()
				}
			})
		}
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if n := f.assumed("ok"); n != int64(len(customers)) {
		t.Fatalf("AssumeRole ok = %d for %d customers, want one each", n, len(customers))
	}
	for id, keys := range seen {
		if len(keys) != 1 {
			t.Fatalf("customer %s was handed %d different credentials", id, len(keys))
		}
	}
}

func TestLockHolderDiesWaiterTakesOver(t *testing.T) {
	t.Parallel()
	f, in, ctx := acme(t)
	lock := f.prefix + ":{acme}:creds:lock"
	// A process that took the lock and died: nobody will release it.
	if err := f.rdb.Set(ctx, lock, "dead-holder", 400*time.Millisecond).Err(); err != nil {
		t.Fatal(err)
	}
	c := f.cache(t, func(o *credcache.Options) { o.LockTTL = 400 * time.Millisecond })
	if _, err := c.Credentials(ctx, in); err != nil {
		t.Fatal(err)
	}
	if n := f.assumed("ok"); n != 1 {
		t.Fatalf("AssumeRole ok = %d, want 1", n)
	}
	if v := f.rdb.Get(ctx, lock).Val(); v != "" {
		t.Fatalf("lock still held after the fetch: %q", v)
	}
}

func TestDenialCachedAndClearedByEnable(t *testing.T) {
	t.Parallel()
	f, in, ctx := acme(t)
	f.putRole(t, in, "not-"+in.ExternalID) // the customer pasted a wrong external ID
	c1 := f.cache(t, nil)
	c2 := f.cache(t, nil)
	f.reg.AttachCache(c1)

	var ae *credcache.AssumeRoleError
	_, err := c1.Credentials(ctx, in)
	if !errors.As(err, &ae) || !ae.Denied || ae.Cached || ae.Code != "AccessDenied" || ae.RoleARN != in.RoleARN() {
		t.Fatalf("wrong external ID: err = %#v, want AccessDenied, Denied, not Cached", err)
	}
	if strings.Contains(err.Error(), in.ExternalID) {
		t.Fatal("error message contains the external ID")
	}
	for i, c := range []*credcache.Cache{c1, c2} { // L1, then L2 in another process
		_, err = c.Credentials(ctx, in)
		if !errors.As(err, &ae) || !ae.Denied || !ae.Cached || ae.Code != "AccessDenied" {
			t.Fatalf("cache %d: err = %v, want a cached denial", i+1, err)
		}
	}
	f.putRole(t, in, in.ExternalID) // the customer fixes the role…
	if _, err = c1.Credentials(ctx, in); !errors.As(err, &ae) || !ae.Cached {
		t.Fatalf("within DeniedTTL: err = %v, want the cached denial", err)
	}
	if d, ok := f.assumed("denied"), f.assumed("ok"); d != 1 || ok != 0 {
		t.Fatalf("STS saw denied=%d ok=%d, want 1 and 0: the refusal was not cached", d, ok)
	}

	// …and the operator re-enables: every process retries at once.
	in2, err := f.reg.Enable(ctx, "acme", in.AccountID, "")
	if err != nil || in2.ExternalID != in.ExternalID {
		t.Fatalf("re-Enable = %v (external ID kept: %v)", err, in2.ExternalID == in.ExternalID)
	}
	if _, err := c1.Credentials(ctx, in2); err != nil {
		t.Fatalf("after Enable: %v", err)
	}
	if _, err := c2.Credentials(ctx, in2); err != nil {
		t.Fatalf("after Enable, other process: %v", err)
	}
	if n := f.assumed("ok"); n != 1 {
		t.Fatalf("AssumeRole ok = %d, want 1", n)
	}
}

func TestChangedExternalIDNotReused(t *testing.T) {
	t.Parallel()
	f, in, ctx := acme(t)
	c := f.cache(t, nil) // not attached to the registry: the fingerprint must do it
	first, err := c.Credentials(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	in2, err := f.reg.Enable(ctx, "acme", in.AccountID, "rotated-external-id")
	if err != nil {
		t.Fatal(err)
	}
	// The role still trusts the old ID only: the new integration must be
	// checked against STS, not served the old session.
	_, err = c.Credentials(ctx, in2)
	var ae *credcache.AssumeRoleError
	if !errors.As(err, &ae) || !ae.Denied {
		t.Fatalf("changed external ID served cached credentials (err %v)", err)
	}
	f.putRole(t, in2, in2.ExternalID)
	in3, _ := f.reg.Enable(ctx, "acme", in.AccountID, "")
	got, err := c.Credentials(ctx, in3)
	if err != nil || got.AccessKeyID == first.AccessKeyID {
		t.Fatalf("after rotation: err %v, reused %v", err, got.AccessKeyID == first.AccessKeyID)
	}
}

func TestThrottlingIsNotADenial(t *testing.T) {
	t.Parallel()
	f, in, ctx := acme(t)
	c := f.cache(t, func(o *credcache.Options) {
		o.STS = f.sts(func(o *sts.Options) { o.RetryMaxAttempts = 1 })
	})
	if err := f.st.InjectFault(localaws.Fault{Operation: "sts:AssumeRole", Status: 400, Code: "Throttling", Message: "Rate exceeded"}); err != nil {
		t.Fatal(err)
	}
	_, err := c.Credentials(ctx, in)
	var ae *credcache.AssumeRoleError
	if !errors.As(err, &ae) || ae.Denied || ae.Cached || ae.Code != "Throttling" {
		t.Fatalf("throttled: err = %v, want Throttling, not Denied", err)
	}
	if n := f.rdb.Exists(ctx, f.prefix+":{acme}:creds:denied").Val(); n != 0 {
		t.Fatal("throttling was cached as a denial")
	}
	f.st.ClearFaults()
	if _, err := c.Credentials(ctx, in); err != nil {
		t.Fatalf("after throttling cleared: %v", err)
	}
}

func TestInvalidateForcesAssumeRole(t *testing.T) {
	t.Parallel()
	f, in, ctx := acme(t)
	c := f.cache(t, nil)
	first, err := c.Credentials(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Invalidate(ctx, "acme"); err != nil {
		t.Fatal(err)
	}
	second, err := c.Credentials(ctx, in)
	if err != nil || second.AccessKeyID == first.AccessKeyID {
		t.Fatalf("Invalidate did not force new credentials (err %v)", err)
	}
	if n := f.assumed("ok"); n != 2 {
		t.Fatalf("AssumeRole ok = %d, want 2", n)
	}
	if err := c.Invalidate(ctx, "a b"); !errors.Is(err, credcache.ErrInvalid) {
		t.Fatalf("Invalidate(invalid id) = %v", err)
	}
}

func TestRedisDownKeepsServing(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	a, b := f.customer(t, "a"), f.customer(t, "b")
	srv := testenv.StartRedis(t)
	rdb := srv.Client()
	reg := prometheus.NewRegistry()
	c, err := credcache.New(credcache.Options{Redis: rdb, Keys: [][]byte{f.key}, STS: f.sts(), Metrics: credcache.NewMetrics(reg)})
	if err != nil {
		t.Fatal(err)
	}
	ctx := testenv.Context(t, time.Minute)
	before, err := c.Credentials(ctx, a)
	if err != nil {
		t.Fatal(err)
	}

	srv.Stop()

	if got, err := c.Credentials(ctx, a); err != nil || got.AccessKeyID != before.AccessKeyID {
		t.Fatalf("Redis down, cached customer: err %v", err)
	}
	if _, err := c.Credentials(ctx, b); err != nil {
		t.Fatalf("Redis down, new customer: %v", err)
	}
	if n := f.assumed("ok"); n != 2 {
		t.Fatalf("AssumeRole ok = %d, want 2", n)
	}
	if err := c.Invalidate(ctx, "a"); err == nil {
		t.Fatal("Invalidate with Redis down reported success")
	}
	if got, err := c.Credentials(ctx, a); err != nil || got.AccessKeyID == before.AccessKeyID {
		t.Fatalf("Redis down, after Invalidate: err %v, reused %v", err, got.AccessKeyID == before.AccessKeyID)
	}
	if n := counter(t, reg, "ferry_redis_errors_total", ""); n < 1 {
		t.Fatalf("redis errors = %v, want counted", n)
	}
}

func TestUnopenableCacheValueIsMiss(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	a, b := f.customer(t, "a"), f.customer(t, "b")
	ctx := testenv.Context(t, time.Minute)
	credsA, err := f.cache(t, nil).Credentials(ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	keyA, keyB := f.prefix+":{a}:creds", f.prefix+":{b}:creds"
	sealed := []byte(f.rdb.Get(ctx, keyA).Val())

	// a's sealed credentials planted under b: must not open as b's.
	f.rdb.Set(ctx, keyB, sealed, time.Minute)
	gotB, err := f.cache(t, nil).Credentials(ctx, b)
	if err != nil || gotB.AccessKeyID == credsA.AccessKeyID {
		t.Fatalf("b was handed a's credentials (err %v)", err)
	}
	// A flipped byte: a miss, and the fresh result replaces it.
	tampered := bytes.Clone(sealed)
	tampered[len(tampered)-5] ^= 1
	f.rdb.Set(ctx, keyA, tampered, time.Minute)
	gotA, err := f.cache(t, nil).Credentials(ctx, a)
	if err != nil || gotA.AccessKeyID == credsA.AccessKeyID {
		t.Fatalf("tampered value served (err %v)", err)
	}
	// A key no longer configured: a miss too.
	other := f.cache(t, func(o *credcache.Options) { o.Keys = [][]byte{newKey(t)} })
	if _, err := other.Credentials(ctx, a); err != nil {
		t.Fatal(err)
	}
	if n := f.assumed("ok"); n != 4 {
		t.Fatalf("AssumeRole ok = %d, want 4 (every unopenable value is a miss)", n)
	}
}

func TestNewOptionErrors(t *testing.T) {
	t.Parallel()
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"}) // never dialled
	t.Cleanup(func() { _ = rdb.Close() })
	stsc := sts.New(sts.Options{Region: "us-east-1"})
	key := [][]byte{make([]byte, 32)}
	tests := []struct {
		name string
		opts credcache.Options
	}{
		{"no sts", credcache.Options{Redis: rdb, Keys: key}},
		{"no keys", credcache.Options{Redis: rdb, STS: stsc}},
		{"session below STS minimum", credcache.Options{Redis: rdb, STS: stsc, Keys: key, SessionDuration: time.Minute}},
		{"refresh window longer than session", credcache.Options{Redis: rdb, STS: stsc, Keys: key, SessionDuration: 15 * time.Minute, RefreshWindow: 20 * time.Minute}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if _, err := credcache.New(tt.opts); err == nil {
				t.Fatal("New accepted bad options")
			}
		})
	}
}
