package main

import (
	"encoding/json"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/ferryworks/ferry/credcache"
	"github.com/ferryworks/ferry/internal/demo"
	"github.com/ferryworks/ferry/internal/localaws"
	"github.com/ferryworks/ferry/internal/testenv"
	"github.com/ferryworks/ferry/queue"
)

var tokenLine = regexp.MustCompile(`verification token: (fv1-[A-Za-z0-9_-]+)`)

// Two spare accounts play two tenants. Tenant A registers tenant B's account
// ID; under FERRY_CROSS_ACCOUNT=require-verified A's task for B's bucket is
// access_denied with a hint naming the proof object and the command, while
// B, after putting its token and being verified, reads the bucket. Every
// failed verification (object missing, wrong token, a bucket of another
// account) exits 1 with what to change.
func TestVerifyBucketTwoTenants(t *testing.T) {
	t.Parallel()
	w := testenv.SharedWorld(t)
	if len(w.Manifest.SpareAccounts) < 2 {
		t.Fatalf("the world has %d spare accounts, want 2", len(w.Manifest.SpareAccounts))
	}
	ctx := testenv.Context(t, 4*time.Minute)
	env := cliEnv(w, "FERRY_CROSS_ACCOUNT=require-verified", "FERRY_LOG_LEVEL=warn")
	// admin is the S3 client of a spare account's administrator: the
	// customer's side.
	admin := func(a demo.SpareAccount) *s3.Client {
		return s3.NewFromConfig(w.Stack.Config(localaws.Account{ID: a.AccountID, AccessKeyID: a.AdminAccessKeyID,
			SecretAccessKey: a.AdminSecretAccessKey}, demo.DefaultRegion), func(o *s3.Options) { o.UsePathStyle = true })
	}
	put := func(c *s3.Client, bucket, key, body string) {
		t.Helper()
		if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), Body: strings.NewReader(body)}); err != nil {
			t.Fatalf("put s3://%s/%s: %v", bucket, key, err)
		}
	}
	bucketFor := func(c *s3.Client, bucket string) {
		t.Helper()
		if _, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(bucket)}); err != nil {
			t.Fatal(err)
		}
		if _, err := c.PutBucketPolicy(ctx, &s3.PutBucketPolicyInput{Bucket: aws.String(bucket),
			Policy: aws.String(credcache.BucketPolicy(bucket, w.Manifest.FleetAccountID))}); err != nil {
			t.Fatal(err)
		}
	}
	spareA, spareB := w.Manifest.SpareAccounts[0], w.Manifest.SpareAccounts[1]
	adminA, adminB := admin(spareA), admin(spareB)
	bucketFor(adminB, "tenant-b-data")
	put(adminB, "tenant-b-data", "private/ledger.csv", "b's ledger")
	bucketFor(adminA, "tenant-a-data")

	register := func(customer, account string) string {
		t.Helper()
		r := runCLI(t, env, "", "integration", "register-account", customer, "--account", account)
		m := tokenLine.FindStringSubmatch(r.stdout)
		if r.code != 0 || m == nil || !strings.Contains(r.stdout, "ferry integration verify-bucket "+customer+" BUCKET") {
			t.Fatalf("register-account %s: exit %d, no token or instructions:\n%s%s", customer, r.code, r.stdout, r.stderr)
		}
		return m[1]
	}
	tokA := register("tenant-a", spareB.AccountID) // not A's account
	tokB := register("tenant-b", spareB.AccountID)
	var shown credcache.Integration
	if r := runCLI(t, env, "", "integration", "show", "tenant-b", "-o", "json"); json.Unmarshal([]byte(r.stdout), &shown) != nil || shown.VerificationToken != tokB {
		t.Fatalf("show -o json does not give the token register-account printed: %s", r.stdout)
	}
	if r := runCLI(t, env, "", "integration", "show", "tenant-b"); !strings.Contains(r.stdout, tokB) {
		t.Fatalf("show does not print the verification token:\n%s", r.stdout)
	}

	verify := func(customer, bucket string, code int, want string) {
		t.Helper()
		r := runCLI(t, env, "", "integration", "verify-bucket", customer, bucket)
		out := r.stdout + r.stderr
		if r.code != code || !strings.Contains(out, want) {
			t.Fatalf("verify-bucket %s %s: exit %d, want %d mentioning %q:\n%s", customer, bucket, r.code, code, want, out)
		}
		for _, tok := range []string{tokA, tokB} {
			if code != 0 && strings.Contains(out, tok) {
				t.Fatalf("verify-bucket %s %s printed a token:\n%s", customer, bucket, out)
			}
		}
	}
	keyB := credcache.VerificationKey("tenant-b")
	// Missing object: the bucket grants GetObject only, so S3 says 403.
	verify("tenant-b", "tenant-b-data", 1, "s3://tenant-b-data/"+keyB)
	put(adminB, "tenant-b-data", keyB, tokA) // a token, but not B's
	verify("tenant-b", "tenant-b-data", 1, "does not hold tenant-b's verification token")
	put(adminB, "tenant-b-data", keyB, tokB+"\n")
	verify("tenant-b", "tenant-b-data", 0, "bucket tenant-b-data verified")
	// A cannot: nothing at A's key in B's bucket, and A cannot put it there.
	if _, err := adminA.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("tenant-b-data"),
		Key: aws.String(credcache.VerificationKey("tenant-a")), Body: strings.NewReader(tokA)}); err == nil {
		t.Fatal("tenant A could write into B's bucket: the premise of this test is gone")
	}
	verify("tenant-a", "tenant-b-data", 1, "s3://tenant-b-data/"+credcache.VerificationKey("tenant-a"))
	// A's own bucket is not owned by the account A registered.
	put(adminA, "tenant-a-data", credcache.VerificationKey("tenant-a"), tokA)
	verify("tenant-a", "tenant-a-data", 1, "not owned by account "+spareB.AccountID)
	verify("tenant-a", "Bad_Bucket", 1, "invalid bucket name")
	if r := runCLI(t, env, "", "integration", "verify-bucket", "tenant-a"); r.code != 2 {
		t.Fatalf("verify-bucket without a bucket: exit %d, want 2", r.code)
	}

	// Through the worker: A is refused with how to verify, B reads.
	tasks := `{"version":1,"task_id":"steal","customer_id":"tenant-a","attachments":[{"uri":"s3://tenant-b-data/private/ledger.csv"}]}
{"version":1,"task_id":"own","customer_id":"tenant-b","attachments":[{"uri":"s3://tenant-b-data/private/ledger.csv"}]}
`
	if r := runCLI(t, env, tasks, "enqueue"); r.code != 0 {
		t.Fatalf("enqueue: exit %d: %s", r.code, r.stderr)
	}
	startWorker(t, env)
	evs := testenv.CollectEvents[queue.Event](t, sqs.NewFromConfig(w.FleetConfig), w.Manifest.Queues.Events, 2, 3*time.Minute, time.Second)
	byTask := map[string]queue.Event{}
	for _, e := range evs {
		byTask[e.TaskID] = e
	}
	if e := byTask["own"]; e.Type != queue.EventCompleted {
		t.Errorf("tenant B's task after verifying: %+v, want completed", e)
	}
	steal := byTask["steal"]
	if steal.Type != queue.EventAccessDenied || len(steal.Attachments) != 1 || steal.Attachments[0].Error == nil {
		t.Fatalf("tenant A's task for B's bucket: %+v, want access_denied", steal)
	}
	ae := steal.Attachments[0].Error
	if ae.Stage != "policy" || ae.Code != "BucketNotVerified" ||
		!strings.Contains(ae.Hint, "s3://tenant-b-data/"+credcache.VerificationKey("tenant-a")) ||
		!strings.Contains(ae.Hint, "ferry integration verify-bucket tenant-a tenant-b-data") {
		t.Errorf("refusal %+v does not say how to verify", ae)
	}
}
