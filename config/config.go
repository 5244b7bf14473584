// Package config is the one home of ferry's configuration: a Config struct
// loaded from FERRY_* environment variables (plus read-only records of the
// standard AWS_* variables the AWS SDK reads itself), overridable by
// command-line flags, and validated per command so that an operator sees every
// bad setting in one message. Only cmd/ imports it; every other package takes
// an options struct of its own. Rules a setting must follow that belong to the
// package using it (a role name, the cross-account policies, the sealing keys'
// encoding) are that package's, and Validate asks it.
package config

import (
	"flag"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/ferryworks/ferry/credcache"
	"github.com/ferryworks/ferry/fetcher"
	"github.com/ferryworks/ferry/internal/redisconn"
)

// PathStyle chooses S3 path-style ("endpoint/bucket/key") or virtual-hosted
// ("bucket.endpoint/key") addressing.
type PathStyle string

// Path-style settings.
const (
	// PathStyleAuto uses path-style exactly when a custom endpoint is set.
	PathStyleAuto  PathStyle = "auto"
	PathStyleTrue  PathStyle = "true"
	PathStyleFalse PathStyle = "false"
)

// Config is the whole fleet's configuration. Zero values are not meaningful:
// obtain one with Load, which fills every default.
type Config struct {
	// QueueURL is the tasks queue workers consume and producers send to.
	QueueURL string
	// EventsQueueURL receives the terminal task events.
	EventsQueueURL string
	// EventsTopicARN is an SNS topic the terminal task events are published
	// to, instead of or beside EventsQueueURL (at least one is needed).
	EventsTopicARN string
	// DLQURL is the tasks queue's dead-letter queue.
	DLQURL string
	// Bucket is the internal bucket attachments are copied into.
	Bucket string
	// KeyPrefix is prepended to every key written to Bucket.
	KeyPrefix string
	// RedisURL locates Redis (redis://, rediss:// or unix://); in cluster
	// mode it lists seed nodes (redis://h1:p1?addr=h2:p2).
	RedisURL string
	// RedisMode says how RedisURL is read: one server or a cluster.
	RedisMode redisconn.Mode
	// RedisPrefix starts every Redis key ferry writes.
	RedisPrefix string
	// CacheKey is the raw FERRY_CACHE_KEY text; a secret, use CacheKeys.
	CacheKey string
	// RoleName is the role customers create for delegated access.
	RoleName string
	// SessionDuration is the DurationSeconds of each AssumeRole call.
	SessionDuration time.Duration
	// RefreshWindow is how long before expiry cached credentials are renewed.
	RefreshWindow time.Duration
	// CrossAccount is the cross-account policy.
	CrossAccount fetcher.Policy
	// RequesterPays says when reads acknowledge Requester Pays buckets.
	RequesterPays fetcher.RequesterPays
	// Concurrency is the number of tasks a worker runs at once.
	Concurrency int
	// VisibilityTimeout is the SQS lease a received task starts with.
	VisibilityTimeout time.Duration
	// MaxProcessingTime bounds one task, heartbeats included.
	MaxProcessingTime time.Duration
	// ShutdownTimeout bounds the drain after SIGTERM.
	ShutdownTimeout time.Duration
	// MaxObjectBytes refuses larger attachments.
	MaxObjectBytes ByteSize
	// MaxAttachments refuses tasks with more attachments.
	MaxAttachments int
	// PartSize is the multipart upload part size (also the memory per part).
	PartSize ByteSize
	// PartConcurrency is the number of parts of one object uploaded at once.
	PartConcurrency int
	// StreamPutMax is the largest object streamed as one PutObject over
	// https; 0 never streams.
	StreamPutMax ByteSize
	// TaskParallelism is the number of one task's attachments copied at once.
	TaskParallelism int
	// CustomerMaxInflight caps one customer's concurrent tasks; 0 is no cap.
	CustomerMaxInflight int
	// CustomerFleetMaxInflight caps one customer's concurrent tasks across
	// every worker sharing the Redis; 0 is no cap.
	CustomerFleetMaxInflight int
	// CustomerFleetLeaseTTL is how long a dead worker's fleet-wide places
	// stay taken.
	CustomerFleetLeaseTTL time.Duration
	// HTTPAllowHosts are the hosts plain https attachments may come from.
	HTTPAllowHosts []string
	// S3PathStyle is the addressing setting; use UsePathStyle.
	S3PathStyle PathStyle
	// MetricsAddr is where /metrics and health endpoints listen; "" disables.
	MetricsAddr string
	// PProf mounts /debug/pprof on MetricsAddr.
	PProf bool
	// LogLevel is debug, info, warn or error.
	LogLevel string
	// LogFormat is json or console.
	LogFormat string
	// ProgressInterval is how often a long CLI operation writes a progress
	// line when stderr is not a terminal.
	ProgressInterval time.Duration

	// AWSRegion records AWS_REGION; the SDK reads it itself.
	AWSRegion string
	// AWSEndpointURL records AWS_ENDPOINT_URL; the SDK reads it itself.
	AWSEndpointURL string
	// AWSEndpointURLS3 records AWS_ENDPOINT_URL_S3; the SDK reads it itself.
	AWSEndpointURLS3 string

	// parseProblems are values that did not parse, by variable name; a flag
	// that later sets the same setting successfully removes its entry.
	parseProblems map[string]Problem
	// sources says where each setting's value came from.
	sources map[string]Source
}

// Source says where a setting's value came from.
type Source string

// Sources of a setting.
const (
	SourceDefault Source = "default"
	SourceEnv     Source = "env"
	SourceFlag    Source = "flag"
)

// Var describes one configuration variable: its environment name, its flag
// name ("" for the read-only AWS_* records, which only the SDK acts on), its
// default as text, and what it means.
type Var struct {
	Name    string `json:"name"`
	Flag    string `json:"flag,omitempty"`
	Default string `json:"default"`
	Usage   string `json:"description"`
	// Secret values are masked wherever config prints them.
	Secret bool `json:"secret,omitempty"`
	// Group is the part of ferry that reads the variable; a command reads
	// the groups it declares and nothing else.
	Group Group `json:"group"`
	// Arg is what the flag takes, as help shows it (--bucket NAME); "" for
	// a boolean flag.
	Arg string `json:"arg,omitempty"`
}

// Group is a set of settings one part of ferry reads together. A command
// declares the groups it reads: only those become its flags, only those are
// loaded from the environment, so a bad value of a setting a command does not
// read (FERRY_CONCURRENCY for `ferry enqueue`) cannot stop it.
type Group string

// The groups, in the order `ferry options` lists them.
const (
	// GroupTasks is the tasks queue (FERRY_QUEUE_URL).
	GroupTasks Group = "tasks queue"
	// GroupTaskLimits are the limits a task submission must respect.
	GroupTaskLimits Group = "task limits"
	// GroupEventsQueue is the events queue terminal events go to.
	GroupEventsQueue Group = "events queue"
	// GroupEventsTopic is the SNS topic terminal events go to.
	GroupEventsTopic Group = "events topic"
	// GroupDLQ is the tasks queue's dead-letter queue.
	GroupDLQ Group = "dead-letter queue"
	// GroupRedis is where the registry, the credential cache and task
	// state live.
	GroupRedis Group = "redis"
	// GroupCredentials are the sealing keys and the AssumeRole settings of
	// the credential cache.
	GroupCredentials Group = "credentials"
	// GroupCopy is how attachments are read and written.
	GroupCopy Group = "copy"
	// GroupWorker is the worker's pool, leases, caps and metrics endpoint.
	GroupWorker Group = "worker"
	// GroupS3 is S3 addressing.
	GroupS3 Group = "s3"
	// GroupAWS are the records of the AWS_* variables the SDK reads.
	GroupAWS Group = "aws"
	// GroupLogging is the log level and format.
	GroupLogging Group = "logging"
	// GroupProgress is how long CLI operations report progress.
	GroupProgress Group = "progress"
)

// Groups lists every group, in a stable order: what `ferry work`, which
// reads everything, declares.
func Groups() []Group {
	return []Group{GroupTasks, GroupTaskLimits, GroupEventsQueue, GroupEventsTopic, GroupDLQ, GroupRedis,
		GroupCredentials, GroupCopy, GroupWorker, GroupS3, GroupAWS, GroupLogging, GroupProgress}
}

type setting struct {
	Var
	// want says what a value must look like, for parse problems.
	want  string
	value func(*Config) flag.Value
}

var settings = []setting{
	{Var{Name: "FERRY_QUEUE_URL", Flag: "queue-url", Usage: "tasks queue URL", Group: GroupTasks, Arg: "URL"}, "an SQS queue URL",
		func(c *Config) flag.Value { return stringValue{&c.QueueURL} }},
	{Var{Name: "FERRY_EVENTS_QUEUE_URL", Flag: "events-queue-url", Usage: "events queue URL (task.completed / task.access_denied / task.failed)", Group: GroupEventsQueue, Arg: "URL"}, "an SQS queue URL",
		func(c *Config) flag.Value { return stringValue{&c.EventsQueueURL} }},
	{Var{Name: "FERRY_EVENTS_TOPIC_ARN", Flag: "events-topic-arn", Usage: "SNS topic the terminal events are published to, with the message attributes type and customer_id (instead of or beside the events queue)", Group: GroupEventsTopic, Arg: "ARN"}, "an SNS topic ARN",
		func(c *Config) flag.Value { return stringValue{&c.EventsTopicARN} }},
	{Var{Name: "FERRY_DLQ_URL", Flag: "dlq-url", Usage: "dead-letter queue URL of the tasks queue", Group: GroupDLQ, Arg: "URL"}, "an SQS queue URL",
		func(c *Config) flag.Value { return stringValue{&c.DLQURL} }},
	{Var{Name: "FERRY_BUCKET", Flag: "bucket", Usage: "internal bucket attachments are copied into", Group: GroupCopy, Arg: "NAME"}, "an S3 bucket name",
		func(c *Config) flag.Value { return stringValue{&c.Bucket} }},
	{Var{Name: "FERRY_KEY_PREFIX", Flag: "key-prefix", Usage: "prefix of every key written to the internal bucket", Group: GroupCopy, Arg: "PREFIX"}, "a key prefix",
		func(c *Config) flag.Value { return stringValue{&c.KeyPrefix} }},
	{Var{Name: "FERRY_REDIS_URL", Flag: "redis-url", Usage: "Redis URL (redis://, rediss://, unix://)", Secret: true, Group: GroupRedis, Arg: "URL"}, "a redis:// URL",
		func(c *Config) flag.Value { return stringValue{&c.RedisURL} }},
	{Var{Name: "FERRY_REDIS_MODE", Flag: "redis-mode", Default: "single", Usage: "Redis deployment: single (one server) | cluster (Redis Cluster; FERRY_REDIS_URL lists seed nodes: redis://h1:p1?addr=h2:p2)", Group: GroupRedis, Arg: "MODE"}, redisModeChoices,
		func(c *Config) flag.Value { return enumValue[redisconn.Mode]{&c.RedisMode, redisconn.Modes()} }},
	{Var{Name: "FERRY_REDIS_PREFIX", Flag: "redis-prefix", Default: "ferry", Usage: "prefix of every Redis key", Group: GroupRedis, Arg: "PREFIX"}, "a key prefix",
		func(c *Config) flag.Value { return stringValue{&c.RedisPrefix} }},
	{Var{Name: "FERRY_CACHE_KEY", Flag: "cache-key", Usage: "AES-256 keys sealing cached credentials: base64 of 32 bytes, comma-separated for rotation (the first seals, all open)", Secret: true, Group: GroupCredentials, Arg: "KEYS"}, cacheKeyWant,
		func(c *Config) flag.Value { return stringValue{&c.CacheKey} }},
	{Var{Name: "FERRY_ROLE_NAME", Flag: "role-name", Default: credcache.DefaultRoleName, Usage: "name of the role customers create for delegated access", Group: GroupCredentials, Arg: "NAME"}, "an IAM role name",
		func(c *Config) flag.Value { return stringValue{&c.RoleName} }},
	{Var{Name: "FERRY_SESSION_DURATION", Flag: "session-duration", Default: "1h", Usage: "lifetime of assumed-role credentials (15m..12h)", Group: GroupCredentials, Arg: "DURATION"}, "a duration like 1h",
		func(c *Config) flag.Value { return durationValue{&c.SessionDuration} }},
	{Var{Name: "FERRY_REFRESH_WINDOW", Flag: "refresh-window", Default: "5m", Usage: "renew cached credentials this long before they expire (< session duration)", Group: GroupCredentials, Arg: "DURATION"}, "a duration like 5m",
		func(c *Config) flag.Value { return durationValue{&c.RefreshWindow} }},
	{Var{Name: "FERRY_CROSS_ACCOUNT", Flag: "cross-account", Default: string(fetcher.PolicyAllow), Usage: "cross-account reads: " + policyChoices, Group: GroupCopy, Arg: "POLICY"}, policyChoices,
		func(c *Config) flag.Value { return enumValue[fetcher.Policy]{&c.CrossAccount, fetcher.Policies()} }},
	{Var{Name: "FERRY_REQUESTER_PAYS", Flag: "requester-pays", Default: string(fetcher.RequesterPaysDelegated), Usage: "send x-amz-request-payer (Requester Pays buckets): " + requesterPaysChoices, Group: GroupCopy, Arg: "WHEN"}, requesterPaysChoices,
		func(c *Config) flag.Value {
			return enumValue[fetcher.RequesterPays]{&c.RequesterPays, fetcher.RequesterPaysSettings()}
		}},
	{Var{Name: "FERRY_CONCURRENCY", Flag: "concurrency", Default: "16", Usage: "tasks one worker runs at once", Group: GroupWorker, Arg: "N"}, "a positive integer",
		func(c *Config) flag.Value { return intValue{&c.Concurrency} }},
	{Var{Name: "FERRY_VISIBILITY_TIMEOUT", Flag: "visibility-timeout", Default: "60s", Usage: "SQS visibility timeout a received task starts with (extended by heartbeats)", Group: GroupWorker, Arg: "DURATION"}, "a duration like 60s",
		func(c *Config) flag.Value { return durationValue{&c.VisibilityTimeout} }},
	{Var{Name: "FERRY_MAX_PROCESSING_TIME", Flag: "max-processing-time", Default: "1h", Usage: "upper bound on one task, heartbeats included", Group: GroupWorker, Arg: "DURATION"}, "a duration like 1h",
		func(c *Config) flag.Value { return durationValue{&c.MaxProcessingTime} }},
	{Var{Name: "FERRY_SHUTDOWN_TIMEOUT", Flag: "shutdown-timeout", Default: "30s", Usage: "how long SIGTERM waits for running tasks before handing them back", Group: GroupWorker, Arg: "DURATION"}, "a duration like 30s",
		func(c *Config) flag.Value { return durationValue{&c.ShutdownTimeout} }},
	{Var{Name: "FERRY_MAX_OBJECT_BYTES", Flag: "max-object-bytes", Default: "5GiB", Usage: "largest attachment copied (bytes, or with a unit: 64MiB, 5GiB)", Group: GroupCopy, Arg: "SIZE"}, "a byte size like 5368709120, 64MiB or 5GiB",
		func(c *Config) flag.Value { return byteSizeValue{&c.MaxObjectBytes} }},
	{Var{Name: "FERRY_MAX_ATTACHMENTS", Flag: "max-attachments", Default: "100", Usage: "most attachments one task may carry", Group: GroupTaskLimits, Arg: "N"}, "a positive integer",
		func(c *Config) flag.Value { return intValue{&c.MaxAttachments} }},
	{Var{Name: "FERRY_PART_SIZE", Flag: "part-size", Default: "8MiB", Usage: "multipart upload part size, also the buffer memory per part (>= 5MiB)", Group: GroupCopy, Arg: "SIZE"}, "a byte size like 16MiB",
		func(c *Config) flag.Value { return byteSizeValue{&c.PartSize} }},
	{Var{Name: "FERRY_PART_CONCURRENCY", Flag: "part-concurrency", Default: "4", Usage: "parts of one object uploaded at once", Group: GroupCopy, Arg: "N"}, "a positive integer",
		func(c *Config) flag.Value { return intValue{&c.PartConcurrency} }},
	{Var{Name: "FERRY_STREAM_PUT_MAX", Flag: "stream-put-max", Default: ByteSize(fetcher.DefaultStreamPutMax).String(), Usage: "largest object of known size uploaded over https as one PutObject streamed from the source (no part buffer); larger ones go multipart; 0 never streams", Group: GroupCopy, Arg: "SIZE"}, "a byte size like 64MiB, at most 5GiB",
		func(c *Config) flag.Value { return byteSizeValue{&c.StreamPutMax} }},
	{Var{Name: "FERRY_TASK_PARALLELISM", Flag: "task-parallelism", Default: "4", Usage: "attachments of one task copied at once", Group: GroupWorker, Arg: "N"}, "a positive integer",
		func(c *Config) flag.Value { return intValue{&c.TaskParallelism} }},
	{Var{Name: "FERRY_CUSTOMER_MAX_INFLIGHT", Flag: "customer-max-inflight", Default: "0", Usage: "most tasks of one customer running at once in a worker (0 = no cap)", Group: GroupWorker, Arg: "N"}, "a non-negative integer",
		func(c *Config) flag.Value { return intValue{&c.CustomerMaxInflight} }},
	{Var{Name: "FERRY_CUSTOMER_FLEET_MAX_INFLIGHT", Flag: "customer-fleet-max-inflight", Default: "0", Usage: "most tasks of one customer running at once across all workers, held as leases in Redis (0 = no cap)", Group: GroupWorker, Arg: "N"}, "a non-negative integer",
		func(c *Config) flag.Value { return intValue{&c.CustomerFleetMaxInflight} }},
	{Var{Name: "FERRY_CUSTOMER_FLEET_LEASE_TTL", Flag: "customer-fleet-lease-ttl", Default: "30s", Usage: "lifetime of a fleet-wide place, renewed while its task runs: how long a killed worker's places stay taken", Group: GroupWorker, Arg: "DURATION"}, "a duration like 30s",
		func(c *Config) flag.Value { return durationValue{&c.CustomerFleetLeaseTTL} }},
	{Var{Name: "FERRY_HTTP_ALLOW_HOSTS", Flag: "http-allow-hosts", Usage: "comma-separated hosts plain https attachments may be fetched from (*.example.com allowed); empty refuses all", Group: GroupCopy, Arg: "HOSTS"}, "a comma-separated list of host names",
		func(c *Config) flag.Value { return listValue{&c.HTTPAllowHosts} }},
	{Var{Name: "FERRY_S3_PATH_STYLE", Flag: "s3-path-style", Default: "auto", Usage: "S3 path-style addressing: auto (when an endpoint URL is set) | true | false", Group: GroupS3, Arg: "MODE"}, "auto | true | false",
		func(c *Config) flag.Value {
			return enumValue[PathStyle]{&c.S3PathStyle, []PathStyle{PathStyleAuto, PathStyleTrue, PathStyleFalse}}
		}},
	{Var{Name: "FERRY_METRICS_ADDR", Flag: "metrics-addr", Default: ":9090", Usage: "listen address of /metrics and health endpoints (\"off\" or an empty flag disables)", Group: GroupWorker, Arg: "ADDR"}, "host:port, or off",
		func(c *Config) flag.Value { return addrValue{&c.MetricsAddr} }},
	{Var{Name: "FERRY_PPROF", Flag: "pprof", Default: "false", Usage: "serve /debug/pprof on the metrics address", Group: GroupWorker}, "true or false",
		func(c *Config) flag.Value { return boolValue{&c.PProf} }},
	{Var{Name: "FERRY_LOG_LEVEL", Flag: "log-level", Default: "info", Usage: "debug | info | warn | error", Group: GroupLogging, Arg: "LEVEL"}, "debug | info | warn | error",
		func(c *Config) flag.Value {
			return enumValue[string]{&c.LogLevel, []string{"debug", "info", "warn", "error"}}
		}},
	{Var{Name: "FERRY_LOG_FORMAT", Flag: "log-format", Default: "json", Usage: "json | console (unset: console for commands other than work while stderr is a terminal)", Group: GroupLogging, Arg: "FORMAT"}, "json | console",
		func(c *Config) flag.Value { return enumValue[string]{&c.LogFormat, []string{"json", "console"}} }},
	{Var{Name: "FERRY_PROGRESS_INTERVAL", Flag: "progress-interval", Default: "5s", Usage: "how often a long operation (dlq replay, dlq purge, a large enqueue) writes a progress line to stderr when it is not a terminal", Group: GroupProgress, Arg: "DURATION"}, "a duration like 5s",
		func(c *Config) flag.Value { return durationValue{&c.ProgressInterval} }},
	{Var{Name: "AWS_REGION", Usage: "AWS region (read by the AWS SDK)", Group: GroupAWS}, "an AWS region",
		func(c *Config) flag.Value { return stringValue{&c.AWSRegion} }},
	{Var{Name: "AWS_ENDPOINT_URL", Usage: "custom endpoint for every AWS service (read by the AWS SDK)", Group: GroupAWS}, "an http(s) URL",
		func(c *Config) flag.Value { return stringValue{&c.AWSEndpointURL} }},
	{Var{Name: "AWS_ENDPOINT_URL_S3", Usage: "custom S3 endpoint (read by the AWS SDK)", Group: GroupS3}, "an http(s) URL",
		func(c *Config) flag.Value { return stringValue{&c.AWSEndpointURLS3} }},
}

var redisModeChoices = enumValue[redisconn.Mode]{allowed: redisconn.Modes()}.choices()

var policyChoices = enumValue[fetcher.Policy]{allowed: fetcher.Policies()}.choices()

var requesterPaysChoices = enumValue[fetcher.RequesterPays]{allowed: fetcher.RequesterPaysSettings()}.choices()

const cacheKeyWant = "base64 of 32 bytes, comma-separated for rotation (make one with: openssl rand -base64 32)"

// Vars lists every variable config reads, in a stable order, for usage text
// and documentation.
func Vars() []Var {
	out := make([]Var, len(settings))
	for i, s := range settings {
		out[i] = s.Var
	}
	return out
}

// Default returns a Config holding every default, as Load does with an
// empty environment.
func Default() *Config {
	c := &Config{parseProblems: map[string]Problem{}, sources: map[string]Source{}}
	for _, s := range settings {
		if s.Default != "" {
			if err := s.value(c).Set(s.Default); err != nil {
				panic("config: bad default for " + s.Name + ": " + err.Error())
			}
		}
		c.sources[s.Name] = SourceDefault
	}
	return c
}

// Load builds a Config from getenv (os.Getenv in production, a map in tests):
// defaults first, then every variable that is set and not blank. Load always
// returns a usable Config; a value that does not parse keeps its default and is
// reported in the returned *ValidationError together with every other such
// value. Validate reports the same problems again (unless a flag has since
// set the setting), so a command may ignore this error and call Validate
// once after its flags are parsed.
func Load(getenv func(string) string) (*Config, error) {
	c := Default()
	return c, c.LoadEnv(getenv, Groups()...)
}

// LoadEnv reads the variables of groups from getenv into c, except those a
// flag already set (a flag wins over the environment); every other setting
// keeps its value and no variable outside groups is looked at. Values that do
// not parse keep their previous value and are reported, all at once, in the
// returned *ValidationError (and again by Validate).
func (c *Config) LoadEnv(getenv func(string) string, groups ...Group) error {
	for i := range settings {
		s := &settings[i]
		if !inGroups(s.Group, groups) || c.sources[s.Name] == SourceFlag {
			continue
		}
		raw := getenv(s.Name)
		if strings.TrimSpace(raw) == "" {
			continue
		}
		if err := s.value(c).Set(raw); err != nil {
			c.parseProblems[s.Name] = Problem{Var: s.Name, Value: displayValue(s.Var, raw), Want: s.want, Source: SourceEnv}
			continue
		}
		delete(c.parseProblems, s.Name)
		c.sources[s.Name] = SourceEnv
	}
	if len(c.parseProblems) > 0 {
		return &ValidationError{Problems: c.sortedParseProblems()}
	}
	return nil
}

func inGroups(g Group, groups []Group) bool {
	for _, h := range groups {
		if g == h {
			return true
		}
	}
	return false
}

// RegisterFlags adds one flag per FERRY_* variable of groups to fs
// ("--queue-url URL" for FERRY_QUEUE_URL, …); a flag given on the command line
// overrides the environment. Register before parsing, parse before LoadEnv
// and Validate. A variable outside groups gets no flag, so a command's help
// shows exactly the settings it reads.
func (c *Config) RegisterFlags(fs *pflag.FlagSet, groups ...Group) {
	for i := range settings {
		s := &settings[i]
		if s.Flag == "" || !inGroups(s.Group, groups) {
			continue
		}
		f := fs.VarPF(&flagValue{c: c, s: s}, s.Flag, "", s.Usage+" (env "+s.Name+")")
		if s.Arg == "" {
			f.NoOptDefVal = "true"
		}
	}
}

// flagValue forwards to the setting's value and records that a flag, not the
// environment, decided it.
type flagValue struct {
	c *Config
	s *setting
}

func (f *flagValue) Set(raw string) error {
	if err := f.s.value(f.c).Set(raw); err != nil {
		return err
	}
	delete(f.c.parseProblems, f.s.Name)
	f.c.sources[f.s.Name] = SourceFlag
	return nil
}

func (f *flagValue) String() string {
	if f == nil || f.c == nil {
		return ""
	}
	if f.s.Secret {
		return displayValue(f.s.Var, f.s.value(f.c).String())
	}
	return f.s.value(f.c).String()
}

// Type is the flag's placeholder in help (--bucket NAME).
func (f *flagValue) Type() string {
	if f.s.Arg == "" {
		return "bool"
	}
	return f.s.Arg
}

func (f *flagValue) IsBoolFlag() bool {
	if f == nil || f.c == nil {
		return false
	}
	b, ok := f.s.value(f.c).(interface{ IsBoolFlag() bool })
	return ok && b.IsBoolFlag()
}

// Setting is one variable's effective value as config prints it: secrets
// masked, with where the value came from.
type Setting struct {
	Var    string
	Value  string
	Source Source
}

// Settings lists every variable's effective value, secrets masked, so a
// command can show an operator what it is running with without leaking a
// key or a Redis password.
func (c *Config) Settings() []Setting {
	out := make([]Setting, 0, len(settings))
	for _, s := range settings {
		out = append(out, Setting{
			Var:    s.Name,
			Value:  displayValue(s.Var, s.value(c).String()),
			Source: c.sources[s.Name],
		})
	}
	return out
}

// FlagChoices lists the values the setting behind flag takes when they are
// a fixed set (--redis-mode: single, cluster), for shell completion; nil
// otherwise.
func FlagChoices(flag string) []string {
	for i := range settings {
		if settings[i].Flag == flag {
			if w, ok := settings[i].value(Default()).(interface{ words() []string }); ok {
				return w.words()
			}
		}
	}
	return nil
}

// Explicit says whether the variable name was set, in the environment or by
// a flag, rather than left at its default.
func (c *Config) Explicit(name string) bool {
	s := c.sources[name]
	return s == SourceEnv || s == SourceFlag
}

// CacheKeys decodes FERRY_CACHE_KEY with credcache.ParseKeys: the first key
// seals, every key opens. nil when unset or when any key is bad (Validate
// says which).
func (c *Config) CacheKeys() [][]byte {
	keys, err := credcache.ParseKeys(c.CacheKey)
	if err != nil {
		return nil
	}
	return keys
}

// UsePathStyle says whether S3 requests should use path-style addressing:
// "auto" means yes exactly when AWS_ENDPOINT_URL or AWS_ENDPOINT_URL_S3 is
// set, because a custom endpoint such as http://127.0.0.1:4566 has no DNS for
// bucket subdomains, while real S3 wants virtual-hosted requests.
func (c *Config) UsePathStyle() bool {
	switch c.S3PathStyle {
	case PathStyleTrue:
		return true
	case PathStyleFalse:
		return false
	}
	return c.AWSEndpointURL != "" || c.AWSEndpointURLS3 != ""
}
