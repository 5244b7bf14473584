//go:build chaos

package chaos_test

import (
	"context"
	"os/exec"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/ferryworks/ferry/internal/chaos"
	"github.com/ferryworks/ferry/internal/testenv"
)

// TestChaosCI is the campaign `make test` runs: 1,000 tasks through four
// real `ferry work` processes over about two minutes, with SIGKILLs every
// ~5 s and one SIGTERM, 5 % AWS faults, toxiproxy latency and resets, a
// 30-second Redis outage and a Redis restart that loses every key. Objects
// reach 8 MiB, above the workers' 5 MiB part size, so kills land in
// multipart uploads too (the attempt that completes a copy closes what a
// killed one left open); `make chaos` goes to 64 MiB.
// The verdicts are the ledger's and do not depend on timing: no task lost,
// none with two outcomes or the wrong one, every copy's sha256 right, no
// multipart upload open, no secret in a log line or a Redis value.
func TestChaosCI(t *testing.T) {
	t.Parallel()
	rep := runCampaign(t, chaos.Options{
		Tasks:          1000,
		MaxObjectBytes: 8 << 20,
		SubmitOver:     80 * time.Second,
		Seed:           20261127,
		// Generous: the run takes about two minutes; the bound only stops a
		// hung campaign, it is not a performance assertion.
		Timeout: 8 * time.Minute,
	}, "redis-server")
	// The campaign must have exercised what it claims to, or it proves
	// nothing.
	switch {
	case rep.Kills == 0 || rep.GracefulExits != 1:
		t.Errorf("kills %d, clean SIGTERM exits %d: the worker chaos did not run", rep.Kills, rep.GracefulExits)
	case rep.Faults["redis outage"] != 1 || rep.Faults["redis restart (keys lost)"] != 1:
		t.Errorf("faults %v: the Redis outage or restart did not happen", rep.Faults)
	case rep.CopiesChecked == 0 || rep.DLQInvalid == 0:
		t.Errorf("%d copies checked, %d invalid messages dead-lettered: the mix did not run", rep.CopiesChecked, rep.DLQInvalid)
	}
}

// TestChaosClusterFailover runs the fleet on a 6-node Redis Cluster of its
// own (3 masters, 3 replicas) and kills, with SIGKILL, the master serving
// the integration registry's marker, which every task reads, while tasks
// are in flight. The replica must take over and the workers must ride
// through: no task lost, none with two outcomes or the wrong one, none
// pushed to the DLQ by the failover, and tasks completing on the new
// topology. No other fault is injected, so the stall the report prints is
// the failover's own (docs/capacity.md quotes it).
func TestChaosClusterFailover(t *testing.T) {
	t.Parallel()
	rep := runCampaign(t, chaos.Options{
		RedisCluster:    true,
		Tasks:           400,
		Workers:         3,
		MaxObjectBytes:  1 << 20,
		SubmitOver:      40 * time.Second,
		FailoverAt:      18 * time.Second,
		KillEvery:       -1,
		FaultRate:       -1,
		NoNetworkFaults: true,
		Seed:            20261202,
		// Generous: the run takes about a minute; the bound only stops a
		// hung campaign, it is not a performance assertion.
		Timeout: 6 * time.Minute,
	}, "redis-server", "redis-cli")
	f := rep.Failover
	switch {
	case f == nil || f.Master == "":
		t.Fatalf("no master was killed: the failover did not run")
	case f.Replica == "":
		t.Errorf("no replica of %s became master", f.Master)
	case f.Affected == 0:
		t.Errorf("no task was in the fleet's hands during the failover: it hit an idle fleet")
	case f.AfterRecovery == 0:
		t.Errorf("no terminal event after the cluster recovered: the fleet did not follow the new topology")
	}
	// A failover lasts seconds; the queue's receive budget is minutes of
	// backoff. A valid task in the DLQ means a Redis error was taken for a
	// reason to give up.
	if len(rep.DLQExhausted) > 0 {
		t.Errorf("%d valid tasks dead-lettered across the failover: %v", len(rep.DLQExhausted), rep.DLQExhausted)
	}
}

// runCampaign runs the campaign o, logging to the test, and fails the test
// unless the ledger's verdicts all pass. bins are the programs the campaign
// starts itself. Like every integration test it runs where Redis is provided
// (make test), although the campaign starts Redis servers of its own, so it
// can cut them off, restart or kill them.
func runCampaign(t *testing.T, o chaos.Options, bins ...string) *chaos.Report {
	t.Helper()
	testenv.RedisURL(t)
	for _, bin := range bins {
		if _, err := exec.LookPath(bin); err != nil {
			t.Fatalf("%s not installed (make test installs it): %v", bin, err)
		}
	}
	o.Log = zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.InfoLevel)
	rep, err := chaos.Run(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	t.Log("\n" + rep.String())
	if !rep.OK() {
		t.Fatalf("chaos campaign failed:\n%s", rep.String())
	}
	return rep
}
