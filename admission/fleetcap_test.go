package admission_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ferryworks/ferry/admission"
	"github.com/ferryworks/ferry/internal/testenv"
)

func newCap(t *testing.T, o admission.Options) *admission.FleetCap {
	t.Helper()
	f, err := admission.New(o)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// Two workers racing for one customer's places never hold more than Max
// between them, and do reach Max.
func TestFleetCapHoldsAcrossWorkers(t *testing.T) {
	t.Parallel()
	rdb, prefix := testenv.Redis(t)
	const max = 3
	workers := []*admission.FleetCap{
		newCap(t, admission.Options{Redis: rdb, Prefix: prefix, Max: max}),
		newCap(t, admission.Options{Redis: rdb, Prefix: prefix, Max: max}),
	}
	ctx := context.Background()
	var running, peak, admitted, refused atomic.Int64
	var wg sync.WaitGroup
	for g := range 24 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			f := workers[g%2]
			for range 15 {
				p, ok, err := f.Acquire(ctx, "acme")
				if err != nil {
					t.Error(err)
					return
				}
				if !ok {
					refused.Add(1)
					time.Sleep(time.Millisecond)
					continue
				}
				admitted.Add(1)
				n := running.Add(1)
				for {
					old := peak.Load()
					if n <= old || peak.CompareAndSwap(old, n) {
						break
					}
				}
				time.Sleep(2 * time.Millisecond)
				running.Add(-1)
				if err := p.Release(ctx); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	if p := peak.Load(); p > max || p < max {
		t.Errorf("peak of %d tasks running at once, want exactly the cap %d", p, max)
	}
	if admitted.Load() == 0 || refused.Load() == 0 {
		t.Errorf("admitted %d, refused %d: want both", admitted.Load(), refused.Load())
	}
	if n, err := rdb.ZCard(ctx, workers[0].Key("acme")).Result(); err != nil || n != 0 {
		t.Errorf("%d places left after every task released (err %v), want 0", n, err)
	}
	// Another customer has places of its own.
	if _, ok, err := workers[0].Acquire(ctx, "globex"); !ok || err != nil {
		t.Errorf("globex refused (err %v) while acme holds nothing", err)
	}
}

// A worker that dies without releasing (nothing renews its places) frees
// them once the lease lapses, not before.
func TestFleetCapDeadWorkerPlacesLapse(t *testing.T) {
	t.Parallel()
	rdb, prefix := testenv.Redis(t)
	const ttl = 1500 * time.Millisecond
	dead := newCap(t, admission.Options{Redis: rdb, Prefix: prefix, Max: 2, LeaseTTL: ttl})
	alive := newCap(t, admission.Options{Redis: rdb, Prefix: prefix, Max: 2, LeaseTTL: ttl})
	ctx := context.Background()
	taken := time.Now()
	for range 2 {
		if _, ok, err := dead.Acquire(ctx, "acme"); !ok || err != nil {
			t.Fatalf("acquire: ok=%v err=%v", ok, err)
		}
	}
	if _, ok, _ := alive.Acquire(ctx, "acme"); ok {
		t.Fatal("a third place was granted while two are held with a cap of 2")
	}
	var got time.Time
	for deadline := time.Now().Add(20 * time.Second); got.IsZero(); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the dead worker's places never lapsed")
		}
		if _, ok, err := alive.Acquire(ctx, "acme"); err != nil {
			t.Fatal(err)
		} else if ok {
			got = time.Now()
		}
	}
	if waited := got.Sub(taken); waited < ttl {
		t.Errorf("a place came back after %s, before the lease TTL %s", waited, ttl)
	}
	// The key lapses with its places: an idle customer leaves nothing.
	if d, err := rdb.PTTL(ctx, alive.Key("acme")).Result(); err != nil || d <= 0 || d > ttl {
		t.Errorf("key TTL %s (err %v), want in (0, %s]", d, err, ttl)
	}
}

// A live worker's renewals keep its places for as long as its tasks run,
// well past one lease, and a release frees a place at once.
func TestFleetCapRenewalKeepsPlaces(t *testing.T) {
	t.Parallel()
	rdb, prefix := testenv.Redis(t)
	const ttl = time.Second
	live := newCap(t, admission.Options{Redis: rdb, Prefix: prefix, Max: 2, LeaseTTL: ttl})
	other := newCap(t, admission.Options{Redis: rdb, Prefix: prefix, Max: 2, LeaseTTL: ttl})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go live.Run(ctx)
	var places []*admission.Place
	for range 2 {
		p, ok, err := live.Acquire(ctx, "acme")
		if !ok || err != nil {
			t.Fatalf("acquire: ok=%v err=%v", ok, err)
		}
		places = append(places, p)
	}
	for end := time.Now().Add(3 * ttl); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
		if _, ok, err := other.Acquire(ctx, "acme"); ok || err != nil {
			t.Fatalf("another worker got a place (err %v) while the live worker renews both", err)
		}
	}
	if err := places[0].Release(ctx); err != nil {
		t.Fatal(err)
	}
	if err := places[0].Release(ctx); err != nil { // idempotent
		t.Fatal(err)
	}
	if _, ok, err := other.Acquire(ctx, "acme"); !ok || err != nil {
		t.Fatalf("no place after a release: ok=%v err=%v", ok, err)
	}
	if live.Held() != 1 {
		t.Errorf("live worker holds %d places, want 1", live.Held())
	}
}

// With the cap off nothing touches Redis and everything is admitted; a nil
// place releases as a no-op.
func TestFleetCapOff(t *testing.T) {
	t.Parallel()
	f := newCap(t, admission.Options{})
	p, ok, err := f.Acquire(context.Background(), "acme")
	if !ok || err != nil || p != nil {
		t.Fatalf("cap off: place %v ok %v err %v", p, ok, err)
	}
	if err := p.Release(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := admission.New(admission.Options{Max: 2}); err == nil {
		t.Error("a cap without Redis was accepted")
	}
}
