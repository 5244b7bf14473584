// Command chaos runs ferry's reliability campaign (`make chaos`): real
// `ferry work` processes against the demo world, with worker kills, AWS
// faults, network faults, a Redis outage and a Redis restart, audited by a
// ledger at the end. It exits 1 when the ledger does not balance.
//
// Environment: CHAOS_TASKS (default 10000), CHAOS_SEED (default: the time),
// CHAOS_DIR (keep the binary and the workers' logs there), CHAOS_TIMEOUT
// (default 30m), CHAOS_TLS (default 1: the local AWS serves https; 0 serves
// plain http). FERRY_REDIS_MODE=cluster runs the fleet on a 6-node Redis
// Cluster the campaign starts, and SIGKILLs one of its masters 30 s in
// instead of the single server's outage and restart.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/rs/zerolog"

	"github.com/ferryworks/ferry/internal/chaos"
	"github.com/ferryworks/ferry/internal/redisconn"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	log := zerolog.New(zerolog.ConsoleWriter{Out: os.Stderr, TimeFormat: time.TimeOnly}).With().Timestamp().Logger()
	o := chaos.Options{Log: log, Dir: os.Getenv("CHAOS_DIR"), Seed: uint64(time.Now().UnixNano())}
	var err error
	if v := os.Getenv("CHAOS_TASKS"); v != "" {
		if o.Tasks, err = strconv.Atoi(v); err != nil || o.Tasks <= 0 {
			fmt.Fprintf(os.Stderr, "chaos: CHAOS_TASKS=%q: want a positive integer\n", v)
			os.Exit(2)
		}
	}
	if v := os.Getenv("CHAOS_SEED"); v != "" {
		if o.Seed, err = strconv.ParseUint(v, 10, 64); err != nil {
			fmt.Fprintf(os.Stderr, "chaos: CHAOS_SEED=%q: want an unsigned integer\n", v)
			os.Exit(2)
		}
	}
	if v := os.Getenv("CHAOS_TIMEOUT"); v != "" {
		if o.Timeout, err = time.ParseDuration(v); err != nil {
			fmt.Fprintf(os.Stderr, "chaos: CHAOS_TIMEOUT=%q: want a duration like 30m\n", v)
			os.Exit(2)
		}
	}
	switch v := os.Getenv("CHAOS_TLS"); v {
	case "", "1", "true":
	case "0", "false":
		o.PlainHTTP = true
	default:
		fmt.Fprintf(os.Stderr, "chaos: CHAOS_TLS=%q: want 1 (https, the default) or 0 (plain http)\n", v)
		os.Exit(2)
	}
	switch m := redisconn.Mode(strings.ToLower(strings.TrimSpace(os.Getenv("FERRY_REDIS_MODE")))); m {
	case "", redisconn.Single:
	case redisconn.Cluster:
		o.RedisCluster = true
	default:
		fmt.Fprintf(os.Stderr, "chaos: FERRY_REDIS_MODE=%q: want %s (one redis-server) or %s (a Redis Cluster with a master's SIGKILL)\n", m, redisconn.Single, redisconn.Cluster)
		os.Exit(2)
	}
	if o.Dir != "" {
		if err := os.MkdirAll(o.Dir, 0o755); err != nil {
			fmt.Fprintln(os.Stderr, "chaos:", err)
			os.Exit(1)
		}
	}
	log.Info().Uint64("seed", o.Seed).Msg("chaos campaign (CHAOS_SEED reproduces the task mix and schedule)")
	rep, err := chaos.Run(ctx, o)
	if err != nil {
		fmt.Fprintln(os.Stderr, "chaos:", err)
		os.Exit(1)
	}
	fmt.Print(rep.String())
	if !rep.OK() {
		os.Exit(1)
	}
}
