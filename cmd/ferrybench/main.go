// Command ferrybench is ferry's load harness. It starts its own local AWS
// (internal/localaws, kumo in a child process) and redis-server, seeds
// delegated and cross-account customers, and runs the same load three ways:
// through K real `ferry work` processes, through a raw loop of the same AWS
// calls with no queue plumbing, cache or events (a subprocess mode of this
// binary), and through rclone when it is installed. It writes a Markdown
// summary (medians with min–max over the runs, every ratio next to its
// target), an SVG chart and the raw results to -out.
//
// It is a development tool like cmd/devstack: it imports internal/localaws,
// which the production binary never does.
package main

import (
	"cmp"
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/rs/zerolog"

	"github.com/ferryworks/ferry/internal/devproc"
	"github.com/ferryworks/ferry/internal/redisconn"
)

const usageText = `usage: ferrybench -out DIR [flags]

Runs ferry's standard load set against a local AWS it starts itself and
writes DIR/summary.md, DIR/chart.svg and DIR/results.json. Scenarios: 1 KiB
tasks at concurrency 1/8/64, 8 MiB, 64 MiB and 1 GiB objects, each through
K ferry workers, the raw loop and rclone (when installed), plus the noisy
neighbour scenario with and without FERRY_CUSTOMER_MAX_INFLIGHT.

  make bench                       # builds, then: ferrybench -out bench-out
  ferrybench -out /tmp/b -smoke    # seconds: tiny sizes and counts
  ferrybench -out /tmp/b -only 1KiB/c64,64MiB -runs 1
  ferrybench -out /tmp/b -tls      # the same over https
  .ci/with-redis-cluster.sh sh -c 'ferrybench -out /tmp/b -workers 4 -redis-url "$FERRY_REDIS_URL"'
                                   # K workers on a Redis Cluster (FERRY_REDIS_MODE=cluster)

flags:
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

// options are ferrybench's flags.
type options struct {
	out         string
	smoke       bool
	full        bool
	noBig       bool
	runs        int
	workers     int
	ferryBin    string
	rcloneBin   string
	redisURL    string
	redisMode   redisconn.Mode
	only        string
	credBench   string
	pprof       bool
	tls         bool
	scenarioMax time.Duration
}

// run is main without the process: it returns the exit code (0 when the
// report was written, 1 on a failure, 2 on bad usage).
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("ferrybench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o options
	fs.StringVar(&o.out, "out", "", "directory the report, chart and results are written to (required)")
	fs.BoolVar(&o.smoke, "smoke", false, "tiny sizes and counts, one run: proves the harness works in seconds")
	fs.BoolVar(&o.full, "full", false, "full sizes: more tasks, and the noisy neighbour with 200 × 64 MiB (docs/bench.md, Scenarios)")
	fs.BoolVar(&o.noBig, "no-1gib", false, "leave out the 1 GiB scenario")
	fs.IntVar(&o.runs, "runs", 3, "runs of every scenario; the report quotes medians with min–max")
	fs.IntVar(&o.workers, "workers", 2, "`ferry work` processes (K), and raw-loop processes")
	fs.StringVar(&o.ferryBin, "ferry", "", "ferry binary; empty builds ./cmd/ferry into -out")
	fs.StringVar(&o.rcloneBin, "rclone", "", "rclone binary; empty looks it up in PATH, \"off\" leaves rclone out")
	fs.StringVar(&o.redisURL, "redis-url", "", "Redis for the workers; empty starts a private redis-server (needed for exact INFO commandstats)")
	redisMode := fs.String("redis-mode", cmp.Or(os.Getenv("FERRY_REDIS_MODE"), string(redisconn.Single)),
		"how -redis-url is read, as FERRY_REDIS_MODE (its default): single, or cluster for a Redis Cluster's seeds (redis://host:port?addr=host2:port2&addr=…)")
	fs.StringVar(&o.only, "only", "", "comma-separated scenario names to run (e.g. 1KiB/c64,64MiB,noisy)")
	fs.StringVar(&o.credBench, "credcache-bench", "", "output of `go test -bench BenchmarkCredentials ./credcache` to quote in the report")
	fs.BoolVar(&o.tls, "tls", false, "serve the local AWS over https (a CA generated per stack, trusted by ferry, the raw loop and rclone): production's transport, with aws-chunked bodies and trailing checksums")
	fs.BoolVar(&o.pprof, "pprof", false, "save a 10 s CPU profile of the first ferry worker of every scenario run into -out (slows the runs down)")
	fs.DurationVar(&o.scenarioMax, "scenario-timeout", 5*time.Minute, "longest one scenario run may take before the bench fails")
	if code, ok := devproc.ParseFlags(fs, usageText, args); !ok {
		return code
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "ferrybench: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	if o.out == "" || o.runs < 1 || o.workers < 1 {
		fmt.Fprintln(stderr, "ferrybench: -out is required; -runs and -workers must be at least 1")
		fs.Usage()
		return 2
	}
	if o.smoke {
		o.runs = 1
	}
	o.redisMode = redisconn.Mode(strings.ToLower(strings.TrimSpace(*redisMode)))
	if o.redisURL != "" {
		if err := redisconn.CheckURL(o.redisURL, o.redisMode); err != nil {
			fmt.Fprintf(stderr, "ferrybench: -redis-url with -redis-mode %s: %v\n", o.redisMode, err)
			return 2
		}
	} else if !slices.Contains(redisconn.Modes(), o.redisMode) {
		fmt.Fprintf(stderr, "ferrybench: -redis-mode %q: want one of %v\n", o.redisMode, redisconn.Modes())
		return 2
	}
	log := zerolog.New(zerolog.ConsoleWriter{Out: stderr, NoColor: true, TimeFormat: time.TimeOnly}).
		With().Timestamp().Str("cmd", "ferrybench").Logger()
	rep, err := runBench(ctx, o, log)
	if err != nil {
		fmt.Fprintf(stderr, "ferrybench: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "report: %s\n", strings.Join(rep, ", "))
	return 0
}
