package config

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/ferryworks/ferry/credcache"
	"github.com/ferryworks/ferry/fetcher/location"
	"github.com/ferryworks/ferry/internal/redisconn"
)

// Requirement names a setting a command cannot run without. Settings that are
// given are always checked; requirements only decide which empty ones are
// errors, so `ferry enqueue` can demand the queue URL without the bucket.
type Requirement int

// Requirements a command may pass to Validate.
const (
	// NeedQueue requires FERRY_QUEUE_URL.
	NeedQueue Requirement = iota + 1
	// NeedEvents requires FERRY_EVENTS_QUEUE_URL or FERRY_EVENTS_TOPIC_ARN
	// (or both).
	NeedEvents
	// NeedDLQ requires FERRY_DLQ_URL.
	NeedDLQ
	// NeedBucket requires FERRY_BUCKET.
	NeedBucket
	// NeedRedis requires FERRY_REDIS_URL.
	NeedRedis
	// NeedCacheKey requires FERRY_CACHE_KEY.
	NeedCacheKey
	// NeedEventsQueue requires FERRY_EVENTS_QUEUE_URL itself (a command
	// that reads the events queue).
	NeedEventsQueue
)

// WorkerNeeds is what `ferry work` requires: every queue, the bucket, Redis
// and the cache key.
var WorkerNeeds = []Requirement{NeedQueue, NeedEvents, NeedDLQ, NeedBucket, NeedRedis, NeedCacheKey}

// A requirement with alt is met by either variable.
var requirementVars = map[Requirement]struct{ name, what, alt string }{
	NeedQueue:       {"FERRY_QUEUE_URL", "the tasks queue URL", ""},
	NeedEvents:      {"FERRY_EVENTS_QUEUE_URL", "the events queue URL, or FERRY_EVENTS_TOPIC_ARN (an SNS topic), or both", "FERRY_EVENTS_TOPIC_ARN"},
	NeedDLQ:         {"FERRY_DLQ_URL", "the dead-letter queue URL", ""},
	NeedBucket:      {"FERRY_BUCKET", "the internal bucket name", ""},
	NeedRedis:       {"FERRY_REDIS_URL", "a redis:// URL", ""},
	NeedCacheKey:    {"FERRY_CACHE_KEY", cacheKeyWant, ""},
	NeedEventsQueue: {"FERRY_EVENTS_QUEUE_URL", "the events queue URL", ""},
}

// String is the variable the requirement stands for.
func (r Requirement) String() string {
	if v, ok := requirementVars[r]; ok {
		return v.name
	}
	return "Requirement(" + strconv.Itoa(int(r)) + ")"
}

// ErrInvalid matches every *ValidationError with errors.Is.
var ErrInvalid = errors.New("invalid configuration")

// Problem is one bad setting: the variable, its value as given (secrets
// masked), and what is expected instead.
type Problem struct {
	Var   string
	Value string
	Want  string
	// Source is where the bad value came from; a missing required value is
	// SourceDefault.
	Source Source
}

// String renders the problem as `VAR="value": want …`.
func (p Problem) String() string {
	return fmt.Sprintf("%s=%q: want %s", p.Var, p.Value, p.Want)
}

// ValidationError lists every bad setting at once, so an operator fixes them
// in one round rather than one per restart. Inspect it with errors.As.
type ValidationError struct {
	Problems []Problem
}

// Error lists the problems one per line.
func (e *ValidationError) Error() string {
	var b strings.Builder
	if len(e.Problems) == 1 {
		b.WriteString("invalid configuration: ")
		b.WriteString(e.Problems[0].String())
		return b.String()
	}
	fmt.Fprintf(&b, "invalid configuration (%d problems):", len(e.Problems))
	for _, p := range e.Problems {
		b.WriteString("\n  ")
		b.WriteString(p.String())
	}
	return b.String()
}

// Is makes errors.Is(err, ErrInvalid) true.
func (e *ValidationError) Is(target error) bool { return target == ErrInvalid }

// Bounds that come from AWS rather than from taste.
const (
	// SQS refuses visibility beyond 12h counted from the first receive, so
	// no heartbeat can keep a task longer than that.
	maxVisibility  = 12 * time.Hour
	minPartSize    = 5 * MiB // S3 minimum for every part but the last
	maxPartSize    = 5 * GiB
	maxSinglePut   = 5 * GiB // S3 limit of one PutObject
	maxParts       = 10000   // S3 multipart limit
	maxObjectBytes = 5 * TiB // S3 object size limit
)

var (
	// https://docs.aws.amazon.com/sns/latest/api/API_CreateTopic.html (names)
	snsTopicARNRE = regexp.MustCompile(`^arn:aws[a-z-]*:sns:[a-z0-9-]+:[0-9]{12}:[A-Za-z0-9_-]{1,256}(\.fifo)?$`)
	hostRE        = regexp.MustCompile(`^(\*\.)?[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*(:[0-9]{1,5})?$`)
)

// Validate checks every setting that is given, plus the presence of those
// the command needs, and returns a *ValidationError naming every bad one
// (values that failed to parse in Load included), or nil.
func (c *Config) Validate(needs ...Requirement) error {
	var ps []Problem
	add := func(name, value, want string) {
		s := lookup(name)
		ps = append(ps, Problem{Var: name, Value: displayValue(s.Var, value), Want: want, Source: c.sources[name]})
	}
	ps = append(ps, c.sortedParseProblems()...)
	bad := func(name string) bool { _, ok := c.parseProblems[name]; return ok }

	for _, r := range needs {
		rv, ok := requirementVars[r]
		if !ok {
			continue
		}
		if rv.alt != "" && strings.TrimSpace(lookup(rv.alt).value(c).String()) != "" {
			continue
		}
		if strings.TrimSpace(lookup(rv.name).value(c).String()) == "" && !bad(rv.name) {
			add(rv.name, "", rv.what+" (required by this command)")
		}
	}

	for _, q := range []struct{ name, v string }{
		{"FERRY_QUEUE_URL", c.QueueURL},
		{"FERRY_EVENTS_QUEUE_URL", c.EventsQueueURL},
		{"FERRY_DLQ_URL", c.DLQURL},
		{"AWS_ENDPOINT_URL", c.AWSEndpointURL},
		{"AWS_ENDPOINT_URL_S3", c.AWSEndpointURLS3},
	} {
		if q.v != "" && !isHTTPURL(q.v) {
			add(q.name, q.v, "an absolute http:// or https:// URL")
		}
	}
	if c.EventsTopicARN != "" && !snsTopicARNRE.MatchString(c.EventsTopicARN) {
		add("FERRY_EVENTS_TOPIC_ARN", c.EventsTopicARN, "an SNS topic ARN, e.g. arn:aws:sns:us-east-1:123456789012:ferry-events")
	}
	if c.QueueURL != "" && c.QueueURL == c.DLQURL {
		add("FERRY_DLQ_URL", c.DLQURL, "a queue other than FERRY_QUEUE_URL (replaying would loop)")
	}
	if c.Bucket != "" && location.CheckBucket(c.Bucket) != nil {
		add("FERRY_BUCKET", c.Bucket, "an S3 bucket name: 3-63 lowercase letters, digits, dots and hyphens, starting and ending with a letter or digit")
	}
	if strings.HasPrefix(c.KeyPrefix, "/") || !utf8.ValidString(c.KeyPrefix) {
		add("FERRY_KEY_PREFIX", c.KeyPrefix, "a key prefix without a leading slash, e.g. attachments/")
	}
	switch {
	case c.RedisURL == "":
	case c.RedisMode == redisconn.Cluster && redisconn.CheckURL(c.RedisURL, redisconn.Cluster) != nil:
		add("FERRY_REDIS_URL", c.RedisURL, "with FERRY_REDIS_MODE=cluster, a redis:// or rediss:// URL of one or more seed nodes, e.g. redis://10.0.0.1:6379?addr=10.0.0.2:6379&addr=10.0.0.3:6379")
	case c.RedisMode != redisconn.Cluster && !validRedisURL(c.RedisURL):
		add("FERRY_REDIS_URL", c.RedisURL, "a redis://, rediss:// or unix:// URL, e.g. redis://127.0.0.1:6379/0")
	}
	if c.RedisPrefix == "" || strings.ContainsAny(c.RedisPrefix, "{} \t\r\n") {
		// Braces would change the cluster hash tag that keeps a customer's
		// keys on one slot.
		add("FERRY_REDIS_PREFIX", c.RedisPrefix, "a non-empty prefix without braces or spaces, e.g. ferry")
	}
	if strings.TrimSpace(c.CacheKey) != "" && !bad("FERRY_CACHE_KEY") {
		if _, err := credcache.ParseKeys(c.CacheKey); err != nil {
			add("FERRY_CACHE_KEY", c.CacheKey, cacheKeyWant)
		}
	}
	if credcache.ValidRoleName(c.RoleName) != nil {
		add("FERRY_ROLE_NAME", c.RoleName, "an IAM role name: 1-64 letters, digits and +=,.@_-")
	}
	if !bad("FERRY_SESSION_DURATION") && (c.SessionDuration < credcache.MinSessionDuration || c.SessionDuration > credcache.MaxSessionDuration) {
		add("FERRY_SESSION_DURATION", formatDuration(c.SessionDuration), "a duration between "+
			formatDuration(credcache.MinSessionDuration)+" and "+formatDuration(credcache.MaxSessionDuration)+" (STS AssumeRole bounds)")
	}
	if !bad("FERRY_REFRESH_WINDOW") && !bad("FERRY_SESSION_DURATION") && (c.RefreshWindow <= 0 || c.RefreshWindow >= c.SessionDuration) {
		add("FERRY_REFRESH_WINDOW", formatDuration(c.RefreshWindow), "a positive duration shorter than FERRY_SESSION_DURATION ("+formatDuration(c.SessionDuration)+")")
	}
	for _, n := range []struct {
		name string
		v    int
		min  int
	}{
		{"FERRY_CONCURRENCY", c.Concurrency, 1},
		{"FERRY_MAX_ATTACHMENTS", c.MaxAttachments, 1},
		{"FERRY_PART_CONCURRENCY", c.PartConcurrency, 1},
		{"FERRY_TASK_PARALLELISM", c.TaskParallelism, 1},
		{"FERRY_CUSTOMER_MAX_INFLIGHT", c.CustomerMaxInflight, 0},
		{"FERRY_CUSTOMER_FLEET_MAX_INFLIGHT", c.CustomerFleetMaxInflight, 0},
	} {
		if !bad(n.name) && n.v < n.min {
			want := "a positive integer"
			if n.min == 0 {
				want = "a non-negative integer (0 = no cap)"
			}
			add(n.name, strconv.Itoa(n.v), want)
		}
	}
	if !bad("FERRY_VISIBILITY_TIMEOUT") && (c.VisibilityTimeout < time.Second || c.VisibilityTimeout > maxVisibility || c.VisibilityTimeout%time.Second != 0) {
		add("FERRY_VISIBILITY_TIMEOUT", formatDuration(c.VisibilityTimeout), "a whole number of seconds between 1s and 12h (SQS takes seconds)")
	}
	if !bad("FERRY_MAX_PROCESSING_TIME") && (c.MaxProcessingTime <= 0 || c.MaxProcessingTime > maxVisibility) {
		add("FERRY_MAX_PROCESSING_TIME", formatDuration(c.MaxProcessingTime), "a positive duration up to 12h (SQS cannot extend a lease beyond 12h)")
	}
	if !bad("FERRY_CUSTOMER_FLEET_LEASE_TTL") && (c.CustomerFleetLeaseTTL < time.Second || c.CustomerFleetLeaseTTL > time.Hour) {
		// Renewed every third of it: shorter than a second would spend the
		// worker on renewals and lose leases to one slow Redis reply.
		add("FERRY_CUSTOMER_FLEET_LEASE_TTL", formatDuration(c.CustomerFleetLeaseTTL), "a duration between 1s and 1h")
	}
	if !bad("FERRY_PROGRESS_INTERVAL") && c.ProgressInterval <= 0 {
		add("FERRY_PROGRESS_INTERVAL", formatDuration(c.ProgressInterval), "a positive duration like 5s")
	}
	if !bad("FERRY_SHUTDOWN_TIMEOUT") && c.ShutdownTimeout <= 0 {
		add("FERRY_SHUTDOWN_TIMEOUT", formatDuration(c.ShutdownTimeout), "a positive duration")
	}
	if !bad("FERRY_MAX_OBJECT_BYTES") && (c.MaxObjectBytes <= 0 || c.MaxObjectBytes > maxObjectBytes) {
		add("FERRY_MAX_OBJECT_BYTES", c.MaxObjectBytes.String(), "a size between 1 byte and 5TiB (the S3 object limit)")
	}
	if !bad("FERRY_PART_SIZE") {
		switch {
		case c.PartSize < minPartSize || c.PartSize > maxPartSize:
			add("FERRY_PART_SIZE", c.PartSize.String(), "a size between 5MiB and 5GiB (S3 multipart limits)")
		case !bad("FERRY_MAX_OBJECT_BYTES") && c.MaxObjectBytes > 0 && (int64(c.MaxObjectBytes)+int64(c.PartSize)-1)/int64(c.PartSize) > maxParts:
			add("FERRY_PART_SIZE", c.PartSize.String(), fmt.Sprintf("at least %s so FERRY_MAX_OBJECT_BYTES (%s) fits in S3's 10000 parts",
				ByteSize((int64(c.MaxObjectBytes)+maxParts-1)/maxParts).String(), c.MaxObjectBytes))
		}
	}
	if !bad("FERRY_STREAM_PUT_MAX") && (c.StreamPutMax < 0 || c.StreamPutMax > maxSinglePut) {
		add("FERRY_STREAM_PUT_MAX", c.StreamPutMax.String(), "a size between 0 (never stream) and 5GiB (S3's limit for one PUT)")
	}
	for _, h := range c.HTTPAllowHosts {
		if !hostRE.MatchString(h) {
			add("FERRY_HTTP_ALLOW_HOSTS", strings.Join(c.HTTPAllowHosts, ","), "comma-separated host names without scheme or path, e.g. cdn.example.com,*.example.org")
			break
		}
	}
	if c.MetricsAddr != "" && !validListenAddr(c.MetricsAddr) {
		add("FERRY_METRICS_ADDR", c.MetricsAddr, "a listen address like :9090 or 127.0.0.1:9090, or off")
	}
	if strings.ContainsAny(c.AWSRegion, " \t/") {
		add("AWS_REGION", c.AWSRegion, "a region name like us-east-1")
	}

	if len(ps) == 0 {
		return nil
	}
	return &ValidationError{Problems: ps}
}

func (c *Config) sortedParseProblems() []Problem {
	ps := make([]Problem, 0, len(c.parseProblems))
	for _, s := range settings {
		if p, ok := c.parseProblems[s.Name]; ok {
			ps = append(ps, p)
		}
	}
	sort.SliceStable(ps, func(i, j int) bool { return settingIndex(ps[i].Var) < settingIndex(ps[j].Var) })
	return ps
}

func settingIndex(name string) int {
	for i, s := range settings {
		if s.Name == name {
			return i
		}
	}
	return len(settings)
}

func lookup(name string) *setting {
	for i := range settings {
		if settings[i].Name == name {
			return &settings[i]
		}
	}
	panic("config: unknown setting " + name)
}

func isHTTPURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != ""
}

func validRedisURL(s string) bool {
	u, err := url.Parse(s)
	if err != nil {
		return false
	}
	switch u.Scheme {
	case "redis", "rediss":
		return u.Host != ""
	case "unix":
		return u.Path != ""
	}
	return false
}

func validListenAddr(s string) bool {
	_, port, err := net.SplitHostPort(s)
	if err != nil {
		return false
	}
	n, err := strconv.Atoi(port)
	return err == nil && n >= 0 && n <= 65535
}

// displayValue masks what must not reach a terminal or a log: secret values
// keep at most their first four characters, and URLs lose their password.
func displayValue(v Var, raw string) string {
	if raw == "" {
		return ""
	}
	if strings.Contains(raw, "://") {
		if u, err := url.Parse(raw); err == nil && u.User != nil {
			if _, has := u.User.Password(); has {
				return u.Redacted()
			}
		}
		if v.Secret && v.Name != "FERRY_CACHE_KEY" {
			// A URL secret only for its userinfo: the rest is useful.
			return raw
		}
	}
	if !v.Secret {
		return raw
	}
	if utf8.RuneCountInString(raw) < 16 {
		return "(masked)"
	}
	return string([]rune(raw)[:4]) + "…(masked)"
}
