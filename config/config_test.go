package config

import (
	"encoding/base64"
	"errors"
	"io"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"

	"github.com/ferryworks/ferry/fetcher"
	"github.com/ferryworks/ferry/internal/redisconn"
)

// key32 returns a valid FERRY_CACHE_KEY item whose bytes are all b.
func key32(b byte) string {
	k := make([]byte, 32)
	for i := range k {
		k[i] = b
	}
	return base64.StdEncoding.EncodeToString(k)
}

func envFunc(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

// goodEnv sets everything a worker needs to valid values.
func goodEnv() map[string]string {
	return map[string]string{
		"FERRY_QUEUE_URL":        "http://127.0.0.1:4566/000000000000/ferry-tasks",
		"FERRY_EVENTS_QUEUE_URL": "http://127.0.0.1:4566/000000000000/ferry-events",
		"FERRY_DLQ_URL":          "http://127.0.0.1:4566/000000000000/ferry-tasks-dlq",
		"FERRY_BUCKET":           "ferry-internal",
		"FERRY_REDIS_URL":        "redis://127.0.0.1:6379/0",
		"FERRY_CACHE_KEY":        key32(1),
	}
}

func problemVars(err error) []string {
	var ve *ValidationError
	if !errors.As(err, &ve) {
		return nil
	}
	var out []string
	for _, p := range ve.Problems {
		out = append(out, p.Var)
	}
	return out
}

func TestDefaults(t *testing.T) {
	t.Parallel()
	c, err := Load(envFunc(nil))
	if err != nil {
		t.Fatalf("Load(empty): %v", err)
	}
	want := Config{
		RedisPrefix:              "ferry",
		RedisMode:                redisconn.Single,
		RoleName:                 "ScaleAI-Integration",
		SessionDuration:          time.Hour,
		RefreshWindow:            5 * time.Minute,
		CrossAccount:             fetcher.PolicyAllow,
		RequesterPays:            fetcher.RequesterPaysDelegated,
		Concurrency:              16,
		VisibilityTimeout:        60 * time.Second,
		MaxProcessingTime:        time.Hour,
		ShutdownTimeout:          30 * time.Second,
		MaxObjectBytes:           5 * GiB,
		MaxAttachments:           100,
		PartSize:                 8 * MiB,
		PartConcurrency:          4,
		StreamPutMax:             64 * MiB,
		TaskParallelism:          4,
		CustomerMaxInflight:      0,
		CustomerFleetMaxInflight: 0,
		CustomerFleetLeaseTTL:    30 * time.Second,
		S3PathStyle:              PathStyleAuto,
		MetricsAddr:              ":9090",
		PProf:                    false,
		LogLevel:                 "info",
		LogFormat:                "json",
		ProgressInterval:         5 * time.Second,
	}
	got := *c
	got.parseProblems, got.sources = nil, nil
	if !reflect.DeepEqual(got, want) {
		t.Errorf("defaults:\n got %+v\nwant %+v", got, want)
	}
	if err := c.Validate(); err != nil {
		t.Errorf("defaults without requirements should validate: %v", err)
	}
	if c.UsePathStyle() {
		t.Error("auto path style without an endpoint should be virtual-hosted")
	}
	if c.CacheKeys() != nil {
		t.Error("no FERRY_CACHE_KEY should give nil keys")
	}
	for _, s := range c.Settings() {
		if s.Source != SourceDefault {
			t.Errorf("%s: source %q, want default", s.Var, s.Source)
		}
	}
	if Default().Concurrency != 16 {
		t.Error("Default() should hold the defaults")
	}
}

func TestRequirements(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		needs []Requirement
		want  []string
	}{
		{"none", nil, nil},
		{"enqueue", []Requirement{NeedQueue}, []string{"FERRY_QUEUE_URL"}},
		{"events", []Requirement{NeedEvents}, []string{"FERRY_EVENTS_QUEUE_URL"}},
		{"events queue", []Requirement{NeedEventsQueue}, []string{"FERRY_EVENTS_QUEUE_URL"}},
		{"dlq", []Requirement{NeedDLQ}, []string{"FERRY_DLQ_URL"}},
		{"bucket", []Requirement{NeedBucket}, []string{"FERRY_BUCKET"}},
		{"redis and key", []Requirement{NeedRedis, NeedCacheKey}, []string{"FERRY_REDIS_URL", "FERRY_CACHE_KEY"}},
		{"worker", WorkerNeeds, []string{"FERRY_QUEUE_URL", "FERRY_EVENTS_QUEUE_URL", "FERRY_DLQ_URL", "FERRY_BUCKET", "FERRY_REDIS_URL", "FERRY_CACHE_KEY"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, _ := Load(envFunc(nil))
			err := c.Validate(tt.needs...)
			if got := problemVars(err); !slices.Equal(got, tt.want) {
				t.Errorf("problems %v, want %v (err: %v)", got, tt.want, err)
			}
			if tt.want != nil && !strings.Contains(err.Error(), "required by this command") {
				t.Errorf("error should say the command requires it: %v", err)
			}
			// The same requirements are satisfied by a complete environment.
			c, _ = Load(envFunc(goodEnv()))
			if err := c.Validate(tt.needs...); err != nil {
				t.Errorf("complete env: %v", err)
			}
		})
	}
}

func TestEnvOverridesDefaults(t *testing.T) {
	t.Parallel()
	env := goodEnv()
	for k, v := range map[string]string{
		"FERRY_KEY_PREFIX":                  "att/",
		"FERRY_REDIS_PREFIX":                "ferry-staging",
		"FERRY_CACHE_KEY":                   key32(2) + ", " + key32(1),
		"FERRY_ROLE_NAME":                   "Other-Role",
		"FERRY_SESSION_DURATION":            "2h",
		"FERRY_REFRESH_WINDOW":              "600",
		"FERRY_CROSS_ACCOUNT":               "Require-Owner",
		"FERRY_CONCURRENCY":                 "32",
		"FERRY_VISIBILITY_TIMEOUT":          "2m",
		"FERRY_MAX_PROCESSING_TIME":         "30m",
		"FERRY_SHUTDOWN_TIMEOUT":            "45s",
		"FERRY_MAX_OBJECT_BYTES":            "64MiB",
		"FERRY_MAX_ATTACHMENTS":             "10",
		"FERRY_PART_SIZE":                   "8388608",
		"FERRY_PART_CONCURRENCY":            "2",
		"FERRY_TASK_PARALLELISM":            "8",
		"FERRY_CUSTOMER_MAX_INFLIGHT":       "3",
		"FERRY_CUSTOMER_FLEET_MAX_INFLIGHT": "12",
		"FERRY_CUSTOMER_FLEET_LEASE_TTL":    "10",
		"FERRY_HTTP_ALLOW_HOSTS":            " cdn.example.com , *.example.org,,",
		"FERRY_S3_PATH_STYLE":               "true",
		"FERRY_METRICS_ADDR":                "off",
		"FERRY_PPROF":                       "1",
		"FERRY_LOG_LEVEL":                   "debug",
		"FERRY_LOG_FORMAT":                  "console",
		"AWS_REGION":                        "eu-west-1",
		"AWS_ENDPOINT_URL":                  "http://127.0.0.1:4566",
	} {
		env[k] = v
	}
	c, err := Load(envFunc(env))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(WorkerNeeds...); err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"KeyPrefix", c.KeyPrefix, "att/"},
		{"RedisPrefix", c.RedisPrefix, "ferry-staging"},
		{"RoleName", c.RoleName, "Other-Role"},
		{"SessionDuration", c.SessionDuration, 2 * time.Hour},
		{"RefreshWindow (bare seconds)", c.RefreshWindow, 10 * time.Minute},
		{"CrossAccount (case-insensitive)", c.CrossAccount, fetcher.PolicyRequireOwner},
		{"Concurrency", c.Concurrency, 32},
		{"VisibilityTimeout", c.VisibilityTimeout, 2 * time.Minute},
		{"MaxProcessingTime", c.MaxProcessingTime, 30 * time.Minute},
		{"ShutdownTimeout", c.ShutdownTimeout, 45 * time.Second},
		{"MaxObjectBytes", c.MaxObjectBytes, 64 * MiB},
		{"MaxAttachments", c.MaxAttachments, 10},
		{"PartSize (plain bytes)", c.PartSize, 8 * MiB},
		{"PartConcurrency", c.PartConcurrency, 2},
		{"TaskParallelism", c.TaskParallelism, 8},
		{"CustomerMaxInflight", c.CustomerMaxInflight, 3},
		{"CustomerFleetMaxInflight", c.CustomerFleetMaxInflight, 12},
		{"CustomerFleetLeaseTTL (bare seconds)", c.CustomerFleetLeaseTTL, 10 * time.Second},
		{"HTTPAllowHosts", c.HTTPAllowHosts, []string{"cdn.example.com", "*.example.org"}},
		{"S3PathStyle", c.S3PathStyle, PathStyleTrue},
		{"MetricsAddr off", c.MetricsAddr, ""},
		{"PProf", c.PProf, true},
		{"LogLevel", c.LogLevel, "debug"},
		{"LogFormat", c.LogFormat, "console"},
		{"AWSRegion", c.AWSRegion, "eu-west-1"},
		{"AWSEndpointURL", c.AWSEndpointURL, "http://127.0.0.1:4566"},
		{"CacheKeys", len(c.CacheKeys()), 2},
		{"first key seals", c.CacheKeys()[0][0], byte(2)},
	}
	for _, ck := range checks {
		if !reflect.DeepEqual(ck.got, ck.want) {
			t.Errorf("%s = %v, want %v", ck.name, ck.got, ck.want)
		}
	}
}

// TestValidateBadValues covers every check: each case breaks one or more
// settings and names exactly the variables that must be reported.
// The events may go to a queue, a topic or both: either satisfies the
// worker, and a valid topic ARN is accepted.
func TestEventsQueueOrTopic(t *testing.T) {
	t.Parallel()
	for _, env := range []map[string]string{
		{"FERRY_EVENTS_TOPIC_ARN": "arn:aws:sns:us-east-1:123456789012:ferry-events"},
		{"FERRY_EVENTS_QUEUE_URL": "http://127.0.0.1:4566/000000000000/ferry-events"},
		{"FERRY_EVENTS_TOPIC_ARN": "arn:aws:sns:eu-west-1:123456789012:ferry-events.fifo", "FERRY_EVENTS_QUEUE_URL": "http://127.0.0.1:4566/000000000000/ferry-events"},
	} {
		c, err := Load(envFunc(env))
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Validate(NeedEvents); err != nil {
			t.Errorf("%v: %v", env, err)
		}
		if err := c.Validate(NeedEventsQueue); (err == nil) != (c.EventsQueueURL != "") {
			t.Errorf("%v: reading the events queue: %v", env, err)
		}
	}
}

func TestValidateBadValues(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		env      map[string]string
		want     []string
		wantText string // a substring of the error
	}{
		{"queue url not a url", map[string]string{"FERRY_QUEUE_URL": "ferry-tasks"}, []string{"FERRY_QUEUE_URL"}, "absolute http"},
		{"events url wrong scheme", map[string]string{"FERRY_EVENTS_QUEUE_URL": "sqs://x/y"}, []string{"FERRY_EVENTS_QUEUE_URL"}, ""},
		{"events topic not an arn", map[string]string{"FERRY_EVENTS_TOPIC_ARN": "ferry-events"}, []string{"FERRY_EVENTS_TOPIC_ARN"}, "SNS topic ARN"},
		{"events topic an sqs arn", map[string]string{"FERRY_EVENTS_TOPIC_ARN": "arn:aws:sqs:us-east-1:123456789012:ferry-events"}, []string{"FERRY_EVENTS_TOPIC_ARN"}, ""},
		{"dlq url no host", map[string]string{"FERRY_DLQ_URL": "http:///q"}, []string{"FERRY_DLQ_URL"}, ""},
		{"dlq is the tasks queue", map[string]string{"FERRY_DLQ_URL": "http://127.0.0.1:4566/000000000000/ferry-tasks"}, []string{"FERRY_DLQ_URL"}, "other than FERRY_QUEUE_URL"},
		{"bucket uppercase", map[string]string{"FERRY_BUCKET": "Ferry"}, []string{"FERRY_BUCKET"}, "S3 bucket name"},
		{"bucket too short", map[string]string{"FERRY_BUCKET": "ab"}, []string{"FERRY_BUCKET"}, ""},
		{"bucket like ip", map[string]string{"FERRY_BUCKET": "10.0.0.1"}, []string{"FERRY_BUCKET"}, ""},
		{"bucket double dot", map[string]string{"FERRY_BUCKET": "a..b"}, []string{"FERRY_BUCKET"}, ""},
		{"bucket reserved prefix", map[string]string{"FERRY_BUCKET": "xn--ferry"}, []string{"FERRY_BUCKET"}, ""},
		{"key prefix leading slash", map[string]string{"FERRY_KEY_PREFIX": "/att"}, []string{"FERRY_KEY_PREFIX"}, ""},
		{"redis url scheme", map[string]string{"FERRY_REDIS_URL": "http://127.0.0.1:6379"}, []string{"FERRY_REDIS_URL"}, "redis://"},
		{"redis mode unknown", map[string]string{"FERRY_REDIS_MODE": "sentinel"}, []string{"FERRY_REDIS_MODE"}, "single | cluster"},
		{"cluster url unix socket", map[string]string{"FERRY_REDIS_MODE": "cluster", "FERRY_REDIS_URL": "unix:///run/redis.sock"}, []string{"FERRY_REDIS_URL"}, "seed nodes"},
		{"cluster url database", map[string]string{"FERRY_REDIS_MODE": "cluster", "FERRY_REDIS_URL": "redis://10.0.0.1:6379/3"}, []string{"FERRY_REDIS_URL"}, "addr="},
		{"cluster url seed without port", map[string]string{"FERRY_REDIS_MODE": "cluster", "FERRY_REDIS_URL": "redis://10.0.0.1:6379?addr=10.0.0.2"}, []string{"FERRY_REDIS_URL"}, ""},
		{"redis prefix braces", map[string]string{"FERRY_REDIS_PREFIX": "fe{rry}"}, []string{"FERRY_REDIS_PREFIX"}, ""},
		{"cache key not base64", map[string]string{"FERRY_CACHE_KEY": "not-base64-at-all!!"}, []string{"FERRY_CACHE_KEY"}, "openssl rand -base64 32"},
		{"cache key 16 bytes", map[string]string{"FERRY_CACHE_KEY": base64.StdEncoding.EncodeToString(make([]byte, 16))}, []string{"FERRY_CACHE_KEY"}, ""},
		{"cache key second of two bad", map[string]string{"FERRY_CACHE_KEY": key32(1) + ",short"}, []string{"FERRY_CACHE_KEY"}, ""},
		{"role name bad chars", map[string]string{"FERRY_ROLE_NAME": "Scale AI/Integration"}, []string{"FERRY_ROLE_NAME"}, ""},
		{"role name too long", map[string]string{"FERRY_ROLE_NAME": strings.Repeat("r", 65)}, []string{"FERRY_ROLE_NAME"}, ""},
		{"session duration unparsable", map[string]string{"FERRY_SESSION_DURATION": "one hour"}, []string{"FERRY_SESSION_DURATION"}, "a duration"},
		{"session duration too short", map[string]string{"FERRY_SESSION_DURATION": "10m", "FERRY_REFRESH_WINDOW": "1m"}, []string{"FERRY_SESSION_DURATION"}, "15m and 12h"},
		{"session duration too long", map[string]string{"FERRY_SESSION_DURATION": "13h"}, []string{"FERRY_SESSION_DURATION"}, ""},
		{"refresh window >= session", map[string]string{"FERRY_SESSION_DURATION": "15m", "FERRY_REFRESH_WINDOW": "15m"}, []string{"FERRY_REFRESH_WINDOW"}, "shorter than FERRY_SESSION_DURATION"},
		{"refresh window zero", map[string]string{"FERRY_REFRESH_WINDOW": "0s"}, []string{"FERRY_REFRESH_WINDOW"}, ""},
		{"refresh window negative", map[string]string{"FERRY_REFRESH_WINDOW": "-1m"}, []string{"FERRY_REFRESH_WINDOW"}, ""},
		{"cross account unknown", map[string]string{"FERRY_CROSS_ACCOUNT": "sometimes"}, []string{"FERRY_CROSS_ACCOUNT"}, "allow | require-owner | require-verified | deny"},
		{"concurrency zero", map[string]string{"FERRY_CONCURRENCY": "0"}, []string{"FERRY_CONCURRENCY"}, "positive integer"},
		{"concurrency text", map[string]string{"FERRY_CONCURRENCY": "many"}, []string{"FERRY_CONCURRENCY"}, ""},
		{"visibility sub-second", map[string]string{"FERRY_VISIBILITY_TIMEOUT": "1500ms"}, []string{"FERRY_VISIBILITY_TIMEOUT"}, "whole number of seconds"},
		{"visibility over 12h", map[string]string{"FERRY_VISIBILITY_TIMEOUT": "13h"}, []string{"FERRY_VISIBILITY_TIMEOUT"}, ""},
		{"visibility zero", map[string]string{"FERRY_VISIBILITY_TIMEOUT": "0"}, []string{"FERRY_VISIBILITY_TIMEOUT"}, ""},
		{"max processing over 12h", map[string]string{"FERRY_MAX_PROCESSING_TIME": "24h"}, []string{"FERRY_MAX_PROCESSING_TIME"}, "12h"},
		{"max processing zero", map[string]string{"FERRY_MAX_PROCESSING_TIME": "0s"}, []string{"FERRY_MAX_PROCESSING_TIME"}, ""},
		{"shutdown zero", map[string]string{"FERRY_SHUTDOWN_TIMEOUT": "0s"}, []string{"FERRY_SHUTDOWN_TIMEOUT"}, ""},
		{"max object bytes unit", map[string]string{"FERRY_MAX_OBJECT_BYTES": "5 parsecs"}, []string{"FERRY_MAX_OBJECT_BYTES"}, "byte size"},
		{"max object bytes zero", map[string]string{"FERRY_MAX_OBJECT_BYTES": "0"}, []string{"FERRY_MAX_OBJECT_BYTES"}, ""},
		{"max object bytes over 5TiB", map[string]string{"FERRY_MAX_OBJECT_BYTES": "6TiB", "FERRY_PART_SIZE": "1GiB"}, []string{"FERRY_MAX_OBJECT_BYTES"}, "5TiB"},
		{"max attachments zero", map[string]string{"FERRY_MAX_ATTACHMENTS": "0"}, []string{"FERRY_MAX_ATTACHMENTS"}, ""},
		{"part size below 5MiB", map[string]string{"FERRY_PART_SIZE": "4MiB"}, []string{"FERRY_PART_SIZE"}, "5MiB and 5GiB"},
		{"part size above 5GiB", map[string]string{"FERRY_PART_SIZE": "6GiB"}, []string{"FERRY_PART_SIZE"}, ""},
		{"part size too small for max object", map[string]string{"FERRY_MAX_OBJECT_BYTES": "1TiB", "FERRY_PART_SIZE": "16MiB"}, []string{"FERRY_PART_SIZE"}, "10000 parts"},
		{"stream put max above 5GiB", map[string]string{"FERRY_STREAM_PUT_MAX": "6GiB"}, []string{"FERRY_STREAM_PUT_MAX"}, "5GiB"},
		{"part concurrency zero", map[string]string{"FERRY_PART_CONCURRENCY": "0"}, []string{"FERRY_PART_CONCURRENCY"}, ""},
		{"task parallelism negative", map[string]string{"FERRY_TASK_PARALLELISM": "-1"}, []string{"FERRY_TASK_PARALLELISM"}, ""},
		{"customer inflight negative", map[string]string{"FERRY_CUSTOMER_MAX_INFLIGHT": "-1"}, []string{"FERRY_CUSTOMER_MAX_INFLIGHT"}, "non-negative"},
		{"fleet inflight negative", map[string]string{"FERRY_CUSTOMER_FLEET_MAX_INFLIGHT": "-2"}, []string{"FERRY_CUSTOMER_FLEET_MAX_INFLIGHT"}, "non-negative"},
		{"fleet lease too short", map[string]string{"FERRY_CUSTOMER_FLEET_LEASE_TTL": "500ms"}, []string{"FERRY_CUSTOMER_FLEET_LEASE_TTL"}, "between 1s and 1h"},
		{"allow hosts with scheme", map[string]string{"FERRY_HTTP_ALLOW_HOSTS": "cdn.example.com,https://x.example.com/"}, []string{"FERRY_HTTP_ALLOW_HOSTS"}, "without scheme"},
		{"path style unknown", map[string]string{"FERRY_S3_PATH_STYLE": "yes"}, []string{"FERRY_S3_PATH_STYLE"}, "auto | true | false"},
		{"metrics addr no port", map[string]string{"FERRY_METRICS_ADDR": "localhost"}, []string{"FERRY_METRICS_ADDR"}, ""},
		{"pprof not bool", map[string]string{"FERRY_PPROF": "sure"}, []string{"FERRY_PPROF"}, "true or false"},
		{"log level unknown", map[string]string{"FERRY_LOG_LEVEL": "trace"}, []string{"FERRY_LOG_LEVEL"}, ""},
		{"log format unknown", map[string]string{"FERRY_LOG_FORMAT": "xml"}, []string{"FERRY_LOG_FORMAT"}, ""},
		{"aws region with space", map[string]string{"AWS_REGION": "us east 1"}, []string{"AWS_REGION"}, ""},
		{"aws endpoint not a url", map[string]string{"AWS_ENDPOINT_URL": "127.0.0.1:4566"}, []string{"AWS_ENDPOINT_URL"}, ""},
		{"aws s3 endpoint not a url", map[string]string{"AWS_ENDPOINT_URL_S3": "localhost"}, []string{"AWS_ENDPOINT_URL_S3"}, ""},
		{
			"every problem at once",
			map[string]string{
				"FERRY_QUEUE_URL": "nope", "FERRY_CACHE_KEY": "bad", "FERRY_CONCURRENCY": "x",
				"FERRY_SESSION_DURATION": "5h", "FERRY_REFRESH_WINDOW": "6h", "FERRY_LOG_LEVEL": "loud",
			},
			[]string{"FERRY_CONCURRENCY", "FERRY_LOG_LEVEL", "FERRY_QUEUE_URL", "FERRY_CACHE_KEY", "FERRY_REFRESH_WINDOW"},
			"5 problems",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			env := goodEnv()
			for k, v := range tt.env {
				env[k] = v
			}
			c, _ := Load(envFunc(env))
			err := c.Validate(WorkerNeeds...)
			got := problemVars(err)
			if !slices.Equal(got, tt.want) {
				t.Fatalf("problems %v, want %v\n%v", got, tt.want, err)
			}
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("errors.Is(err, ErrInvalid) = false")
			}
			if tt.wantText != "" && !strings.Contains(err.Error(), tt.wantText) {
				t.Errorf("error %q does not mention %q", err, tt.wantText)
			}
			var ve *ValidationError
			errors.As(err, &ve)
			for _, p := range ve.Problems {
				if p.Want == "" {
					t.Errorf("%s: empty Want", p.Var)
				}
				if p.Var != "FERRY_CACHE_KEY" && env[p.Var] != "" && p.Value == "" {
					t.Errorf("%s: problem lost the value %q", p.Var, env[p.Var])
				}
			}
		})
	}
}

func TestLoadReportsEveryParseError(t *testing.T) {
	t.Parallel()
	c, err := Load(envFunc(map[string]string{
		"FERRY_CONCURRENCY":        "lots",
		"FERRY_VISIBILITY_TIMEOUT": "a minute",
		"FERRY_PART_SIZE":          "16 MeB",
	}))
	if c == nil {
		t.Fatal("Load must return a usable config even on errors")
	}
	want := []string{"FERRY_CONCURRENCY", "FERRY_VISIBILITY_TIMEOUT", "FERRY_PART_SIZE"}
	if got := problemVars(err); !slices.Equal(got, want) {
		t.Fatalf("Load problems %v, want %v", got, want)
	}
	// The failed settings keep their defaults, and Validate reports them again.
	if c.Concurrency != 16 || c.PartSize != ByteSize(fetcher.DefaultPartSize) {
		t.Errorf("failed settings should keep defaults: %d %s", c.Concurrency, c.PartSize)
	}
	if got := problemVars(c.Validate()); !slices.Equal(got, want) {
		t.Errorf("Validate problems %v, want %v", got, want)
	}
}

func TestSecretsAreMasked(t *testing.T) {
	t.Parallel()
	const secretKey = "abcdSECRETSECRETSECRETSECRET"
	tests := []struct {
		name    string
		env     map[string]string
		secret  string
		display string
	}{
		{"cache key", map[string]string{"FERRY_CACHE_KEY": secretKey}, "SECRET", `FERRY_CACHE_KEY="abcd…(masked)"`},
		{"short cache key", map[string]string{"FERRY_CACHE_KEY": "hunter2"}, "hunter2", `FERRY_CACHE_KEY="(masked)"`},
		{"redis password", map[string]string{"FERRY_REDIS_URL": "https://:s3cretpw@redis.internal:6379"}, "s3cretpw", "redis.internal"},
		{"endpoint password", map[string]string{"AWS_ENDPOINT_URL": "ftp://user:s3cretpw@host"}, "s3cretpw", "ftp://user:xxxxx@host"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, _ := Load(envFunc(tt.env))
			err := c.Validate()
			if err == nil {
				t.Fatal("expected a problem")
			}
			msg := err.Error()
			if strings.Contains(msg, tt.secret) {
				t.Errorf("error leaks the secret: %s", msg)
			}
			if !strings.Contains(msg, tt.display) {
				t.Errorf("error %q should show %q", msg, tt.display)
			}
			for _, s := range c.Settings() {
				if strings.Contains(s.Value, tt.secret) {
					t.Errorf("Settings leaks %s: %q", s.Var, s.Value)
				}
			}
		})
	}
	c, _ := Load(envFunc(goodEnv()))
	for _, s := range c.Settings() {
		if s.Var == "FERRY_CACHE_KEY" && (s.Value == goodEnv()["FERRY_CACHE_KEY"] || !strings.Contains(s.Value, "masked")) {
			t.Errorf("a valid cache key must be masked too: %q", s.Value)
		}
	}
}

func TestFlagsOverrideEnv(t *testing.T) {
	t.Parallel()
	env := goodEnv()
	env["FERRY_CONCURRENCY"] = "not-a-number"
	env["FERRY_BUCKET"] = "env-bucket"
	c, err := Load(envFunc(env))
	if err == nil {
		t.Fatal("Load should report FERRY_CONCURRENCY")
	}
	fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
	fs.SetOutput(io.Discard)
	c.RegisterFlags(fs, Groups()...)
	if fs.Lookup("queue-url") == nil || fs.Lookup("aws-region") != nil {
		t.Fatal("flags: want one per FERRY_* variable and none for AWS_* records")
	}
	if err := fs.Parse([]string{"--concurrency=8", "--bucket", "flag-bucket", "--pprof", "--metrics-addr="}); err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(WorkerNeeds...); err != nil {
		t.Fatalf("a flag fixing a bad env value should clear its problem: %v", err)
	}
	if c.Concurrency != 8 || c.Bucket != "flag-bucket" || !c.PProf || c.MetricsAddr != "" {
		t.Errorf("flags not applied: %d %q %v %q", c.Concurrency, c.Bucket, c.PProf, c.MetricsAddr)
	}
	sources := map[string]Source{}
	for _, s := range c.Settings() {
		sources[s.Var] = s.Source
	}
	if sources["FERRY_BUCKET"] != SourceFlag || sources["FERRY_QUEUE_URL"] != SourceEnv || sources["FERRY_ROLE_NAME"] != SourceDefault {
		t.Errorf("sources: %v", sources)
	}

	bad := []struct{ args []string }{
		{[]string{"--concurrency=x"}},
		{[]string{"--cross-account=maybe"}},
		{[]string{"--part-size=big"}},
		{[]string{"--session-duration=forever"}},
	}
	for _, b := range bad {
		fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
		fs.SetOutput(io.Discard)
		c, _ := Load(envFunc(nil))
		c.RegisterFlags(fs, Groups()...)
		if err := fs.Parse(b.args); err == nil {
			t.Errorf("%v: want a parse error", b.args)
		}
	}
}

func TestFlagUsageMasksSecretDefault(t *testing.T) {
	t.Parallel()
	c, _ := Load(envFunc(goodEnv()))
	fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
	var out strings.Builder
	fs.SetOutput(&out)
	c.RegisterFlags(fs, Groups()...)
	fs.PrintDefaults()
	if strings.Contains(out.String(), goodEnv()["FERRY_CACHE_KEY"]) {
		t.Errorf("usage text shows the cache key:\n%s", out.String())
	}
	if !strings.Contains(out.String(), "FERRY_QUEUE_URL") {
		t.Errorf("usage text should name the variables:\n%s", out.String())
	}
}

func TestUsePathStyle(t *testing.T) {
	t.Parallel()
	tests := []struct {
		style, endpoint, s3Endpoint string
		want                        bool
	}{
		{"auto", "", "", false},
		{"auto", "http://127.0.0.1:4566", "", true},
		{"auto", "", "http://minio:9000", true},
		{"true", "", "", true},
		{"false", "http://127.0.0.1:4566", "", false},
	}
	for _, tt := range tests {
		c, err := Load(envFunc(map[string]string{"FERRY_S3_PATH_STYLE": tt.style, "AWS_ENDPOINT_URL": tt.endpoint, "AWS_ENDPOINT_URL_S3": tt.s3Endpoint}))
		if err != nil {
			t.Fatal(err)
		}
		if got := c.UsePathStyle(); got != tt.want {
			t.Errorf("%+v: UsePathStyle = %v", tt, got)
		}
	}
}

func TestCacheKeysEncodings(t *testing.T) {
	t.Parallel()
	raw := make([]byte, 32)
	raw[0] = 0xfb // makes std and URL alphabets differ
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding, base64.RawStdEncoding, base64.RawURLEncoding} {
		c, _ := Load(envFunc(map[string]string{"FERRY_CACHE_KEY": enc.EncodeToString(raw)}))
		if err := c.Validate(NeedCacheKey); err != nil {
			t.Errorf("%v", err)
		}
		if keys := c.CacheKeys(); len(keys) != 1 || !reflect.DeepEqual(keys[0], raw) {
			t.Errorf("keys %v", keys)
		}
	}
}

func TestParseByteSize(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want ByteSize
		ok   bool
	}{
		{"0", 0, true},
		{"5368709120", 5 * GiB, true},
		{"64MiB", 64 * MiB, true},
		{"64mib", 64 * MiB, true},
		{"5GiB", 5 * GiB, true},
		{"5G", 5 * GiB, true},
		{"1.5GiB", 3 * GiB / 2, true},
		{"10KB", 10000, true},
		{"2 MB", 2000000, true},
		{"1TiB", TiB, true},
		{"7B", 7, true},
		{"", 0, false},
		{"MiB", 0, false},
		{"-1", 0, false},
		{"1.2.3", 0, false},
		{"5 parsecs", 0, false},
		{"1.0000001B", 0, false},
		{"99999999999TiB", 0, false},
	}
	for _, tt := range tests {
		got, err := ParseByteSize(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("ParseByteSize(%q) = %d, %v; want %d ok=%v", tt.in, got, err, tt.want, tt.ok)
		}
	}
	for _, b := range []ByteSize{0, 7, 5 * MiB, 16 * MiB, 5 * GiB, 3 * GiB / 2, TiB + 1} {
		back, err := ParseByteSize(b.String())
		if err != nil || back != b {
			t.Errorf("%d -> %q -> %d, %v", b, b.String(), back, err)
		}
	}
}

func TestRequirementString(t *testing.T) {
	t.Parallel()
	if NeedBucket.String() != "FERRY_BUCKET" || Requirement(99).String() != "Requirement(99)" {
		t.Errorf("%s %s", NeedBucket, Requirement(99))
	}
}

// TestREADMEListsEveryVariable keeps the configuration table in README.md
// true to the code: every variable appears with its default.
func TestREADMEListsEveryVariable(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatalf("read README.md: %v", err)
	}
	lines := strings.Split(string(b), "\n")
	for _, v := range Vars() {
		found := false
		for _, l := range lines {
			if strings.HasPrefix(l, "| `"+v.Name+"`") {
				found = true
				if v.Default != "" && !strings.Contains(l, "`"+v.Default+"`") {
					t.Errorf("README row for %s lacks default `%s`: %s", v.Name, v.Default, l)
				}
			}
		}
		if !found {
			t.Errorf("README.md has no table row for %s", v.Name)
		}
	}
}

func TestRedisClusterURLs(t *testing.T) {
	t.Parallel()
	for _, u := range []string{
		"redis://10.0.0.1:6379",
		"redis://10.0.0.1:6379?addr=10.0.0.2:6379&addr=10.0.0.3:6379",
		"rediss://user:pw@clustercfg.ferry.abc123.use1.cache.amazonaws.com:6379",
		"redis://[::1]:7000?addr=[::1]:7001",
	} {
		env := goodEnv()
		env["FERRY_REDIS_MODE"] = "cluster"
		env["FERRY_REDIS_URL"] = u
		c, err := Load(envFunc(env))
		if err != nil {
			t.Fatalf("Load: %v", err)
		}
		if c.RedisMode != redisconn.Cluster {
			t.Fatalf("RedisMode = %q, want cluster", c.RedisMode)
		}
		if err := c.Validate(WorkerNeeds...); err != nil {
			t.Errorf("cluster URL %s refused: %v", u, err)
		}
	}
}

// A command reads only its groups: a bad value elsewhere neither parses nor
// fails it, its flags are exactly its groups' settings, and a flag still wins
// over the environment.
func TestLoadEnvReadsOnlyItsGroups(t *testing.T) {
	t.Parallel()
	env := map[string]string{
		"FERRY_QUEUE_URL":   "http://127.0.0.1:4566/000000000000/ferry-tasks",
		"FERRY_CONCURRENCY": "abc",
		"FERRY_LOG_LEVEL":   "debug",
	}
	c := Default()
	fs := pflag.NewFlagSet("enqueue", pflag.ContinueOnError)
	fs.SetOutput(io.Discard)
	c.RegisterFlags(fs, GroupTasks, GroupLogging)
	if fs.Lookup("queue-url") == nil || fs.Lookup("log-level") == nil || fs.Lookup("concurrency") != nil || fs.Lookup("bucket") != nil {
		t.Fatal("flags: want exactly the groups' settings")
	}
	if err := fs.Parse([]string{"--log-level", "warn"}); err != nil {
		t.Fatal(err)
	}
	if err := c.LoadEnv(envFunc(env), GroupTasks, GroupLogging); err != nil {
		t.Fatalf("a setting outside the groups was parsed: %v", err)
	}
	if err := c.Validate(NeedQueue); err != nil {
		t.Fatal(err)
	}
	if c.QueueURL != env["FERRY_QUEUE_URL"] || c.Concurrency != 16 || c.LogLevel != "warn" {
		t.Errorf("queue %q concurrency %d log level %q; want the env's queue, the default concurrency, the flag's level", c.QueueURL, c.Concurrency, c.LogLevel)
	}

	w := Default()
	err := w.LoadEnv(envFunc(env), Groups()...)
	var ve *ValidationError
	if !errors.As(err, &ve) || len(ve.Problems) != 1 || ve.Problems[0].Var != "FERRY_CONCURRENCY" || !strings.Contains(ve.Problems[0].Want, "integer") {
		t.Fatalf("a reader of every group: %v, want FERRY_CONCURRENCY named with what to set", err)
	}
	if err := w.Validate(WorkerNeeds...); err == nil || !strings.Contains(err.Error(), "FERRY_CONCURRENCY") {
		t.Errorf("Validate forgets the parse problem: %v", err)
	}
}

// Every setting belongs to a group, and every flag says what it takes.
func TestEverySettingHasAGroupAndAPlaceholder(t *testing.T) {
	t.Parallel()
	fs := pflag.NewFlagSet("all", pflag.ContinueOnError)
	Default().RegisterFlags(fs, Groups()...)
	for _, v := range Vars() {
		if !slices.Contains(Groups(), v.Group) {
			t.Errorf("%s: group %q is not one of Groups()", v.Name, v.Group)
		}
		if v.Flag == "" {
			continue
		}
		f := fs.Lookup(v.Flag)
		if f == nil {
			t.Errorf("%s: no flag --%s", v.Name, v.Flag)
			continue
		}
		name, _ := pflag.UnquoteUsage(f)
		if v.Arg != "" && name != v.Arg {
			t.Errorf("--%s shows %q, want %q", v.Flag, name, v.Arg)
		}
	}
	usage := fs.FlagUsages()
	for _, want := range []string{"--queue-url URL", "--part-size SIZE", "--bucket NAME", "--session-duration DURATION"} {
		if !strings.Contains(usage, want) {
			t.Errorf("help lacks %q:\n%s", want, usage)
		}
	}
	if regexp.MustCompile(`--[a-z0-9-]+ (flag|string|int|bool|value|duration)\b`).MatchString(usage) {
		t.Errorf("help shows a type for a placeholder:\n%s", usage)
	}
}

// `ferry options` lists every setting with its flag, default, meaning and
// readers.
func TestWriteOptions(t *testing.T) {
	t.Parallel()
	opts := Options(map[Group][]string{GroupTasks: {"work", "enqueue"}})
	if len(opts) != len(Vars()) {
		t.Fatalf("%d options for %d settings", len(opts), len(Vars()))
	}
	var b strings.Builder
	if err := WriteOptions(&b, opts); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"FERRY_QUEUE_URL, --queue-url URL\n    tasks queue URL\n    read by: work, enqueue\n",
		"FERRY_PART_SIZE, --part-size SIZE\n", "    default: 8MiB\n",
		"FERRY_PPROF, --pprof\n",
		"AWS_REGION\n    AWS region (read by the AWS SDK)\n    no flag",
	} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("options lack %q:\n%s", want, b.String())
		}
	}
	for _, v := range Vars() {
		if !strings.Contains(b.String(), v.Name) {
			t.Errorf("options lack %s", v.Name)
		}
	}
}

func TestFlagChoices(t *testing.T) {
	t.Parallel()
	if got := strings.Join(FlagChoices("redis-mode"), ","); got != "single,cluster" {
		t.Errorf("redis-mode choices %q", got)
	}
	if got := strings.Join(FlagChoices("log-level"), ","); got != "debug,info,warn,error" {
		t.Errorf("log-level choices %q", got)
	}
	if FlagChoices("queue-url") != nil || FlagChoices("no-such-flag") != nil {
		t.Error("a free-form setting has no choices")
	}
}
