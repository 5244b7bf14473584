package main

import (
	"context"
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/ferryworks/ferry/internal/localaws"
	"github.com/ferryworks/ferry/internal/testenv"
	"github.com/ferryworks/ferry/queue"
)

// FERRY_CUSTOMER_FLEET_MAX_INFLIGHT holds across worker processes: two
// `ferry work` binaries with 4 slots each never read one customer's bucket
// more than the cap at once; and a worker killed with SIGKILL while holding
// places frees them when their lease lapses, so a fresh worker first defers
// the customer's tasks, then completes them.
func TestFleetCapAcrossWorkers(t *testing.T) {
	t.Parallel()
	w := testenv.NewWorld(t) // its own stack: it injects faults and reads PeakInFlight
	const ttl = 3 * time.Second
	env := cliEnv(w, "FERRY_CUSTOMER_FLEET_MAX_INFLIGHT=2", fmt.Sprintf("FERRY_CUSTOMER_FLEET_LEASE_TTL=%s", ttl),
		"FERRY_CONCURRENCY=4", "FERRY_VISIBILITY_TIMEOUT=10s", "FERRY_LOG_LEVEL=warn")
	api := sqs.NewFromConfig(w.FleetConfig)
	globex := w.Customer(t, "globex")
	enqueue := func(ids ...string) {
		t.Helper()
		var lines []string
		for _, id := range ids {
			lines = append(lines, `{"version":1,"task_id":"`+id+`","customer_id":"globex","attachments":[{"uri":"s3://`+globex.Bucket+"/"+globex.Objects[0]+`"}]}`)
		}
		if r := runCLI(t, env, strings.Join(lines, "\n")+"\n", "enqueue", "-o", "json"); r.code != 0 {
			t.Fatalf("enqueue: exit %d: %s %s", r.code, r.stdout, r.stderr)
		}
	}
	completed := func(evs []queue.Event, ids ...string) {
		t.Helper()
		got := map[string]int{}
		for _, e := range evs {
			if e.Type == queue.EventCompleted {
				got[e.TaskID]++
			}
		}
		for _, id := range ids {
			if got[id] != 1 {
				t.Errorf("%s: %d completed events, want 1 (events %+v)", id, got[id], evs)
			}
		}
	}

	// Every read takes 800 ms: with 8 slots between the two workers and no
	// cap, 8 reads would overlap.
	if err := w.Stack.InjectFault(localaws.Fault{Operation: "s3:GetObject", LatencyMS: 800}); err != nil {
		t.Fatal(err)
	}
	var ids []string
	for i := range 8 {
		ids = append(ids, fmt.Sprintf("flood-%d", i))
	}
	enqueue(ids...)
	a, b := startWorker(t, env), startWorker(t, env)
	completed(testenv.CollectEvents[queue.Event](t, api, w.Manifest.Queues.Events, len(ids), 2*time.Minute, time.Second), ids...)
	if peak := w.Stack.PeakInFlight("s3:GetObject"); peak != 2 {
		t.Errorf("globex's objects were read by %d tasks at once, want the fleet-wide cap of 2", peak)
	}

	// Leave one worker; it takes both places with reads that hang, and is
	// killed without a chance to release them.
	_ = b.Process.Signal(syscall.SIGTERM)
	if err := b.Wait(); err != nil {
		t.Errorf("worker after SIGTERM: %v", err)
	}
	w.Stack.ClearFaults()
	if err := w.Stack.InjectFault(localaws.Fault{Operation: "s3:GetObject", LatencyMS: 60000, Count: 2}); err != nil {
		t.Fatal(err)
	}
	enqueue("hang-0", "hang-1")
	waitFor(t, time.Minute, "the worker to hold both places in hanging reads", func() bool {
		return len(w.Stack.Faults()) == 0
	})
	// A fresh worker is held back by the live worker's places.
	stop, metricsURL := startMetricsWorker(t, env)
	enqueue("after-0", "after-1")
	waitFor(t, time.Minute, "the fresh worker to defer globex's tasks", func() bool {
		return metric(scrape(t, metricsURL), "ferry_tasks_total", "outcome", "deferred") >= 1
	})

	// Killed, the holder cannot release: its places stay taken until their
	// leases lapse, and only then does the fresh worker run the new tasks
	// (the killed worker's two come back after their visibility timeout).
	_ = a.Process.Signal(syscall.SIGKILL)
	_ = a.Wait()
	key := w.Prefix + ":{globex}:inflight"
	held, err := w.Redis.ZRangeWithScores(context.Background(), key, 0, -1).Result()
	if err != nil || len(held) != 2 {
		t.Fatalf("%s holds %v after the kill (err %v), want the dead worker's 2 places", key, held, err)
	}
	lapse := time.UnixMilli(int64(min(held[0].Score, held[1].Score))) // the first place free
	evs := testenv.CollectEvents[queue.Event](t, api, w.Manifest.Queues.Events, 4, 2*time.Minute, time.Second)
	completed(evs, "after-0", "after-1", "hang-0", "hang-1")
	for _, e := range evs {
		if strings.HasPrefix(e.TaskID, "after-") && e.OccurredAt.Before(lapse) {
			t.Errorf("%s finished at %s, before the dead worker's places lapsed at %s", e.TaskID, e.OccurredAt.Format(time.RFC3339Nano), lapse.Format(time.RFC3339Nano))
		}
	}
	if code := stop(); code != 0 {
		t.Errorf("worker exit %d after SIGTERM, want 0", code)
	}
	if n, err := w.Redis.ZCard(context.Background(), key).Result(); err != nil || n != 0 {
		t.Errorf("%s holds %d places after every task finished (err %v), want 0", key, n, err)
	}
}
