package credcache_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ferryworks/ferry/credcache"
	"github.com/ferryworks/ferry/internal/testenv"
)

func newKey(t testing.TB) []byte {
	t.Helper()
	k := make([]byte, 32)
	if _, err := rand.Read(k); err != nil {
		t.Fatal(err)
	}
	return k
}

func newRegistry(t testing.TB, rdb redis.UniversalClient, prefix string, keys ...[]byte) *credcache.Registry {
	t.Helper()
	r, err := credcache.NewRegistry(credcache.Options{Redis: rdb, Prefix: prefix, Keys: keys})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// rawValues returns every string stored under prefix: plain values and hash
// fields and values, as Redis holds them.
func rawValues(t testing.TB, rdb redis.UniversalClient, prefix string) map[string]string {
	t.Helper()
	ctx := context.Background()
	out := map[string]string{}
	for _, k := range testenv.Keys(t, rdb, prefix+":*") {
		switch typ := rdb.Type(ctx, k).Val(); typ {
		case "string":
			out[k] = rdb.Get(ctx, k).Val()
		case "hash":
			for f, v := range rdb.HGetAll(ctx, k).Val() {
				out[k+"#"+f] = f + "=" + v
			}
		default:
			t.Fatalf("unexpected type %s at %s", typ, k)
		}
	}
	return out
}

var base64URL = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

func TestRegistryEnableGetDisable(t *testing.T) {
	t.Parallel()
	rdb, prefix := testenv.Redis(t)
	reg := newRegistry(t, rdb, prefix, newKey(t))
	ctx := context.Background()

	in, err := reg.Enable(ctx, "acme", "111122223333", "")
	if err != nil {
		t.Fatal(err)
	}
	raw, err := base64.RawURLEncoding.DecodeString(in.ExternalID)
	if err != nil || len(raw) < 16 || !base64URL.MatchString(in.ExternalID) || credcache.ValidExternalID(in.ExternalID) != nil {
		t.Fatalf("generated external ID %d chars is not >=128-bit base64url accepted by STS", len(in.ExternalID))
	}
	if !in.Enabled || in.RoleName != credcache.DefaultRoleName || in.CreatedAt.IsZero() || !in.CreatedAt.Equal(in.UpdatedAt) {
		t.Fatalf("Enable = %+v", in)
	}
	if got, err := reg.Get(ctx, "acme"); err != nil || !reflect.DeepEqual(got, in) {
		t.Fatalf("Get = %+v, %v; want %+v", got, err, in)
	}

	other, err := reg.Enable(ctx, "other", "111122223333", "")
	if err != nil || other.ExternalID == in.ExternalID {
		t.Fatalf("two customers got the same external ID (err %v)", err)
	}

	if err := reg.Disable(ctx, "acme"); err != nil {
		t.Fatal(err)
	}
	got, err := reg.Get(ctx, "acme")
	if err != nil || got.Enabled || got.ExternalID != in.ExternalID || got.AccountID != in.AccountID || !got.CreatedAt.Equal(in.CreatedAt) {
		t.Fatalf("after Disable Get = %+v, %v", got, err)
	}

	// Re-enabling the same account keeps the external ID the customer's
	// trust policy already holds.
	again, err := reg.Enable(ctx, "acme", "111122223333", "")
	if err != nil || again.ExternalID != in.ExternalID || !again.Enabled {
		t.Fatalf("re-Enable = %+v, %v", again, err)
	}
	// A migrating customer brings their own external ID.
	mine, err := reg.Enable(ctx, "acme", "111122223333", "their-existing-id")
	if err != nil || mine.ExternalID != "their-existing-id" {
		t.Fatalf("Enable with external ID = %+v, %v", mine, err)
	}
	// A new account gets a new external ID.
	moved, err := reg.Enable(ctx, "acme", "444455556666", "")
	if err != nil || moved.ExternalID == "their-existing-id" || moved.RoleARN() != "arn:aws:iam::444455556666:role/ScaleAI-Integration" {
		t.Fatalf("Enable on a new account = %+v, %v", moved, err)
	}

	list, err := reg.List(ctx)
	if err != nil || len(list) != 2 || list[0].CustomerID != "acme" || list[1].CustomerID != "other" {
		t.Fatalf("List = %+v, %v", list, err)
	}
}

func TestRegistryRegisterAccount(t *testing.T) {
	t.Parallel()
	rdb, prefix := testenv.Redis(t)
	reg := newRegistry(t, rdb, prefix, newKey(t))
	ctx := context.Background()

	in, err := reg.RegisterAccount(ctx, "xacct", "123456789012")
	if err != nil || in.Enabled || in.ExternalID != "" || in.AccountID != "123456789012" {
		t.Fatalf("RegisterAccount = %+v, %v", in, err)
	}
	got, err := reg.Get(ctx, "xacct")
	if err != nil || got.Enabled || got.AccountID != "123456789012" || got.ExternalID != "" {
		t.Fatalf("Get = %+v, %v", got, err)
	}
	// On an enabled integration it keeps delegation and the external ID.
	en, _ := reg.Enable(ctx, "deleg", "111111111111", "")
	moved, err := reg.RegisterAccount(ctx, "deleg", "222222222222")
	if err != nil || !moved.Enabled || moved.ExternalID != en.ExternalID || moved.AccountID != "222222222222" {
		t.Fatalf("RegisterAccount on enabled = %+v, %v", moved, err)
	}
}

func TestRegistryErrors(t *testing.T) {
	t.Parallel()
	rdb, prefix := testenv.Redis(t)
	reg := newRegistry(t, rdb, prefix, newKey(t))
	ctx := context.Background()

	tests := []struct {
		name string
		op   func() error
		want error
	}{
		{"get unknown", func() error { _, err := reg.Get(ctx, "nobody"); return err }, credcache.ErrNotFound},
		{"disable unknown", func() error { return reg.Disable(ctx, "nobody") }, credcache.ErrNotFound},
		{"enable empty customer", func() error { _, err := reg.Enable(ctx, "", "123456789012", ""); return err }, credcache.ErrInvalid},
		{"enable customer with brace", func() error { _, err := reg.Enable(ctx, "a}b", "123456789012", ""); return err }, credcache.ErrInvalid},
		{"enable short account", func() error { _, err := reg.Enable(ctx, "c", "12345", ""); return err }, credcache.ErrInvalid},
		{"enable bad external id", func() error { _, err := reg.Enable(ctx, "c", "123456789012", "has space"); return err }, credcache.ErrInvalid},
		{"enable one-char external id", func() error { _, err := reg.Enable(ctx, "c", "123456789012", "x"); return err }, credcache.ErrInvalid},
		{"register bad account", func() error { _, err := reg.RegisterAccount(ctx, "c", "abcdefabcdef"); return err }, credcache.ErrInvalid},
		{"get invalid customer", func() error { _, err := reg.Get(ctx, "a*"); return err }, credcache.ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.op()
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
		})
	}
	if n := len(rawValues(t, rdb, prefix)); n != 0 {
		t.Fatalf("failed operations wrote %d values", n)
	}
}

func TestNewRegistryOptionErrors(t *testing.T) {
	t.Parallel()
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"}) // never dialled
	t.Cleanup(func() { _ = rdb.Close() })
	tests := []struct {
		name   string
		opts   credcache.Options
		keyErr bool
	}{
		{"no redis", credcache.Options{Keys: [][]byte{make([]byte, 32)}}, false},
		{"no keys", credcache.Options{Redis: rdb}, true},
		{"16-byte key", credcache.Options{Redis: rdb, Keys: [][]byte{make([]byte, 16)}}, true},
		{"prefix with brace", credcache.Options{Redis: rdb, Prefix: "a{b", Keys: [][]byte{make([]byte, 32)}}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := credcache.NewRegistry(tt.opts)
			if err == nil {
				t.Fatal("NewRegistry accepted bad options")
			}
			var ke *credcache.KeyError
			if tt.keyErr != errors.As(err, &ke) {
				t.Fatalf("err = %v, KeyError want %v", err, tt.keyErr)
			}
			if tt.keyErr && !strings.Contains(err.Error(), "openssl rand -base64 32") {
				t.Fatalf("error %q does not say how to make a key", err)
			}
		})
	}
}

func TestRegistryExternalIDSealed(t *testing.T) {
	t.Parallel()
	rdb, prefix := testenv.Redis(t)
	oldKey, newKey2 := newKey(t), newKey(t)
	reg := newRegistry(t, rdb, prefix, oldKey)
	ctx := context.Background()
	in, err := reg.Enable(ctx, "acme", "111122223333", "")
	if err != nil {
		t.Fatal(err)
	}
	vals := rawValues(t, rdb, prefix)
	if len(vals) == 0 {
		t.Fatal("nothing stored")
	}
	for k, v := range vals {
		if strings.Contains(v, in.ExternalID) {
			t.Fatalf("%s holds the external ID in clear", k)
		}
	}

	// Rotation: a registry with [new, old] reads what old sealed.
	rotated := newRegistry(t, rdb, prefix, newKey2, oldKey)
	if got, err := rotated.Get(ctx, "acme"); err != nil || got.ExternalID != in.ExternalID {
		t.Fatalf("rotated Get = %+v, %v", got, err)
	}
	// Dropping the old key too early: a clear error, not garbage.
	if _, err := newRegistry(t, rdb, prefix, newKey2).Get(ctx, "acme"); !errors.Is(err, credcache.ErrCorrupt) {
		t.Fatalf("Get with the sealing key gone = %v, want ErrCorrupt", err)
	}
	// A sealed external ID copied to another customer does not open there.
	key := func(c string) string { return prefix + ":{" + c + "}:integration" }
	sealed := rdb.HGet(ctx, key("acme"), "external_id").Val()
	if _, err := reg.RegisterAccount(ctx, "mallory", "999999999999"); err != nil {
		t.Fatal(err)
	}
	rdb.HSet(ctx, key("mallory"), "external_id", sealed)
	if _, err := reg.Get(ctx, "mallory"); !errors.Is(err, credcache.ErrCorrupt) {
		t.Fatalf("Get of a transplanted external ID = %v, want ErrCorrupt", err)
	}
}

func TestRegistryExportImportRoundTrip(t *testing.T) {
	t.Parallel()
	rdb, prefix := testenv.Redis(t)
	key := newKey(t)
	src := newRegistry(t, rdb, prefix+"-src", key)
	dst := newRegistry(t, rdb, prefix+"-dst", newKey(t)) // another key: the file carries clear external IDs
	t.Cleanup(func() {
		for _, p := range []string{prefix + "-src", prefix + "-dst"} {
			for _, k := range rdb.Keys(context.Background(), p+":*").Val() {
				rdb.Del(context.Background(), k)
			}
		}
	})
	ctx := context.Background()
	for _, c := range []string{"a", "b", "c"} {
		if _, err := src.Enable(ctx, c, "111122223333", ""); err != nil {
			t.Fatal(err)
		}
	}
	if err := src.Disable(ctx, "b"); err != nil {
		t.Fatal(err)
	}
	if _, err := src.RegisterAccount(ctx, "x", "444455556666"); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := src.Export(ctx, &buf); err != nil {
		t.Fatal(err)
	}
	n, err := dst.Import(ctx, bytes.NewReader(buf.Bytes()))
	if err != nil || n != 4 {
		t.Fatalf("Import = %d, %v", n, err)
	}
	want, _ := src.List(ctx)
	got, err := dst.List(ctx)
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("round trip:\n got %+v\nwant %+v\n err %v", got, want, err)
	}
}

func TestRegistryImportRejectsWholeFile(t *testing.T) {
	t.Parallel()
	good := func(c string) string {
		return `{"customer_id":"` + c + `","account_id":"111122223333","external_id":"ext-` + c + `","enabled":true}`
	}
	file := func(entries ...string) string {
		return `{"version":1,"integrations":[` + strings.Join(entries, ",") + `]}`
	}
	tests := []struct {
		name  string
		file  string
		entry int
	}{
		{"bad account in the middle", file(good("a"), `{"customer_id":"b","account_id":"12","external_id":"xx","enabled":true}`, good("c")), 1},
		{"bad customer last", file(good("a"), good("b"), `{"customer_id":"c d","enabled":false}`), 2},
		{"enabled without external id", file(good("a"), `{"customer_id":"b","account_id":"111122223333","enabled":true}`), 1},
		{"duplicate customer", file(good("a"), good("b"), good("a")), 2},
		{"bad role name", file(`{"customer_id":"a","role_name":"a/b"}`), 0},
		{"unknown field", file(good("a"), `{"customer_id":"b","secret":"x"}`), -1},
		{"not json", `customer,account`, -1},
		{"wrong version", `{"version":2,"integrations":[]}`, -1},
		{"no list", `{"version":1}`, -1},
		{"trailing data", file(good("a")) + ` {}`, -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			rdb, prefix := testenv.Redis(t)
			reg := newRegistry(t, rdb, prefix, newKey(t))
			n, err := reg.Import(context.Background(), strings.NewReader(tt.file))
			var ie *credcache.ImportError
			if !errors.As(err, &ie) || !errors.Is(err, credcache.ErrInvalidImport) || n != 0 {
				t.Fatalf("Import = %d, %v; want *ImportError", n, err)
			}
			if ie.Entry != tt.entry {
				t.Fatalf("ImportError.Entry = %d, want %d (%v)", ie.Entry, tt.entry, err)
			}
			if strings.Contains(err.Error(), "ext-") {
				t.Fatalf("error %q echoes an external ID", err)
			}
			if vals := rawValues(t, rdb, prefix); len(vals) != 0 {
				t.Fatalf("a refused import wrote %d values", len(vals))
			}
		})
	}
}

func TestRegistryChangesClearCachedCredentials(t *testing.T) {
	t.Parallel()
	rdb, prefix := testenv.Redis(t)
	reg := newRegistry(t, rdb, prefix, newKey(t))
	ctx := context.Background()
	if _, err := reg.Enable(ctx, "acme", "111122223333", ""); err != nil {
		t.Fatal(err)
	}
	creds, denied := prefix+":{acme}:creds", prefix+":{acme}:creds:denied"
	ops := []struct {
		name string
		op   func() error
	}{
		{"enable", func() error { _, err := reg.Enable(ctx, "acme", "111122223333", ""); return err }},
		{"disable", func() error { return reg.Disable(ctx, "acme") }},
		{"register account", func() error { _, err := reg.RegisterAccount(ctx, "acme", "111122223334"); return err }},
		{"import", func() error {
			_, err := reg.Import(ctx, strings.NewReader(`{"version":1,"integrations":[{"customer_id":"acme"}]}`))
			return err
		}},
	}
	for _, o := range ops {
		rdb.Set(ctx, creds, "sealed", time.Minute)
		rdb.Set(ctx, denied, "sealed", time.Minute)
		if err := o.op(); err != nil {
			t.Fatalf("%s: %v", o.name, err)
		}
		if n := rdb.Exists(ctx, creds, denied).Val(); n != 0 {
			t.Fatalf("%s left %d cached entries", o.name, n)
		}
	}
}

// While Redis is unreachable the registry answers with what it last read,
// so tasks keep flowing; a customer it never saw is an error, and once
// Redis answers again it is read again.
func TestRegistryServesLastKnownWhileRedisDown(t *testing.T) {
	t.Parallel()
	srv := testenv.StartRedis(t)
	key := newKey(t)
	reg := newRegistry(t, srv.Client(), "ferry", key)
	ctx := context.Background()
	acme, err := reg.Enable(ctx, "acme", "222222222222", "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := reg.Get(ctx, "acme"); err != nil {
		t.Fatal(err)
	}
	if _, err := reg.Get(ctx, "nobody"); !errors.Is(err, credcache.ErrNotFound) {
		t.Fatalf("Get(nobody) = %v, want ErrNotFound", err)
	}

	srv.Stop()
	got, err := reg.Get(ctx, "acme")
	if err != nil || got.ExternalID != acme.ExternalID || !got.Enabled {
		t.Fatalf("Redis down: Get(acme) = %+v, %v; want the last known integration", got, err)
	}
	if _, err := reg.Get(ctx, "nobody"); !errors.Is(err, credcache.ErrNotFound) {
		t.Fatalf("Redis down: Get(nobody) = %v, want the remembered ErrNotFound", err)
	}
	if _, err := reg.Get(ctx, "stranger"); err == nil || errors.Is(err, credcache.ErrNotFound) {
		t.Fatalf("Redis down: Get(never seen) = %v, want a Redis error", err)
	}

	// Redis back, empty (a restart lost every key): that is data loss, not
	// a Disable. acme stays as this process knew it; a customer it never
	// saw fails transiently until the registry is restored.
	srv.Start()
	time.Sleep(1100 * time.Millisecond) // past the moment Get skips Redis after a failure
	if got, err := reg.Get(ctx, "acme"); err != nil || !got.Enabled {
		t.Fatalf("Redis back without the record: Get(acme) = %+v, %v; want the last known enabled integration", got, err)
	}
	if _, err := reg.Get(ctx, "stranger"); !errors.Is(err, credcache.ErrRegistryLost) {
		t.Fatalf("Redis back without the registry: Get(stranger) = %v, want ErrRegistryLost", err)
	}
	// Restored (here: enabled again): the registry is the system of record.
	if _, err := reg.Enable(ctx, "acme", "222222222222", "a-new-external-id"); err != nil {
		t.Fatal(err)
	}
	if got, err := reg.Get(ctx, "acme"); err != nil || got.ExternalID != "a-new-external-id" {
		t.Fatalf("after the restore: Get(acme) = %+v, %v", got, err)
	}
	if _, err := reg.Get(ctx, "stranger"); !errors.Is(err, credcache.ErrNotFound) {
		t.Fatalf("after the restore: Get(stranger) = %v, want ErrNotFound", err)
	}
}
