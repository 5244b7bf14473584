package fetcher

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"

	"github.com/ferryworks/ferry/credcache"
	"github.com/ferryworks/ferry/internal/localaws"
)

func checksOf(rep VerifyReport) string {
	var b strings.Builder
	for _, c := range rep.Checks {
		b.WriteString(c.Check + " " + c.Target)
		if c.OK {
			b.WriteString(" ok\n")
		} else {
			b.WriteString(" " + string(c.Error.Kind) + " " + c.Error.Code + "\n")
		}
	}
	return b.String()
}

// A delegated integration is verified the way tasks would use it: the role,
// the bucket (owned by the registered account) and a read of an object.
func TestVerifyDelegated(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	ctx := context.Background()
	c := e.newCustomer(t, "verify-data", "", false)
	e.put(t, c.bucket, "k", []byte("hello"), "text/plain")
	e.put(t, c.bucket, "empty", nil, "text/plain")
	e.enable(t, "v", c, c.bucket, "")
	other := e.newCustomer(t, "verify-foreign", "", false) // another account's bucket
	cp := e.copier(t, nil)

	rep := cp.Verify(ctx, VerifyRequest{CustomerID: "v", Buckets: []string{c.bucket},
		Objects: []string{"s3://verify-data/k", "s3://verify-data/empty"}})
	want := "assume_role arn:aws:iam::" + c.acct.ID + ":role/ScaleAI-Integration ok\nhead_bucket verify-data ok\nget_object s3://verify-data/k ok\nget_object s3://verify-data/empty ok\n"
	if !rep.OK || rep.Mode != ModeDelegated || checksOf(rep) != want || rep.Failure(time.Now()) != nil {
		t.Fatalf("verify:\n%s(ok %v, mode %s), want\n%s", checksOf(rep), rep.OK, rep.Mode, want)
	}

	rep = cp.Verify(ctx, VerifyRequest{CustomerID: "v", Buckets: []string{other.bucket, "verify-missing"},
		Objects: []string{"s3://verify-data/missing", "https://example.com/x"}})
	if rep.OK {
		t.Fatalf("verify of bad targets passed:\n%s", checksOf(rep))
	}
	byTarget := map[string]VerifyCheck{}
	for _, chk := range rep.Checks {
		byTarget[chk.Target] = chk
	}
	if chk := byTarget[other.bucket]; chk.OK || chk.Error.Kind != KindAccessDenied || !strings.Contains(chk.Error.Hint, "belongs to account "+c.acct.ID) {
		t.Errorf("another account's bucket: %+v", chk.Error)
	}
	if chk := byTarget["verify-missing"]; chk.OK || chk.Error.Kind != KindNotFound || chk.Error.Code != "NoSuchBucket" || !strings.Contains(chk.Error.Hint, "bucket verify-missing does not exist") {
		t.Errorf("a missing bucket: %+v", chk.Error)
	}
	if chk := byTarget["s3://verify-data/missing"]; chk.OK || chk.Error.Kind != KindNotFound || chk.Error.Stage != StageGetObject {
		t.Errorf("a missing key: %+v", chk.Error)
	}
	if chk := byTarget["https://example.com/x"]; chk.OK || chk.Error.Kind != KindInvalid {
		t.Errorf("an https URI: %+v", chk.Error)
	}
	if f := rep.Failure(time.Now()); f == nil || f.Source != "verify" || f.Stage != string(StageHeadBucket) || f.Hint == "" {
		t.Errorf("Failure() = %+v, want the first failed check", f)
	}
}

// A refused AssumeRole is reported with the hint tasks get; once the
// customer fixes the trust policy, the next verification asks STS again
// instead of answering from the refusal the first one cached, and tasks
// stop being refused at once.
func TestVerifyAssumeRoleRefusedThenFixed(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	ctx := context.Background()
	c := e.newCustomer(t, "refused-data", "", false)
	e.put(t, c.bucket, "k", []byte("hello"), "text/plain")
	e.enable(t, "r", c, c.bucket, "not-the-external-id")
	cp := e.copier(t, nil)

	rep := cp.Verify(ctx, VerifyRequest{CustomerID: "r", Buckets: []string{c.bucket}, Objects: []string{"s3://refused-data/k"}})
	if rep.OK || len(rep.Checks) != 1 || rep.Checks[0].Check != CheckAssumeRole || rep.Attempts != 1 {
		t.Fatalf("verify with a wrong external ID:\n%s", checksOf(rep))
	}
	chk := rep.Checks[0]
	if chk.Error.Kind != KindAccessDenied || !strings.Contains(chk.Error.Hint, "does not accept this external ID") || !strings.Contains(chk.Note, "may not be active yet") {
		t.Fatalf("assume_role refusal: %+v note %q", chk.Error, chk.Note)
	}
	_, err := cp.Copy(ctx, Request{CustomerID: "r", TaskID: "t1", URI: "s3://refused-data/k"})
	wantErr(t, err, KindAccessDenied, StageAssumeRole, ModeDelegated, "external ID")

	in, err := e.reg.Get(ctx, "r")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.stack.PutRole(localaws.Role{AccountID: c.acct.ID, Name: credcache.DefaultRoleName,
		TrustPolicy: credcache.TrustPolicy(e.fleet.ID, in.ExternalID), Policies: []string{credcache.RolePolicy(c.bucket)}}); err != nil {
		t.Fatal(err)
	}
	if rep := cp.Verify(ctx, VerifyRequest{CustomerID: "r", Objects: []string{"s3://refused-data/k"}}); !rep.OK {
		t.Fatalf("verify after the fix (the cached refusal answered?):\n%s", checksOf(rep))
	}
	if _, err := cp.Copy(ctx, Request{CustomerID: "r", TaskID: "t2", URI: "s3://refused-data/k"}); err != nil {
		t.Fatalf("a task after a good verification is still refused: %v", err)
	}
}

// With Wait, a role IAM has not yet applied is retried until it is.
func TestVerifyWaitsForAYoungRole(t *testing.T) {
	t.Parallel()
	var offset atomic.Int64
	now := func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }
	stack, err := localaws.Start(localaws.Options{IAMDelay: 30 * time.Second, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = stack.Close() })
	e := newEnv(t, stack)
	ctx := context.Background()
	c := e.newCustomer(t, "young-verify", "", false)
	e.put(t, c.bucket, "k", []byte("young"), "text/plain")
	in, err := e.reg.Enable(ctx, "young", c.acct.ID, "")
	if err != nil {
		t.Fatal(err)
	}
	// Through the IAM API, which applies the IAM delay.
	if err := createRoleThroughIAM(ctx, stack, c.acct, in.ExternalID, e.fleet.ID, c.bucket); err != nil {
		t.Fatal(err)
	}
	cp := e.copier(t, nil)
	if rep := cp.Verify(ctx, VerifyRequest{CustomerID: "young", Objects: []string{"s3://young-verify/k"}}); rep.OK || rep.Attempts != 1 {
		t.Fatalf("verify without waiting passed or retried:\n%s", checksOf(rep))
	}
	var waits []VerifyCheck
	rep := cp.Verify(ctx, VerifyRequest{CustomerID: "young", Objects: []string{"s3://young-verify/k"}, Wait: 5 * time.Minute,
		OnWait: func(failed VerifyCheck, next time.Duration) {
			waits = append(waits, failed)
			if next <= 0 || next > verifyBackoffMax {
				t.Errorf("next attempt in %v", next)
			}
			if len(waits) == 2 {
				offset.Store(int64(31 * time.Second)) // IAM applies the role
			}
		}})
	if !rep.OK || rep.Attempts != 3 || len(waits) != 2 || waits[0].Check != CheckAssumeRole {
		t.Fatalf("verify --wait: ok %v after %d attempts, %d waits:\n%s", rep.OK, rep.Attempts, len(waits), checksOf(rep))
	}
	// A failure that is not access denied is not waited for.
	rep = cp.Verify(ctx, VerifyRequest{CustomerID: "young", Objects: []string{"s3://young-verify/missing"}, Wait: time.Minute,
		OnWait: func(VerifyCheck, time.Duration) { t.Error("waited for a missing key") }})
	if rep.OK || rep.Attempts != 1 {
		t.Fatalf("a missing key: ok %v, %d attempts", rep.OK, rep.Attempts)
	}
}

// A cross-account integration is checked with the fleet's credentials
// pinned to the registered account; without targets there is nothing to
// check, and that is said.
func TestVerifyCrossAccount(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	ctx := context.Background()
	granted := e.newCustomer(t, "xa-granted", "", true)
	e.put(t, granted.bucket, "k", []byte("x"), "text/plain")
	bare := e.newCustomer(t, "xa-bare", "", false)
	e.put(t, bare.bucket, "k", []byte("x"), "text/plain")
	for id, c := range map[string]customer{"granted": granted, "bare": bare} {
		if _, err := e.reg.RegisterAccount(ctx, id, c.acct.ID); err != nil {
			t.Fatal(err)
		}
	}
	cp := e.copier(t, nil)
	rep := cp.Verify(ctx, VerifyRequest{CustomerID: "granted", Objects: []string{"s3://xa-granted/k"}})
	if !rep.OK || rep.Mode != ModeCrossAccount || checksOf(rep) != "get_object s3://xa-granted/k ok\n" {
		t.Fatalf("granted:\n%s", checksOf(rep))
	}
	rep = cp.Verify(ctx, VerifyRequest{CustomerID: "bare", Objects: []string{"s3://xa-bare/k"}})
	if rep.OK || len(rep.Checks) != 1 || rep.Checks[0].Error.Kind != KindAccessDenied || !strings.Contains(rep.Checks[0].Error.Hint, "add the fleet account to the bucket policy") {
		t.Fatalf("no grant:\n%s %+v", checksOf(rep), rep.Checks)
	}
	if rep := cp.Verify(ctx, VerifyRequest{CustomerID: "granted"}); rep.OK || rep.Error == nil || rep.Error.Hint == "" {
		t.Fatalf("nothing named: %+v", rep)
	}
	if rep := cp.Verify(ctx, VerifyRequest{CustomerID: "nobody", Buckets: []string{"b"}}); rep.OK || rep.Error == nil || rep.Error.Code != "NoIntegration" {
		t.Fatalf("no integration: %+v", rep)
	}
	deny := e.copier(t, func(o *Options) { o.CrossAccount = PolicyDeny })
	if rep := deny.Verify(ctx, VerifyRequest{CustomerID: "granted", Objects: []string{"s3://xa-granted/k"}}); rep.OK || len(rep.Checks) != 1 || rep.Checks[0].Check != CheckPolicy {
		t.Fatalf("under FERRY_CROSS_ACCOUNT=deny:\n%s", checksOf(rep))
	}
}

// createRoleThroughIAM creates the integration role as the customer would,
// through the IAM API (which localaws delays by Options.IAMDelay).
func createRoleThroughIAM(ctx context.Context, stack *localaws.Stack, acct localaws.Account, externalID, fleetID, bucket string) error {
	ic := iam.NewFromConfig(stack.Config(acct, "us-east-1"))
	if _, err := ic.CreateRole(ctx, &iam.CreateRoleInput{RoleName: aws.String(credcache.DefaultRoleName),
		AssumeRolePolicyDocument: aws.String(credcache.TrustPolicy(fleetID, externalID))}); err != nil {
		return err
	}
	_, err := ic.PutRolePolicy(ctx, &iam.PutRolePolicyInput{RoleName: aws.String(credcache.DefaultRoleName),
		PolicyName: aws.String("read"), PolicyDocument: aws.String(credcache.RolePolicy(bucket))})
	return err
}
