package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ferryworks/ferry/internal/redisconn"
)

// spread is a median with its min and max over runs.
type spread struct{ Med, Min, Max float64 }

func spreadOf(v []float64) spread {
	if len(v) == 0 {
		return spread{math.NaN(), math.NaN(), math.NaN()}
	}
	s := slices.Clone(v)
	slices.Sort(s)
	med := s[len(s)/2]
	if len(s)%2 == 0 {
		med = (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	return spread{med, s[0], s[len(s)-1]}
}

func (s spread) ok() bool { return !math.IsNaN(s.Med) }

// fmtSpread prints "med (min–max)" with the given decimals; one run prints
// the value alone.
func (s spread) fmt(dec int) string {
	if !s.ok() {
		return "–"
	}
	f := func(v float64) string { return strconv.FormatFloat(v, 'f', dec, 64) }
	if s.Min == s.Max {
		return f(s.Med)
	}
	return fmt.Sprintf("%s (%s–%s)", f(s.Med), f(s.Min), f(s.Max))
}

// pick collects one metric of the measurements of scenario and tool.
func (b *bench) pick(scenario, tool string, f func(measurement) float64) []float64 {
	var out []float64
	for _, m := range b.results {
		if m.Scenario == scenario && m.Tool == tool {
			out = append(out, f(m))
		}
	}
	return out
}

// ratio collects, per run, metric(ferry) ÷ metric(other) for scenario.
func (b *bench) ratio(scenario, other string, f func(measurement) float64) spread {
	return b.runRatio(scenario, toolFerry, scenario, other, f)
}

// scenarioRatio collects, per run, ferry's metric in scenario a ÷ in b:
// one setting against another under the same load.
func (b *bench) scenarioRatio(a, other string, f func(measurement) float64) spread {
	return b.runRatio(a, toolFerry, other, toolFerry, f)
}

// runRatio collects, per run, f of the measurement of tool in scenario ÷ f
// of the one of overTool in overScenario, over the runs that have both.
func (b *bench) runRatio(scenario, tool, overScenario, overTool string, f func(measurement) float64) spread {
	byRun := map[int]measurement{}
	for _, m := range b.results {
		if m.Scenario == overScenario && m.Tool == overTool {
			byRun[m.Run] = m
		}
	}
	var v []float64
	for _, m := range b.results {
		if m.Scenario != scenario || m.Tool != tool {
			continue
		}
		if o, ok := byRun[m.Run]; ok && f(o) > 0 {
			v = append(v, f(m)/f(o))
		}
	}
	return spreadOf(v)
}

func mib0(m measurement) float64 { return m.MiBPerSec }

func (b *bench) scenarioNames() []string {
	var names []string
	for _, m := range b.results {
		if !slices.Contains(names, m.Scenario) {
			names = append(names, m.Scenario)
		}
	}
	return names
}

func isSmall(name string) bool { return strings.HasPrefix(name, "1KiB/") }

func throughput(name string) (string, func(measurement) float64) {
	if isSmall(name) {
		return "tasks/s", func(m measurement) float64 { return m.TasksPerSec }
	}
	return "MiB/s", func(m measurement) float64 { return m.MiBPerSec }
}

// credStat is one sub-benchmark of BenchmarkCredentials.
type credStat struct {
	NsPerOp, P99ns []float64
}

// parseCredBench reads `go test -bench BenchmarkCredentials` output.
func parseCredBench(path string) (map[string]*credStat, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	out := map[string]*credStat{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 4 || !strings.HasPrefix(fields[0], "BenchmarkCredentials/") {
			continue
		}
		name := strings.TrimPrefix(fields[0], "BenchmarkCredentials/")
		if i := strings.LastIndexByte(name, '-'); i > 0 {
			name = name[:i]
		}
		st := out[name]
		if st == nil {
			st = &credStat{}
			out[name] = st
		}
		for i := 2; i+1 < len(fields); i += 2 {
			v, err := strconv.ParseFloat(fields[i], 64)
			if err != nil {
				continue
			}
			switch fields[i+1] {
			case "ns/op":
				st.NsPerOp = append(st.NsPerOp, v)
			case "p99-ns":
				st.P99ns = append(st.P99ns, v)
			}
		}
	}
	return out, sc.Err()
}

type target struct {
	What, Measured string
	Met            string
}

func verdict(ok bool, have bool) string {
	switch {
	case !have:
		return "not measured"
	case ok:
		return "met"
	default:
		return "**missed**"
	}
}

// writeReport writes summary.md, chart.svg and results.json into -out and
// returns their paths.
func (b *bench) writeReport() ([]string, error) {
	var cred map[string]*credStat
	if b.o.credBench != "" {
		var err error
		if cred, err = parseCredBench(b.o.credBench); err != nil {
			return nil, fmt.Errorf("read -credcache-bench: %w", err)
		}
	}
	var md strings.Builder
	p := func(format string, a ...any) { fmt.Fprintf(&md, format, a...) }
	mode := "standard set"
	switch {
	case b.o.smoke:
		mode = "smoke run (tiny sizes: not a measurement)"
	case b.o.full:
		mode = "full set"
	}
	transport := "http"
	if b.o.tls {
		transport = "https (-tls: aws-chunked bodies with trailing checksums)"
	}
	p("# ferry bench: %s over %s\n\n", mode, transport)
	redisDesc := "a private redis-server"
	switch {
	case b.o.redisURL != "" && b.redisMode == redisconn.Cluster:
		redisDesc = "a Redis Cluster (-redis-url, -redis-mode cluster)"
	case b.o.redisURL != "":
		redisDesc = "a shared Redis (-redis-url)"
	}
	p("Run `%s` at %s, %d run(s), %s elapsed. %d `ferry work` processes (and as many raw-loop processes); kumo in its own process; %s. Machine: %d CPUs; load averages (1/5/15 min) at the start and after each run: %s.\n\n",
		b.runID, b.started.UTC().Format(time.RFC3339), b.o.runs, time.Since(b.started).Round(time.Second), b.o.workers, redisDesc, runtime.NumCPU(), strings.Join(b.load, " → "))
	p("Every cell is the median over the runs with min–max in brackets. Latency is enqueue → the event's `occurred_at`; the harness keeps 2 × slots tasks outstanding (closed loop), so latency includes that queueing, except in `1KiB/idle`, which sends one task at a time to an idle fleet. CPU is user+system time of the client processes (from /proc/PID/stat; rclone from wait4's rusage) per GiB of attachments; peak RSS is VmHWM (ru_maxrss for rclone) of the largest process.\n\n")

	p("## Results\n\n| scenario | tool | tasks/s | MiB/s | p50 ms | p95 ms | p99 ms | CPU s/GiB | CPU ms/task | peak RSS MiB/process | AssumeRole calls | Redis cmds/task |\n|---|---|---|---|---|---|---|---|---|---|---|---|\n")
	names := b.scenarioNames()
	for _, sc := range names {
		if strings.HasPrefix(sc, "noisy/") {
			continue
		}
		for _, tool := range []string{toolFerry, toolRaw, toolRclone} {
			get := func(f func(measurement) float64) spread { return spreadOf(b.pick(sc, tool, f)) }
			if !get(func(m measurement) float64 { return m.Seconds }).ok() {
				continue
			}
			lat := func(f func(measurement) float64) string {
				if tool == toolRclone {
					return "–"
				}
				return get(f).fmt(1)
			}
			redisCell := "–"
			if tool == toolFerry {
				if r := get(func(m measurement) float64 { return m.RedisPerTsk }); r.ok() && r.Min >= 0 {
					redisCell = r.fmt(1)
					if !b.exactCmds {
						redisCell += " (shared Redis: approximate)"
					}
				}
			}
			p("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", sc, tool,
				get(func(m measurement) float64 { return m.TasksPerSec }).fmt(1),
				get(func(m measurement) float64 { return m.MiBPerSec }).fmt(1),
				lat(func(m measurement) float64 { return m.P50ms }), lat(func(m measurement) float64 { return m.P95ms }), lat(func(m measurement) float64 { return m.P99ms }),
				get(func(m measurement) float64 { return m.CPUPerGiB }).fmt(2),
				get(func(m measurement) float64 { return m.CPUmsPerTsk }).fmt(2),
				get(func(m measurement) float64 { return m.PeakRSSMiB }).fmt(1),
				get(func(m measurement) float64 { return float64(m.AssumeRole) }).fmt(0),
				redisCell)
		}
	}

	p("\n## Ratios (per run, then median and min–max)\n\n| scenario | metric | ferry ÷ raw loop | ferry ÷ rclone | CPU ferry ÷ raw | CPU ferry ÷ rclone |\n|---|---|---|---|---|---|\n")
	cpu := func(m measurement) float64 { return m.CPUPerGiB }
	for _, sc := range names {
		if strings.HasPrefix(sc, "noisy/") {
			continue
		}
		unit, f := throughput(sc)
		p("| %s | %s | %s | %s | %s | %s |\n", sc, unit, b.ratio(sc, toolRaw, f).fmt(2), b.ratio(sc, toolRclone, f).fmt(2),
			b.ratio(sc, toolRaw, cpu).fmt(2), b.ratio(sc, toolRclone, cpu).fmt(2))
	}

	// FERRY_STREAM_PUT_MAX on both sides of its default: each pair is the
	// same load streamed as one PUT ÷ sent multipart.
	transportNote := "over http both go multipart (the SDK streams only over https), so this is about 1"
	if b.o.tls {
		transportNote = "with -tls the first streams each object as one PUT"
	}
	for _, pair := range [][3]string{
		{"64MiB", "64MiB/multipart", "FERRY_STREAM_PUT_MAX=0"},
		{"256MiB/streamed", "256MiB", "FERRY_STREAM_PUT_MAX=256MiB against the default"},
	} {
		if r := b.scenarioRatio(pair[0], pair[1], mib0); r.ok() {
			p("\nFERRY_STREAM_PUT_MAX: ferry's MiB/s at `%s` ÷ at `%s` (%s), per run: %s×; CPU s/GiB ratio %s×; %s.\n",
				pair[0], pair[1], pair[2], r.fmt(2), b.scenarioRatio(pair[0], pair[1], cpu).fmt(2), transportNote)
		}
	}

	// The targets (docs/bench.md, Targets), each next to what this run measured.
	var ts []target
	mib := func(m measurement) float64 { return m.MiBPerSec }
	for _, sc := range []string{"64MiB", "256MiB", "1GiB"} {
		r := b.ratio(sc, toolRclone, mib)
		ts = append(ts, target{fmt.Sprintf("copy MiB/s ≥ 1.0× rclone at %s", sc), r.fmt(2) + "×", verdict(r.Med >= 1.0, r.ok())})
		r = b.ratio(sc, toolRaw, mib)
		ts = append(ts, target{fmt.Sprintf("copy MiB/s ≥ 0.9× raw loop at %s", sc), r.fmt(2) + "×", verdict(r.Med >= 0.9, r.ok())})
	}
	for _, c := range []string{"1", "8", "64"} {
		r := b.ratio("1KiB/c"+c, toolRaw, func(m measurement) float64 { return m.TasksPerSec })
		ts = append(ts, target{"1 KiB tasks/s ≥ 0.9× raw loop at concurrency " + c, r.fmt(2) + "×", verdict(r.Med >= 0.9, r.ok())})
	}
	idle := spreadOf(b.pick(idleScenario, toolFerry, func(m measurement) float64 { return m.P50ms }))
	ts = append(ts, target{"idle fleet: 1 KiB enqueue → event p50 ≤ 50 ms", idle.fmt(1) + " ms", verdict(idle.Med <= 50, idle.ok())})
	for _, sc := range []string{"8MiB", "64MiB", "256MiB", "1GiB"} {
		r := b.ratio(sc, toolRaw, cpu)
		ts = append(ts, target{fmt.Sprintf("CPU per GiB ≤ 1.1× raw loop at %s", sc), r.fmt(2) + "×", verdict(r.Med <= 1.1, r.ok())})
	}
	rss := spreadOf(b.pick("1GiB", toolFerry, func(m measurement) float64 { return m.PeakRSSMiB }))
	ts = append(ts, target{"RSS while copying 1 GiB ≤ 96 MiB per process", rss.fmt(1) + " MiB", verdict(rss.Max <= 96, rss.ok())})
	if len(b.worldAssume) > 0 {
		// One line for every stack: the worst stack decides.
		ok := true
		var parts []string
		for _, a := range b.worldAssume {
			ok = ok && a.Calls <= int64(a.Delegated)
			parts = append(parts, fmt.Sprintf("%s: %d", a.World, a.Calls))
		}
		ts = append(ts, target{fmt.Sprintf("AssumeRole calls ≤ delegated customers (%d per stack; K processes and every run on a stack share one Redis)", b.worldAssume[0].Delegated),
			strings.Join(parts, "; "), verdict(ok, true)})
	}
	if st := cred["L1hit"]; st != nil {
		s := spreadOf(st.NsPerOp)
		ts = append(ts, target{"credential lookup L1 ≤ 1 µs", s.fmt(0) + " ns/op", verdict(s.Med <= 1000, s.ok())})
	} else {
		ts = append(ts, target{"credential lookup L1 ≤ 1 µs", "(pass -credcache-bench)", verdict(false, false)})
	}
	if st := cred["L2hit"]; st != nil {
		s := spreadOf(st.P99ns)
		ts = append(ts, target{"credential lookup L2 p99 ≤ 1 ms", s.fmt(0) + " ns", verdict(s.Med <= 1e6, s.ok())})
	} else {
		ts = append(ts, target{"credential lookup L2 p99 ≤ 1 ms", "(pass -credcache-bench)", verdict(false, false)})
	}
	p("\n## Targets\n\n| target | measured (median, min–max) | |\n|---|---|---|\n")
	for _, t := range ts {
		p("| %s | %s | %s |\n", t.What, t.Measured, t.Met)
	}

	p("%s", b.costSection(names))

	var noisyNames []string
	for _, n := range names {
		if strings.HasPrefix(n, "noisy/") {
			noisyNames = append(noisyNames, n)
		}
	}
	if len(noisyNames) > 0 {
		p("\n## Noisy neighbour\n\nOne customer's backlog of big tasks is enqueued first; the other customers then submit 1 KiB tasks at a steady rate. The run ends with the last small task (the backlog is abandoned). `capN` is `FERRY_CUSTOMER_MAX_INFLIGHT=N` in each of the %d workers (the noisy customer may hold N slots per worker); `fleetcapN` is `FERRY_CUSTOMER_FLEET_MAX_INFLIGHT=N` (N slots across the fleet, held as leases in Redis).\n\n| setting | small tasks | small p50 ms | small p95 ms | small p99 ms | big tasks finished meanwhile |\n|---|---|---|---|---|---|\n", b.noisyWorkers())
		for _, n := range noisyNames {
			g := func(f func(measurement) float64) spread { return spreadOf(b.pick(n, toolFerry, f)) }
			p("| %s | %s | %s | %s | %s | %s |\n", n, g(func(m measurement) float64 { return float64(m.Tasks) }).fmt(0),
				g(func(m measurement) float64 { return m.P50ms }).fmt(0), g(func(m measurement) float64 { return m.P95ms }).fmt(0),
				g(func(m measurement) float64 { return m.P99ms }).fmt(0), g(func(m measurement) float64 { return float64(m.BigDone) }).fmt(0))
		}
	}
	if len(cred) > 0 {
		p("\n## Credential lookups (`go test -bench BenchmarkCredentials ./credcache`)\n\n| path | ns/op | p99 ns |\n|---|---|---|\n")
		var keys []string
		for k := range cred {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			p("| %s | %s | %s |\n", k, spreadOf(cred[k].NsPerOp).fmt(0), spreadOf(cred[k].P99ns).fmt(0))
		}
	}
	p("\n![throughput and p99 latency against concurrency](chart.svg)\n")

	outMD := filepath.Join(b.o.out, "summary.md")
	if err := os.WriteFile(outMD, []byte(md.String()), 0o644); err != nil {
		return nil, err
	}
	outSVG := filepath.Join(b.o.out, "chart.svg")
	if err := os.WriteFile(outSVG, []byte(b.chart()), 0o644); err != nil {
		return nil, err
	}
	outJSON := filepath.Join(b.o.out, "results.json")
	data, err := json.MarshalIndent(map[string]any{
		"run_id": b.runID, "started": b.started.UTC(), "runs": b.o.runs, "workers": b.o.workers, "tls": b.o.tls,
		"load_averages": b.load, "results": b.results, "assume_role_per_world": b.worldAssume,
	}, "", "  ")
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(outJSON, data, 0o644); err != nil {
		return nil, err
	}
	return []string{outMD, outSVG, outJSON}, nil
}
