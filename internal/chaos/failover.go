package chaos

import (
	"bufio"
	"cmp"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"
	"time"
)

// Failover is what the SIGKILL of a Redis Cluster master did: how the
// cluster recovered, and how long the fleet stalled meanwhile.
type Failover struct {
	// Master is the master killed: the one serving the registry marker,
	// which every task reads, so every task meets the dead shard.
	Master string
	// Replica is the replica of Master that took over ("" if none did).
	Replica string
	// At is when, into the run, Master was killed.
	At time.Duration
	// Promoted is from the SIGKILL until Replica answered role:master.
	Promoted time.Duration
	// ClusterDown is how long some live node answered cluster_state:fail
	// (between the failure report and the promotion, no slot is served).
	ClusterDown time.Duration
	// Recovered is from the SIGKILL until Replica was master and every live
	// node answered cluster_state:ok.
	Recovered time.Duration

	// Stall is the longest time without a terminal event from the SIGKILL
	// until the first event after Recovered: how long the fleet stopped
	// producing; it began StallFrom after the SIGKILL. BaselineGap is the
	// longest time without one before the SIGKILL, what the load alone
	// leaves between events (the campaign sends ten tasks at a time).
	Stall, StallFrom, BaselineGap time.Duration
	// Affected counts the tasks in the fleet's hands during the failover:
	// sent before Recovered, first event after the SIGKILL. AffectedWait
	// is their time from sending to event (median, max), BaselineWait the
	// same for the tasks finished before the SIGKILL.
	Affected                   int
	AffectedWait, BaselineWait [2]time.Duration
	// AfterRecovery counts the terminal events that occurred after
	// Recovered: the fleet worked on the new topology.
	AfterRecovery int
	// Retried counts the deliveries the workers retried (their
	// outcome=retried log lines), Warnings their warnings by message (a
	// fallback taken: credentials, integrations or task state served
	// without Redis). The failover variant injects no other fault, so these
	// are the failover's.
	Retried  int
	Warnings map[string]int

	killedAt, recoveredAt time.Time
}

// measure reads the fleet's side of the failover from the ledger and the
// workers' logs.
func (f *Failover) measure(led *ledger, workers []*workerProc) {
	led.mu.Lock()
	times := slices.Clone(led.occurred)
	recovered := f.recoveredAt
	if recovered.IsZero() {
		recovered = time.Now()
	}
	var affected, before []time.Duration
	for _, e := range led.tasks {
		if e.sent.IsZero() || e.first.IsZero() {
			continue
		}
		switch {
		case e.first.Before(f.killedAt):
			before = append(before, e.first.Sub(e.sent))
		case e.sent.Before(recovered):
			affected = append(affected, e.first.Sub(e.sent))
		}
	}
	led.mu.Unlock()
	slices.SortFunc(times, func(a, b time.Time) int { return a.Compare(b) })

	f.Affected = len(affected)
	f.AffectedWait, f.BaselineWait = medianMax(affected), medianMax(before)
	prev := time.Time{}
	last := f.killedAt
	for _, t := range times {
		switch {
		case t.Before(f.killedAt):
			if !prev.IsZero() {
				f.BaselineGap = max(f.BaselineGap, t.Sub(prev))
			}
			prev = t
		case f.recoveredAt.IsZero() || !last.After(f.recoveredAt):
			// From the SIGKILL, through recovery, to the first event after.
			if t.Sub(last) > f.Stall {
				f.Stall, f.StallFrom = t.Sub(last), last.Sub(f.killedAt)
			}
			last = t
		}
		if !f.recoveredAt.IsZero() && t.After(f.recoveredAt) {
			f.AfterRecovery++
		}
	}
	for _, w := range workers {
		fh, err := os.Open(w.logPath)
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(fh)
		sc.Buffer(make([]byte, 1<<20), 16<<20)
		for sc.Scan() {
			var l struct {
				Level, Message, Outcome string
			}
			if json.Unmarshal(sc.Bytes(), &l) != nil {
				continue
			}
			if l.Outcome == "retried" {
				f.Retried++
			}
			if l.Level == "warn" && l.Message != "task" {
				if f.Warnings == nil {
					f.Warnings = map[string]int{}
				}
				f.Warnings[l.Message]++
			}
		}
		fh.Close()
	}
}

func medianMax(d []time.Duration) [2]time.Duration {
	if len(d) == 0 {
		return [2]time.Duration{}
	}
	slices.Sort(d)
	return [2]time.Duration{d[len(d)/2], d[len(d)-1]}
}

func (f *Failover) String() string {
	r := func(d time.Duration) time.Duration { return d.Round(10 * time.Millisecond) }
	var b strings.Builder
	fmt.Fprintf(&b, "  redis cluster failover: SIGKILL of master %s at %v; replica %s master after %v (cluster_state:fail for %v), every node ok after %v\n",
		f.Master, f.At.Round(time.Second), f.Replica, r(f.Promoted), r(f.ClusterDown), r(f.Recovered))
	fmt.Fprintf(&b, "    fleet stall: %v without a terminal event, from %v after the kill (longest gap before the kill: %v); %d events after recovery\n",
		r(f.Stall), r(f.StallFrom), r(f.BaselineGap), f.AfterRecovery)
	fmt.Fprintf(&b, "    tasks in hand during the failover: %d, sent→event median %v max %v (before the kill: median %v max %v)\n",
		f.Affected, r(f.AffectedWait[0]), r(f.AffectedWait[1]), r(f.BaselineWait[0]), r(f.BaselineWait[1]))
	fmt.Fprintf(&b, "    workers: %d deliveries retried; warnings:", f.Retried)
	msgs := slices.Collect(maps.Keys(f.Warnings))
	slices.SortFunc(msgs, func(a, b string) int { return cmp.Or(f.Warnings[b]-f.Warnings[a], strings.Compare(a, b)) })
	for _, m := range msgs {
		fmt.Fprintf(&b, "\n      %4d %s", f.Warnings[m], m)
	}
	if len(msgs) == 0 {
		b.WriteString(" none")
	}
	b.WriteString("\n")
	return b.String()
}
