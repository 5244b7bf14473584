// Command devstack serves a local AWS (S3, SQS and STS behind an IAM gate,
// see internal/localaws) on one endpoint, seeded with ferry's fleet account,
// queues and internal bucket and with demo customers that cover every access
// path, plus a Redis. It prints the export lines a shell needs and runs until
// SIGINT or SIGTERM.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/rs/zerolog"

	"github.com/ferryworks/ferry/internal/demo"
	"github.com/ferryworks/ferry/internal/devproc"
	"github.com/ferryworks/ferry/internal/localaws"
	"github.com/ferryworks/ferry/internal/redisconn"
)

const usageText = `usage: devstack [flags]

Serves S3, SQS and STS on one endpoint (with IAM checks), seeded with ferry's
fleet account, queues, internal bucket and demo customers, and a Redis
(FERRY_REDIS_URL when it answers, else an embedded one; with
FERRY_REDIS_MODE=cluster, FERRY_REDIS_URL must name a running Redis
Cluster, given as redis://host:port?addr=host2:port2). Export lines go to
stdout (and -env-file), logs to stderr; "devstack ready" is printed to stderr
once everything is seeded. The demo customers' integrations are written into
that Redis, so a ferry worker started with the exported environment knows them.
Stops on SIGINT/SIGTERM.

  devstack -env-file .devstack.env -manifest .devstack.json &
  # once "devstack ready" is printed, in another shell:
  source .devstack.env

With -tls the endpoint is https, with a certificate from a CA generated at
start; its PEM goes to -ca-file and the export lines point AWS_CA_BUNDLE (the
AWS SDKs, the aws CLI, boto3, ferry) and RCLONE_CA_CERT (rclone) at it, so
every tool trusts it with no flag of its own. An rclone remote named
"devstack" (the fleet's keys) is exported either way:
  rclone lsf devstack:ferry-internal

flags:
`

// seedTimeout bounds seeding; it takes well under a second normally.
const seedTimeout = 2 * time.Minute

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr))
}

type options struct {
	addr, envFile, manifest, readyFile, tasksFile, caFile string
	register, tls                                         bool
	accounts                                              int
	iamDelay                                              time.Duration
}

// run is main without the process: it returns the exit code (0 after a clean
// stop, 1 on a startup error, 2 on bad usage).
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("devstack", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o options
	fs.StringVar(&o.addr, "addr", "127.0.0.1:4566", "listen address of the AWS endpoint (127.0.0.1:0 picks a free port)")
	fs.StringVar(&o.envFile, "env-file", "", "also write the export lines to this file")
	fs.StringVar(&o.manifest, "manifest", "", "write the seeded world (accounts, buckets, objects, external IDs, expected outcomes) as JSON to this file")
	fs.StringVar(&o.tasksFile, "tasks-file", "", "write one demo task per access path as JSON lines (for `ferry enqueue`) to this file")
	fs.StringVar(&o.readyFile, "ready-file", "", "create this file once everything is seeded and written; removed on exit")
	fs.BoolVar(&o.tls, "tls", false, "serve https with a certificate from a CA generated at start (see -ca-file)")
	fs.StringVar(&o.caFile, "ca-file", "", "with -tls, write the CA's PEM here (AWS_CA_BUNDLE points at it); default .devstack-ca.pem beside -env-file, else a temporary file removed on exit")
	fs.IntVar(&o.accounts, "accounts", demo.DefaultSpareAccounts, "spare empty customer accounts to create, with admin keys in the manifest (spare_accounts)")
	fs.DurationVar(&o.iamDelay, "iam-delay", 0, "how long a role created or changed through the IAM API takes to reach STS and S3 (AWS's eventual consistency), e.g. 10s")
	fs.BoolVar(&o.register, "register-integrations", true, "write the demo customers' integrations into Redis (under FERRY_REDIS_PREFIX, default ferry), sealed with the exported dev FERRY_CACHE_KEY")
	if code, ok := devproc.ParseFlags(fs, usageText, args); !ok {
		return code
	}
	if o.accounts < 0 || o.accounts > 100 {
		fmt.Fprintf(stderr, "devstack: -accounts %d: give 0 to 100 spare accounts\n", o.accounts)
		return 2
	}
	if o.iamDelay < 0 {
		fmt.Fprintf(stderr, "devstack: -iam-delay %v: give a duration of 0 or more, e.g. 10s\n", o.iamDelay)
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "devstack: unexpected argument %q\n", fs.Arg(0))
		fs.Usage()
		return 2
	}
	if o.caFile != "" && !o.tls {
		fmt.Fprintln(stderr, "devstack: -ca-file needs -tls (over plain http there is no CA to write)")
		return 2
	}

	log := zerolog.New(zerolog.ConsoleWriter{Out: stderr, NoColor: true, TimeFormat: time.TimeOnly}).
		With().Timestamp().Str("cmd", "devstack").Logger()
	if err := serve(ctx, o, getenv, stdout, stderr, log); err != nil {
		fmt.Fprintf(stderr, "devstack: %v\n", err)
		return 1
	}
	return 0
}

// serve starts Redis and the stack, seeds them, publishes the env file,
// manifest and ready file, and waits for ctx to end.
func serve(ctx context.Context, o options, getenv func(string) string, stdout, stderr io.Writer, log zerolog.Logger) error {
	mode, err := redisMode(getenv("FERRY_REDIS_MODE"))
	if err != nil {
		return err
	}
	redisURL, stopRedis, err := ensureRedis(ctx, getenv("FERRY_REDIS_URL"), mode, log)
	if err != nil {
		return err
	}
	defer stopRedis()

	// kumo runs in a child process (localaws's default): in-process it would
	// log every S3 request to stdout, which carries the export lines.
	stack, err := localaws.Start(localaws.Options{Addr: o.addr, Region: demo.DefaultRegion, Logger: &log, TLS: o.tls, IAMDelay: o.iamDelay})
	if err != nil {
		return fmt.Errorf("start local AWS on %s: %w", o.addr, err)
	}
	defer func() {
		err := stack.Close()
		switch {
		case err == nil:
		case ctx.Err() != nil:
			// Ctrl-C reaches the whole process group, kumo's child process
			// included, so it may already have died of the same signal.
			log.Debug().Err(err).Msg("stop local AWS")
		default:
			log.Warn().Err(err).Msg("stop local AWS")
		}
	}()

	seedCtx, cancel := context.WithTimeout(ctx, seedTimeout)
	spares := o.accounts
	if spares == 0 {
		spares = -1 // none
	}
	m, env, err := demo.SeedWith(seedCtx, stack, redisURL, demo.SeedOptions{SpareAccounts: spares})
	cancel()
	if err != nil {
		return fmt.Errorf("seed: %w", err)
	}
	if o.tls {
		caFile, removeCA, err := writeCA(o, stack.CAPEM())
		if err != nil {
			return err
		}
		defer removeCA()
		env = env.WithCABundle(caFile)
	}
	if o.register {
		prefix := getenv("FERRY_REDIS_PREFIX")
		if prefix == "" {
			prefix = "ferry"
		}
		rdb, err := redisconn.Open(redisURL, mode)
		if err != nil {
			return fmt.Errorf("FERRY_REDIS_URL: %w", err)
		}
		err = demo.RegisterIntegrations(ctx, rdb, prefix, &m)
		_ = rdb.Close()
		if err != nil {
			return fmt.Errorf("register demo integrations in redis: %w", err)
		}
	}

	if mode == redisconn.Cluster {
		env = append(env, demo.EnvVar{Name: "FERRY_REDIS_MODE", Value: string(mode)})
	}
	script := env.Script()
	if o.envFile != "" {
		// 0600: the file holds the fleet's (dev) secret key.
		if err := writeFileAtomic(o.envFile, []byte(script), 0o600); err != nil {
			return fmt.Errorf("write env file: %w", err)
		}
	}
	if o.manifest != "" {
		data, err := manifestJSON(m)
		if err != nil {
			return fmt.Errorf("encode manifest: %w", err)
		}
		// 0600: the manifest holds the customer accounts' (dev) admin keys.
		if err := writeFileAtomic(o.manifest, data, 0o600); err != nil {
			return fmt.Errorf("write manifest: %w", err)
		}
	}
	if o.tasksFile != "" {
		lines, err := demo.TasksJSONLines(m)
		if err != nil {
			return err
		}
		if err := writeFileAtomic(o.tasksFile, lines, 0o644); err != nil {
			return fmt.Errorf("write tasks file: %w", err)
		}
	}
	if _, err := io.WriteString(stdout, script); err != nil {
		return fmt.Errorf("write exports: %w", err)
	}
	logWorld(log, m)
	if o.readyFile != "" {
		if err := writeFileAtomic(o.readyFile, []byte(stack.URL+"\n"), 0o644); err != nil {
			return fmt.Errorf("write ready file: %w", err)
		}
		defer os.Remove(o.readyFile)
	}
	fmt.Fprintln(stderr, "devstack ready")

	<-ctx.Done()
	log.Info().Msg("stopping")
	return nil
}

// logWorld tells the operator what is being served. It names no secret:
// keys and external IDs are in the env file and manifest only.
func logWorld(log zerolog.Logger, m demo.Manifest) {
	log.Info().Str("endpoint", m.Endpoint).Str("fleet_account", m.FleetAccountID).Str("region", m.Region).Msg("serving S3, SQS and STS")
	log.Info().Str("tasks", m.Queues.Tasks).Str("dlq", m.Queues.DLQ).Str("events", m.Queues.Events).
		Str("bucket", m.InternalBucket).Msg("fleet queues and internal bucket")
	for _, c := range m.Customers {
		log.Info().Str("customer_id", c.ID).Str("account", c.AccountID).Str("bucket", c.Bucket).
			Str("region", c.Region).Str("access", c.Access).Str("integration", c.Integration).Str("expected", c.Expected).
			Str("objects", strings.Join(c.Objects, ", ")).Msg("demo customer")
	}
}
