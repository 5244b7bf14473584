package fetcher

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/ferryworks/ferry/credcache"
)

// Two tenants, each with an account and a bucket that grants the fleet (the
// sample bucket policy). Tenant A registers tenant B's account ID. Under
// require-owner that is enough to read B's bucket (the hole); under
// require-verified A is refused with a hint that says how to verify, A
// cannot verify B's bucket, and B, after putting its token, reads it.
func TestRequireVerifiedClosesForeignAccountRegistration(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	ctx := context.Background()
	a := e.newCustomer(t, "owner-a-data", "", true)
	b := e.newCustomer(t, "owner-b-data", "", true)
	body := randBytes(4096)
	e.put(t, b.bucket, "private/ledger.bin", body, "application/octet-stream")
	e.put(t, a.bucket, "own/notes.bin", body, "application/octet-stream")
	if _, err := e.reg.RegisterAccount(ctx, "tenant-a", b.acct.ID); err != nil { // someone else's account
		t.Fatal(err)
	}
	inB, err := e.reg.RegisterAccount(ctx, "tenant-b", b.acct.ID)
	if err != nil {
		t.Fatal(err)
	}
	requireOwner := e.copier(t, func(o *Options) { o.CrossAccount = PolicyRequireOwner })
	requireVerified := e.copier(t, func(o *Options) { o.CrossAccount = PolicyRequireVerified })
	victim := "s3://owner-b-data/private/ledger.bin"

	// The hole require-verified closes: the owner check alone passes.
	if _, err := requireOwner.Copy(ctx, Request{CustomerID: "tenant-a", TaskID: "t-hole", URI: victim}); err != nil {
		t.Fatalf("require-owner: a tenant naming another's account reads its bucket? got %v; the premise of this test is gone", err)
	}

	_, err = requireVerified.Copy(ctx, Request{CustomerID: "tenant-a", TaskID: "t-steal", URI: victim})
	fe := wantErr(t, err, KindAccessDenied, StagePolicy, ModeCrossAccount, "s3://owner-b-data/.well-known/ferry-verification/tenant-a")
	if fe.Code != "BucketNotVerified" || !strings.Contains(fe.Hint, "ferry integration verify-bucket tenant-a owner-b-data") {
		t.Fatalf("refusal %s: hint %q does not name the command", fe.Code, fe.Hint)
	}
	if rep := requireVerified.Check(ctx, "tenant-a", victim); rep.OK || rep.Error == nil || rep.Error.Code != "BucketNotVerified" {
		t.Fatalf("check-access under require-verified = %+v", rep)
	}

	// A cannot verify B's bucket: the proof would have to be written there.
	// B's own proof (at B's key, with B's token) does not help A either.
	e.put(t, b.bucket, credcache.VerificationKey("tenant-b"), []byte(inB.VerificationToken+"\n"), "text/plain")
	_, err = requireVerified.VerifyBucket(ctx, e.reg, "tenant-a", b.bucket)
	var ve *VerifyError
	if !errors.As(err, &ve) || ve.Reason != VerifyNotReadable {
		t.Fatalf("tenant A verifying B's bucket = %v, want not_readable", err)
	}
	if _, err := requireVerified.Copy(ctx, Request{CustomerID: "tenant-a", TaskID: "t-steal-2", URI: victim}); !errors.Is(err, ErrAccessDenied) {
		t.Fatalf("after a failed verification, A's read = %v, want access_denied", err)
	}

	// B verifies (its token with the newline `echo` adds) and reads.
	v, err := requireVerified.VerifyBucket(ctx, e.reg, "tenant-b", b.bucket)
	if err != nil || v.Bucket != b.bucket || v.AccountID != b.acct.ID {
		t.Fatalf("B verifying its bucket = %+v, %v", v, err)
	}
	res, err := requireVerified.Copy(ctx, Request{CustomerID: "tenant-b", TaskID: "t-own", URI: victim})
	if err != nil || res.SHA256 != sum(body) || res.Mode != ModeCrossAccount {
		t.Fatalf("B's read after verifying = %+v, %v", res, err)
	}
	// ... and A still cannot: B's proof is B's.
	if _, err := requireVerified.Copy(ctx, Request{CustomerID: "tenant-a", TaskID: "t-steal-3", URI: victim}); !errors.Is(err, ErrAccessDenied) {
		t.Fatalf("after B verified, A's read = %v, want access_denied", err)
	}
	// A's own bucket belongs to another account than the one A
	// registered: verification fails on the owner, and reads stay refused.
	e.put(t, a.bucket, credcache.VerificationKey("tenant-a"), []byte("whatever"), "text/plain")
	_, err = requireVerified.VerifyBucket(ctx, e.reg, "tenant-a", a.bucket)
	if !errors.As(err, &ve) || ve.Reason != VerifyOwnerMismatch || !strings.Contains(err.Error(), "not owned by account "+b.acct.ID) {
		t.Fatalf("verifying a bucket of another account = %v, want owner_mismatch", err)
	}
}

// Every way a verification fails says what to change, and never verifies.
func TestVerifyBucketFailures(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	ctx := context.Background()
	c := e.newCustomer(t, "verify-c-data", "", true)
	// A bucket whose policy also grants ListBucket, so S3 says 404 for a
	// missing key instead of 403.
	listable := e.newCustomer(t, "verify-c-listable", "", false)
	if err := e.stack.SetBucketPolicy(listable.bucket, `{"Version":"2012-10-17","Statement":[{"Effect":"Allow",
		"Principal":{"AWS":"arn:aws:iam::`+e.fleet.ID+`:root"},"Action":["s3:GetObject","s3:ListBucket"],
		"Resource":["arn:aws:s3:::verify-c-listable","arn:aws:s3:::verify-c-listable/*"]}]}`); err != nil {
		t.Fatal(err)
	}
	cv := e.copier(t, func(o *Options) { o.CrossAccount = PolicyRequireVerified })
	check := func(customer, bucket string, want VerifyReason, msgHas string) {
		t.Helper()
		_, err := cv.VerifyBucket(ctx, e.reg, customer, bucket)
		var ve *VerifyError
		if !errors.As(err, &ve) || ve.Reason != want || !strings.Contains(err.Error(), msgHas) {
			t.Fatalf("VerifyBucket(%s, %s) = %v, want %s mentioning %q", customer, bucket, err, want, msgHas)
		}
		if in, err := e.reg.Get(ctx, customer); err == nil && in.VerifiedFor(bucket) {
			t.Fatalf("%s counts as verified after %s", bucket, want)
		}
	}
	check("nobody", c.bucket, VerifyNotRegistered, "ferry integration register-account nobody --account ID")
	in, err := e.reg.RegisterAccount(ctx, "cust-c", listable.acct.ID)
	if err != nil {
		t.Fatal(err)
	}
	check("cust-c", listable.bucket, VerifyObjectMissing, "s3://verify-c-listable/.well-known/ferry-verification/cust-c does not exist")
	check("cust-c", "verify-no-such-bucket", VerifyNoBucket, "does not exist")
	e.put(t, listable.bucket, credcache.VerificationKey("cust-c"), []byte("fv1-not-the-token"), "text/plain")
	check("cust-c", listable.bucket, VerifyTokenMismatch, "does not hold cust-c's verification token")
	e.put(t, listable.bucket, credcache.VerificationKey("cust-c"), nil, "text/plain")
	check("cust-c", listable.bucket, VerifyTokenMismatch, "ferry integration show cust-c")
	// The token with a prefix is not the token.
	e.put(t, listable.bucket, credcache.VerificationKey("cust-c"), []byte("x"+in.VerificationToken), "text/plain")
	check("cust-c", listable.bucket, VerifyTokenMismatch, "verification token")
	// Bucket of another account (c's): pinned to cust-c's account, refused.
	e.put(t, c.bucket, credcache.VerificationKey("cust-c"), []byte(in.VerificationToken), "text/plain")
	check("cust-c", c.bucket, VerifyOwnerMismatch, "not owned by account "+listable.acct.ID)
	// Error messages never carry the token.
	_, err = cv.VerifyBucket(ctx, e.reg, "cust-c", listable.bucket)
	if err == nil || strings.Contains(err.Error(), in.VerificationToken) {
		t.Fatalf("error %v carries the token", err)
	}
	// The right token verifies.
	e.put(t, listable.bucket, credcache.VerificationKey("cust-c"), []byte("  "+in.VerificationToken+"\r\n"), "text/plain")
	if _, err := cv.VerifyBucket(ctx, e.reg, "cust-c", listable.bucket); err != nil {
		t.Fatalf("the right token: %v", err)
	}
	if got, _ := e.reg.Get(ctx, "cust-c"); !got.VerifiedFor(listable.bucket) {
		t.Fatal("verified bucket not recorded")
	}
	if _, err := cv.VerifyBucket(ctx, e.reg, "cust-c", "Not_A_Bucket"); err == nil {
		t.Fatal("an invalid bucket name was accepted")
	}
}
