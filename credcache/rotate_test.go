package credcache_test

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/ferryworks/ferry/credcache"
	"github.com/ferryworks/ferry/internal/localaws"
	"github.com/ferryworks/ferry/internal/testenv"
)

// trustIDs makes the customer's role trust the fleet with exactly ids, as
// the customer does at each step of a rotation.
func (f *fixture) trustIDs(t testing.TB, in credcache.Integration, ids ...string) {
	t.Helper()
	if _, err := f.st.PutRole(localaws.Role{
		AccountID:   in.AccountID,
		Name:        credcache.DefaultRoleName,
		TrustPolicy: credcache.TrustPolicy(f.fleet.ID, ids...),
		Policies:    []string{credcache.RolePolicy("bucket-" + in.CustomerID)},
	}); err != nil {
		t.Fatal(err)
	}
}

func TestRotateExternalIDRegistry(t *testing.T) {
	t.Parallel()
	rdb, prefix := testenv.Redis(t)
	clock := testenv.FixedClock(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
	reg, err := credcache.NewRegistry(credcache.Options{Redis: rdb, Prefix: prefix, Keys: [][]byte{newKey(t)}, Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	ctx := testenv.Context(t, time.Minute)
	if _, err := reg.RotateExternalID(ctx, "ghost", "", 0); !errors.Is(err, credcache.ErrNotFound) {
		t.Fatalf("rotate of an unknown customer = %v, want ErrNotFound", err)
	}
	if _, err := reg.RegisterAccount(ctx, "plain", "111122223333"); err != nil {
		t.Fatal(err)
	}
	if _, err := reg.RotateExternalID(ctx, "plain", "", 0); err == nil || !strings.Contains(err.Error(), "no external ID") {
		t.Fatalf("rotate without an external ID = %v", err)
	}
	old, err := reg.Enable(ctx, "acme", "111122223333", "")
	if err != nil {
		t.Fatal(err)
	}

	for _, bad := range []struct {
		ext  string
		ttl  time.Duration
		want string
	}{
		{"x", 0, "2-1224 characters"},
		{"has space", 0, "[A-Za-z0-9_+=,.@:/-]"},
		{strings.Repeat("a", 1225), 0, "2-1224"},
		{old.ExternalID, 0, "current external ID"},
		{"", -time.Hour, "ttl"},
		{"", credcache.MaxRotationTTL + time.Hour, "ttl"},
	} {
		_, err := reg.RotateExternalID(ctx, "acme", bad.ext, bad.ttl)
		if !errors.Is(err, credcache.ErrInvalid) || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("rotate to %.20q ttl %v = %v, want a refusal saying %q", bad.ext, bad.ttl, err, bad.want)
		}
		if len(bad.ext) > 8 && err != nil && strings.Contains(err.Error(), bad.ext) {
			t.Errorf("the refusal echoes the external ID: %v", err)
		}
	}

	in, err := reg.RotateExternalID(ctx, "acme", "", 0)
	if err != nil {
		t.Fatal(err)
	}
	if in.PreviousExternalID != old.ExternalID || in.ExternalID == old.ExternalID || credcache.ValidExternalID(in.ExternalID) != nil {
		t.Fatalf("rotated = new %v, previous is old %v", in.ExternalID != old.ExternalID, in.PreviousExternalID == old.ExternalID)
	}
	if want := clock.Now().Add(credcache.DefaultRotationTTL); !in.PreviousExternalIDExpires.Equal(want) {
		t.Fatalf("previous valid until %v, want the default TTL: %v", in.PreviousExternalIDExpires, want)
	}
	if got := in.ExternalIDs(clock.Now()); len(got) != 2 || got[0] != in.ExternalID || got[1] != old.ExternalID {
		t.Fatalf("ExternalIDs = %d IDs, want [new, old]", len(got))
	}
	if got, err := reg.Get(ctx, "acme"); err != nil || got.PreviousExternalID != old.ExternalID || !got.PreviousExternalIDExpires.Equal(in.PreviousExternalIDExpires) {
		t.Fatalf("Get after rotate: %v, previous kept %v", err, got.PreviousExternalID == old.ExternalID)
	}
	// Both IDs are sealed at rest.
	for k, v := range rawValues(t, rdb, prefix) {
		if strings.Contains(v, in.ExternalID) || strings.Contains(v, old.ExternalID) {
			t.Fatalf("%s holds an external ID in clear", k)
		}
	}
	if _, err := reg.RotateExternalID(ctx, "acme", "", 0); !errors.Is(err, credcache.ErrRotationInProgress) {
		t.Fatalf("second rotate = %v, want ErrRotationInProgress", err)
	}
	// Re-enabling the same integration keeps the rotation going.
	if re, err := reg.Enable(ctx, "acme", "111122223333", ""); err != nil || re.PreviousExternalID != old.ExternalID || re.ExternalID != in.ExternalID {
		t.Fatalf("re-enable dropped the rotation: %v", err)
	}
	// Export and import carry the rotation.
	var buf bytes.Buffer
	if err := reg.Export(ctx, &buf); err != nil {
		t.Fatal(err)
	}
	_, other := testenv.Redis(t)
	reg2 := newRegistry(t, rdb, other, newKey(t))
	if _, err := reg2.Import(ctx, bytes.NewReader(buf.Bytes())); err != nil {
		t.Fatal(err)
	}
	if got, err := reg2.Get(ctx, "acme"); err != nil || got.PreviousExternalID != old.ExternalID || !got.PreviousExternalIDExpires.Equal(in.PreviousExternalIDExpires) {
		t.Fatalf("imported rotation: %v, previous kept %v", err, got.PreviousExternalID == old.ExternalID)
	}
	bad := bytes.Replace(buf.Bytes(), []byte(`"previous_external_id_expires_at"`), []byte(`"x_unused"`), 1)
	if _, err := reg2.Import(ctx, bytes.NewReader(bad)); !errors.Is(err, credcache.ErrInvalidImport) {
		t.Fatalf("import of a previous ID without its expiry = %v", err)
	}

	// The TTL runs out: the previous ID is no longer presented, and a new
	// rotation may start; finishing cleans up either way.
	clock.Advance(credcache.DefaultRotationTTL)
	got, _ := reg.Get(ctx, "acme")
	if got.Rotating(clock.Now()) || len(got.ExternalIDs(clock.Now())) != 1 {
		t.Fatal("an expired rotation still presents the previous ID")
	}
	fin, err := reg.FinishRotation(ctx, "acme")
	if err != nil || fin.PreviousExternalID != "" || !fin.PreviousExternalIDExpires.IsZero() || fin.ExternalID != in.ExternalID {
		t.Fatalf("finish = %v", err)
	}
	if got, _ := reg.Get(ctx, "acme"); got.PreviousExternalID != "" {
		t.Fatal("finish left the previous ID stored")
	}
	if _, err := reg.FinishRotation(ctx, "acme"); !errors.Is(err, credcache.ErrNoRotation) {
		t.Fatalf("second finish = %v, want ErrNoRotation", err)
	}
	own, err := reg.RotateExternalID(ctx, "acme", "customer:chosen/id=1", time.Hour)
	if err != nil || own.ExternalID != "customer:chosen/id=1" || !own.PreviousExternalIDExpires.Equal(clock.Now().Add(time.Hour)) {
		t.Fatalf("rotate to a given ID: %v", err)
	}
}

// During a rotation the cache presents the new ID first and falls back to
// the previous one when the role refuses it; the refusal of the new ID is
// neither cached nor reported, and the credentials obtained are shared.
func TestRotationFallsBackToPreviousExternalID(t *testing.T) {
	t.Parallel()
	f, old, ctx := acme(t)
	c1, c2, reg := f.twoProcesses(t)
	if _, err := c1.Credentials(ctx, old); err != nil {
		t.Fatal(err)
	}

	// Start: the role still trusts the old ID only.
	in, err := f.reg.RotateExternalID(ctx, "acme", "", 0)
	if err != nil {
		t.Fatal(err)
	}
	denied0, ok0 := f.assumed("denied"), f.assumed("ok")
	if _, err := c1.Credentials(ctx, in); err != nil {
		t.Fatalf("rotation started, role trusts the old ID: %v", err)
	}
	if d, ok := f.assumed("denied")-denied0, f.assumed("ok")-ok0; d != 1 || ok != 1 {
		t.Fatalf("STS saw denied=%d ok=%d, want the new ID refused once and the old accepted once", d, ok)
	}
	if n := len(testenv.Keys(t, f.rdb, f.prefix+":{acme}:creds:denied")); n != 0 {
		t.Fatal("the new ID's refusal was cached for the fleet")
	}
	// Cached: neither this process nor another calls STS again.
	for i, c := range []*credcache.Cache{c1, c2} {
		if _, err := c.Credentials(ctx, in); err != nil {
			t.Fatalf("cache %d: %v", i+1, err)
		}
	}
	if n := f.assumed("denied") + f.assumed("ok") - denied0 - ok0; n != 2 {
		t.Fatalf("STS calls = %d after three lookups, want 2: the working ID was not cached", n)
	}
	if l1, l2 := counter(t, reg, "ferry_credcache_lookups_total", "l1"), counter(t, reg, "ferry_credcache_lookups_total", "l2"); l1 != 1 || l2 != 1 {
		t.Fatalf("lookups l1=%v l2=%v, want 1 each", l1, l2)
	}

	// The customer lists both IDs, then the new one only: each step works
	// on a fresh AssumeRole, with no refusal.
	for _, ids := range [][]string{{in.ExternalID, old.ExternalID}, {in.ExternalID}} {
		f.trustIDs(t, in, ids...)
		if err := c1.Invalidate(ctx, "acme"); err != nil {
			t.Fatal(err)
		}
		d0 := f.assumed("denied")
		if _, err := c1.Credentials(ctx, in); err != nil {
			t.Fatalf("trust policy with %d IDs: %v", len(ids), err)
		}
		if d := f.assumed("denied") - d0; d != 0 {
			t.Fatalf("trust policy with %d IDs: %d refusals, want the new ID accepted first", len(ids), d)
		}
	}
	fin, err := f.reg.FinishRotation(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c2.Credentials(ctx, fin); err != nil {
		t.Fatalf("after finish: %v", err)
	}

	// Every ID refused: one refusal, cached, naming the role.
	f.trustIDs(t, fin, "neither-of-them")
	in, err = f.reg.RotateExternalID(ctx, "acme", "", 0)
	if err != nil {
		t.Fatal(err)
	}
	_, err = c1.Credentials(ctx, in)
	var ae *credcache.AssumeRoleError
	if !errors.As(err, &ae) || !ae.Denied || ae.Cached || ae.Code != "AccessDenied" {
		t.Fatalf("both IDs refused: %v, want a fresh AccessDenied", err)
	}
	if strings.Contains(err.Error(), in.ExternalID) || strings.Contains(err.Error(), in.PreviousExternalID) {
		t.Fatal("the refusal names an external ID")
	}
	if _, err = c2.Credentials(ctx, in); !errors.As(err, &ae) || !ae.Cached {
		t.Fatalf("other process: %v, want the cached refusal", err)
	}
}

// A rotation whose TTL ran out stops presenting the previous ID, even to a
// cache holding credentials obtained with it.
func TestExpiredRotationDropsPreviousExternalID(t *testing.T) {
	t.Parallel()
	f, old, ctx := acme(t)
	clock := &testenv.Clock{}
	c := f.cache(t, func(o *credcache.Options) { o.Now = clock.Now })
	reg, err := credcache.NewRegistry(credcache.Options{Redis: f.rdb, Prefix: f.prefix, Keys: [][]byte{f.key}, Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	// Credentials last 55 minutes in the cache (1h sessions, 5m refresh
	// window): longer than the rotation.
	in, err := reg.RotateExternalID(ctx, "acme", "", 30*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Credentials(ctx, in); err != nil {
		t.Fatalf("within the TTL: %v", err)
	}
	clock.Advance(30 * time.Minute)
	_, err = c.Credentials(ctx, in)
	var ae *credcache.AssumeRoleError
	if !errors.As(err, &ae) || !ae.Denied {
		t.Fatalf("after the TTL, with the role trusting only the old ID: %v, want a refusal", err)
	}
	if old.ExternalID == in.ExternalID {
		t.Fatal("rotation kept the ID")
	}
}
