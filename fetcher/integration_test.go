package fetcher

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"github.com/ferryworks/ferry/credcache"
	"github.com/ferryworks/ferry/internal/localaws"
	"github.com/ferryworks/ferry/internal/testenv"
)

// env is one test's world: a fleet account with an internal bucket of its
// own on a local AWS, a Redis prefix, and the real credential cache.
type env struct {
	stack  *localaws.Stack
	fleet  localaws.Account
	bucket string // the internal bucket (Options.Bucket)
	prefix string
	reg    *credcache.Registry
	cache  *credcache.Cache
	s3     *s3.Client
	opts   Options
}

// newEnv makes a test's world on stack; nil means the package's shared
// stack (testenv.SharedLocalAWS), which a test may use when it neither reads
// the stack's call counts nor injects faults nor needs special stack options.
// Customer bucket names must then differ from every other test's.
func newEnv(t testing.TB, stack *localaws.Stack) *env {
	t.Helper()
	rdb, prefix := testenv.Redis(t)
	if stack == nil {
		stack = testenv.SharedLocalAWS(t)
	}
	fleet, err := stack.NewAccount("")
	if err != nil {
		t.Fatal(err)
	}
	key := make([]byte, 32)
	rand.Read(key)
	copts := credcache.Options{Redis: rdb, Prefix: prefix, Keys: [][]byte{key}, STS: stack.STSClient(fleet, "")}
	reg, err := credcache.NewRegistry(copts)
	if err != nil {
		t.Fatal(err)
	}
	cache, err := credcache.New(copts)
	if err != nil {
		t.Fatal(err)
	}
	reg.AttachCache(cache)
	ctx := context.Background()
	// Named after the fleet account, so that tests sharing a stack never
	// share an internal bucket.
	bucket := "ferry-internal-" + fleet.ID
	if err := stack.CreateBucket(ctx, localaws.Bucket{Name: bucket, Owner: fleet.ID}); err != nil {
		t.Fatal(err)
	}
	e := &env{stack: stack, fleet: fleet, bucket: bucket, prefix: prefix, reg: reg, cache: cache, s3: stack.S3Client(fleet, "us-east-1")}
	e.opts = Options{
		S3: e.s3, Integrations: reg, Credentials: cache, Redis: rdb, RedisPrefix: prefix,
		Bucket: bucket, StreamPutMax: DefaultStreamPutMax, Logger: zerolog.Nop(),
	}
	return e
}

func (e *env) copier(t testing.TB, mutate func(*Options)) *Copier {
	t.Helper()
	o := e.opts
	if mutate != nil {
		mutate(&o)
	}
	c, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// customer is a customer AWS account with one bucket.
type customer struct {
	acct   localaws.Account
	bucket string
}

// newCustomer creates an account and a bucket in region (default region
// when ""), with the sample bucket policy granting the fleet when grant is
// set.
func (e *env) newCustomer(t testing.TB, bucket, region string, grant bool) customer {
	t.Helper()
	acct, err := e.stack.NewAccount("")
	if err != nil {
		t.Fatal(err)
	}
	b := localaws.Bucket{Name: bucket, Owner: acct.ID, Region: region}
	if grant {
		b.Policy = credcache.BucketPolicy(bucket, e.fleet.ID)
	}
	if err := e.stack.CreateBucket(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	return customer{acct: acct, bucket: bucket}
}

// enable creates the integration role (granting roleBucket) with the trust
// policy for trustedExtID, and enables the integration in the registry with
// the external ID ferry stores; trustedExtID "" trusts the right one.
func (e *env) enable(t *testing.T, custID string, c customer, roleBucket, trustedExtID string) {
	t.Helper()
	ctx := context.Background()
	in, err := e.reg.Enable(ctx, custID, c.acct.ID, "")
	if err != nil {
		t.Fatal(err)
	}
	if trustedExtID == "" {
		trustedExtID = in.ExternalID
	}
	if _, err := e.stack.PutRole(localaws.Role{AccountID: c.acct.ID, Name: credcache.DefaultRoleName,
		TrustPolicy: credcache.TrustPolicy(e.fleet.ID, trustedExtID),
		Policies:    []string{credcache.RolePolicy(roleBucket)}}); err != nil {
		t.Fatal(err)
	}
}

func (e *env) put(t testing.TB, bucket, key string, body []byte, contentType string) {
	t.Helper()
	if err := e.stack.PutObject(context.Background(), bucket, key, bytes.NewReader(body), int64(len(body)), contentType); err != nil {
		t.Fatal(err)
	}
}

func randBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

func sum(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// stored reads back a copy from the internal bucket as the fleet.
func (e *env) stored(t *testing.T, res Result) ([]byte, *s3.HeadObjectOutput) {
	t.Helper()
	key, ok := strings.CutPrefix(res.Stored, "s3://"+e.bucket+"/")
	if !ok {
		t.Fatalf("stored outside the internal bucket: %s", res.Stored)
	}
	ctx := context.Background()
	out, err := e.s3.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(e.bucket), Key: aws.String(key)})
	if err != nil {
		t.Fatalf("read back %s: %v", res.Stored, err)
	}
	defer out.Body.Close()
	b, err := io.ReadAll(out.Body)
	if err != nil {
		t.Fatal(err)
	}
	head, err := e.s3.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(e.bucket), Key: aws.String(key),
		ChecksumMode: types.ChecksumModeEnabled})
	if err != nil {
		t.Fatal(err)
	}
	return b, head
}

// hasSHA256 reports whether S3 keeps want as the stored object's SHA-256.
func hasSHA256(head *s3.HeadObjectOutput, want string) bool {
	got, ok := sha256Hex(aws.ToString(head.ChecksumSHA256))
	return ok && got == want
}

func wantErr(t *testing.T, err error, kind Kind, stage Stage, mode Mode, hintHas string) *Error {
	t.Helper()
	var fe *Error
	if !errors.As(err, &fe) {
		t.Fatalf("error %v is not a *fetcher.Error", err)
	}
	if fe.Kind != kind || fe.Stage != stage || fe.Mode != mode {
		t.Fatalf("error = %s/%s/%s (code %s: %s), want %s/%s/%s", fe.Kind, fe.Stage, fe.Mode, fe.Code, fe.Message, kind, stage, mode)
	}
	if !strings.Contains(fe.Hint, hintHas) {
		t.Fatalf("hint %q does not contain %q", fe.Hint, hintHas)
	}
	return fe
}

func ops(s *localaws.Stack, op, outcome string) int64 { return s.Stats()[op][outcome] }

func TestCopyDelegated(t *testing.T) {
	t.Parallel()
	e := newEnv(t, testenv.LocalAWS(t)) // own stack: it reads the call counts
	ctx := context.Background()
	good := e.newCustomer(t, "acme-data", "", false)
	e.enable(t, "acme", good, good.bucket, "")
	body := randBytes(300 << 10)
	key := "imgs/ファイル name+1 %20.jpg"
	e.put(t, good.bucket, key, body, "image/jpeg")
	c := e.copier(t, nil)

	t.Run("copied", func(t *testing.T) {
		res, err := c.Copy(ctx, Request{CustomerID: "acme", TaskID: "t-1", Index: 0, URI: "s3://acme-data/" + key})
		if err != nil {
			t.Fatal(err)
		}
		if res.Mode != ModeDelegated || res.Size != int64(len(body)) || res.SHA256 != sum(body) || res.ContentType != "image/jpeg" || res.Skipped {
			t.Fatalf("result %+v", res)
		}
		if res.Stored != "s3://"+e.bucket+"/acme/t-1/0-ファイル_name_1__20.jpg" {
			t.Fatalf("stored at %s", res.Stored)
		}
		got, head := e.stored(t, res)
		if !bytes.Equal(got, body) {
			t.Fatal("stored bytes differ")
		}
		if aws.ToString(head.ContentType) != "image/jpeg" || !hasSHA256(head, sum(body)) ||
			head.Metadata[metaCustomer] != "acme" || head.Metadata[metaTask] != "t-1" ||
			head.Metadata[metaSource] != metaEncode("s3://acme-data/"+key) || head.Metadata[metaSourceETag] == "" {
			t.Fatalf("stored metadata %v, content type %q", head.Metadata, aws.ToString(head.ContentType))
		}
		// The fleet's own credentials never read the customer's bucket:
		// it has no grant, so any such read would have been denied.
		if n := ops(e.stack, "s3:GetObject", "denied"); n != 0 {
			t.Fatalf("%d denied GetObject calls", n)
		}
	})

	t.Run("skipped when already copied", func(t *testing.T) {
		puts := ops(e.stack, "s3:PutObject", "ok")
		res, err := c.Copy(ctx, Request{CustomerID: "acme", TaskID: "t-1", Index: 0, URI: "s3://acme-data/" + key})
		if err != nil {
			t.Fatal(err)
		}
		if !res.Skipped || res.SHA256 != sum(body) || res.Size != int64(len(body)) {
			t.Fatalf("result %+v", res)
		}
		if n := ops(e.stack, "s3:PutObject", "ok"); n != puts {
			t.Fatalf("PutObject ran again (%d -> %d)", puts, n)
		}
	})

	t.Run("missing key", func(t *testing.T) {
		_, err := c.Copy(ctx, Request{CustomerID: "acme", TaskID: "t-2", URI: "s3://acme-data/nope"})
		fe := wantErr(t, err, KindNotFound, StageGetObject, ModeDelegated, "check the key")
		if fe.Code != "NoSuchKey" {
			t.Fatalf("code %s", fe.Code)
		}
	})

	t.Run("role lacks grant on bucket", func(t *testing.T) {
		other := e.newCustomer(t, "acme-other", "", false)
		_ = other
		// The role's policy names acme-data only; acme-other belongs to
		// another account and does not grant the role either.
		_, err := c.Copy(ctx, Request{CustomerID: "acme", TaskID: "t-3", URI: "s3://acme-other/k"})
		fe := wantErr(t, err, KindAccessDenied, StageGetObject, ModeDelegated, "grant s3:GetObject on arn:aws:s3:::acme-other/* to the role ScaleAI-Integration")
		if fe.Code != "AccessDenied" || fe.Retryable() {
			t.Fatalf("code %s retryable %v", fe.Code, fe.Retryable())
		}
	})

	t.Run("wrong external ID never falls back", func(t *testing.T) {
		bad := e.newCustomer(t, "wrongext-data", "", true) // the bucket even grants the fleet
		e.enable(t, "wrongext", bad, bad.bucket, "not-the-external-id")
		e.put(t, bad.bucket, "k", []byte("x"), "")
		before := ops(e.stack, "s3:GetObject", "ok") + ops(e.stack, "s3:GetObject", "denied")
		_, err := c.Copy(ctx, Request{CustomerID: "wrongext", TaskID: "t-4", URI: "s3://wrongext-data/k"})
		fe := wantErr(t, err, KindAccessDenied, StageAssumeRole, ModeDelegated, "set the sts:ExternalId condition to the external ID ferry gave you")
		if fe.Code != "AccessDenied" || fe.Retryable() {
			t.Fatalf("code %q retryable %v", fe.Code, fe.Retryable())
		}
		after := ops(e.stack, "s3:GetObject", "ok") + ops(e.stack, "s3:GetObject", "denied")
		if after != before {
			t.Fatalf("a GetObject was attempted after the role failed (%d -> %d)", before, after)
		}
		rep := c.Check(ctx, "wrongext", "s3://wrongext-data/k")
		if rep.OK || rep.AssumeRole != "error" || rep.Error == nil || rep.Error.Stage != StageAssumeRole {
			t.Fatalf("check %+v", rep)
		}
	})

	t.Run("check", func(t *testing.T) {
		rep := c.Check(ctx, "acme", "s3://acme-data/"+key)
		if !rep.OK || rep.Mode != ModeDelegated || rep.AssumeRole != "ok" || rep.Object == nil ||
			rep.Object.Size != int64(len(body)) || rep.Object.ContentType != "image/jpeg" || rep.Region != "us-east-1" {
			t.Fatalf("check %+v (object %+v, error %v)", rep, rep.Object, rep.Error)
		}
	})
}

func TestCopyCrossAccount(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	ctx := context.Background()
	granted := e.newCustomer(t, "open-data", "", true)
	closed := e.newCustomer(t, "closed-data", "", false)
	body := randBytes(70 << 10)
	e.put(t, granted.bucket, "a/b.bin", body, "application/octet-stream")
	e.put(t, closed.bucket, "a/b.bin", body, "application/octet-stream")
	if _, err := e.reg.RegisterAccount(ctx, "owner-ok", granted.acct.ID); err != nil {
		t.Fatal(err)
	}
	// A customer who registered a different account than the bucket's.
	if _, err := e.reg.RegisterAccount(ctx, "owner-bad", closed.acct.ID); err != nil {
		t.Fatal(err)
	}
	allow := e.copier(t, nil)
	requireOwner := e.copier(t, func(o *Options) { o.CrossAccount = PolicyRequireOwner })
	deny := e.copier(t, func(o *Options) { o.CrossAccount = PolicyDeny })

	tests := []struct {
		name     string
		c        *Copier
		customer string
		uri      string
		kind     Kind // "" = copied
		stage    Stage
		hint     string
	}{
		{name: "granted", c: allow, customer: "anon", uri: "s3://open-data/a/b.bin"},
		{name: "granted with matching owner", c: allow, customer: "owner-ok", uri: "s3://open-data/a/b.bin"},
		{name: "no grant", c: allow, customer: "anon", uri: "s3://closed-data/a/b.bin", kind: KindAccessDenied, stage: StageGetObject, hint: "add the fleet account to the bucket policy"},
		{name: "bucket of another account", c: allow, customer: "owner-bad", uri: "s3://open-data/a/b.bin", kind: KindAccessDenied, stage: StageGetObject, hint: "does not belong to the AWS account registered for this customer"},
		{name: "missing key without ListBucket is denied", c: allow, customer: "anon", uri: "s3://open-data/nope", kind: KindAccessDenied, stage: StageGetObject, hint: "bucket policy"},
		{name: "require-owner without account", c: requireOwner, customer: "anon", uri: "s3://open-data/a/b.bin", kind: KindAccessDenied, stage: StagePolicy, hint: "register the AWS account ID"},
		{name: "require-owner with account", c: requireOwner, customer: "owner-ok", uri: "s3://open-data/a/b.bin"},
		{name: "deny", c: deny, customer: "owner-ok", uri: "s3://open-data/a/b.bin", kind: KindAccessDenied, stage: StagePolicy, hint: "enable delegated access"},
		{name: "https S3 form", c: allow, customer: "anon", uri: "https://open-data.s3.amazonaws.com/a/b.bin"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := tt.c.Copy(ctx, Request{CustomerID: tt.customer, TaskID: "t", Index: i, URI: tt.uri})
			if tt.kind != "" {
				wantErr(t, err, tt.kind, tt.stage, ModeCrossAccount, tt.hint)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if res.Mode != ModeCrossAccount || res.SHA256 != sum(body) {
				t.Fatalf("result %+v", res)
			}
			got, _ := e.stored(t, res)
			if !bytes.Equal(got, body) {
				t.Fatal("stored bytes differ")
			}
		})
	}
	// An empty object has no byte range to read: it is copied with a
	// plain GET.
	t.Run("empty object", func(t *testing.T) {
		e.put(t, granted.bucket, "empty", nil, "text/plain")
		res, err := allow.Copy(ctx, Request{CustomerID: "anon", TaskID: "t-empty", URI: "s3://open-data/empty"})
		if err != nil {
			t.Fatal(err)
		}
		if res.Size != 0 || res.SHA256 != sum(nil) {
			t.Fatalf("result %+v", res)
		}
		if got, _ := e.stored(t, res); len(got) != 0 {
			t.Fatalf("stored %d bytes", len(got))
		}
	})
}

func TestCopyRegionRedirect(t *testing.T) {
	t.Parallel()
	e := newEnv(t, testenv.LocalAWS(t)) // own stack: it reads the call counts
	ctx := context.Background()
	e.newCustomer(t, "far-away", "eu-west-1", true)
	body := randBytes(10 << 10)
	e.put(t, "far-away", "k", body, "")
	c := e.copier(t, nil)
	res, err := c.Copy(ctx, Request{CustomerID: "anon", TaskID: "t", URI: "s3://far-away/k"})
	if err != nil {
		t.Fatal(err)
	}
	if res.SHA256 != sum(body) {
		t.Fatal("digest differs")
	}
	if n := ops(e.stack, "s3:GetObject", "redirect"); n != 1 {
		t.Fatalf("%d redirects, want 1", n)
	}
	rdb := e.opts.Redis
	if got, err := rdb.Get(ctx, regionKey(e.prefix, "far-away")).Result(); err != nil || got != "eu-west-1" {
		t.Fatalf("redis region = %q, %v", got, err)
	}
	// A fresh Copier (another worker) finds the region in Redis.
	c2 := e.copier(t, nil)
	if _, err := c2.Copy(ctx, Request{CustomerID: "anon", TaskID: "t", Index: 1, URI: "s3://far-away/k"}); err != nil {
		t.Fatal(err)
	}
	if n := ops(e.stack, "s3:GetObject", "redirect"); n != 1 {
		t.Fatalf("%d redirects after the region was cached, want 1", n)
	}
	// The host's region hint is used first: no redirect for a new bucket.
	e.newCustomer(t, "far-hinted", "ap-southeast-2", true)
	e.put(t, "far-hinted", "k", body, "")
	if _, err := c.Copy(ctx, Request{CustomerID: "anon", TaskID: "t", Index: 2, URI: "https://far-hinted.s3.ap-southeast-2.amazonaws.com/k"}); err != nil {
		t.Fatal(err)
	}
	if n := ops(e.stack, "s3:GetObject", "redirect"); n != 1 {
		t.Fatalf("%d redirects with a region hint, want 1", n)
	}
}

// A bucket the client's own region serves is remembered in process: only
// the first copy from it asks Redis for its region.
func TestCopyHomeRegionRemembered(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	ctx := context.Background()
	e.newCustomer(t, "at-home", "", true)
	e.put(t, "at-home", "k", randBytes(1<<10), "")
	rdb := redis.NewClient(e.opts.Redis.(*redis.Client).Options())
	t.Cleanup(func() { rdb.Close() })
	var lookups atomic.Int64
	rdb.AddHook(regionLookups{n: &lookups})
	c := e.copier(t, func(o *Options) { o.Redis = rdb })
	for i := range 3 {
		if _, err := c.Copy(ctx, Request{CustomerID: "anon", TaskID: "t", Index: i, URI: "s3://at-home/k"}); err != nil {
			t.Fatal(err)
		}
	}
	if n := lookups.Load(); n != 1 {
		t.Fatalf("%d Redis region lookups for 3 copies, want 1", n)
	}
}

// regionLookups counts GETs of region keys.
type regionLookups struct{ n *atomic.Int64 }

func (h regionLookups) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h regionLookups) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if args := cmd.Args(); cmd.Name() == "get" && len(args) > 1 && strings.HasSuffix(fmt.Sprint(args[1]), ":region") {
			h.n.Add(1)
		}
		return next(ctx, cmd)
	}
}

func (h regionLookups) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

func TestCopyExpiredCredentialsRefresh(t *testing.T) {
	t.Parallel()
	clk := &testenv.Clock{} // the real time, moved on by Advance
	stack, err := localaws.Start(localaws.Options{Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stack.Close() })
	e := newEnv(t, stack)
	ctx := context.Background()
	cust := e.newCustomer(t, "expiring-data", "", false)
	e.enable(t, "exp", cust, cust.bucket, "")
	body := randBytes(1 << 10)
	e.put(t, cust.bucket, "k", body, "")
	c := e.copier(t, nil)
	if _, err := c.Copy(ctx, Request{CustomerID: "exp", TaskID: "t", URI: "s3://expiring-data/k"}); err != nil {
		t.Fatal(err)
	}
	// The gate's clock passes the session's expiry while the cache (on the
	// real clock) still trusts it: S3 answers ExpiredToken.
	clk.Advance(2 * time.Hour)
	res, err := c.Copy(ctx, Request{CustomerID: "exp", TaskID: "t", Index: 1, URI: "s3://expiring-data/k"})
	if err != nil {
		t.Fatal(err)
	}
	if res.SHA256 != sum(body) {
		t.Fatal("digest differs")
	}
	if n := ops(stack, "sts:AssumeRole", "ok"); n != 2 {
		t.Fatalf("%d AssumeRole calls, want 2 (one refresh)", n)
	}
	if n := ops(stack, "s3:GetObject", "denied") + ops(stack, "s3:GetObject", "error"); n != 1 {
		t.Fatalf("%d refused GetObject calls, want exactly the one expired", n)
	}
}

func TestCopyMultipart(t *testing.T) {
	t.Parallel()
	e := newEnv(t, testenv.LocalAWS(t)) // own stack: it injects faults and reads the call counts
	ctx := context.Background()
	e.newCustomer(t, "big-data", "", true)
	body := randBytes(int(2*minPartSize + 1<<20))
	e.put(t, "big-data", "big.bin", body, "application/x-big")
	// Above StreamPutMax: multipart even over https.
	c := e.copier(t, func(o *Options) { o.PartSize = minPartSize; o.PartConcurrency = 2; o.StreamPutMax = 2 * minPartSize })

	res, err := c.Copy(ctx, Request{CustomerID: "anon", TaskID: "t", URI: "s3://big-data/big.bin"})
	if err != nil {
		t.Fatal(err)
	}
	if res.Size != int64(len(body)) || res.SHA256 != sum(body) {
		t.Fatalf("result %+v", res)
	}
	got, head := e.stored(t, res)
	if !bytes.Equal(got, body) || aws.ToString(head.ContentType) != "application/x-big" {
		t.Fatal("stored object differs")
	}
	if n := ops(e.stack, "s3:UploadPart", "ok"); n != 3 {
		t.Fatalf("%d parts, want 3", n)
	}
	// Three parts through two part buffers: the memory of a copy is
	// PartSize × PartConcurrency however large the object.
	if n := c.bufsMade.Load(); n != int64(c.partSlots()) {
		t.Fatalf("%d part buffers allocated for 3 parts, want %d (PartConcurrency)", n, c.partSlots())
	}
	// The digest of a multipart copy lives in a tag, so a retry is skipped.
	again, err := c.Copy(ctx, Request{CustomerID: "anon", TaskID: "t", URI: "s3://big-data/big.bin"})
	if err != nil || !again.Skipped || again.SHA256 != sum(body) {
		t.Fatalf("retry: %+v, %v", again, err)
	}

	if err := e.stack.InjectFault(localaws.Fault{Operation: "s3:UploadPart", Status: 500, Code: "InternalError", Message: "injected"}); err != nil {
		t.Fatal(err)
	}
	_, err = c.Copy(ctx, Request{CustomerID: "anon", TaskID: "t2", URI: "s3://big-data/big.bin"})
	fe := wantErr(t, err, KindTransient, StagePutObject, ModeCrossAccount, "")
	if !fe.Retryable() {
		t.Fatal("put failure must be retryable")
	}
	// The second copy, failed or not, reused the pooled buffers.
	if n := c.bufsMade.Load(); n != int64(c.partSlots()) {
		t.Fatalf("%d part buffers allocated after two copies, want the first copy's %d reused", n, c.partSlots())
	}
	e.stack.ClearFaults()
	ups, err := e.s3.ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{Bucket: aws.String(e.bucket)})
	if err != nil {
		t.Fatal(err)
	}
	if len(ups.Uploads) != 0 {
		t.Fatalf("%d multipart uploads left after the failure", len(ups.Uploads))
	}
	if n := ops(e.stack, "s3:AbortMultipartUpload", "ok"); n != 1 {
		t.Fatalf("%d aborts, want 1", n)
	}
}

func TestCopyTooLargeS3(t *testing.T) {
	t.Parallel()
	e := newEnv(t, testenv.LocalAWS(t)) // own stack: it reads the call counts
	ctx := context.Background()
	e.newCustomer(t, "large-data", "", true)
	e.put(t, "large-data", "k", randBytes(200<<10), "")
	c := e.copier(t, func(o *Options) { o.MaxObjectBytes = 100 << 10 })
	_, err := c.Copy(ctx, Request{CustomerID: "anon", TaskID: "t", URI: "s3://large-data/k"})
	wantErr(t, err, KindTooLarge, StageGetObject, ModeCrossAccount, "split")
	if n := ops(e.stack, "s3:PutObject", "ok") + ops(e.stack, "s3:CreateMultipartUpload", "ok"); n != 0 {
		t.Fatalf("%d writes for a too-large object", n)
	}
}

func TestCopyHTTPS(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	ctx := context.Background()
	body := randBytes(6 << 20) // above the 5 MiB part size: multipart without Content-Length
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "image/png")
		w.WriteHeader(http.StatusOK)
		w.(http.Flusher).Flush() // chunked: size unknown up front
		w.Write(body)
	}))
	t.Cleanup(srv.Close)
	reg := prometheus.NewRegistry()
	c := e.copier(t, func(o *Options) {
		o.HTTPAllowHosts = []string{"127.0.0.1"}
		o.PartSize = 5 << 20
		o.Metrics = NewMetrics(reg)
	})
	trust(c, srv)
	res, err := c.Copy(ctx, Request{CustomerID: "acme", TaskID: "t", URI: srv.URL + "/dir/pic.png?X-Amz-Signature=SECRET", Name: ""})
	if err != nil {
		t.Fatal(err)
	}
	if res.Mode != ModeHTTPS || res.Size != int64(len(body)) || res.SHA256 != sum(body) || res.ContentType != "image/png" {
		t.Fatalf("result %+v", res)
	}
	if strings.Contains(res.Source, "SECRET") || !strings.HasSuffix(res.Stored, "/acme/t/0-pic.png") {
		t.Fatalf("source %q stored %q", res.Source, res.Stored)
	}
	got, head := e.stored(t, res)
	if !bytes.Equal(got, body) {
		t.Fatal("stored bytes differ")
	}
	for k, v := range head.Metadata {
		if strings.Contains(v, "SECRET") {
			t.Fatalf("metadata %s leaks the signature: %q", k, v)
		}
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, mf := range mfs {
		if mf.GetName() != "ferry_attachments_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["outcome"] == "copied" && labels["mode"] == "https" && m.GetCounter().GetValue() == 1 {
				found = true
			}
		}
	}
	if !found {
		t.Fatal("ferry_attachments_total{outcome=copied,mode=https} is not 1")
	}
}

func TestCopyCancelledMidUploadAborts(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	const part = 5 << 20
	release := make(chan struct{})
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusOK)
		// Two full parts and one byte: enough for the multipart upload to
		// start, then the source stalls.
		w.Write(make([]byte, 2*part+1))
		w.(http.Flusher).Flush()
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) })
	c := e.copier(t, func(o *Options) {
		o.HTTPAllowHosts = []string{"127.0.0.1"}
		o.PartSize = part
	})
	trust(c, srv)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, err := c.Copy(ctx, Request{CustomerID: "acme", TaskID: "t", URI: srv.URL + "/stall"})
		done <- err
	}()
	// Wait until the upload exists, then cancel the copy.
	for {
		ups, err := e.s3.ListMultipartUploads(context.Background(), &s3.ListMultipartUploadsInput{Bucket: aws.String(e.bucket)})
		if err != nil {
			t.Fatal(err)
		}
		if len(ups.Uploads) == 1 {
			break
		}
		select {
		case err := <-done:
			t.Fatalf("copy ended before the upload was seen: %v", err)
		case <-time.After(10 * time.Millisecond):
		}
	}
	cancel()
	err := <-done
	// Cancelling interrupts the source read and the part uploads at once;
	// whichever answers first names the stage. Either way it is transient
	// (the worker releases interrupted work) and the upload is aborted.
	var fe *Error
	if !errors.As(err, &fe) || fe.Kind != KindTransient || fe.Mode != ModeHTTPS ||
		(fe.Stage != StageHTTPGet && fe.Stage != StagePutObject) {
		t.Fatalf("error = %v, want transient at http_get or put_object", err)
	}
	ups, err := e.s3.ListMultipartUploads(context.Background(), &s3.ListMultipartUploadsInput{Bucket: aws.String(e.bucket)})
	if err != nil {
		t.Fatal(err)
	}
	if len(ups.Uploads) != 0 {
		t.Fatalf("%d multipart uploads left after cancellation", len(ups.Uploads))
	}
}

// A source request signed for us-east-1 that reaches the bucket's own
// region (its regional endpoint, as virtual-hosted requests through the
// global endpoint do) is answered 400 AuthorizationHeaderMalformed with the
// region in the body only; ferry learns it there, as from a 301's header.
func TestRegionFromAuthorizationHeaderMalformed(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	stack := e.stack
	ctx := context.Background()
	e.newCustomer(t, "far-eu", "eu-west-1", true)
	cfg := stack.Config(e.fleet, "us-east-1")
	cfg.BaseEndpoint = aws.String(stack.RegionalEndpoint("eu-west-1"))
	regional := s3.NewFromConfig(cfg, func(o *s3.Options) { o.UsePathStyle = true; o.RetryMaxAttempts = 1 })
	a := &access{mode: ModeCrossAccount}
	for _, method := range []string{"GET", "HEAD"} {
		var err error
		if method == "GET" {
			_, err = regional.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("far-eu"), Key: aws.String("k")}, a.optFns("")...)
		} else {
			_, err = regional.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("far-eu"), Key: aws.String("k")}, a.optFns("")...)
		}
		if err == nil || !strings.Contains(err.Error(), "400") {
			t.Fatalf("%s signed for us-east-1 at eu-west-1: %v, want a 400", method, err)
		}
		if r := redirectRegion(err); r != "eu-west-1" {
			t.Errorf("%s: region learned %q from %v, want eu-west-1", method, r, err)
		}
	}
	// Without the middleware the GET's region is lost with the body.
	_, err := regional.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("far-eu"), Key: aws.String("k")})
	if r := redirectRegion(err); r != "" {
		t.Fatalf("the plain SDK kept the region %q: the middleware would be redundant", r)
	}
}

// uploadRecorder notes what every upload (PutObject, UploadPart) the
// copier's S3 client sends looks like on the wire: "put" or "part", its
// payload hash, its trailer and which checksum header it carries.
type uploadRecorder struct {
	next aws.HTTPClient
	mu   sync.Mutex
	seen []string
}

func (u *uploadRecorder) Do(r *http.Request) (*http.Response, error) {
	if _, tagging := r.URL.Query()["tagging"]; r.Method == http.MethodPut && !tagging {
		kind := "put"
		if r.URL.Query().Has("uploadId") {
			kind = "part"
		}
		header := ""
		for _, h := range []string{"sha256", "crc32"} {
			if r.Header.Get("X-Amz-Checksum-"+h) != "" {
				header = h
			}
		}
		u.mu.Lock()
		u.seen = append(u.seen, kind+"|"+r.Header.Get("X-Amz-Content-Sha256")+"|"+r.Header.Get("X-Amz-Trailer")+"|"+header)
		u.mu.Unlock()
	}
	return u.next.Do(r)
}

// TestUploadWireFormat checks what each way of uploading sends, over https
// and http: a small object is buffered and put with its SHA-256 as the
// object's checksum header; one of known size up to StreamPutMax is
// streamed over https as aws-chunked with a trailing SHA-256 (over http,
// where the SDK cannot stream, it is buffered or goes multipart); larger
// ones go multipart. Every copy is then skipped on a retry with the same
// digest, read back from S3's checksum or the multipart tag.
func TestUploadWireFormat(t *testing.T) {
	t.Parallel()
	const (
		trailer  = "STREAMING-UNSIGNED-PAYLOAD-TRAILER"
		unsigned = "UNSIGNED-PAYLOAD"
	)
	tests := []struct {
		name  string
		stack func(testing.TB) *localaws.Stack
		want  map[string][]string // object -> uploads
	}{
		{"https", testenv.SharedLocalAWS, map[string][]string{
			"small": {"put|" + unsigned + "||sha256"},
			"mid":   {"put|" + trailer + "|x-amz-checksum-sha256|"},
			"big":   {"part|" + trailer + "|x-amz-checksum-crc32|", "part|" + trailer + "|x-amz-checksum-crc32|", "part|" + trailer + "|x-amz-checksum-crc32|"},
		}},
		{"http", testenv.LocalAWSPlainHTTP, map[string][]string{
			"small": {"put|" + unsigned + "||sha256"},
			"mid":   {"part|" + unsigned + "||crc32", "part|" + unsigned + "||crc32"},
			"big":   {"part|" + unsigned + "||crc32", "part|" + unsigned + "||crc32", "part|" + unsigned + "||crc32"},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			stack := tt.stack(t)
			e := newEnv(t, stack)
			ctx := context.Background()
			bucket := "wire-data-" + tt.name
			e.newCustomer(t, bucket, "", true)
			bodies := map[string][]byte{"small": randBytes(100 << 10), "mid": randBytes(6 << 20), "big": randBytes(11 << 20)}
			for k, b := range bodies {
				e.put(t, bucket, k, b, "")
			}
			rec := &uploadRecorder{}
			cfg := stack.Config(e.fleet, "us-east-1")
			rec.next = cfg.HTTPClient
			cfg.HTTPClient = rec
			client := s3.NewFromConfig(cfg, func(o *s3.Options) { o.UsePathStyle = true })
			c := e.copier(t, func(o *Options) { o.S3 = client; o.PartSize = 5 << 20; o.StreamPutMax = 8 << 20 })
			for i, k := range []string{"small", "mid", "big"} {
				rec.mu.Lock()
				rec.seen = nil
				rec.mu.Unlock()
				req := Request{CustomerID: "anon", TaskID: "wire", Index: i, URI: "s3://" + bucket + "/" + k, Attempt: 1}
				res, err := c.Copy(ctx, req)
				if err != nil {
					t.Fatalf("copy %s: %v", k, err)
				}
				if got, _ := e.stored(t, res); !bytes.Equal(got, bodies[k]) || res.SHA256 != sum(bodies[k]) {
					t.Fatalf("copy %s: stored bytes or digest differ", k)
				}
				rec.mu.Lock()
				seen := rec.seen
				rec.mu.Unlock()
				if !slices.Equal(seen, tt.want[k]) {
					t.Errorf("copy %s sent %q, want %q", k, seen, tt.want[k])
				}
				req.Attempt = 2
				again, err := c.Copy(ctx, req)
				if err != nil || !again.Skipped || again.SHA256 != sum(bodies[k]) {
					t.Errorf("retry of %s: %+v, %v; want skipped with its digest", k, again, err)
				}
			}
		})
	}
}
