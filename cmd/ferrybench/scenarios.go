package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"github.com/ferryworks/ferry/internal/devproc"
	"github.com/ferryworks/ferry/internal/redisconn"
	"github.com/ferryworks/ferry/task"
)

// Tools a scenario runs through.
const (
	toolFerry  = "ferry"
	toolRaw    = "raw"
	toolRclone = "rclone"
)

// fresh says how often a scenario gets a new local AWS: kumo never returns
// the memory of what was written to it, and big copies slow down on a stack
// that already holds gigabytes.
type fresh int

const (
	freshNever   fresh = iota // the shared stack of the small scenarios
	freshPerRun               // one stack per run, shared by the tools
	freshPerTool              // one stack per run and tool
)

// idleScenario sends one 1 KiB task at a time: latency on an idle fleet.
const idleScenario = "1KiB/idle"

// scenario is one row of the report.
type scenario struct {
	Name        string
	Size        int64
	Tasks       int
	Concurrency int // FERRY_CONCURRENCY of each worker; slots of each raw loop
	Customers   int // customers the objects rotate over
	Distinct    bool
	Fresh       fresh
	Rclone      bool
	Sweep       bool // part of the concurrency sweep of the chart
	// Window is how many tasks the harness keeps outstanding; 0 is
	// 2 × (K × Concurrency). 1 measures an idle fleet: each task is sent
	// only once the previous one's event arrived.
	Window int
	// FerryEnv is added to the workers' environment (a setting the
	// scenario compares against its default).
	FerryEnv []string
}

// noisySpec is the noisy-neighbour scenario: one customer's backlog of big
// tasks, then a steady stream of small tasks from the others.
type noisySpec struct {
	BigSize     int64
	BigTasks    int
	SmallTasks  int
	SmallEvery  time.Duration
	Concurrency int
	Cap         int
}

func scenarios(o options) ([]scenario, noisySpec) {
	const KiB, MiB = 1 << 10, 1 << 20
	if o.smoke {
		return []scenario{
			{Name: "1KiB/c1", Size: KiB, Tasks: 10, Concurrency: 1, Customers: 8, Sweep: true},
			{Name: "1KiB/c8", Size: KiB, Tasks: 40, Concurrency: 8, Customers: 8, Sweep: true},
			{Name: idleScenario, Size: KiB, Tasks: 3, Concurrency: 1, Customers: 8, Window: 1},
			{Name: "6MiB", Size: 6 * MiB, Tasks: 2, Concurrency: 2, Customers: 2, Distinct: true, Fresh: freshPerRun, Rclone: true},
		}, noisySpec{BigSize: 2 * MiB, BigTasks: 8, SmallTasks: 8, SmallEvery: 50 * time.Millisecond, Concurrency: 2, Cap: 1}
	}
	mult := 1
	if o.full {
		mult = 2
	}
	set := []scenario{
		{Name: idleScenario, Size: KiB, Tasks: 30 * mult, Concurrency: 1, Customers: 8, Window: 1},
		{Name: "1KiB/c1", Size: KiB, Tasks: 300 * mult, Concurrency: 1, Customers: 8, Sweep: true},
		{Name: "1KiB/c8", Size: KiB, Tasks: 1000 * mult, Concurrency: 8, Customers: 8, Sweep: true},
		{Name: "1KiB/c64", Size: KiB, Tasks: 3000 * mult, Concurrency: 64, Customers: 8, Sweep: true},
		{Name: "8MiB", Size: 8 * MiB, Tasks: 32 * mult, Concurrency: 4, Customers: 2, Distinct: true, Fresh: freshPerRun, Rclone: true},
		{Name: "64MiB", Size: 64 * MiB, Tasks: 8 * mult, Concurrency: 2, Customers: 2, Distinct: true, Fresh: freshPerRun, Rclone: true},
		// The same load without the streamed single PUT (with -tls, 64MiB
		// streams each object; here it goes multipart): where
		// FERRY_STREAM_PUT_MAX pays. Over http both go multipart.
		{Name: "64MiB/multipart", Size: 64 * MiB, Tasks: 8 * mult, Concurrency: 2, Customers: 2, Distinct: true, Fresh: freshPerRun,
			FerryEnv: []string{"FERRY_STREAM_PUT_MAX=0"}},
		{Name: "256MiB", Size: 256 * MiB, Tasks: 2 * mult, Concurrency: 1, Customers: 2, Distinct: true, Fresh: freshPerTool, Rclone: true},
		// The other side of the threshold: 256 MiB streamed as one PUT
		// (with -tls) where the default sends it multipart.
		{Name: "256MiB/streamed", Size: 256 * MiB, Tasks: 2 * mult, Concurrency: 1, Customers: 2, Distinct: true, Fresh: freshPerTool,
			FerryEnv: []string{"FERRY_STREAM_PUT_MAX=256MiB"}},
	}
	if !o.noBig {
		set = append(set, scenario{Name: "1GiB", Size: 1 << 30, Tasks: 1, Concurrency: 1, Customers: 1, Distinct: true, Fresh: freshPerTool, Rclone: true})
	}
	n := noisySpec{BigSize: 64 * MiB, BigTasks: 24, SmallTasks: 60, SmallEvery: 100 * time.Millisecond, Concurrency: 4, Cap: 1}
	if o.full {
		n.BigTasks, n.SmallTasks = 200, 200
	}
	return set, n
}

// measurement is one scenario run through one tool.
type measurement struct {
	Scenario    string  `json:"scenario"`
	Tool        string  `json:"tool"`
	Run         int     `json:"run"`
	Tasks       int     `json:"tasks"`
	Bytes       int64   `json:"bytes"`
	Seconds     float64 `json:"seconds"`
	TasksPerSec float64 `json:"tasks_per_s"`
	MiBPerSec   float64 `json:"mib_per_s"`
	P50ms       float64 `json:"p50_ms"`
	P95ms       float64 `json:"p95_ms"`
	P99ms       float64 `json:"p99_ms"`
	CPUSeconds  float64 `json:"cpu_s"`
	CPUPerGiB   float64 `json:"cpu_s_per_gib"`
	CPUmsPerTsk float64 `json:"cpu_ms_per_task"`
	PeakRSSMiB  float64 `json:"peak_rss_mib_per_process"`
	AssumeRole  int64   `json:"assume_role_calls"`
	RedisPerTsk float64 `json:"redis_commands_per_task"` // -1: not measured
	Failures    int     `json:"failures"`
	Missing     int     `json:"missing,omitempty"`
	// Noisy-neighbour runs: the cap and the big customer's tasks finished
	// while the small ones ran.
	Cap      int `json:"cap,omitempty"`
	FleetCap int `json:"fleet_cap,omitempty"`
	BigDone  int `json:"big_done,omitempty"`
	// CallsPerTask is what the local AWS served per task, by operation;
	// RedisCmdsPerTask the Redis commands, by command (ferry runs only).
	CallsPerTask     map[string]float64 `json:"aws_calls_per_task,omitempty"`
	RedisCmdsPerTask map[string]float64 `json:"redis_commands_per_task_by_command,omitempty"`
}

// bench is one ferrybench invocation's state.
type bench struct {
	o         options
	log       zerolog.Logger
	runID     string
	ferryBin  string
	rcloneBin string
	redisURL  string
	redisMode redisconn.Mode
	rdb       redis.UniversalClient
	exactCmds bool
	logDir    string
	results   []measurement
	// worldAssume is the ferry fleet's AssumeRole calls per world, with the
	// world's delegated customers: the cache's promise is one per customer
	// however many processes and runs share the world.
	worldAssume []assumeCount
	started     time.Time
	load        []string
}

type assumeCount struct {
	World     string `json:"world"`
	Calls     int64  `json:"calls"`
	Delegated int    `json:"delegated_customers"`
	Processes int    `json:"processes"`
}

func runBench(ctx context.Context, o options, log zerolog.Logger) ([]string, error) {
	b := &bench{o: o, log: log, runID: randHex(6), started: time.Now()}
	b.load = append(b.load, loadAvg())
	if err := os.MkdirAll(o.out, 0o755); err != nil {
		return nil, err
	}
	b.logDir = filepath.Join(o.out, "logs")
	if err := os.MkdirAll(b.logDir, 0o755); err != nil {
		return nil, err
	}
	tmp, err := os.MkdirTemp("", "ferrybench")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)

	b.ferryBin = o.ferryBin
	if b.ferryBin == "" {
		log.Info().Msg("building ./cmd/ferry")
		if b.ferryBin, err = devproc.BuildFerry(ctx, tmp); err != nil {
			return nil, err
		}
	}
	switch o.rcloneBin {
	case "off":
	case "":
		b.rcloneBin, _ = exec.LookPath("rclone")
	default:
		b.rcloneBin = o.rcloneBin
	}
	if b.rcloneBin == "" && o.rcloneBin != "off" {
		log.Warn().Msg("rclone not found: the report has no rclone column (make bench installs it)")
	}
	b.redisURL, b.redisMode = o.redisURL, o.redisMode
	if b.redisURL == "" {
		rs, err := startRedisServer(ctx, tmp)
		if err != nil {
			return nil, err
		}
		defer rs.stop()
		b.redisURL, b.redisMode = rs.url, redisconn.Single
	}
	rdb, err := redisconn.Open(b.redisURL, b.redisMode)
	if err != nil {
		return nil, fmt.Errorf("-redis-url: %w", err)
	}
	defer rdb.Close()
	b.rdb = rdb
	_, b.exactCmds = commandCalls(ctx, rdb)
	if o.redisURL != "" {
		// A shared Redis counts other clients' commands too.
		b.exactCmds = false
	}

	set, noisy := scenarios(o)
	want := map[string]bool{}
	for _, n := range strings.Split(o.only, ",") {
		if n = strings.TrimSpace(n); n != "" {
			want[n] = true
		}
	}
	selected := func(name string) bool { return len(want) == 0 || want[name] }

	var shared *world
	defer func() {
		if shared != nil {
			b.closeWorld(shared, "shared")
		}
	}()
	for run := 1; run <= o.runs; run++ {
		for _, sc := range set {
			if !selected(sc.Name) {
				continue
			}
			tools := []string{toolFerry, toolRaw}
			if sc.Rclone && b.rcloneBin != "" {
				tools = append(tools, toolRclone)
			}
			// Rotate the order so no tool always runs on the emptier stack.
			k := (run - 1) % len(tools)
			tools = append(tools[k:], tools[:k]...)
			var w *world
			for _, tool := range tools {
				if ctx.Err() != nil {
					return nil, ctx.Err()
				}
				switch {
				case sc.Fresh == freshNever:
					if shared == nil {
						if shared, err = newWorld(ctx, rdb, b.redisURL, b.o.tls, log); err != nil {
							return nil, err
						}
					}
					w = shared
				case w == nil || sc.Fresh == freshPerTool:
					if w != nil {
						b.closeWorld(w, fmt.Sprintf("%s run %d", sc.Name, run))
					}
					if w, err = newWorld(ctx, rdb, b.redisURL, b.o.tls, log); err != nil {
						return nil, err
					}
				}
				m, err := b.runOne(ctx, w, sc, run, tool)
				if err != nil {
					return nil, fmt.Errorf("%s run %d %s: %w", sc.Name, run, tool, err)
				}
				log.Info().Str("scenario", sc.Name).Int("run", run).Str("tool", tool).
					Float64("tasks_per_s", round(m.TasksPerSec, 1)).Float64("mib_per_s", round(m.MiBPerSec, 1)).
					Float64("p99_ms", round(m.P99ms, 1)).Float64("cpu_s_per_gib", round(m.CPUPerGiB, 2)).
					Float64("peak_rss_mib", round(m.PeakRSSMiB, 1)).Msg("measured")
				b.results = append(b.results, m)
			}
			if w != nil && w != shared {
				b.closeWorld(w, fmt.Sprintf("%s run %d", sc.Name, run))
			}
		}
		if selected("noisy") {
			for _, setting := range noisySettings(noisy) {
				m, err := b.runNoisy(ctx, noisy, setting, run)
				if err != nil {
					return nil, fmt.Errorf("%s run %d: %w", setting.Name, run, err)
				}
				log.Info().Str("scenario", m.Scenario).Int("run", run).Float64("small_p99_ms", round(m.P99ms, 1)).
					Int("big_done", m.BigDone).Msg("measured")
				b.results = append(b.results, m)
			}
		}
		b.load = append(b.load, loadAvg())
	}
	if shared != nil {
		b.closeWorld(shared, "shared")
		shared = nil
	}
	return b.writeReport()
}

// closeWorld records the ferry fleet's AssumeRole calls on w and stops it.
func (b *bench) closeWorld(w *world, name string) {
	if w.ferryAssume > 0 || w.ferryRuns > 0 {
		b.worldAssume = append(b.worldAssume, assumeCount{World: name, Calls: w.ferryAssume, Delegated: w.delegated(), Processes: w.ferryRuns * b.o.workers})
	}
	if err := w.close(); err != nil {
		b.log.Debug().Err(err).Msg("close local AWS")
	}
}

// tasksFor builds n tasks over objs (rotating), with ids unique to this
// bench, scenario, run and tool.
func (b *bench) tasksFor(scName string, run int, tool string, objs []object, n int) []task.Task {
	tag := strings.NewReplacer("/", "-", ".", "-").Replace(strings.ToLower(scName))
	tasks := make([]task.Task, n)
	for i := range tasks {
		o := objs[i%len(objs)]
		tasks[i] = task.Task{Version: task.Version, TaskID: fmt.Sprintf("fb-%s-%s-r%d-%s-%05d", b.runID, tag, run, tool, i),
			CustomerID: o.Customer.ID, Attachments: []task.Attachment{{URI: o.URI()}}}
	}
	return tasks
}

func (b *bench) ferryEnv(w *world, concurrency, capN int) []string {
	env := w.workerEnv(b.redisURL, b.redisMode)
	return append(env,
		"FERRY_CONCURRENCY="+strconv.Itoa(concurrency),
		"FERRY_CUSTOMER_MAX_INFLIGHT="+strconv.Itoa(capN),
		// Short leases: a ReceiveMessage reply lost on a closed keep-alive
		// connection then costs seconds, not a minute.
		"FERRY_VISIBILITY_TIMEOUT=10s",
		"FERRY_SHUTDOWN_TIMEOUT=5s",
		"FERRY_LOG_LEVEL=warn",
	)
}

func (b *bench) runOne(ctx context.Context, w *world, sc scenario, run int, tool string) (measurement, error) {
	count := sc.Customers
	if sc.Distinct {
		count = sc.Tasks
	}
	objs, err := w.seed(ctx, sc.Name, sc.Size, count, sc.Customers)
	if err != nil {
		return measurement{}, err
	}
	m := measurement{Scenario: sc.Name, Tool: tool, Run: run, Tasks: sc.Tasks, Bytes: sc.Size * int64(sc.Tasks), RedisPerTsk: -1}
	tag := fmt.Sprintf("%s-r%d", strings.ReplaceAll(sc.Name, "/", "-"), run)
	assumeBefore := w.assumeRoleOK()
	switch tool {
	case toolRclone:
		res, err := runRclone(ctx, b.rcloneBin, w, objs, sc.Concurrency, b.logDir, "rclone/"+b.runID+"/"+tag)
		if err != nil {
			return m, err
		}
		m.Seconds = res.Elapsed.Seconds()
		m.CPUSeconds = res.Usage.CPU.Seconds()
		m.PeakRSSMiB = float64(res.Usage.PeakRSS) / (1 << 20)
	default:
		var fl *fleet
		var tasksURL, eventsURL string
		if tool == toolFerry {
			tasksURL, eventsURL = w.env.Lookup("FERRY_QUEUE_URL"), w.env.Lookup("FERRY_EVENTS_QUEUE_URL")
			fl, err = startFerryFleet(ctx, b.ferryBin, append(b.ferryEnv(w, sc.Concurrency, 0), sc.FerryEnv...), b.o.workers, b.logDir, tag)
		} else {
			tasksURL, eventsURL = w.rawTasks, w.rawEvents
			cfgPath := filepath.Join(b.logDir, "."+tag+"-raw.json")
			if err = writeRawConfig(cfgPath, w, sc.Concurrency); err == nil {
				defer os.Remove(cfgPath)
				fl, err = startRawFleet(ctx, w.workerEnv(b.redisURL, b.redisMode), cfgPath, b.o.workers, b.logDir, tag)
			}
		}
		if err != nil {
			return m, err
		}
		defer fl.stop(10 * time.Second)
		if err := fl.mark(); err != nil {
			return m, err
		}
		cmdsBefore, _ := commandCalls(ctx, b.rdb)
		costBefore := b.costSnapshot(ctx, w)
		profDone := make(chan error, 1)
		if tool == toolFerry && b.o.pprof {
			go func() { profDone <- fl.cpuProfile(ctx, filepath.Join(b.o.out, "cpu-"+tag+".pprof"), 10) }()
		} else {
			profDone <- nil
		}
		window := max(2*sc.Concurrency*b.o.workers, 2)
		if sc.Window > 0 {
			window = sc.Window
		}
		lr, err := drive(ctx, w.sqs, tasksURL, eventsURL, []stream{{tasks: b.tasksFor(sc.Name, run, tool, objs, sc.Tasks), window: window, wait: true}}, b.o.scenarioMax)
		if err != nil {
			if dead := fl.anyExited(); dead != nil {
				return m, fmt.Errorf("%w; %w", err, dead)
			}
			return m, err
		}
		u, err := fl.usage()
		if err != nil {
			return m, err
		}
		if tool == toolFerry {
			cmdsAfter, ok := commandCalls(ctx, b.rdb)
			if ok {
				m.RedisPerTsk = float64(cmdsAfter-cmdsBefore) / float64(sc.Tasks)
			}
			b.recordCost(ctx, w, costBefore, &m)
		}
		if perr := <-profDone; perr != nil {
			b.log.Warn().Err(perr).Msg("cpu profile")
		}
		m.Seconds = lr.end.Sub(lr.start).Seconds()
		lat, missing := lr.latencies(0)
		m.Missing = missing
		m.P50ms, m.P95ms, m.P99ms = quantileMs(lat, 0.50), quantileMs(lat, 0.95), quantileMs(lat, 0.99)
		m.Failures = lr.failures()
		m.CPUSeconds = u.CPU.Seconds()
		m.PeakRSSMiB = float64(u.PeakRSS) / (1 << 20)
	}
	m.AssumeRole = w.assumeRoleOK() - assumeBefore
	if tool == toolFerry {
		w.ferryAssume += m.AssumeRole
		w.ferryRuns++
	}
	if m.Seconds > 0 {
		m.TasksPerSec = float64(m.Tasks) / m.Seconds
		m.MiBPerSec = float64(m.Bytes) / (1 << 20) / m.Seconds
	}
	if m.Tasks > 0 {
		m.CPUmsPerTsk = m.CPUSeconds * 1000 / float64(m.Tasks)
	}
	if m.Bytes > 0 {
		m.CPUPerGiB = m.CPUSeconds / (float64(m.Bytes) / (1 << 30))
	}
	if m.Failures > 0 {
		return m, fmt.Errorf("%d of %d tasks did not complete (see %s)", m.Failures, m.Tasks, b.logDir)
	}
	return m, nil
}

// runNoisy measures the small customers' latency while one customer's
// backlog of big tasks sits in the queue ahead of them, under one cap
// setting (noisySettings). Each setting gets a fresh stack; the backlog
// need not drain: the run ends with the last small task.
func (b *bench) runNoisy(ctx context.Context, ns noisySpec, setting noisySetting, run int) (measurement, error) {
	name := setting.Name
	m := measurement{Scenario: name, Tool: toolFerry, Run: run, Cap: setting.PerWorker, FleetCap: setting.Fleet, RedisPerTsk: -1}
	w, err := newWorld(ctx, b.rdb, b.redisURL, b.o.tls, b.log)
	if err != nil {
		return m, err
	}
	defer b.closeWorld(w, fmt.Sprintf("%s run %d", name, run))
	big, err := w.seed(ctx, "noisy-big", ns.BigSize, 1, 1)
	if err != nil {
		return m, err
	}
	small, err := w.seed(ctx, "noisy-small", 1<<10, len(w.customers), len(w.customers))
	if err != nil {
		return m, err
	}
	// The noisy customer is the first; the small tasks come from the others.
	small = small[1:]
	tag := fmt.Sprintf("%s-r%d", strings.ReplaceAll(name, "/", "-"), run)
	fl, err := startFerryFleet(ctx, b.ferryBin, b.noisyEnv(w, ns, setting), b.noisyWorkers(), b.logDir, tag)
	if err != nil {
		return m, err
	}
	// The backlog is abandoned when the small tasks are done: kill rather
	// than drain.
	defer fl.stop(0)
	if err := fl.mark(); err != nil {
		return m, err
	}
	bigTasks := b.tasksFor(name+"-big", run, toolFerry, big, ns.BigTasks)
	smallTasks := b.tasksFor(name+"-small", run, toolFerry, small, ns.SmallTasks)
	lr, err := drive(ctx, w.sqs, w.env.Lookup("FERRY_QUEUE_URL"), w.env.Lookup("FERRY_EVENTS_QUEUE_URL"), []stream{
		{tasks: bigTasks},
		{tasks: smallTasks, interval: ns.SmallEvery, wait: true},
	}, b.o.scenarioMax)
	if err != nil {
		return m, err
	}
	lat, _ := lr.latencies(1)
	m.Tasks = len(smallTasks)
	m.Seconds = lr.end.Sub(lr.start).Seconds()
	m.P50ms, m.P95ms, m.P99ms = quantileMs(lat, 0.50), quantileMs(lat, 0.95), quantileMs(lat, 0.99)
	bigLat, _ := lr.latencies(0)
	m.BigDone = len(bigLat)
	m.Bytes = int64(m.BigDone) * ns.BigSize
	m.Failures = lr.failures()
	if m.Seconds > 0 {
		m.TasksPerSec = float64(m.Tasks) / m.Seconds
		m.MiBPerSec = float64(m.Bytes) / (1 << 20) / m.Seconds
	}
	if u, err := fl.usage(); err == nil {
		m.CPUSeconds, m.PeakRSSMiB = u.CPU.Seconds(), float64(u.PeakRSS)/(1<<20)
	}
	return m, nil
}

func quantileMs(sorted []time.Duration, q float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(q*float64(len(sorted)) + 0.5)
	i = min(max(i-1, 0), len(sorted)-1)
	return float64(sorted[i]) / float64(time.Millisecond)
}

func round(v float64, places int) float64 {
	p := 1.0
	for range places {
		p *= 10
	}
	return float64(int64(v*p+0.5)) / p
}

// loadAvg is /proc/loadavg's first three fields: how busy the machine was.
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}
