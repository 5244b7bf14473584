package chaos

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"regexp"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/redis/go-redis/v9"
	"golang.org/x/sync/errgroup"

	"github.com/ferryworks/ferry/deadletter"
	"github.com/ferryworks/ferry/internal/demo"
	"github.com/ferryworks/ferry/internal/localaws"
	"github.com/ferryworks/ferry/internal/redisconn"
	"github.com/ferryworks/ferry/task"
	"github.com/ferryworks/ferry/taskstate"
)

// audit turns the ledger and the world's final state into the report's
// verdicts.
func (r *Report) audit(ctx context.Context, led *ledger, a *awsSide, sources map[string]object, rdb redis.UniversalClient,
	workers []*workerProc, secrets secretSet) {
	t := led.tally()
	r.Outcomes, r.Lost, r.Conflicting, r.WrongOutcome = t.ByType, t.Lost, t.Conflicting, t.Wrong
	r.DuplicateEvents, r.Events, r.DLQ, r.DLQInvalid = t.DuplicateEvents, t.Events, t.DLQ, t.DLQInvalid
	r.DLQExhausted, r.DLQAfterEvent, r.DLQCopies, r.MissingFromDLQ = t.DLQExhausted, t.DLQAfterEvent, t.DLQCopies, t.MissingFromDLQ
	r.Unexpected, r.DuringOutage = t.Unexpected, t.DuringOutage
	fail := func(format string, args ...any) { r.Failures = append(r.Failures, fmt.Sprintf(format, args...)) }
	if len(r.Lost) > 0 {
		fail("%d tasks lost (no terminal event, no dead letter): %s", len(r.Lost), head(r.Lost))
	}
	if len(r.Conflicting) > 0 {
		fail("%d tasks with two different terminal events: %s", len(r.Conflicting), head(r.Conflicting))
	}
	if len(r.WrongOutcome) > 0 {
		fail("%d tasks with an outcome other than their path's: %s", len(r.WrongOutcome), head(r.WrongOutcome))
	}
	if len(r.MissingFromDLQ) > 0 {
		fail("%d invalid messages not in the DLQ: %s", len(r.MissingFromDLQ), head(r.MissingFromDLQ))
	}
	if len(r.Unexpected) > 0 {
		fail("%d events or dead letters of no submitted task: %s", len(r.Unexpected), head(r.Unexpected))
	}
	// A valid task in the DLQ must carry the last error ferry recorded, so
	// `ferry dlq show` can say why. The restart that loses every key also
	// loses last errors recorded before it, so only tasks whose last error
	// is missing are listed, and only without a restart are they a failure.
	state := &taskstate.State{Redis: rdb, Prefix: "ferry"}
	for _, id := range r.DLQExhausted {
		if _, ok, err := state.LastError(ctx, id); err != nil || !ok {
			r.DLQNoLastError = append(r.DLQNoLastError, id)
		}
	}
	if n := len(r.DLQNoLastError); n > 0 && r.Faults["redis restart (keys lost)"] == 0 {
		fail("%d dead-lettered tasks have no recorded last error: %s", n, head(r.DLQNoLastError))
	}

	r.checkCopies(ctx, led, a, sources)
	r.purgeDeadUploads(ctx, led, a)
	r.checkUploads(ctx, a)
	r.scanSecrets(ctx, workers, rdb, secrets)
}

func head(list []string) string {
	if len(list) > 10 {
		return strings.Join(list[:10], ", ") + ", …"
	}
	return strings.Join(list, ", ")
}

// checkCopies reads back every stored copy an event announced and compares
// its sha256 with the event's and the source's; it also counts objects in
// the internal bucket that no event names (left by attempts that did not
// finish, which a later attempt overwrote or not).
func (r *Report) checkCopies(ctx context.Context, led *ledger, a *awsSide, sources map[string]object) {
	copies := led.copies()
	var mu sync.Mutex
	var g errgroup.Group
	g.SetLimit(8)
	prefix := "s3://" + a.m.InternalBucket + "/"
	for _, c := range copies {
		g.Go(func() error {
			bad := func(format string, args ...any) {
				mu.Lock()
				r.ChecksumFailures = append(r.ChecksumFailures, fmt.Sprintf(format, args...))
				mu.Unlock()
			}
			src, ok := sources[c.Source]
			if !ok {
				bad("%s: copied from unknown source %s", c.Stored, c.Source)
				return nil
			}
			key, ok := strings.CutPrefix(c.Stored, prefix)
			if !ok {
				bad("%s: stored outside the internal bucket", c.Stored)
				return nil
			}
			sum, err := a.sha256(ctx, key)
			switch {
			case err != nil:
				bad("%s: read back: %v", c.Stored, err)
			case sum != src.SHA || c.SHA256 != src.SHA:
				bad("%s: stored %s, event says %s, source %s", c.Stored, sum, c.SHA256, src.SHA)
			}
			return nil
		})
	}
	_ = g.Wait()
	r.CopiesChecked = len(copies)
	if n := len(r.ChecksumFailures); n > 0 {
		r.Failures = append(r.Failures, fmt.Sprintf("%d stored copies do not match their source: %s", n, head(r.ChecksumFailures)))
	}
	named := map[string]bool{}
	for _, c := range copies {
		named[strings.TrimPrefix(c.Stored, prefix)] = true
	}
	p := s3.NewListObjectsV2Paginator(a.s3, &s3.ListObjectsV2Input{Bucket: aws.String(a.m.InternalBucket)})
	for p.HasMorePages() {
		out, err := p.NextPage(ctx)
		if err != nil {
			r.note("list internal bucket: %v", err)
			break
		}
		for _, o := range out.Contents {
			if !named[aws.ToString(o.Key)] {
				r.UnreferencedCopies++
			}
		}
	}
}

func (a *awsSide) sha256(ctx context.Context, key string) (string, error) {
	out, err := a.s3.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(a.m.InternalBucket), Key: aws.String(key)})
	if err != nil {
		return "", err
	}
	defer out.Body.Close()
	h := sha256.New()
	if _, err := io.Copy(h, out.Body); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// purgeDeadUploads does what on-call does with the valid tasks left in the
// DLQ, `ferry dlq purge`: it aborts the uploads their killed attempts left
// open (no later attempt will). Only then must the bucket hold no open
// upload; one under the key of a task with a terminal event stays a failure.
func (r *Report) purgeDeadUploads(ctx context.Context, led *ledger, a *awsSide) {
	var tasks []task.Task
	for _, body := range led.bodies(r.DLQExhausted) {
		if t, err := task.Decode([]byte(body), task.Limits{}); err == nil {
			tasks = append(tasks, t)
		}
	}
	// The campaign's workers run without FERRY_KEY_PREFIX.
	c, err := deadletter.Uploads{S3: a.s3, Bucket: a.m.InternalBucket}.Abort(ctx, tasks)
	r.DeadUploadsAborted = c.Aborted
	if err != nil {
		r.Failures = append(r.Failures, fmt.Sprintf("abort the uploads of dead-lettered tasks: %v", err))
	}
}

// checkUploads lists multipart uploads still open in the internal bucket.
func (r *Report) checkUploads(ctx context.Context, a *awsSide) {
	out, err := a.s3.ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{Bucket: aws.String(a.m.InternalBucket)})
	if err != nil {
		r.Failures = append(r.Failures, fmt.Sprintf("list multipart uploads: %v", err))
		return
	}
	for _, u := range out.Uploads {
		r.OpenUploads = append(r.OpenUploads, aws.ToString(u.Key))
	}
	if n := len(r.OpenUploads); n > 0 {
		r.Failures = append(r.Failures, fmt.Sprintf("%d multipart uploads left open in the internal bucket: %s", n, head(r.OpenUploads)))
	}
}

// secretSet is what must never appear in a log line or a Redis value: the
// fleet's keys, every external ID, and the shapes of temporary credentials,
// session tokens and presigned query strings.
type secretSet struct {
	exact    map[string]string // value → what it is
	patterns map[string]*regexp.Regexp
}

func secretsOf(m demo.Manifest, fleet localaws.Account) secretSet {
	s := secretSet{exact: map[string]string{
		fleet.AccessKeyID:     "fleet access key id",
		fleet.SecretAccessKey: "fleet secret access key",
		demo.DevCacheKey():    "FERRY_CACHE_KEY",
	}, patterns: map[string]*regexp.Regexp{
		"temporary access key id": regexp.MustCompile(`ASIA[A-Z2-7]{16}`),
		"long-term access key id": regexp.MustCompile(`AKIA[A-Z2-7]{16}`),
		"session token":           regexp.MustCompile(`FwoGZXIvYXdzE|(?i)x-amz-security-token`),
		"presigned query string":  regexp.MustCompile(`(?i)x-amz-signature=|x-amz-credential=`),
	}}
	for _, c := range demo.Customers {
		if c.ExternalID != "" {
			s.exact[c.ExternalID] = "external id of " + c.ID
		}
		if c.TrustExternalID != "" {
			s.exact[c.TrustExternalID] = "trusted external id of " + c.ID
		}
	}
	return s
}

func (s secretSet) find(text string) string {
	for v, what := range s.exact {
		if v != "" && strings.Contains(text, v) {
			return what
		}
	}
	for what, re := range s.patterns {
		if re.MatchString(text) {
			return what
		}
	}
	return ""
}

// scanSecrets reads every worker log line and every Redis value.
func (r *Report) scanSecrets(ctx context.Context, workers []*workerProc, rdb redis.UniversalClient, s secretSet) {
	leak := func(where, what string) {
		r.SecretLeaks = append(r.SecretLeaks, where+": "+what)
	}
	for _, w := range workers {
		f, err := os.Open(w.logPath)
		if err != nil {
			r.note("open %s: %v", w.logPath, err)
			continue
		}
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 1<<20), 16<<20)
		n := 0
		for sc.Scan() {
			n++
			r.LogLinesScanned++
			if what := s.find(sc.Text()); what != "" {
				leak(fmt.Sprintf("worker-%d.log line %d", w.id, n), what)
			}
		}
		f.Close()
	}
	keys, err := redisconn.Keys(ctx, rdb, "*")
	if err != nil {
		r.note("scan redis: %v", err)
	}
	for _, k := range keys {
		var vals []string
		switch rdb.Type(ctx, k).Val() {
		case "string":
			vals = []string{rdb.Get(ctx, k).Val()}
		case "hash":
			for f, v := range rdb.HGetAll(ctx, k).Val() {
				vals = append(vals, f, v)
			}
		case "list":
			vals = rdb.LRange(ctx, k, 0, -1).Val()
		case "set":
			vals = rdb.SMembers(ctx, k).Val()
		case "zset":
			vals = rdb.ZRange(ctx, k, 0, -1).Val()
		}
		for _, v := range vals {
			r.RedisValues++
			if what := s.find(v); what != "" {
				leak("redis key "+k, what)
			}
		}
	}
	if r.LogLinesScanned == 0 {
		r.Failures = append(r.Failures, "no worker log lines to scan: the secret scan proves nothing")
	}
	if n := len(r.SecretLeaks); n > 0 {
		r.Failures = append(r.Failures, fmt.Sprintf("%d secrets in logs or Redis: %s", n, head(r.SecretLeaks)))
	}
}
