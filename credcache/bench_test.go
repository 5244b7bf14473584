package credcache_test

import (
	"slices"
	"testing"
	"time"

	"github.com/ferryworks/ferry/credcache"
	"github.com/ferryworks/ferry/internal/testenv"
)

// BenchmarkCredentials measures the three paths of a lookup. Targets: L1 hit
// ≤ 1 µs (it runs for every signed S3 request), L2 hit p99 ≤ 1 ms.
func BenchmarkCredentials(b *testing.B) {
	f := newFixture(b)
	in := f.customer(b, "acme")
	ctx := testenv.Context(b, time.Minute)

	b.Run("L1hit", func(b *testing.B) {
		c := f.cache(b, nil)
		if _, err := c.Credentials(ctx, in); err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		b.ResetTimer()
		for b.Loop() {
			if _, err := c.Credentials(ctx, in); err != nil {
				b.Fatal(err)
			}
		}
	})

	b.Run("L1hitProvider", func(b *testing.B) {
		c := f.cache(b, nil)
		p := c.Provider(in)
		if _, err := p.Retrieve(ctx); err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		b.ResetTimer()
		for b.Loop() {
			if _, err := p.Retrieve(ctx); err != nil {
				b.Fatal(err)
			}
		}
	})

	b.Run("NewProvider", func(b *testing.B) {
		c := f.cache(b, nil)
		b.ReportAllocs()
		for b.Loop() {
			_ = c.Provider(in)
		}
	})

	b.Run("L2hit", func(b *testing.B) {
		c := f.cache(b, nil)
		if _, err := c.Credentials(ctx, in); err != nil {
			b.Fatal(err)
		}
		lat := make([]time.Duration, 0, 1<<16)
		b.ResetTimer()
		for b.Loop() {
			credcache.DropL1(c, "acme")
			t0 := time.Now()
			if _, err := c.Credentials(ctx, in); err != nil {
				b.Fatal(err)
			}
			lat = append(lat, time.Since(t0))
		}
		reportQuantiles(b, lat)
	})

	b.Run("miss", func(b *testing.B) {
		c := f.cache(b, nil)
		before := f.assumed("ok")
		lat := make([]time.Duration, 0, 1024)
		b.ResetTimer()
		for b.Loop() {
			if err := c.Invalidate(ctx, "acme"); err != nil {
				b.Fatal(err)
			}
			t0 := time.Now()
			if _, err := c.Credentials(ctx, in); err != nil {
				b.Fatal(err)
			}
			lat = append(lat, time.Since(t0))
		}
		b.StopTimer()
		reportQuantiles(b, lat)
		b.ReportMetric(float64(f.assumed("ok")-before)/float64(len(lat)), "sts-calls/op")
	})
}

func reportQuantiles(b *testing.B, lat []time.Duration) {
	if len(lat) == 0 {
		return
	}
	slices.Sort(lat)
	q := func(p float64) float64 { return float64(lat[int(p*float64(len(lat)-1))].Nanoseconds()) }
	b.ReportMetric(q(0.50), "p50-ns")
	b.ReportMetric(q(0.99), "p99-ns")
}
