package fetcher

import (
	"context"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/ferryworks/ferry/internal/localaws"
)

// heapSampler records the peak HeapInuse while a benchmark runs.
type heapSampler struct {
	stop chan struct{}
	done sync.WaitGroup
	peak uint64
}

func sampleHeap() *heapSampler {
	h := &heapSampler{stop: make(chan struct{})}
	h.done.Add(1)
	go func() {
		defer h.done.Done()
		tick := time.NewTicker(2 * time.Millisecond)
		defer tick.Stop()
		var ms runtime.MemStats
		for {
			runtime.ReadMemStats(&ms)
			h.peak = max(h.peak, ms.HeapInuse)
			select {
			case <-h.stop:
				return
			case <-tick.C:
			}
		}
	}()
	return h
}

func (h *heapSampler) Stop() uint64 {
	close(h.stop)
	h.done.Wait()
	return h.peak
}

// zeroReader is an endless source of zero bytes for seeding big objects.
type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) { clear(p); return len(p), nil }

// BenchmarkCopy copies one object per iteration from a customer bucket
// (cross-account) into internal storage and reports throughput and peak heap
// against the bound PartSize × PartConcurrency. The 1 GiB case runs
// only with FERRY_BENCH_BIG=1: the emulator keeps ~2 GiB per GiB written.
func BenchmarkCopy(b *testing.B) {
	sizes := []int64{1 << 20, 64 << 20}
	if os.Getenv("FERRY_BENCH_BIG") == "1" {
		sizes = append(sizes, 1<<30)
	}
	for _, size := range sizes {
		b.Run(fmt.Sprintf("%dMiB", size>>20), func(b *testing.B) {
			// A fresh emulator per size: it never returns memory.
			stack, err := localaws.Start(localaws.Options{})
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { stack.Close() })
			e := newEnv(b, stack)
			ctx := context.Background()
			e.newCustomer(b, "bench-data", "", true)
			if err := stack.PutObject(ctx, "bench-data", "obj", io.LimitReader(zeroReader{}, size), size, "application/octet-stream"); err != nil {
				b.Fatal(err)
			}
			c := e.copier(b, nil)
			req := Request{CustomerID: "bench", TaskID: "t", URI: "s3://bench-data/obj"}
			stored := ""
			runtime.GC()
			var base runtime.MemStats
			runtime.ReadMemStats(&base)
			b.SetBytes(size)
			b.ResetTimer()
			h := sampleHeap()
			start := time.Now()
			for i := 0; i < b.N; i++ {
				res, err := c.Copy(ctx, req)
				if err != nil {
					b.Fatal(err)
				}
				if res.Skipped || res.Size != size {
					b.Fatalf("result %+v", res)
				}
				stored = res.Stored
				b.StopTimer()
				// Delete the copy so the next iteration is not skipped.
				key := strings.TrimPrefix(stored, "s3://"+e.bucket+"/")
				if _, err := e.s3.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(e.bucket), Key: aws.String(key)}); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
			}
			b.StopTimer()
			elapsed := time.Since(start)
			peak := h.Stop()
			o := c.opts
			b.ReportMetric(float64(size)*float64(b.N)/(1<<20)/elapsed.Seconds(), "MiB/s")
			b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MiB")
			b.ReportMetric(float64(peak-min(peak, base.HeapInuse))/(1<<20), "peak-heap-over-start-MiB")
			b.ReportMetric(float64(o.PartSize*int64(o.PartConcurrency))/(1<<20), "bound-MiB")
		})
	}
}
