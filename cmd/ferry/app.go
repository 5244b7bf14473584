package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"
	"github.com/spf13/cobra"

	"github.com/ferryworks/ferry/config"
	"github.com/ferryworks/ferry/credcache"
	"github.com/ferryworks/ferry/fetcher"
	"github.com/ferryworks/ferry/internal/awsclient"
	"github.com/ferryworks/ferry/internal/logging"
	"github.com/ferryworks/ferry/internal/redisconn"
)

// app holds what every subcommand shares: the configuration (environment,
// overridden by flags) and lazily built clients.
type app struct {
	cfg *config.Config
	// reads are the setting groups each command declared with settings.
	reads  map[*cobra.Command][]config.Group
	stdout io.Writer
	stderr io.Writer
	log    zerolog.Logger

	aws   *aws.Config
	redis redis.UniversalClient
	// stopTrace flushes and stops tracing (nil until startTracing).
	stopTrace func(context.Context) error
}

func newApp() *app {
	return &app{cfg: config.Default(), reads: map[*cobra.Command][]config.Group{},
		stdout: os.Stdout, stderr: os.Stderr}
}

// settings declares the setting groups cmd reads (logging always): their
// FERRY_* settings become cmd's flags, and only their variables are read
// from the environment when cmd runs, so its help lists what it reads and a
// bad value of a setting it does not read cannot stop it.
func (a *app) settings(cmd *cobra.Command, groups ...config.Group) *cobra.Command {
	if !slices.Contains(groups, config.GroupLogging) {
		groups = append(groups, config.GroupLogging)
	}
	a.cfg.RegisterFlags(cmd.Flags(), groups...)
	a.reads[cmd] = groups
	return cmd
}

// loadConfig runs after flags are parsed: it reads the environment for the
// running command's settings (a flag given wins) and builds the logger. Each
// command validates what it needs with need(), which also reports values
// that did not parse, so `ferry enqueue` does not ask for a bucket.
func (a *app) loadConfig(cmd *cobra.Command) error {
	_ = a.cfg.LoadEnv(os.Getenv, a.reads[cmd]...) // need() reports the problems with the rest
	a.stdout, a.stderr = cmd.OutOrStdout(), cmd.ErrOrStderr()
	a.log = logging.New(a.stderr, logging.Options{Level: a.cfg.LogLevel, Format: a.cfg.LogFormat,
		FormatExplicit: a.cfg.Explicit("FERRY_LOG_FORMAT"), Interactive: cmd.Annotations[serviceAnnotation] == ""})
	redis.SetLogger(redisLogger{a.log})
	return a.startTracing(cmd.Context())
}

// redisLogger sends go-redis's own lines (a pool that cannot dial, …) to the
// structured log; the callers already log the errors they see, so these are
// kept at debug level.
type redisLogger struct{ log zerolog.Logger }

func (l redisLogger) Printf(_ context.Context, format string, v ...any) {
	l.log.Debug().Msgf("redis: "+format, v...)
}

// need validates the settings a command requires and says, for every bad or
// missing one, what to set.
func (a *app) need(reqs ...config.Requirement) error {
	if err := a.cfg.Validate(reqs...); err != nil {
		return fmt.Errorf("%w\n(set the variables in the environment or pass the matching --flag; `make run` writes them to .devstack.env)", err)
	}
	return nil
}

// serviceAnnotation marks a command that runs as a service (ferry work):
// it logs in the configured format even on a terminal.
const serviceAnnotation = "ferry.service"

// awsConfig loads the SDK's configuration from the standard AWS_* variables
// with an HTTP client sized for a worker's many concurrent requests
// (FERRY_CONCURRENCY × (FERRY_PART_CONCURRENCY + 2) idle connections per
// host, at least awsclient.MinConns).
func (a *app) awsConfig(ctx context.Context) (aws.Config, error) {
	if a.aws != nil {
		return *a.aws, nil
	}
	cfg, err := awsclient.Load(ctx, awsclient.LoadOptions{MaxConns: a.cfg.Concurrency * (a.cfg.PartConcurrency + 2), Logger: a.log})
	if err != nil {
		return aws.Config{}, err
	}
	a.aws = &cfg
	return cfg, nil
}

func (a *app) s3Client(cfg aws.Config) *s3.Client {
	return s3.NewFromConfig(cfg, func(o *s3.Options) { o.UsePathStyle = a.cfg.UsePathStyle() })
}

func (a *app) sqsClient(cfg aws.Config) *sqs.Client { return sqs.NewFromConfig(cfg) }

func (a *app) stsClient(cfg aws.Config) *sts.Client { return sts.NewFromConfig(cfg) }

// redisClient connects to FERRY_REDIS_URL (one server, or a cluster with
// FERRY_REDIS_MODE=cluster) and checks it answers: the operator commands
// need Redis now.
func (a *app) redisClient(ctx context.Context) (redis.UniversalClient, error) {
	c, err := a.openRedis()
	if err != nil {
		return nil, err
	}
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := c.Ping(pctx).Err(); err != nil {
		return nil, fmt.Errorf("redis at FERRY_REDIS_URL does not answer (%v): start it, fix the URL, or check FERRY_REDIS_MODE (%s)", err, a.cfg.RedisMode)
	}
	return c, nil
}

// openRedis returns the client of FERRY_REDIS_URL without contacting Redis;
// go-redis dials on first use and redials after an outage.
func (a *app) openRedis() (redis.UniversalClient, error) {
	if a.redis != nil {
		return a.redis, nil
	}
	c, err := redisconn.Open(a.cfg.RedisURL, a.cfg.RedisMode)
	if err != nil {
		return nil, fmt.Errorf("FERRY_REDIS_URL: %w", err)
	}
	a.redis = c
	return c, nil
}

// credOptions are the credcache options every command shares.
func (a *app) credOptions(rdb redis.UniversalClient, stsAPI credcache.AssumeRoleAPI) credcache.Options {
	return credcache.Options{
		Redis:           rdb,
		Prefix:          a.cfg.RedisPrefix,
		Keys:            a.cfg.CacheKeys(),
		STS:             stsAPI,
		RoleName:        a.cfg.RoleName,
		SessionDuration: a.cfg.SessionDuration,
		RefreshWindow:   a.cfg.RefreshWindow,
		Logger:          a.log,
	}
}

// registry opens the integration registry.
func (a *app) registry(ctx context.Context) (*credcache.Registry, error) {
	if err := a.need(config.NeedRedis, config.NeedCacheKey); err != nil {
		return nil, err
	}
	rdb, err := a.redisClient(ctx)
	if err != nil {
		return nil, err
	}
	return credcache.NewRegistry(a.credOptions(rdb, nil))
}

// copyOptions are the copier options every command shares, writing to bucket.
func (a *app) copyOptions(awsCfg aws.Config, rdb redis.UniversalClient, bucket string) fetcher.Options {
	return fetcher.Options{
		S3:              a.s3Client(awsCfg),
		Redis:           rdb,
		RedisPrefix:     a.cfg.RedisPrefix,
		Bucket:          bucket,
		KeyPrefix:       a.cfg.KeyPrefix,
		CrossAccount:    a.cfg.CrossAccount,
		RequesterPays:   a.cfg.RequesterPays,
		PartSize:        int64(a.cfg.PartSize),
		PartConcurrency: a.cfg.PartConcurrency,
		StreamPutMax:    int64(a.cfg.StreamPutMax),
		MaxObjectBytes:  int64(a.cfg.MaxObjectBytes),
		HTTPAllowHosts:  a.cfg.HTTPAllowHosts,
		Logger:          a.log,
	}
}

// readAccess is how the commands that only read customers' objects
// (check-access, integration verify, verify-bucket) reach them: the Redis
// settings checked, the AWS configuration, Redis answering, then the
// registry and a copier (fetcher.NewAccess). They write nothing, so bucket only
// names the copier's destination; "" is "unset".
func (a *app) readAccess(ctx context.Context, bucket string) (*credcache.Registry, *fetcher.Copier, error) {
	if err := a.need(config.NeedRedis, config.NeedCacheKey); err != nil {
		return nil, nil, err
	}
	awsCfg, err := a.awsConfig(ctx)
	if err != nil {
		return nil, nil, err
	}
	rdb, err := a.redisClient(ctx)
	if err != nil {
		return nil, nil, err
	}
	if bucket == "" {
		bucket = "unset"
	}
	acc, err := fetcher.NewAccess(a.credOptions(rdb, a.stsClient(awsCfg)), a.copyOptions(awsCfg, rdb, bucket))
	return acc.Registry, acc.Copier, err
}

// usageError marks a mistake in how a command was called (exit code 2).
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return usageError{fmt.Sprintf(format, args...)} }

func isUsageError(err error) bool {
	var ue usageError
	return errors.As(err, &ue)
}

// typeUsageErrors makes cobra's own mistakes-in-the-call errors usage errors
// (exit 2) by type, not by their text: flag errors through
// SetFlagErrorFunc, argument errors by wrapping every command's Args, and an
// unknown subcommand of root by root's own Args (cobra reports it only
// through its message otherwise).
func typeUsageErrors(root *cobra.Command) {
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return usagef("%v (see `%s --help`)", err, c.CommandPath())
	})
	root.Args = func(c *cobra.Command, args []string) error {
		if len(args) == 0 {
			return nil
		}
		msg := fmt.Sprintf("unknown command %q for %q", args[0], c.CommandPath())
		if s := c.SuggestionsFor(args[0]); len(s) > 0 {
			msg += "; did you mean " + strings.Join(s, " or ") + "?"
		}
		return usagef("%s (see `%s --help`)", msg, c.CommandPath())
	}
	root.RunE = func(c *cobra.Command, _ []string) error { return c.Help() }
	var wrap func(c *cobra.Command)
	wrap = func(c *cobra.Command) {
		if check := c.Args; check != nil {
			c.Args = func(c *cobra.Command, args []string) error {
				if err := check(c, args); err != nil {
					var ue usageError
					if errors.As(err, &ue) {
						return err
					}
					return usagef("%v (see `%s --help`)", err, c.CommandPath())
				}
				return nil
			}
		}
		for _, sub := range c.Commands() {
			wrap(sub)
		}
	}
	wrap(root)
}
