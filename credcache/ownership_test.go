package credcache_test

import (
	"bytes"
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/ferryworks/ferry/credcache"
	"github.com/ferryworks/ferry/internal/testenv"
)

// register-account issues a verification token, sealed at rest and kept
// across re-registration; a verified bucket counts only under the account
// it was verified for, and registering another account voids it.
func TestRegistryVerificationTokenAndVerifiedBuckets(t *testing.T) {
	t.Parallel()
	rdb, prefix := testenv.Redis(t)
	reg := newRegistry(t, rdb, prefix, newKey(t))
	ctx := context.Background()

	in, err := reg.RegisterAccount(ctx, "tenant-a", "111122223333")
	if err != nil {
		t.Fatal(err)
	}
	if err := credcache.ValidVerificationToken(in.VerificationToken); err != nil {
		t.Fatalf("issued token %q: %v", in.VerificationToken, err)
	}
	for k, v := range rawValues(t, rdb, prefix) {
		if strings.Contains(v, in.VerificationToken) {
			t.Fatalf("%s holds the verification token in clear", k)
		}
	}
	again, err := reg.RegisterAccount(ctx, "tenant-a", "111122223333")
	if err != nil || again.VerificationToken != in.VerificationToken {
		t.Fatalf("re-register changed the token (%v): a customer's proof object would stop matching", err)
	}
	other, err := reg.RegisterAccount(ctx, "tenant-b", "111122223333")
	if err != nil || other.VerificationToken == in.VerificationToken {
		t.Fatalf("two customers share a token (%v)", err)
	}

	if in.VerifiedFor("bucket-a") {
		t.Fatal("a bucket counts as verified before any proof")
	}
	v, err := reg.MarkBucketVerified(ctx, "tenant-a", "bucket-a", "111122223333")
	if err != nil || v.Bucket != "bucket-a" || v.AccountID != "111122223333" || v.VerifiedAt.IsZero() {
		t.Fatalf("MarkBucketVerified = %+v, %v", v, err)
	}
	got, err := reg.Get(ctx, "tenant-a")
	if err != nil || !got.VerifiedFor("bucket-a") || got.VerifiedFor("bucket-b") || len(got.VerifiedBuckets) != 1 {
		t.Fatalf("after verification Get = %+v, %v", got, err)
	}
	if b, _ := reg.Get(ctx, "tenant-b"); b.VerifiedFor("bucket-a") {
		t.Fatal("a bucket verified for one customer counts for another")
	}
	// Enabling delegation for the same account keeps token and proofs.
	en, err := reg.Enable(ctx, "tenant-a", "111122223333", "")
	if err != nil || en.VerificationToken != in.VerificationToken || !en.VerifiedFor("bucket-a") {
		t.Fatalf("Enable on the same account = %+v, %v", en, err)
	}
	if err := reg.Disable(ctx, "tenant-a"); err != nil {
		t.Fatal(err)
	}
	moved, err := reg.RegisterAccount(ctx, "tenant-a", "444455556666")
	if err != nil || moved.VerifiedFor("bucket-a") || len(moved.VerifiedBuckets) != 0 || moved.VerificationToken != in.VerificationToken {
		t.Fatalf("after moving to another account = %+v, %v; want no verified bucket, same token", moved, err)
	}
	if got, _ := reg.Get(ctx, "tenant-a"); got.VerifiedFor("bucket-a") || len(got.VerifiedBuckets) != 0 {
		t.Fatalf("stored record after the move still lists %+v", got.VerifiedBuckets)
	}
	// A record bound to another account is inert even if it is still there
	// (the cleanup is best effort).
	if _, err := reg.MarkBucketVerified(ctx, "tenant-a", "bucket-a", "111122223333"); err != nil {
		t.Fatal(err)
	}
	if got, _ := reg.Get(ctx, "tenant-a"); got.VerifiedFor("bucket-a") {
		t.Fatal("a bucket verified under a former account counts")
	}
	if _, err := reg.MarkBucketVerified(ctx, "tenant-a", "bucket-c", "444455556666"); err != nil {
		t.Fatal(err)
	}
	if err := reg.UnverifyBucket(ctx, "tenant-a", "bucket-c"); err != nil {
		t.Fatal(err)
	}
	if got, _ := reg.Get(ctx, "tenant-a"); got.VerifiedFor("bucket-c") {
		t.Fatal("UnverifyBucket left the bucket verified")
	}

	if _, err := reg.MarkBucketVerified(ctx, "ghost", "bucket-a", "111122223333"); !errors.Is(err, credcache.ErrNotFound) {
		t.Fatalf("MarkBucketVerified of an unknown customer = %v, want ErrNotFound", err)
	}
	for _, bad := range []struct{ bucket, account string }{{"", "111122223333"}, {"a b", "111122223333"}, {"ok", "12"}} {
		if _, err := reg.MarkBucketVerified(ctx, "tenant-a", bad.bucket, bad.account); !errors.Is(err, credcache.ErrInvalid) {
			t.Errorf("MarkBucketVerified(%q, %q) = %v, want ErrInvalid", bad.bucket, bad.account, err)
		}
	}
	// Every key of a customer shares its hash slot (cluster-safe).
	keys := testenv.Keys(t, rdb, prefix+":{tenant-a}:*")
	for _, k := range keys {
		if testenv.Slot(k) != testenv.Slot(keys[0]) {
			t.Fatalf("%s is not in the customer's slot", k)
		}
	}
	if len(keys) < 2 {
		t.Fatalf("want the integration and its verified buckets under the customer's tag, got %v", keys)
	}
}

// Export carries tokens and verified buckets; Import restores them exactly
// and refuses a token ferry could not have issued.
func TestRegistryVerificationExportImport(t *testing.T) {
	t.Parallel()
	rdb, prefix := testenv.Redis(t)
	src := newRegistry(t, rdb, prefix, newKey(t))
	_, other := testenv.Redis(t)
	dst := newRegistry(t, rdb, other, newKey(t))
	ctx := context.Background()
	if _, err := src.RegisterAccount(ctx, "a", "111122223333"); err != nil {
		t.Fatal(err)
	}
	if _, err := src.MarkBucketVerified(ctx, "a", "a-data", "111122223333"); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := src.Export(ctx, &buf); err != nil {
		t.Fatal(err)
	}
	if _, err := dst.Import(ctx, bytes.NewReader(buf.Bytes())); err != nil {
		t.Fatal(err)
	}
	want, _ := src.Get(ctx, "a")
	got, err := dst.Get(ctx, "a")
	if err != nil || !reflect.DeepEqual(got, want) || !got.VerifiedFor("a-data") {
		t.Fatalf("imported %+v, %v; want %+v", got, err, want)
	}
	forged := strings.Replace(buf.String(), want.VerificationToken, "guessable", 1)
	if _, err := dst.Import(ctx, strings.NewReader(forged)); !errors.Is(err, credcache.ErrInvalidImport) || strings.Contains(err.Error(), "guessable") {
		t.Fatalf("import of a made-up token = %v, want an ErrInvalidImport that does not echo it", err)
	}
}
