// Package fetcher is how ferry gets at a customer's object and copies it into
// internal storage: it parses attachment URIs, decides the access mode
// (delegated, cross-account, https) per the product rules, reads the source
// (S3 with the right credentials, region and ExpectedBucketOwner, or an
// SSRF-safe https download), streams it into the fleet's bucket with a
// bounded amount of memory, and says what went wrong in a typed *Error whose
// hint a customer can act on.
package fetcher

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"github.com/ferryworks/ferry/credcache"

	"github.com/ferryworks/ferry/fetcher/location"
)

// Defaults of Options.
const (
	// DefaultPartSize is 8 MiB, the aws CLI's default part size. Four
	// parts in flight then hold 32 MiB, which leaves a worker copying a
	// 1 GiB object room for its binary's pages and the rest of its heap
	// under 96 MiB of RSS; 16 MiB parts (64 MiB held) did not fit there
	// (docs/bench.md, Reading the numbers).
	DefaultPartSize        int64 = 8 << 20
	DefaultPartConcurrency       = 4
	DefaultMaxObjectBytes  int64 = 5 << 30
	// DefaultStreamPutMax is the StreamPutMax ferry work runs with
	// (FERRY_STREAM_PUT_MAX). Measured in docs/bench.md: up to 64 MiB one
	// streamed PUT beat a multipart upload of 4 parts in flight.
	DefaultStreamPutMax int64 = 64 << 20
	// maxSinglePut is S3's limit for one PutObject.
	maxSinglePut int64 = 5 << 30
	// minPartSize is S3's lower bound for every part but the last.
	minPartSize int64 = 5 << 20
)

// Integrations is the part of *credcache.Registry the Copier uses.
type Integrations interface {
	// Get returns the customer's integration or credcache.ErrNotFound.
	Get(ctx context.Context, customerID string) (credcache.Integration, error)
}

// Credentials is the part of *credcache.Cache the Copier uses.
type Credentials interface {
	// Provider yields the customer's assumed-role credentials; its errors
	// are *credcache.AssumeRoleError.
	Provider(in credcache.Integration) aws.CredentialsProvider
	// Invalidate forgets the customer's cached credentials.
	Invalidate(ctx context.Context, customerID string) error
}

// Options configures a Copier.
type Options struct {
	// S3 is the fleet's one S3 client, signed with the fleet's credentials.
	// Delegated reads replace its credentials per call; writes to Bucket
	// always use the fleet's own.
	S3           *s3.Client
	Integrations Integrations
	// Credentials hands out delegated credentials; required when any
	// customer may have an enabled integration.
	Credentials Credentials
	// Redis caches bucket regions fleet-wide; nil keeps them in process only.
	Redis       redis.UniversalClient
	RedisPrefix string // default "ferry"
	// Bucket is the internal bucket; objects land under KeyPrefix/customer/task/.
	Bucket    string
	KeyPrefix string
	// CrossAccount is the fleet's cross-account policy; "" is PolicyAllow.
	CrossAccount Policy
	// RequesterPays says when source reads acknowledge that the requester
	// pays (x-amz-request-payer: requester); "" is RequesterPaysDelegated.
	RequesterPays RequesterPays
	// PartSize is the multipart part size and the largest single PutObject
	// (default 8 MiB, at least 5 MiB). Memory per Copy is bounded by
	// PartSize × PartConcurrency (at least two parts).
	PartSize        int64
	PartConcurrency int // default 4
	// StreamPutMax is the largest object of known size that goes up as one
	// PutObject streamed from the source as it is read (over https only:
	// an aws-chunked body with a trailing SHA-256), so a copy holds no part
	// buffer and its upload overlaps its download; larger objects go
	// multipart. 0 never streams (objects up to PartSize are buffered and
	// put whole). At most 5 GiB, S3's limit for one PUT.
	StreamPutMax   int64
	MaxObjectBytes int64 // default 5 GiB; larger sources fail with too_large
	// HTTPAllowHosts lists hosts or host:port pairs the https source may
	// reach over plain http and on non-public addresses (tests, on-premises
	// sources). Empty in production.
	HTTPAllowHosts []string
	// RegionTTL is how long a learned bucket region is trusted (default 6h).
	RegionTTL time.Duration
	Logger    zerolog.Logger
	Metrics   *Metrics // nil: not counted
}

// Copier copies attachments into internal storage. It is safe for
// concurrent use; the worker shares one per process.
type Copier struct {
	opts    Options
	s3      *s3.Client
	http    *http.Client
	allow   hostAllowList
	regions *regionCache
	// bufs keeps part buffers for reuse. Unlike a sync.Pool it is not
	// emptied by garbage collection, so a long copy does not reallocate its
	// buffers and let the heap grow to twice its live size.
	bufs chan *[]byte
	// bufsMade counts the part buffers allocated so far. One copy takes at
	// most partSlots buffers and the pool keeps as many, so a worker that
	// copies one object at a time never allocates more than partSlots: more
	// would mean buffers beyond the bound of PartSize × PartConcurrency, or
	// a pool that stopped reusing them (TestCopyMultipart checks both).
	bufsMade atomic.Int64
	// streamPut is whether a PutObject body may be unseekable: the SDK
	// sends one only as aws-chunked with a trailing checksum, which it
	// does over https alone.
	streamPut bool
	log       zerolog.Logger
}

// New validates opts and returns a Copier. It fails when the S3 client,
// integration registry or internal bucket is missing, the part size is below
// S3's 5 MiB minimum, or the policy is unknown.
func New(opts Options) (*Copier, error) {
	if opts.S3 == nil {
		return nil, errors.New("fetcher: Options.S3 is required")
	}
	if opts.Integrations == nil {
		return nil, errors.New("fetcher: Options.Integrations is required")
	}
	if opts.Bucket == "" {
		return nil, errors.New("fetcher: Options.Bucket is required")
	}
	p, err := ParsePolicy(string(opts.CrossAccount))
	if err != nil {
		return nil, err
	}
	opts.CrossAccount = p
	if opts.RequesterPays, err = ParseRequesterPays(string(opts.RequesterPays)); err != nil {
		return nil, err
	}
	if opts.PartSize == 0 {
		opts.PartSize = DefaultPartSize
	}
	if opts.PartSize < minPartSize {
		return nil, fmt.Errorf("fetcher: PartSize %d is below S3's minimum part size of 5 MiB", opts.PartSize)
	}
	if opts.PartConcurrency <= 0 {
		opts.PartConcurrency = DefaultPartConcurrency
	}
	if opts.MaxObjectBytes <= 0 {
		opts.MaxObjectBytes = DefaultMaxObjectBytes
	}
	if opts.StreamPutMax < 0 || opts.StreamPutMax > maxSinglePut {
		return nil, fmt.Errorf("fetcher: StreamPutMax %d is outside 0..5 GiB (S3's limit for one PUT)", opts.StreamPutMax)
	}
	if opts.RedisPrefix == "" {
		opts.RedisPrefix = "ferry"
	}
	if opts.RegionTTL <= 0 {
		opts.RegionTTL = 6 * time.Hour
	}
	allow := newHostAllowList(opts.HTTPAllowHosts)
	c := &Copier{
		opts:    opts,
		s3:      opts.S3,
		http:    newHTTPClient(allow),
		allow:   allow,
		regions: newRegionCache(opts.Redis, opts.RedisPrefix, opts.RegionTTL, opts.Logger),
		// No endpoint is AWS's own, which is https.
		streamPut: opts.StreamPutMax > 0 && (opts.S3.Options().BaseEndpoint == nil ||
			strings.HasPrefix(strings.ToLower(*opts.S3.Options().BaseEndpoint), "https://")),
		log: opts.Logger,
	}
	c.bufs = make(chan *[]byte, c.partSlots())
	return c, nil
}

// Request is one attachment of a task.
type Request struct {
	CustomerID string
	TaskID     string
	// Index is the attachment's position in the task; it keeps stored keys
	// of same-named attachments apart.
	Index int
	URI   string
	// Name is the attachment's optional display name; it becomes the stored
	// object's base name.
	Name string
	// Attempt is the delivery attempt of the task (the message's receive
	// count). On a first attempt nothing of this copy can be stored yet, so
	// the check that skips an already-copied object (a HeadObject) is left
	// out; 0 means unknown, and the check is made.
	Attempt int
	// Integration, when not nil, answers the read of the customer's
	// integration in place of Integrations.Get: the worker reads it once
	// per task, in the round trip that begins the task.
	Integration func() (credcache.Integration, error)
}

// Result describes a copied attachment.
type Result struct {
	// Source is the redacted source URI (no query strings).
	Source string `json:"source"`
	// Stored is s3://bucket/key of the copy.
	Stored      string `json:"stored"`
	Size        int64  `json:"size"`
	SHA256      string `json:"sha256"`
	ContentType string `json:"content_type,omitempty"`
	Mode        Mode   `json:"mode"`
	// Skipped is true when the destination already held this exact source
	// object (same source ETag and size) from an earlier attempt, so nothing
	// was transferred.
	Skipped bool `json:"skipped,omitempty"`
}

// object is an opened source.
type object struct {
	body        io.ReadCloser
	size        int64 // -1 when unknown
	contentType string
	etag        string
}

// Copy copies one attachment into internal storage, streaming end to end. A
// failure is always an *Error: access_denied, not_found, invalid and
// too_large are final answers for the attachment, transient ones
// (Retryable) may succeed on a later attempt. Copying the same request again
// after a success is cheap: the destination is checked first and the copy
// skipped.
func (c *Copier) Copy(ctx context.Context, req Request) (Result, error) {
	start := time.Now()
	res, ferr := c.copy(ctx, req)
	log := c.log.With().Str("customer_id", req.CustomerID).Str("task_id", req.TaskID).Int("attachment", req.Index).Logger()
	if ferr != nil {
		c.opts.Metrics.observe(ferr.Mode, string(ferr.Kind), 0, 0)
		ev := log.Warn()
		if ferr.Kind == KindTransient {
			ev = log.Info()
		}
		ev.Str("source", ferr.URI).Str("mode", string(ferr.Mode)).Str("kind", string(ferr.Kind)).
			Str("stage", string(ferr.Stage)).Str("code", ferr.Code).Str("error", ferr.Message).Msg("attachment not copied")
		return Result{Mode: ferr.Mode, Source: ferr.URI}, ferr
	}
	outcome := "copied"
	if res.Skipped {
		outcome = "skipped"
	}
	c.opts.Metrics.observe(res.Mode, outcome, res.Size, time.Since(start))
	log.Info().Str("source", res.Source).Str("stored", res.Stored).Str("mode", string(res.Mode)).
		Int64("size", res.Size).Bool("skipped", res.Skipped).Dur("took", time.Since(start)).Msg("attachment copied")
	return res, nil
}

func (c *Copier) copy(ctx context.Context, req Request) (Result, *Error) {
	loc, err := ParseURI(req.URI)
	if err != nil {
		return Result{}, asError(err)
	}
	red := loc.Redacted()
	res := Result{Source: red}
	key := storedKey(c.opts.KeyPrefix, req, loc)
	res.Stored = "s3://" + c.opts.Bucket + "/" + key

	var obj *object
	var ferr *Error
	srcStage := StageGetObject
	if loc.Scheme == location.SchemeS3 {
		var acc *access
		acc, ferr = c.decide(ctx, req, loc)
		if ferr != nil {
			return res, ferr
		}
		res.Mode = acc.mode
		obj, ferr = c.openS3(ctx, acc, loc)
	} else {
		res.Mode = ModeHTTPS
		srcStage = StageHTTPGet
		obj, ferr = c.openHTTP(ctx, loc)
	}
	if ferr != nil {
		ferr.Mode = res.Mode
		return res, ferr
	}
	defer obj.body.Close()
	res.ContentType = obj.contentType
	if obj.size > c.opts.MaxObjectBytes {
		return res, tooLarge(srcStage, res.Mode, red, obj.size, c.opts.MaxObjectBytes)
	}

	meta := map[string]string{
		metaSource:     metaEncode(red),
		metaCustomer:   metaEncode(req.CustomerID),
		metaTask:       metaEncode(req.TaskID),
		metaSourceETag: metaEncode(obj.etag),
	}
	if obj.etag != "" && obj.size >= 0 && req.Attempt != 1 {
		if sum, ok := c.alreadyCopied(ctx, key, meta[metaSource], obj.etag, obj.size); ok {
			res.Size, res.SHA256, res.Skipped = obj.size, sum, true
			return res, nil
		}
	}

	src := &sourceReader{r: obj.body, limit: c.opts.MaxObjectBytes}
	size, sum, err := c.upload(ctx, key, src, obj.size, obj.contentType, meta)
	if err != nil {
		var sre *sourceReadError
		var fe *Error
		switch {
		case errors.As(err, &fe):
			// A later range of the source was refused or failed.
			fe.Mode = res.Mode
			return res, fe
		case errors.Is(err, errTooLarge):
			return res, tooLarge(srcStage, res.Mode, red, src.n, c.opts.MaxObjectBytes)
		case errors.As(err, &sre):
			return res, &Error{Kind: KindTransient, Stage: srcStage, Mode: res.Mode, URI: red, Code: "ReadError",
				Message: location.RedactURLs(sre.err.Error()), Err: sre.err}
		}
		// Writing to the fleet's own bucket failing is the fleet's problem,
		// never the customer's: always transient, so the task is retried and
		// eventually dead-lettered for an operator.
		e := classifyS3(err, StagePutObject, res.Mode, red, hintInput{}, "")
		e.Kind, e.Hint = KindTransient, ""
		return res, e
	}
	if obj.size >= 0 && size != obj.size {
		// Unreachable in practice: the upload fails before completing when
		// the body is short or long. Kept so a mismatch can never be
		// reported as copied.
		return res, &Error{Kind: KindTransient, Stage: srcStage, Mode: res.Mode, URI: red, Code: "SizeMismatch",
			Message: fmt.Sprintf("read %d bytes, source announced %d", size, obj.size)}
	}
	res.Size, res.SHA256 = size, sum
	return res, nil
}

func tooLarge(stage Stage, mode Mode, uri string, size, limit int64) *Error {
	return &Error{Kind: KindTooLarge, Stage: stage, Mode: mode, URI: uri, Code: hTooLarge.code(),
		Message: fmt.Sprintf("object is larger than the limit of %d bytes (at least %d)", limit, size),
		Hint:    hTooLarge.render(hintVars{limit: strconv.FormatInt(limit, 10)})}
}

func asError(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return &Error{Kind: KindTransient, Stage: StageParse, Message: err.Error(), Err: err}
}

// sourceReadError marks a failure of reading the source body, to tell it
// apart from a failure of writing the destination.
type sourceReadError struct{ err error }

func (e *sourceReadError) Error() string { return "read source: " + e.err.Error() }
func (e *sourceReadError) Unwrap() error { return e.err }

// sourceReader counts bytes and fails with errTooLarge the moment more than
// limit bytes arrive, whatever Content-Length said.
type sourceReader struct {
	r     io.Reader
	n     int64
	limit int64
}

func (s *sourceReader) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	s.n += int64(n)
	if s.n > s.limit {
		return n, errTooLarge
	}
	if err != nil && err != io.EOF {
		return n, &sourceReadError{err: err}
	}
	return n, err
}
