package fetcher

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
	"github.com/aws/smithy-go/middleware"
	smithytime "github.com/aws/smithy-go/time"
	"golang.org/x/sync/errgroup"
)

// Metadata (x-amz-meta-*) and tags ferry puts on stored objects.
const (
	metaSource     = "ferry-source"
	metaCustomer   = "ferry-customer"
	metaTask       = "ferry-task"
	metaSourceETag = "ferry-source-etag"
	// tagSHA256 carries the digest of multipart copies, whose metadata is
	// fixed before the first byte is read and whose S3 checksum is one of
	// parts, not of the object. A single PUT's digest is S3's own checksum
	// of the object (x-amz-checksum-sha256), stored with it.
	tagSHA256 = "ferry-sha256"
)

// metaEncode makes v safe for S3 metadata, which must be ASCII: bytes
// outside printable ASCII (and '%') are percent-encoded.
func metaEncode(v string) string {
	var b strings.Builder
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c < 0x20 || c > 0x7e || c == '%' {
			b.WriteString(url.QueryEscape(string([]byte{c})))
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}

// abortTimeout bounds the cleanup of a failed multipart upload, which runs
// even when the copy's context was cancelled.
const abortTimeout = 30 * time.Second

// smallObject is the size below which a source of known size is read into
// a buffer of its own size rather than a part buffer.
const smallObject = 1 << 20

// partSlots is how many part buffers one copy holds at most.
func (c *Copier) partSlots() int { return max(c.opts.PartConcurrency, 2) }

func (c *Copier) getBuf() *[]byte {
	select {
	case b := <-c.bufs:
		return b
	default:
		c.bufsMade.Add(1)
		b := make([]byte, c.opts.PartSize)
		return &b
	}
}

func (c *Copier) putBuf(b *[]byte) {
	select {
	case c.bufs <- b:
	default: // enough kept; the collector takes this one
	}
}

// unsignedPayload uploads to the internal bucket without a SHA-256 of the
// body in the signature: ferry already hashes every byte for the event's
// sha256, and signing would hash it a second time (a third of a copy's CPU).
// The SDK's CRC32 checksum, which S3 verifies, still guards every body.
//
// Over plain http the SDK's checksum middleware would still hash the body
// for the signature unless a payload hash is already set, so it is set
// before that middleware runs (over https it uses a trailing checksum).
var unsignedPayload = s3.WithAPIOptions(
	v4.SwapComputePayloadSHA256ForUnsignedPayloadMiddleware,
	func(st *middleware.Stack) error {
		return st.Build.Add(middleware.BuildMiddlewareFunc("ferryUnsignedPayloadHash",
			func(ctx context.Context, in middleware.BuildInput, next middleware.BuildHandler) (middleware.BuildOutput, middleware.Metadata, error) {
				return next.HandleBuild(v4.SetPayloadHash(ctx, "UNSIGNED-PAYLOAD"), in)
			}), middleware.After)
	},
)

// upload streams r into Bucket/key and returns the byte count and hex
// SHA-256, by size:
//
//   - A source of known size from 1 MiB up to StreamPutMax goes up, over
//     https, as one PutObject streamed from the source (putStream): no part
//     buffer, and the upload overlaps the download.
//   - Otherwise, up to PartSize, the source is read into a buffer and put
//     whole (putSingle): a small object costs a buffer of its own size, and
//     the SDK can resend a seekable body when a PUT fails.
//   - Larger sources go multipart with at most PartConcurrency parts in
//     flight, each from a pooled buffer, so memory stays within PartSize ×
//     PartConcurrency. A failed multipart upload is aborted.
//
// This is ferry's own uploader rather than the SDK's
// feature/s3/transfermanager, measured side by side by BenchmarkUploader
// (same part size and parts in flight, both with one SHA-256 pass and
// unsigned payloads): transfermanager moved 256 MiB about 10% faster, but
// peaked at 2–3× the memory (120–185 MiB of heap against 73) because it
// allocates a fresh pool of Concurrency+1 part buffers per upload and
// reads its first part with io.ReadAll; that breaks the bound above and
// the 96 MiB RSS budget of a 1 GiB copy. It also cannot stream a single
// PUT of known size with the object's SHA-256 as its checksum.
func (c *Copier) upload(ctx context.Context, key string, r io.Reader, size int64, contentType string, meta map[string]string) (int64, string, error) {
	if c.streamPut && size >= smallObject && size <= c.opts.StreamPutMax {
		return c.putStream(ctx, key, r, size, contentType, meta)
	}
	h := sha256.New()
	if size >= 0 && size < smallObject {
		return c.uploadSmall(ctx, key, r, size, contentType, meta, h)
	}
	first := c.getBuf()
	n, err := io.ReadFull(r, *first)
	h.Write((*first)[:n])
	switch {
	case err == io.EOF || err == io.ErrUnexpectedEOF:
		defer c.putBuf(first)
		return c.putSingle(ctx, key, (*first)[:n], contentType, meta, h)
	case err != nil:
		c.putBuf(first)
		return 0, "", err
	}
	// The first part is full: only a second non-empty read proves the
	// object needs more than one request.
	second := c.getBuf()
	m, err := io.ReadFull(r, *second)
	if m == 0 && err == io.EOF {
		c.putBuf(second)
		defer c.putBuf(first)
		return c.putSingle(ctx, key, (*first)[:n], contentType, meta, h)
	}
	if err != nil && err != io.ErrUnexpectedEOF {
		c.putBuf(first)
		c.putBuf(second)
		return 0, "", err
	}
	h.Write((*second)[:m])
	return c.putMultipart(ctx, key, r, contentType, meta, h, first, n, second, m, err == io.ErrUnexpectedEOF)
}

// putStream uploads a source of known size as one PutObject whose body is
// the source itself, read as it is sent. The SDK sends such a body over
// https as aws-chunked with a trailing checksum; asking for SHA-256 makes
// that trailer the object's digest. So the bytes are hashed once, by the
// SDK as it sends them (in place of ferry's own pass and the SDK's CRC32);
// S3 verifies the trailer before it stores the object and keeps it as the
// object's checksum, which alreadyCopied reads back with HeadObject. The
// digest is not known before the last byte, so it cannot go into the
// metadata, and needs no request after the PUT either (a PutObjectTagging
// would cost every object a second request).
//
// An unseekable body cannot be resent: when the PUT fails the copy fails
// (transient) and the task is retried, which is why objects beyond
// StreamPutMax go multipart, where a failed part costs one part.
func (c *Copier) putStream(ctx context.Context, key string, r io.Reader, size int64, contentType string, meta map[string]string) (int64, string, error) {
	in := &s3.PutObjectInput{
		Bucket: aws.String(c.opts.Bucket),
		Key:    aws.String(key),
		// A LimitReader is not an io.Seeker, so the SDK streams it rather
		// than reading it twice (once to checksum, once to send).
		Body:              io.LimitReader(r, size),
		ContentLength:     aws.Int64(size),
		ChecksumAlgorithm: types.ChecksumAlgorithmSha256,
		Metadata:          cloneMeta(meta),
	}
	if contentType != "" {
		in.ContentType = aws.String(contentType)
	}
	out, err := c.s3.PutObject(ctx, in, unsignedPayload)
	if err != nil {
		return 0, "", err
	}
	var extra [1]byte
	if n, _ := io.ReadFull(r, extra[:]); n > 0 {
		// Unreachable with net/http bodies, which end at their
		// Content-Length; the copy is redone on the next attempt.
		return 0, "", &sourceReadError{err: fmt.Errorf("source is longer than its announced %d bytes", size)}
	}
	var computed string
	if m, ok := s3.GetComputedInputChecksumsMetadata(out.ResultMetadata); ok {
		computed = m.ComputedChecksums[string(types.ChecksumAlgorithmSha256)]
	}
	sum, ok := sha256Hex(computed)
	if !ok {
		return 0, "", fmt.Errorf("PutObject of %s: the SDK reported no SHA-256 of the body it sent", key)
	}
	return size, sum, nil
}

// sha256Hex turns an S3 checksum (base64) into the event's hex digest; ok
// is false for anything but one SHA-256 (a multipart upload's composite
// checksum ends in -PARTS).
func sha256Hex(b64 string) (string, bool) {
	raw, err := base64.StdEncoding.DecodeString(b64)
	if err != nil || len(raw) != sha256.Size {
		return "", false
	}
	return hex.EncodeToString(raw), true
}

// uploadSmall reads a small source of known size into a buffer of exactly
// that size (a part buffer would cost PartSize for a few bytes) and puts it.
func (c *Copier) uploadSmall(ctx context.Context, key string, r io.Reader, size int64, contentType string, meta map[string]string, h hash.Hash) (int64, string, error) {
	body := make([]byte, size)
	if _, err := io.ReadFull(r, body); err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
			err = &sourceReadError{err: fmt.Errorf("source ended before its announced %d bytes", size)}
		}
		return 0, "", err
	}
	var extra [1]byte
	if n, _ := io.ReadFull(r, extra[:]); n > 0 {
		return 0, "", &sourceReadError{err: fmt.Errorf("source is longer than its announced %d bytes", size)}
	}
	h.Write(body)
	return c.putSingle(ctx, key, body, contentType, meta, h)
}

// putSingle puts a buffered body in one PutObject. Its SHA-256, already
// computed, goes along as the object's checksum (x-amz-checksum-sha256): S3
// verifies it and keeps it with the object, where alreadyCopied finds it,
// and the SDK then computes no checksum of its own.
func (c *Copier) putSingle(ctx context.Context, key string, body []byte, contentType string, meta map[string]string, h hash.Hash) (int64, string, error) {
	digest := h.Sum(nil)
	in := &s3.PutObjectInput{
		Bucket:         aws.String(c.opts.Bucket),
		Key:            aws.String(key),
		Body:           bytes.NewReader(body),
		ContentLength:  aws.Int64(int64(len(body))),
		ChecksumSHA256: aws.String(base64.StdEncoding.EncodeToString(digest)),
		Metadata:       cloneMeta(meta),
	}
	if contentType != "" {
		in.ContentType = aws.String(contentType)
	}
	if _, err := c.s3.PutObject(ctx, in, unsignedPayload); err != nil {
		return 0, "", err
	}
	return int64(len(body)), hex.EncodeToString(digest), nil
}

func cloneMeta(m map[string]string) map[string]string {
	out := make(map[string]string, len(m)+1)
	for k, v := range m {
		if v != "" {
			out[k] = v
		}
	}
	return out
}

// putMultipart uploads first (n bytes), second (m bytes) and the rest of r
// as parts; last says the source already ended inside second.
func (c *Copier) putMultipart(ctx context.Context, key string, r io.Reader, contentType string, meta map[string]string,
	h hash.Hash, first *[]byte, n int, second *[]byte, m int, last bool) (size int64, sum string, err error) {
	cin := &s3.CreateMultipartUploadInput{Bucket: aws.String(c.opts.Bucket), Key: aws.String(key), Metadata: cloneMeta(meta)}
	if contentType != "" {
		cin.ContentType = aws.String(contentType)
	}
	created, err := c.s3.CreateMultipartUpload(ctx, cin)
	if err != nil {
		c.putBuf(first)
		c.putBuf(second)
		return 0, "", err
	}
	uploadID := created.UploadId
	defer func() {
		actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), abortTimeout)
		defer cancel()
		if err != nil {
			c.abortUpload(actx, key, aws.ToString(uploadID))
			return
		}
		// An attempt that died (killed worker, lost connection) left its
		// upload open under this same key; the one that completed the copy
		// closes them.
		c.abortOthers(actx, key, aws.ToString(uploadID))
	}()

	// A slot is taken before a part is read and given back once it is
	// uploaded, so at most PartConcurrency parts exist at once: the memory
	// of a copy is PartSize × PartConcurrency (two parts at least: the
	// first two are read before the copy is known to be multipart).
	slots := make(chan struct{}, c.partSlots())
	g, gctx := errgroup.WithContext(ctx)
	var mu sync.Mutex
	var parts []types.CompletedPart
	send := func(num int32, buf *[]byte, l int) {
		g.Go(func() error {
			defer func() {
				c.putBuf(buf)
				<-slots
			}()
			out, err := c.s3.UploadPart(gctx, &s3.UploadPartInput{
				Bucket: aws.String(c.opts.Bucket), Key: aws.String(key), UploadId: uploadID,
				PartNumber: aws.Int32(num), Body: bytes.NewReader((*buf)[:l]), ContentLength: aws.Int64(int64(l)),
			}, unsignedPayload)
			if err != nil {
				return err
			}
			mu.Lock()
			parts = append(parts, types.CompletedPart{ETag: out.ETag, PartNumber: aws.Int32(num)})
			mu.Unlock()
			return nil
		})
	}
	size = int64(n + m)
	slots <- struct{}{}
	send(1, first, n)
	slots <- struct{}{}
	send(2, second, m)
	num := int32(2)
	var readErr error
	for !last {
		select {
		case slots <- struct{}{}:
		case <-gctx.Done():
		}
		if gctx.Err() != nil {
			break
		}
		buf := c.getBuf()
		k, rerr := io.ReadFull(r, *buf)
		if k == 0 && rerr == io.EOF {
			c.putBuf(buf)
			<-slots
			break
		}
		if rerr != nil && rerr != io.ErrUnexpectedEOF {
			c.putBuf(buf)
			<-slots
			readErr = rerr
			break
		}
		h.Write((*buf)[:k])
		size += int64(k)
		num++
		if num > 10000 {
			c.putBuf(buf)
			<-slots
			readErr = errors.New("object needs more than 10,000 parts: raise the part size")
			break
		}
		last = rerr == io.ErrUnexpectedEOF
		send(num, buf, k)
	}
	werr := g.Wait()
	if readErr != nil {
		return 0, "", readErr
	}
	if werr != nil {
		return 0, "", werr
	}
	if err := ctx.Err(); err != nil {
		return 0, "", err
	}
	slices.SortFunc(parts, func(a, b types.CompletedPart) int { return int(*a.PartNumber - *b.PartNumber) })
	if _, err := c.s3.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{
		Bucket: aws.String(c.opts.Bucket), Key: aws.String(key), UploadId: uploadID,
		MultipartUpload: &types.CompletedMultipartUpload{Parts: parts},
	}); err != nil {
		return 0, "", err
	}
	sum = hex.EncodeToString(h.Sum(nil))
	if _, terr := c.s3.PutObjectTagging(ctx, &s3.PutObjectTaggingInput{
		Bucket: aws.String(c.opts.Bucket), Key: aws.String(key),
		Tagging: &types.Tagging{TagSet: []types.Tag{{Key: aws.String(tagSHA256), Value: aws.String(sum)}}},
	}); terr != nil {
		// The copy is complete and the digest travels in the event; only a
		// later skip-on-retry needs the tag, and without it the copy is
		// simply redone.
		c.log.Warn().Err(terr).Str("key", key).Msg("tag stored object with its sha256")
	}
	return size, sum, nil
}

// alreadyCopied reports whether Bucket/key already holds the copy of the
// source object with this ETag and size, and returns its SHA-256: S3's
// checksum of a single PUT, or the tag of a multipart copy. Any doubt
// (missing object, missing digest, errors) means copy again.
func (c *Copier) alreadyCopied(ctx context.Context, key, source, etag string, size int64) (string, bool) {
	out, err := c.s3.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(c.opts.Bucket), Key: aws.String(key),
		ChecksumMode: types.ChecksumModeEnabled})
	if err != nil {
		return "", false
	}
	if aws.ToInt64(out.ContentLength) != size || out.Metadata[metaSourceETag] != metaEncode(etag) ||
		out.Metadata[metaSource] != source {
		return "", false
	}
	if sum, ok := sha256Hex(aws.ToString(out.ChecksumSHA256)); ok {
		return sum, true
	}
	tags, err := c.s3.GetObjectTagging(ctx, &s3.GetObjectTaggingInput{Bucket: aws.String(c.opts.Bucket), Key: aws.String(key)})
	if err != nil {
		return "", false
	}
	for _, t := range tags.TagSet {
		if aws.ToString(t.Key) == tagSHA256 && aws.ToString(t.Value) != "" {
			return aws.ToString(t.Value), true
		}
	}
	return "", false
}

// abortUpload aborts an upload, retrying a few times: an upload left open
// holds storage until a lifecycle rule (if any) removes it.
func (c *Copier) abortUpload(ctx context.Context, key, uploadID string) {
	if err := abortUpload(ctx, c.s3, c.opts.Bucket, key, uploadID); err != nil {
		c.log.Error().Err(err).Str("key", key).Msg("abort multipart upload failed; the next copy of this attachment aborts it")
	}
}

// abortOthers aborts every open upload of exactly key except keep.
func (c *Copier) abortOthers(ctx context.Context, key, keep string) {
	if _, err := abortUploads(ctx, c.s3, c.opts.Bucket, key, keep); err != nil {
		c.log.Warn().Err(err).Str("key", key).Msg("close abandoned multipart uploads")
	}
}

// UploadAPI is the part of the S3 client AbortUploads uses.
type UploadAPI interface {
	s3.ListMultipartUploadsAPIClient
	AbortMultipartUpload(ctx context.Context, in *s3.AbortMultipartUploadInput, optFns ...func(*s3.Options)) (*s3.AbortMultipartUploadOutput, error)
}

// AbortUploads aborts every multipart upload open under exactly key in
// bucket and returns how many it aborted. A copy whose worker was killed
// leaves its upload open, holding storage; normally the next attempt of the
// task closes it, but a task that never runs again (dead-lettered, then
// purged) needs its disposer to call this with the task's StoredKey. An
// upload a running copy still uses fails that copy's attempt, which is
// retried. The error says what was left open.
func AbortUploads(ctx context.Context, api UploadAPI, bucket, key string) (int, error) {
	return abortUploads(ctx, api, bucket, key, "")
}

func abortUploads(ctx context.Context, api UploadAPI, bucket, key, keep string) (aborted int, err error) {
	p := s3.NewListMultipartUploadsPaginator(api, &s3.ListMultipartUploadsInput{Bucket: aws.String(bucket), Prefix: aws.String(key)})
	var errs []error
	for p.HasMorePages() {
		out, err := p.NextPage(ctx)
		if err != nil {
			return aborted, fmt.Errorf("list multipart uploads under %s: %w", key, err)
		}
		for _, u := range out.Uploads {
			// The prefix also matches longer keys: 0-a.bin is a prefix of
			// 0-a.bin.gz, another attachment's copy.
			if aws.ToString(u.Key) != key || aws.ToString(u.UploadId) == keep {
				continue
			}
			if err := abortUpload(ctx, api, bucket, key, aws.ToString(u.UploadId)); err != nil {
				errs = append(errs, err)
				continue
			}
			aborted++
		}
	}
	return aborted, errors.Join(errs...)
}

// abortUpload aborts one upload, retrying a few times; one already gone
// counts as aborted.
func abortUpload(ctx context.Context, api UploadAPI, bucket, key, uploadID string) error {
	var err error
	for attempt := range 3 {
		if _, err = api.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{
			Bucket: aws.String(bucket), Key: aws.String(key), UploadId: aws.String(uploadID),
		}); err == nil || isNoSuchUpload(err) {
			return nil
		}
		if smithytime.SleepWithContext(ctx, time.Duration(attempt+1)*200*time.Millisecond) != nil {
			break
		}
	}
	return fmt.Errorf("abort multipart upload %s of %s: %w", uploadID, key, err)
}

func isNoSuchUpload(err error) bool {
	var ae smithy.APIError
	return errors.As(err, &ae) && ae.ErrorCode() == "NoSuchUpload"
}
