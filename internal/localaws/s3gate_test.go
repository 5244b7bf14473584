package localaws

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/ferryworks/ferry/credcache"
)

const (
	fleetID    = "111111111111"
	customerID = "222222222222"
	strangerID = "333333333333"
	externalID = "ext-5f0c9a7e-delegated"
)

// world is the integration guide's setup: a fleet account, a customer with
// the ScaleAI-Integration role, and buckets for every access path.
type world struct {
	s                        *Stack
	fleet, customer, strange Account
	roleARN                  string
}

func newWorld(t *testing.T, opts Options) *world {
	t.Helper()
	s := startStack(t, opts)
	w, err := seedWorld(testCtx(t), s)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// seedWorld creates the world's accounts, buckets, objects and role on s.
func seedWorld(ctx context.Context, s *Stack) (*world, error) {
	w := &world{s: s}
	for _, a := range []struct {
		acct *Account
		id   string
	}{{&w.fleet, fleetID}, {&w.customer, customerID}, {&w.strange, strangerID}} {
		var err error
		if *a.acct, err = s.NewAccount(a.id); err != nil {
			return nil, fmt.Errorf("new account %s: %w", a.id, err)
		}
	}
	buckets := []Bucket{
		// delegated: read through the role; no grant to the fleet.
		{Name: "acme-delegated", Owner: customerID},
		// cross-account: the guide's bucket policy for the fleet.
		{Name: "acme-shared", Owner: customerID, Policy: credcache.BucketPolicy("acme-shared", fleetID)},
		// no grant at all.
		{Name: "acme-private", Owner: customerID},
		// granted, but in another region.
		{Name: "acme-eu", Owner: customerID, Region: "eu-west-1", Policy: credcache.BucketPolicy("acme-eu", fleetID)},
	}
	for _, b := range buckets {
		if err := s.CreateBucket(ctx, b); err != nil {
			return nil, fmt.Errorf("create bucket %s: %w", b.Name, err)
		}
		if err := s.PutObject(ctx, b.Name, "img/1.jpg", strings.NewReader("jpeg-bytes"), 10, "image/jpeg"); err != nil {
			return nil, fmt.Errorf("put object: %w", err)
		}
	}
	var err error
	w.roleARN, err = s.PutRole(Role{
		AccountID:   customerID,
		Name:        "ScaleAI-Integration",
		TrustPolicy: credcache.TrustPolicy(fleetID, externalID),
		Policies:    []string{credcache.RolePolicy("acme-delegated")},
	})
	if err != nil {
		return nil, fmt.Errorf("put role: %w", err)
	}
	return w, nil
}

// sharedWorld is a world that several tests share: those that leave it as
// they found them. They read, or write objects under keys of their own;
// none changes a policy, a role or the faults, or counts the stack's stats.
// Every stack is a kumo process of its own, so sharing spares a dozen
// starts. It starts on first use; TestMain closes it.
type sharedWorld struct {
	opts Options
	once sync.Once
	w    *world
	err  error
}

var (
	sharedHTTP  = &sharedWorld{}
	sharedHTTPS = &sharedWorld{opts: Options{TLS: true}}
)

func (sw *sharedWorld) get(t *testing.T) *world {
	t.Helper()
	sw.once.Do(func() {
		s, err := Start(sw.opts)
		if err != nil {
			sw.err = err
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		if sw.w, sw.err = seedWorld(ctx, s); sw.err != nil {
			_ = s.Close()
		}
	})
	if sw.err != nil {
		t.Fatalf("shared world: %v", sw.err)
	}
	return sw.w
}

func TestMain(m *testing.M) {
	code := m.Run()
	for _, sw := range []*sharedWorld{sharedHTTP, sharedHTTPS} {
		if sw.w == nil {
			continue
		}
		if err := sw.w.s.Close(); err != nil && code == 0 {
			fmt.Fprintf(os.Stderr, "close the shared stack: %v\n", err)
			code = 1
		}
	}
	os.Exit(code)
}

func get(ctx context.Context, c *s3.Client, bucket, key string, optFns ...func(*s3.GetObjectInput)) (string, error) {
	in := &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)}
	for _, f := range optFns {
		f(in)
	}
	out, err := c.GetObject(ctx, in, noRetry)
	if err != nil {
		return "", err
	}
	defer out.Body.Close()
	b, err := io.ReadAll(out.Body)
	return string(b), err
}

func TestS3Authorisation(t *testing.T) {
	t.Parallel()
	w := sharedHTTP.get(t)
	ctx := testCtx(t)
	delegated, err := assumedS3(t, w.s, w.fleet, w.roleARN, externalID, "us-east-1")
	if err != nil {
		t.Fatalf("assume role: %v", err)
	}
	fleet := w.s.S3Client(w.fleet, "us-east-1")
	fleetEU := w.s.S3Client(w.fleet, "eu-west-1")
	customer := w.s.S3Client(w.customer, "us-east-1")
	stranger := w.s.S3Client(w.strange, "us-east-1")
	owner := func(id string) func(*s3.GetObjectInput) {
		return func(in *s3.GetObjectInput) { in.ExpectedBucketOwner = aws.String(id) }
	}

	tests := []struct {
		name       string
		client     *s3.Client
		bucket     string
		key        string
		opt        []func(*s3.GetObjectInput)
		wantCode   string
		wantStatus int
	}{
		{"delegated read with role", delegated, "acme-delegated", "img/1.jpg", nil, "", 0},
		{"delegated missing key with ListBucket is 404", delegated, "acme-delegated", "img/none.jpg", nil, "NoSuchKey", 404},
		{"delegated role has no grant on another bucket", delegated, "acme-private", "img/1.jpg", nil, "AccessDenied", 403},
		{"fleet own credentials refused on delegated bucket", fleet, "acme-delegated", "img/1.jpg", nil, "AccessDenied", 403},
		{"cross-account read via bucket policy", fleet, "acme-shared", "img/1.jpg", nil, "", 0},
		{"cross-account missing key without ListBucket is 403", fleet, "acme-shared", "img/none.jpg", nil, "AccessDenied", 403},
		{"cross-account expected owner matches", fleet, "acme-shared", "img/1.jpg", []func(*s3.GetObjectInput){owner(customerID)}, "", 0},
		{"cross-account expected owner mismatch", fleet, "acme-shared", "img/1.jpg", []func(*s3.GetObjectInput){owner(strangerID)}, "AccessDenied", 403},
		{"no grant refused", fleet, "acme-private", "img/1.jpg", nil, "AccessDenied", 403},
		{"stranger not named in bucket policy", stranger, "acme-shared", "img/1.jpg", nil, "AccessDenied", 403},
		{"owner root reads without any policy", customer, "acme-private", "img/1.jpg", nil, "", 0},
		{"owner root missing key is 404", customer, "acme-private", "img/none.jpg", nil, "NoSuchKey", 404},
		{"unknown bucket", fleet, "no-such-bucket-anywhere", "x", nil, "NoSuchBucket", 404},
		{"wrong region redirects", fleet, "acme-eu", "img/1.jpg", nil, "PermanentRedirect", 301},
		{"right region reads", fleetEU, "acme-eu", "img/1.jpg", nil, "", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			body, err := get(ctx, tt.client, tt.bucket, tt.key, tt.opt...)
			code, status := apiCode(err)
			if tt.wantCode == "" {
				if err != nil {
					t.Fatalf("GetObject: %v", err)
				}
				if body != "jpeg-bytes" {
					t.Fatalf("body = %q", body)
				}
				return
			}
			if code != tt.wantCode || status != tt.wantStatus {
				t.Fatalf("GetObject error = %q/%d (%v), want %q/%d", code, status, err, tt.wantCode, tt.wantStatus)
			}
			if tt.wantStatus == 301 {
				if got := responseHeader(err).Get("x-amz-bucket-region"); got != "eu-west-1" {
					t.Fatalf("x-amz-bucket-region = %q, want eu-west-1", got)
				}
			}
		})
	}
}

func TestS3HeadAnswers(t *testing.T) {
	t.Parallel()
	w := sharedHTTP.get(t)
	ctx := testCtx(t)
	delegated, err := assumedS3(t, w.s, w.fleet, w.roleARN, externalID, "us-east-1")
	if err != nil {
		t.Fatalf("assume role: %v", err)
	}
	fleet := w.s.S3Client(w.fleet, "us-east-1")
	tests := []struct {
		name       string
		client     *s3.Client
		bucket     string
		key        string // "" = HeadBucket
		wantStatus int
		wantRegion string
	}{
		{"head object delegated", delegated, "acme-delegated", "img/1.jpg", 200, ""},
		{"head missing object with ListBucket", delegated, "acme-delegated", "nope", 404, ""},
		{"head missing object without ListBucket", fleet, "acme-shared", "nope", 403, ""},
		{"head bucket with ListBucket", delegated, "acme-delegated", "", 200, "us-east-1"},
		{"head bucket without ListBucket", fleet, "acme-shared", "", 403, "us-east-1"},
		{"head bucket in another region", fleet, "acme-eu", "", 301, "eu-west-1"},
		{"head unknown bucket", fleet, "nobody-has-this", "", 404, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var err error
			var region string
			if tt.key == "" {
				var out *s3.HeadBucketOutput
				out, err = tt.client.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String(tt.bucket)}, noRetry)
				if err == nil {
					region = aws.ToString(out.BucketRegion)
				}
			} else {
				_, err = tt.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(tt.bucket), Key: aws.String(tt.key)}, noRetry)
			}
			_, status := apiCode(err)
			if err == nil {
				status = 200
			} else {
				region = responseHeader(err).Get("x-amz-bucket-region")
			}
			if status != tt.wantStatus {
				t.Fatalf("status = %d (%v), want %d", status, err, tt.wantStatus)
			}
			if tt.wantRegion != "" && region != tt.wantRegion {
				t.Fatalf("bucket region = %q, want %q", region, tt.wantRegion)
			}
		})
	}
}

func TestS3ExplicitDenyBeatsAllow(t *testing.T) {
	t.Parallel()
	// A world of its own: it changes a bucket policy.
	w := newWorld(t, Options{})
	ctx := testCtx(t)
	policy := `{"Version":"2012-10-17","Statement":[
	 {"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::` + fleetID + `:root"},"Action":"s3:*","Resource":"arn:aws:s3:::acme-shared/*"},
	 {"Effect":"Deny","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::acme-shared/secret/*"}]}`
	if err := w.s.SetBucketPolicy("acme-shared", policy); err != nil {
		t.Fatal(err)
	}
	if err := w.s.PutObject(ctx, "acme-shared", "secret/k", strings.NewReader("s"), 1, ""); err != nil {
		t.Fatal(err)
	}
	fleet := w.s.S3Client(w.fleet, "us-east-1")
	customer := w.s.S3Client(w.customer, "us-east-1")
	for _, tc := range []struct {
		name     string
		c        *s3.Client
		key      string
		wantCode string
	}{
		{"allowed elsewhere", fleet, "img/1.jpg", ""},
		{"deny wins for cross-account", fleet, "secret/k", "AccessDenied"},
		{"deny wins even for the owner's root", customer, "secret/k", "AccessDenied"},
	} {
		_, err := get(ctx, tc.c, "acme-shared", tc.key)
		if code, _ := apiCode(err); code != tc.wantCode {
			t.Errorf("%s: code = %q (%v), want %q", tc.name, code, err, tc.wantCode)
		}
	}
}

func TestS3SameAccountRoleNeedsAGrant(t *testing.T) {
	t.Parallel()
	// A world of its own: it adds a role and changes a bucket policy.
	w := newWorld(t, Options{})
	ctx := testCtx(t)
	// A role of the customer's own account with no permission policies:
	// only the bucket policy can let it in.
	arn, err := w.s.PutRole(Role{AccountID: customerID, Name: "reader",
		TrustPolicy: `{"Statement":{"Effect":"Allow","Principal":{"AWS":"` + customerID + `"},"Action":"sts:AssumeRole"}}`})
	if err != nil {
		t.Fatal(err)
	}
	c, err := assumedS3(t, w.s, w.customer, arn, "xx", "us-east-1")
	if err != nil {
		t.Fatalf("assume: %v", err)
	}
	if _, err := get(ctx, c, "acme-private", "img/1.jpg"); func() string { c, _ := apiCode(err); return c }() != "AccessDenied" {
		t.Fatalf("without grant: %v, want AccessDenied", err)
	}
	if err := w.s.SetBucketPolicy("acme-private", `{"Statement":[{"Effect":"Allow","Principal":{"AWS":"`+arn+`"},"Action":"s3:GetObject","Resource":"arn:aws:s3:::acme-private/*"}]}`); err != nil {
		t.Fatal(err)
	}
	if _, err := get(ctx, c, "acme-private", "img/1.jpg"); err != nil {
		t.Fatalf("same-account bucket policy grant: %v", err)
	}
}

func TestS3BucketLifecycleThroughGate(t *testing.T) {
	t.Parallel()
	s := startStack(t, Options{})
	ctx := testCtx(t)
	a := mustAccount(t, s, "")
	b := mustAccount(t, s, "")
	ca := s.S3Client(a, "eu-west-1")
	if _, err := ca.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("made-by-a"),
		CreateBucketConfiguration: &types.CreateBucketConfiguration{LocationConstraint: types.BucketLocationConstraintEuWest1}}); err != nil {
		t.Fatalf("create: %v", err)
	}
	loc, err := s.S3Client(a, "us-east-1").GetBucketLocation(ctx, &s3.GetBucketLocationInput{Bucket: aws.String("made-by-a")})
	if err != nil {
		t.Fatalf("location: %v", err)
	}
	t.Logf("location constraint from kumo: %q", loc.LocationConstraint)
	_, err = s.S3Client(b, "eu-west-1").CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("made-by-a"),
		CreateBucketConfiguration: &types.CreateBucketConfiguration{LocationConstraint: types.BucketLocationConstraintEuWest1}}, noRetry)
	if code, _ := apiCode(err); code != "BucketAlreadyExists" {
		t.Fatalf("create taken name: %v, want BucketAlreadyExists", err)
	}
	_, err = ca.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("no-constraint")}, noRetry)
	if code, _ := apiCode(err); code != "IllegalLocationConstraintException" {
		t.Fatalf("create without constraint in eu-west-1: %v, want IllegalLocationConstraintException", err)
	}
	// The creator owns it: its root may write; b may not.
	if _, err := ca.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("made-by-a"), Key: aws.String("k"), Body: strings.NewReader("v")}); err != nil {
		t.Fatalf("owner put: %v", err)
	}
	_, err = s.S3Client(b, "eu-west-1").PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("made-by-a"), Key: aws.String("k"), Body: strings.NewReader("v")}, noRetry)
	if code, _ := apiCode(err); code != "AccessDenied" {
		t.Fatalf("stranger put: %v, want AccessDenied", err)
	}
	// Bucket policy is the owner's business only.
	pol := `{"Statement":[{"Effect":"Allow","Principal":{"AWS":"` + b.ID + `"},"Action":"s3:GetObject","Resource":"arn:aws:s3:::made-by-a/*"}]}`
	_, err = s.S3Client(b, "eu-west-1").PutBucketPolicy(ctx, &s3.PutBucketPolicyInput{Bucket: aws.String("made-by-a"), Policy: aws.String(pol)}, noRetry)
	if code, _ := apiCode(err); code != "AccessDenied" {
		t.Fatalf("stranger put policy: %v, want AccessDenied", err)
	}
	if _, err := ca.PutBucketPolicy(ctx, &s3.PutBucketPolicyInput{Bucket: aws.String("made-by-a"), Policy: aws.String(pol)}); err != nil {
		t.Fatalf("owner put policy: %v", err)
	}
	if _, err := get(ctx, s.S3Client(b, "eu-west-1"), "made-by-a", "k"); err != nil {
		t.Fatalf("read granted by new policy: %v", err)
	}
	_, err = ca.PutBucketPolicy(ctx, &s3.PutBucketPolicyInput{Bucket: aws.String("made-by-a"), Policy: aws.String(`{"Statement":`)}, noRetry)
	if code, _ := apiCode(err); code != "MalformedPolicy" {
		t.Fatalf("malformed policy: %v, want MalformedPolicy", err)
	}
}

func TestS3UploadsRoundTripBytes(t *testing.T) {
	t.Parallel()
	s := startStack(t, Options{})
	ctx := testCtx(t)
	fleet := mustAccount(t, s, fleetID)
	if err := s.CreateBucket(ctx, Bucket{Name: "ferry-internal", Owner: fleetID}); err != nil {
		t.Fatal(err)
	}
	c := s.S3Client(fleet, "us-east-1")
	data := make([]byte, 11<<20+12345)
	_, _ = rand.Read(data)
	want := sha256.Sum256(data)

	check := func(t *testing.T, key string) {
		t.Helper()
		body, err := get(ctx, c, "ferry-internal", key)
		if err != nil {
			t.Fatalf("get %s: %v", key, err)
		}
		if got := sha256.Sum256([]byte(body)); got != want {
			t.Fatalf("%s: %d bytes back, sha256 differs", key, len(body))
		}
	}
	t.Run("multipart with seekable parts", func(t *testing.T) {
		key := "mp/obj"
		cr, err := c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String("ferry-internal"), Key: aws.String(key)})
		if err != nil {
			t.Fatalf("create upload: %v", err)
		}
		const partSize = 5 << 20
		var parts []types.CompletedPart
		for i, off := int32(1), 0; off < len(data); i, off = i+1, off+partSize {
			end := min(off+partSize, len(data))
			up, err := c.UploadPart(ctx, &s3.UploadPartInput{Bucket: aws.String("ferry-internal"), Key: aws.String(key),
				UploadId: cr.UploadId, PartNumber: aws.Int32(i), Body: bytes.NewReader(data[off:end])})
			if err != nil {
				t.Fatalf("upload part %d: %v", i, err)
			}
			parts = append(parts, types.CompletedPart{ETag: up.ETag, PartNumber: aws.Int32(i)})
		}
		if _, err := c.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: aws.String("ferry-internal"), Key: aws.String(key),
			UploadId: cr.UploadId, MultipartUpload: &types.CompletedMultipartUpload{Parts: parts}}); err != nil {
			t.Fatalf("complete: %v", err)
		}
		check(t, key)
	})
	t.Run("put object seekable", func(t *testing.T) {
		if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("ferry-internal"), Key: aws.String("put/obj"), Body: bytes.NewReader(data)}); err != nil {
			t.Fatalf("put: %v", err)
		}
		check(t, "put/obj")
	})
	t.Run("abort needs AbortMultipartUpload", func(t *testing.T) {
		cr, err := c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String("ferry-internal"), Key: aws.String("ab")})
		if err != nil {
			t.Fatal(err)
		}
		other := s.S3Client(mustAccount(t, s, ""), "us-east-1")
		_, err = other.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{Bucket: aws.String("ferry-internal"), Key: aws.String("ab"), UploadId: cr.UploadId}, noRetry)
		if code, _ := apiCode(err); code != "AccessDenied" {
			t.Fatalf("stranger abort: %v, want AccessDenied", err)
		}
		if _, err := c.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{Bucket: aws.String("ferry-internal"), Key: aws.String("ab"), UploadId: cr.UploadId}); err != nil {
			t.Fatalf("owner abort: %v", err)
		}
	})
}
