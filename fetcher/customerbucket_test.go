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
	"github.com/ferryworks/ferry/internal/testenv"
)

// A copy that outlives its session renews the credentials and carries on
// from where it was: with 2-second sessions and a second of latency on
// every GetObject, a 20 MiB object read in 5 MiB ranges (S3's smallest
// part) needs several sessions, and still every range is asked for exactly
// once.
func TestCopyOutlivesItsSession(t *testing.T) {
	t.Parallel()
	e := newEnv(t, testenv.LocalAWS(t)) // own stack: it injects faults and reads the call counts
	c := e.newCustomer(t, "long-copy", "", false)
	e.enable(t, "longcopy", c, c.bucket, "")
	const size, part = 4 * minPartSize, minPartSize
	body := randBytes(int(size))
	e.put(t, c.bucket, "big.bin", body, "application/octet-stream")
	if err := e.stack.InjectFault(localaws.Fault{Operation: "sts:AssumeRole", SessionSeconds: 2}); err != nil {
		t.Fatal(err)
	}
	if err := e.stack.InjectFault(localaws.Fault{Operation: "s3:GetObject", LatencyMS: 1000}); err != nil {
		t.Fatal(err)
	}
	cp := e.copier(t, func(o *Options) { o.PartSize = part; o.PartConcurrency = 2 })
	e.stack.ResetStats()
	res, err := cp.Copy(context.Background(), Request{CustomerID: "longcopy", TaskID: "t1", URI: "s3://long-copy/big.bin", Attempt: 1})
	if err != nil {
		t.Fatalf("copy: %v", err)
	}
	if res.Size != size || res.SHA256 != sum(body) {
		t.Fatalf("copied %d bytes, sha256 %s; want %d, %s", res.Size, res.SHA256, size, sum(body))
	}
	if got := ops(e.stack, "s3:GetObject", "ok"); got != size/part {
		t.Errorf("%d GetObject calls succeeded, want one per range (%d): the copy started over or skipped", got, size/part)
	}
	// Each range is read with credentials fetched for it. On a machine so
	// loaded that more than a session's 2 s pass between fetching them and
	// the gate checking the request, S3 answers ExpiredToken and the range
	// is retried once with a renewed session (a second refusal fails the
	// copy above). So a refusal is tolerated only when a renewal followed
	// it: never more refusals than sessions beyond the first.
	refused, sessions := ops(e.stack, "s3:GetObject", "denied"), ops(e.stack, "sts:AssumeRole", "ok")
	if sessions < 2 {
		t.Errorf("%d AssumeRole calls: the session was never renewed", sessions)
	}
	if refused > sessions-1 {
		t.Errorf("%d GetObject calls refused with %d sessions: expired credentials were used without renewing them", refused, sessions)
	} else if refused > 0 {
		t.Logf("%d GetObject calls refused for expired credentials and retried with a renewed session", refused)
	}
	stored, _ := e.stored(t, res)
	if sum(stored) != sum(body) {
		t.Error("stored object differs from the source")
	}
}

// What a customer's bucket setup brings, and the hint that says what to
// change.
func TestCopyCustomerBucketSetups(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	ctx := context.Background()

	// SSE-KMS: the key policy decides.
	kms := e.newCustomer(t, "kms-data", "", false)
	e.enable(t, "kmscust", kms, kms.bucket, "")
	role := localaws.RoleARN(kms.acct.ID, credcache.DefaultRoleName)
	granted, err := e.stack.CreateKMSKey(kms.acct.ID, "", `{"Version":"2012-10-17","Statement":[`+
		`{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::`+kms.acct.ID+`:root"},"Action":"kms:*","Resource":"*"},`+
		`{"Effect":"Allow","Principal":{"AWS":"`+role+`"},"Action":"kms:Decrypt","Resource":"*"}]}`)
	if err != nil {
		t.Fatal(err)
	}
	withheld, err := e.stack.CreateKMSKey(kms.acct.ID, "", "")
	if err != nil {
		t.Fatal(err)
	}
	for key, arn := range map[string]string{"granted": granted.ARN, "withheld": withheld.ARN} {
		if err := e.stack.SetBucketEncryption(kms.bucket, arn); err != nil {
			t.Fatal(err)
		}
		e.put(t, kms.bucket, key, []byte("secret "+key), "text/plain")
	}
	cp := e.copier(t, nil)
	if _, err := cp.Copy(ctx, Request{CustomerID: "kmscust", TaskID: "k1", URI: "s3://kms-data/granted"}); err != nil {
		t.Fatalf("key policy grants the role: %v", err)
	}
	_, err = cp.Copy(ctx, Request{CustomerID: "kmscust", TaskID: "k2", URI: "s3://kms-data/withheld"})
	fe := wantErr(t, err, KindAccessDenied, StageGetObject, ModeDelegated, withheld.ARN)
	if !strings.Contains(fe.Message, "kms:Decrypt") || !strings.Contains(fe.Hint, "key policy") || !strings.Contains(fe.Hint, "role's permission policy") {
		t.Errorf("KMS denial: message %q, hint %q", fe.Message, fe.Hint)
	}
	if rep := cp.Check(ctx, "kmscust", "s3://kms-data/withheld"); rep.OK || rep.Error == nil || !strings.Contains(rep.Error.Hint, withheld.ARN) {
		t.Errorf("check-access of an object it cannot decrypt: %+v", rep)
	}

	// Requester Pays, read by a role of another account.
	payer := e.newCustomer(t, "rp-data", "", false)
	if err := e.stack.SetBucketPolicy(payer.bucket, `{"Version":"2012-10-17","Statement":[{"Effect":"Allow",`+
		`"Principal":{"AWS":"arn:aws:iam::`+kms.acct.ID+`:root"},"Action":"s3:GetObject","Resource":"arn:aws:s3:::rp-data/*"}]}`); err != nil {
		t.Fatal(err)
	}
	if err := e.stack.SetRequesterPays(payer.bucket, true); err != nil {
		t.Fatal(err)
	}
	e.put(t, payer.bucket, "x", []byte("paid for"), "text/plain")
	if _, err := e.stack.PutRole(localaws.Role{AccountID: kms.acct.ID, Name: credcache.DefaultRoleName,
		TrustPolicy: credcache.TrustPolicy(e.fleet.ID, mustIntegration(t, e, "kmscust").ExternalID),
		Policies:    []string{credcache.RolePolicy("rp-data")}}); err != nil {
		t.Fatal(err)
	}
	if _, err := cp.Copy(ctx, Request{CustomerID: "kmscust", TaskID: "r1", URI: "s3://rp-data/x"}); err != nil {
		t.Fatalf("requester pays, delegated: %v", err)
	}
	never := e.copier(t, func(o *Options) { o.RequesterPays = RequesterPaysNever })
	_, err = never.Copy(ctx, Request{CustomerID: "kmscust", TaskID: "r2", URI: "s3://rp-data/x"})
	wantErr(t, err, KindAccessDenied, StageGetObject, ModeDelegated, "Requester Pays")

	// Object ACLs, cross-account; ACLs grant nothing under BucketOwnerEnforced.
	acl := e.newCustomer(t, "acl-data", "", false)
	if err := e.stack.SetObjectOwnership(acl.bucket, localaws.OwnershipObjectWriter); err != nil {
		t.Fatal(err)
	}
	e.put(t, acl.bucket, "shared", []byte("shared"), "text/plain")
	e.put(t, acl.bucket, "private", []byte("private"), "text/plain")
	if err := e.stack.GrantObjectRead(ctx, acl.bucket, "shared", e.fleet.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := cp.Copy(ctx, Request{CustomerID: "aclcust", TaskID: "a1", URI: "s3://acl-data/shared"}); err != nil {
		t.Fatalf("object ACL grants the fleet: %v", err)
	}
	_, err = cp.Copy(ctx, Request{CustomerID: "aclcust", TaskID: "a2", URI: "s3://acl-data/private"})
	wantErr(t, err, KindAccessDenied, StageGetObject, ModeCrossAccount, "bucket policy")
	if err := e.stack.SetObjectOwnership(acl.bucket, localaws.OwnershipBucketOwnerEnforced); err != nil {
		t.Fatal(err)
	}
	_, err = cp.Copy(ctx, Request{CustomerID: "aclcust", TaskID: "a3", URI: "s3://acl-data/shared"})
	wantErr(t, err, KindAccessDenied, StageGetObject, ModeCrossAccount, "BucketOwnerEnforced")
}

func mustIntegration(t *testing.T, e *env, id string) credcache.Integration {
	t.Helper()
	in, err := e.reg.Get(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return in
}

// A role created a moment ago is refused until IAM's change reaches STS;
// check-access says that may be why, and the refusal is not final: once the
// change is in force and the cached refusal has expired, the copy works.
func TestCheckYoungRole(t *testing.T) {
	t.Parallel()
	var offset atomic.Int64
	now := func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }
	stack, err := localaws.Start(localaws.Options{IAMDelay: 30 * time.Second, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = stack.Close() })
	e := newEnv(t, stack)
	c := e.newCustomer(t, "young-data", "", false)
	e.put(t, c.bucket, "k", []byte("young"), "text/plain")
	ctx := context.Background()
	in, err := e.reg.Enable(ctx, "young", c.acct.ID, "")
	if err != nil {
		t.Fatal(err)
	}
	ic := iam.NewFromConfig(stack.Config(c.acct, "us-east-1"))
	if _, err := ic.CreateRole(ctx, &iam.CreateRoleInput{RoleName: aws.String(credcache.DefaultRoleName),
		AssumeRolePolicyDocument: aws.String(credcache.TrustPolicy(e.fleet.ID, in.ExternalID))}); err != nil {
		t.Fatal(err)
	}
	if _, err := ic.PutRolePolicy(ctx, &iam.PutRolePolicyInput{RoleName: aws.String(credcache.DefaultRoleName),
		PolicyName: aws.String("read"), PolicyDocument: aws.String(credcache.RolePolicy(c.bucket))}); err != nil {
		t.Fatal(err)
	}
	cache, err := credcache.New(credcache.Options{Redis: e.opts.Redis, Prefix: e.prefix, Keys: [][]byte{make([]byte, 32)},
		STS: stack.STSClient(e.fleet, ""), Now: now})
	if err != nil {
		t.Fatal(err)
	}
	cp := e.copier(t, func(o *Options) { o.Credentials = cache })
	rep := cp.Check(ctx, "young", "s3://young-data/k")
	if rep.OK || rep.Error == nil || rep.Error.Stage != StageAssumeRole || !strings.Contains(rep.Note, "may not be active yet") {
		t.Fatalf("check of a young role: %+v (error %+v)", rep, rep.Error)
	}
	// Past the IAM delay and the cached refusal's 60 s.
	offset.Store(int64(61 * time.Second))
	if _, err := cp.Copy(ctx, Request{CustomerID: "young", TaskID: "y1", URI: "s3://young-data/k"}); err != nil {
		t.Fatalf("copy once the role is in force: %v", err)
	}
}
