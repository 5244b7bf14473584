package fetcher

import (
	"bytes"
	"context"
	"encoding/xml"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go/middleware"
	smithyhttp "github.com/aws/smithy-go/transport/http"
	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"
)

// regionCache remembers which region each bucket lives in, in process and
// fleet-wide in Redis (<prefix>:bucket:{name}:region), so only the first
// request for a bucket pays the redirect. Redis failures degrade to the
// in-process cache.
type regionCache struct {
	rdb    redis.UniversalClient
	prefix string
	ttl    time.Duration
	// redisDownLog logs a Redis failure at most once per redisWarnInterval:
	// during an outage every request would fail, and the worker's other
	// Redis users report the outage too.
	redisDownLog zerolog.Logger

	mu  sync.Mutex
	mem map[string]regionEntry
}

type regionEntry struct {
	region  string
	expires time.Time
}

func newRegionCache(rdb redis.UniversalClient, prefix string, ttl time.Duration, log zerolog.Logger) *regionCache {
	return &regionCache{
		rdb: rdb, prefix: prefix, ttl: ttl, mem: map[string]regionEntry{},
		redisDownLog: log.Sample(&zerolog.BurstSampler{Burst: 1, Period: redisWarnInterval}),
	}
}

const redisWarnInterval = 30 * time.Second

// regionKey is the Redis key of bucket's region; the hash tag keeps it on
// one cluster slot.
func regionKey(prefix, bucket string) string { return prefix + ":bucket:{" + bucket + "}:region" }

func (r *regionCache) get(ctx context.Context, bucket string) (string, bool) {
	now := time.Now()
	r.mu.Lock()
	e, ok := r.mem[bucket]
	r.mu.Unlock()
	if ok && now.Before(e.expires) {
		return e.region, true
	}
	if r.rdb == nil {
		return "", false
	}
	v, err := r.rdb.Get(ctx, regionKey(r.prefix, bucket)).Result()
	if err != nil {
		if err != redis.Nil {
			r.redisDownLog.Warn().Err(err).Msg("region cache: redis get failed; using the in-process cache")
		}
		return "", false
	}
	r.putMem(bucket, v, now)
	return v, true
}

func (r *regionCache) put(ctx context.Context, bucket, region string) {
	r.putMem(bucket, region, time.Now())
	if r.rdb == nil {
		return
	}
	if err := r.rdb.Set(ctx, regionKey(r.prefix, bucket), region, r.ttl).Err(); err != nil {
		r.redisDownLog.Warn().Err(err).Msg("region cache: redis set failed; the region is kept in process only")
	}
}

func (r *regionCache) putMem(bucket, region string, now time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.mem) > 100_000 {
		// Bucket names come from task messages; bound the map rather than
		// trust the input.
		clear(r.mem)
	}
	r.mem[bucket] = regionEntry{region: region, expires: now.Add(r.ttl)}
}

// regionFromErrorBody keeps the region S3 names in the body of a 400
// AuthorizationHeaderMalformed (a request signed for another region reached
// the bucket's own region), which the SDK's error deserializer discards: it
// is copied into the answer's x-amz-bucket-region header, where
// redirectRegion reads it as it reads a 301's.
// https://docs.aws.amazon.com/AmazonS3/latest/API/ErrorResponses.html#ErrorCodeList
var regionFromErrorBody = s3.WithAPIOptions(func(st *middleware.Stack) error {
	// Added last and After, so it is the innermost deserializer: it sees
	// the raw answer before the operation's error deserializer reads it.
	return st.Deserialize.Add(middleware.DeserializeMiddlewareFunc("ferryRegionFromErrorBody",
		func(ctx context.Context, in middleware.DeserializeInput, next middleware.DeserializeHandler) (middleware.DeserializeOutput, middleware.Metadata, error) {
			out, md, err := next.HandleDeserialize(ctx, in)
			resp, ok := out.RawResponse.(*smithyhttp.Response)
			if err != nil || !ok || resp.StatusCode != http.StatusBadRequest || resp.Body == nil ||
				resp.Header.Get("x-amz-bucket-region") != "" {
				return out, md, err
			}
			// Error bodies are small; the read is bounded all the same.
			head, rerr := io.ReadAll(io.LimitReader(resp.Body, 16<<10))
			resp.Body = struct {
				io.Reader
				io.Closer
			}{io.MultiReader(bytes.NewReader(head), resp.Body), resp.Body}
			var e struct{ Code, Region string }
			if rerr == nil && xml.Unmarshal(head, &e) == nil && e.Code == "AuthorizationHeaderMalformed" && e.Region != "" {
				resp.Header.Set("x-amz-bucket-region", e.Region)
			}
			return out, md, err
		}), middleware.After)
})
