package credcache_test

import (
	"context"

	"encoding/base64"
	"errors"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/ferryworks/ferry/credcache"
)

// Neither the integration registry nor the credential cache operates with a
// missing or short FERRY_CACHE_KEY: external IDs and credentials would be
// stored unsealed or not at all. The refusal says how to make a key.
func TestCacheKeyRequired(t *testing.T) {
	t.Parallel()
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"}) // never dialled
	t.Cleanup(func() { _ = rdb.Close() })
	b64 := func(n int) string { return base64.StdEncoding.EncodeToString(make([]byte, n)) }
	specs := map[string]string{
		"unset": "", "blank": "  ,  ", "not base64": "not-a-key!", "16 bytes": b64(16), "31 bytes": b64(31),
		"33 bytes": b64(33), "good then short": b64(32) + "," + b64(8), "hex instead of base64": strings.Repeat("ab", 32),
	}
	for name, spec := range specs {
		t.Run("ParseKeys/"+name, func(t *testing.T) {
			t.Parallel()
			keys, err := credcache.ParseKeys(spec)
			wantKeyError(t, err)
			if keys != nil {
				t.Fatalf("keys returned with the error")
			}
		})
	}
	for name, keys := range map[string][][]byte{"none": nil, "empty": {}, "16 bytes": {make([]byte, 16)}, "zero-length": {{}},
		"second short": {make([]byte, 32), make([]byte, 24)}} {
		opts := credcache.Options{Redis: rdb, Keys: keys, STS: nilSTS{}}
		t.Run("NewRegistry/"+name, func(t *testing.T) {
			t.Parallel()
			_, err := credcache.NewRegistry(opts)
			wantKeyError(t, err)
		})
		t.Run("New/"+name, func(t *testing.T) {
			t.Parallel()
			_, err := credcache.New(opts)
			wantKeyError(t, err)
		})
	}
}

func wantKeyError(t *testing.T, err error) {
	t.Helper()
	var ke *credcache.KeyError
	if !errors.As(err, &ke) {
		t.Fatalf("err = %v, want a *credcache.KeyError", err)
	}
	if !strings.Contains(err.Error(), "openssl rand -base64 32") || !strings.Contains(err.Error(), "FERRY_CACHE_KEY") {
		t.Fatalf("error %q does not say how to make a key and where to put it", err)
	}
}

// nilSTS satisfies Options.STS for constructors that fail before any call.
type nilSTS struct{}

func (nilSTS) AssumeRole(context.Context, *sts.AssumeRoleInput, ...func(*sts.Options)) (*sts.AssumeRoleOutput, error) {
	return nil, errors.New("not called")
}
