package main

import (
	"bufio"
	"context"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/redis/go-redis/v9"
)

// The cost of one task: what a ferry scenario asked of each service,
// divided by its tasks. The local AWS counts every call it served (the
// bench's own producer and event reader included: SendMessageBatch on the
// tasks queue, ReceiveMessage and DeleteMessageBatch on the events queue),
// and the private redis-server counts every command (those a script runs
// inside Redis included). docs/capacity.md builds its projection on these.

// callCounts sums a localaws Stats snapshot over outcomes, per operation.
func callCounts(stats map[string]map[string]int64) map[string]int64 {
	out := make(map[string]int64, len(stats))
	for op, outcomes := range stats {
		for _, n := range outcomes {
			out[op] += n
		}
	}
	return out
}

// perTask is (after − before) / tasks per key, leaving out keys that did
// not move.
func perTask(before, after map[string]int64, tasks int) map[string]float64 {
	if tasks <= 0 {
		return nil
	}
	out := map[string]float64{}
	for k, v := range after {
		if d := v - before[k]; d > 0 {
			out[k] = float64(d) / float64(tasks)
		}
	}
	return out
}

// commandStats reads INFO commandstats: calls per command, INFO itself left
// out, summed over every master of a cluster (a replica replays its
// master's writes, which are not more of ferry's commands). ok is false
// when a server does not report command statistics.
func commandStats(ctx context.Context, rdb redis.UniversalClient) (map[string]int64, bool) {
	cc, isCluster := rdb.(*redis.ClusterClient)
	if !isCluster {
		return nodeCommandStats(ctx, rdb)
	}
	var mu sync.Mutex
	out, all := map[string]int64{}, true
	err := cc.ForEachMaster(ctx, func(ctx context.Context, n *redis.Client) error {
		s, ok := nodeCommandStats(ctx, n)
		mu.Lock()
		defer mu.Unlock()
		all = all && ok
		for k, v := range s {
			out[k] += v
		}
		return nil
	})
	return out, err == nil && all
}

func nodeCommandStats(ctx context.Context, rdb redis.UniversalClient) (map[string]int64, bool) {
	s, err := rdb.Info(ctx, "commandstats").Result()
	if err != nil {
		return nil, false
	}
	out := map[string]int64{}
	found := false
	sc := bufio.NewScanner(strings.NewReader(s))
	for sc.Scan() {
		name, rest, ok := strings.Cut(strings.TrimSpace(sc.Text()), ":")
		cmd, isStat := strings.CutPrefix(name, "cmdstat_")
		if !ok || !isStat {
			continue
		}
		found = true
		if cmd == "info" {
			continue
		}
		for _, f := range strings.Split(rest, ",") {
			if v, ok := strings.CutPrefix(f, "calls="); ok {
				n, _ := strconv.ParseInt(v, 10, 64)
				out[cmd] += n
			}
		}
	}
	return out, found
}

// costSnapshot is what a scenario run is measured against.
type costSnapshot struct {
	calls, redis map[string]int64
	redisOK      bool
}

func (b *bench) costSnapshot(ctx context.Context, w *world) costSnapshot {
	r, ok := commandStats(ctx, b.rdb)
	return costSnapshot{calls: callCounts(w.stack.Stats()), redis: r, redisOK: ok}
}

// recordCost fills m's per-task call and command counts since before.
func (b *bench) recordCost(ctx context.Context, w *world, before costSnapshot, m *measurement) {
	after := b.costSnapshot(ctx, w)
	m.CallsPerTask = perTask(before.calls, after.calls, m.Tasks)
	if before.redisOK && after.redisOK {
		m.RedisCmdsPerTask = perTask(before.redis, after.redis, m.Tasks)
	}
}

// costSection is the report's "Cost per task": for every ferry scenario,
// the median over runs of each AWS operation and Redis command per task.
func (b *bench) costSection(names []string) string {
	var cols []string
	for _, n := range names {
		if len(b.pick(n, toolFerry, func(m measurement) float64 { return float64(len(m.CallsPerTask)) })) > 0 && !strings.HasPrefix(n, "noisy/") {
			cols = append(cols, n)
		}
	}
	if len(cols) == 0 {
		return ""
	}
	rows := map[string]bool{}
	for _, m := range b.results {
		if m.Tool != toolFerry {
			continue
		}
		for k := range m.CallsPerTask {
			rows["aws "+k] = true
		}
		for k := range m.RedisCmdsPerTask {
			rows["redis "+k] = true
		}
	}
	keys := make([]string, 0, len(rows))
	for k := range rows {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var sb strings.Builder
	sb.WriteString("\n## Cost per task\n\nWhat each ferry scenario asked of each service, per task (median over runs). AWS calls are everything the local AWS served, the bench's own producer and event reader included (`sqs:SendMessageBatch` on the tasks queue, and `sqs:ReceiveMessage` / `sqs:DeleteMessageBatch` on the events queue besides the workers' own); idle workers' long polls count too. Redis commands are INFO commandstats, commands run inside scripts included.\n\n| call | " +
		strings.Join(cols, " | ") + " |\n|---|" + strings.Repeat("---|", len(cols)) + "\n")
	for _, k := range keys {
		kind, name, _ := strings.Cut(k, " ")
		sb.WriteString("| " + kind + " `" + name + "` |")
		for _, c := range cols {
			v := spreadOf(b.pick(c, toolFerry, func(m measurement) float64 {
				if kind == "aws" {
					return m.CallsPerTask[name]
				}
				return m.RedisCmdsPerTask[name]
			}))
			sb.WriteString(" " + strconv.FormatFloat(v.Med, 'f', 2, 64) + " |")
		}
		sb.WriteString("\n")
	}
	return sb.String()
}
