package fetcher

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"os"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/s3/transfermanager"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/ferryworks/ferry/internal/localaws"
)

// BenchmarkUploader puts the hand-written uploader of upload.go next to the
// SDK's feature/s3/transfermanager on the same job: stream an unseekable
// source of N bytes into the internal bucket with one SHA-256 pass and the
// digest stored with the object, part size and parts in flight as
// configured (by default 8 MiB × 4). The source is generated, not read from S3, so
// only the upload side is measured. It reports MiB/s, CPU seconds per GiB
// (the whole process: the uploader and the in-process IAM gate, which does
// the same work for both), peak RSS over the run (VmHWM, reset before each
// size) and peak Go heap. The 1 GiB case runs only with FERRY_BENCH_BIG=1.
//
//	.ci/with-redis.sh go test -run '^$' -bench BenchmarkUploader -benchtime 3x ./fetcher
func BenchmarkUploader(b *testing.B) {
	sizes := []int64{8 << 20, 64 << 20, 256 << 20}
	if os.Getenv("FERRY_BENCH_BIG") == "1" {
		sizes = append(sizes, 1<<30)
	}
	for _, size := range sizes {
		for _, impl := range []string{"ferry", "transfermanager"} {
			b.Run(fmt.Sprintf("%dMiB/%s", size>>20, impl), func(b *testing.B) {
				// A fresh emulator per case: it never returns memory.
				stack, err := localaws.Start(localaws.Options{})
				if err != nil {
					b.Fatal(err)
				}
				b.Cleanup(func() { stack.Close() })
				e := newEnv(b, stack)
				c := e.copier(b, nil)
				up := c.upload
				if impl == "transfermanager" {
					up = tmUploader(c)
				}
				benchUpload(b, e, c, up, size)
			})
		}
	}
}

type uploadFunc func(ctx context.Context, key string, r io.Reader, size int64, contentType string, meta map[string]string) (int64, string, error)

func benchUpload(b *testing.B, e *env, c *Copier, up uploadFunc, size int64) {
	ctx := context.Background()
	runtime.GC()
	resetPeakRSS()
	b.SetBytes(size)
	h := sampleHeap()
	b.ResetTimer()
	var busy, cpu time.Duration
	for i := 0; i < b.N; i++ {
		key := fmt.Sprintf("bench/%d", i)
		t0, c0 := time.Now(), processCPU()
		// Unknown size, like an https source without Content-Length: the
		// uploader cannot know where the object ends before it reads it.
		n, sum, err := up(ctx, key, io.LimitReader(zeroReader{}, size), -1, "application/octet-stream", map[string]string{metaSource: "bench"})
		busy, cpu = busy+time.Since(t0), cpu+processCPU()-c0
		if err != nil {
			b.Fatal(err)
		}
		if n != size || sum != zeroSum(size) {
			b.Fatalf("uploaded %d bytes with sha256 %s, want %d and %s", n, sum, size, zeroSum(size))
		}
		b.StopTimer()
		if _, err := e.s3.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(e.bucket), Key: aws.String(key)}); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
	b.StopTimer()
	peak := h.Stop()
	gib := float64(size) * float64(b.N) / (1 << 30)
	b.ReportMetric(float64(size)*float64(b.N)/(1<<20)/busy.Seconds(), "MiB/s")
	b.ReportMetric(cpu.Seconds()/gib, "cpu-s/GiB")
	b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MiB")
	if rss, ok := peakRSS(); ok {
		b.ReportMetric(float64(rss)/(1<<20), "peak-rss-MiB")
	}
}

// tmUploader does upload's job with transfermanager: the source is hashed
// on its way in (one SHA-256 pass, as in upload), and because the digest is
// known only once the body is sent, it is stored as a tag afterwards, for
// single PUTs as well as multipart ones (one more request per object).
func tmUploader(c *Copier) uploadFunc {
	tm := transfermanager.New(unsignedClient{c.s3}, func(o *transfermanager.Options) {
		o.PartSizeBytes = c.opts.PartSize
		o.MultipartUploadThreshold = c.opts.PartSize
		o.Concurrency = c.opts.PartConcurrency
	})
	return func(ctx context.Context, key string, r io.Reader, size int64, contentType string, meta map[string]string) (int64, string, error) {
		sh := sha256.New()
		cr := &countingHash{h: sh}
		in := &transfermanager.UploadObjectInput{
			Bucket: aws.String(c.opts.Bucket), Key: aws.String(key),
			Body: io.TeeReader(r, cr), Metadata: cloneMeta(meta),
		}
		if contentType != "" {
			in.ContentType = aws.String(contentType)
		}
		if _, err := tm.UploadObject(ctx, in); err != nil {
			return 0, "", err
		}
		sum := hex.EncodeToString(sh.Sum(nil))
		if _, err := c.s3.PutObjectTagging(ctx, &s3.PutObjectTaggingInput{
			Bucket: aws.String(c.opts.Bucket), Key: aws.String(key),
			Tagging: &types.Tagging{TagSet: []types.Tag{{Key: aws.String(tagSHA256), Value: aws.String(sum)}}},
		}); err != nil {
			return 0, "", err
		}
		return cr.n, sum, nil
	}
}

// unsignedClient gives transfermanager's requests the same unsigned payload
// upload uses, so neither side hashes the body a second time for SigV4.
type unsignedClient struct{ *s3.Client }

func (u unsignedClient) PutObject(ctx context.Context, in *s3.PutObjectInput, o ...func(*s3.Options)) (*s3.PutObjectOutput, error) {
	return u.Client.PutObject(ctx, in, append(o, unsignedPayload)...)
}

func (u unsignedClient) UploadPart(ctx context.Context, in *s3.UploadPartInput, o ...func(*s3.Options)) (*s3.UploadPartOutput, error) {
	return u.Client.UploadPart(ctx, in, append(o, unsignedPayload)...)
}

type countingHash struct {
	h hash.Hash
	n int64
}

func (c *countingHash) Write(p []byte) (int, error) {
	c.n += int64(len(p))
	return c.h.Write(p)
}

var zeroSums = map[int64]string{}

func zeroSum(size int64) string {
	if s, ok := zeroSums[size]; ok {
		return s
	}
	h := sha256.New()
	_, _ = io.Copy(h, io.LimitReader(zeroReader{}, size))
	zeroSums[size] = hex.EncodeToString(h.Sum(nil))
	return zeroSums[size]
}

// processCPU is the user + system time this process has used.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// resetPeakRSS resets the process's VmHWM (Linux: "5" to clear_refs), so
// peakRSS measures from here.
func resetPeakRSS() { _ = os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) }

// peakRSS is VmHWM from /proc/self/status.
func peakRSS() (int64, bool) {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, false
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10, err == nil
		}
	}
	return 0, false
}
