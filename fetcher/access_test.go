package fetcher

import (
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/ferryworks/ferry/credcache"
	"github.com/ferryworks/ferry/internal/testenv"
)

func TestNewAccess(t *testing.T) {
	t.Parallel()
	rdb, prefix := testenv.Redis(t)
	ctx := testenv.Context(t, time.Minute)
	key := [][]byte{[]byte("0123456789abcdef0123456789abcdef")}
	cred := credcache.Options{Redis: rdb, Prefix: prefix, Keys: key, STS: sts.New(sts.Options{Region: "us-east-1"})}
	copyOpts := Options{S3: s3.New(s3.Options{Region: "us-east-1"}), Redis: rdb, RedisPrefix: prefix, Bucket: "internal"}

	acc, err := NewAccess(cred, copyOpts)
	if err != nil {
		t.Fatal(err)
	}
	if acc.Copier.opts.Integrations != acc.Registry || acc.Copier.opts.Credentials != acc.Cache {
		t.Fatalf("the copier reads through %v and %v, not the access's registry %p and cache %p",
			acc.Copier.opts.Integrations, acc.Copier.opts.Credentials, acc.Registry, acc.Cache)
	}
	// What the registry writes, the copier reads.
	if _, err := acc.Registry.Enable(ctx, "acme", "222233334444", ""); err != nil {
		t.Fatal(err)
	}
	if in, err := acc.Copier.opts.Integrations.Get(ctx, "acme"); err != nil || !in.Enabled || in.AccountID != "222233334444" {
		t.Fatalf("the copier sees %+v, %v; want acme's enabled integration", in, err)
	}

	// Each part's own validation still speaks.
	if _, err := NewAccess(credcache.Options{Redis: rdb, Prefix: prefix}, copyOpts); err == nil || !strings.Contains(err.Error(), "credcache") {
		t.Errorf("no cache key: err = %v, want credcache's error", err)
	}
	noSTS := cred
	noSTS.STS = nil
	if _, err := NewAccess(noSTS, copyOpts); err == nil || !strings.Contains(err.Error(), "STS") {
		t.Errorf("no STS client: err = %v, want the credential cache's error", err)
	}
	noBucket := copyOpts
	noBucket.Bucket = ""
	if _, err := NewAccess(cred, noBucket); err == nil || !strings.Contains(err.Error(), "Options.Bucket is required") {
		t.Errorf("no bucket: err = %v, want the copier's error", err)
	}
}
