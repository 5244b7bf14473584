// Package chaos is ferry's reliability campaign: it starts the demo world
// (localaws behind toxiproxy, a Redis it can cut off and restart), runs real
// `ferry work` processes, submits a mix of tasks covering every demo path,
// kills and restarts workers, injects AWS and network faults, and then
// audits the outcome with a ledger: every task ends with exactly one kind of
// terminal event or a dead letter, stored copies match their sources, no
// multipart upload is left open, and no secret reaches a log line or a
// Redis value.
package chaos

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	toxiproxy "github.com/Shopify/toxiproxy/v2"
	toxiclient "github.com/Shopify/toxiproxy/v2/client"
	smithytime "github.com/aws/smithy-go/time"
	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"
	"golang.org/x/sync/errgroup"

	"github.com/ferryworks/ferry/internal/demo"
	"github.com/ferryworks/ferry/internal/devproc"
	"github.com/ferryworks/ferry/internal/localaws"
	"github.com/ferryworks/ferry/internal/redisconn"
)

// Options shapes a campaign. Zero values take the `make chaos` defaults.
type Options struct {
	// Tasks is how many tasks are submitted (default 10,000).
	Tasks int
	// Workers is how many `ferry work` processes run (default 4).
	Workers int
	// Concurrency is FERRY_CONCURRENCY of each worker (default 8).
	Concurrency int
	// KillEvery is the mean interval between SIGKILLs of a random worker,
	// which is restarted at once (default 5 s; negative disables kills).
	KillEvery time.Duration
	// FaultRate is the share of AWS calls of each faulted operation that
	// fail (default 0.05; negative disables AWS faults).
	FaultRate float64
	// MaxObjectBytes caps the extra source objects (default 64 MiB).
	MaxObjectBytes int64
	// NoNetworkFaults disables the toxiproxy latency and reset toxics.
	NoNetworkFaults bool
	// PlainHTTP serves the local AWS over http; by default it serves
	// https, the transport of production (uploads travel aws-chunked with
	// trailing checksums, which the local AWS verifies).
	PlainHTTP bool
	// RedisOutage is how long Redis is unreachable once per run (default
	// 30 s; negative disables). It starts RedisOutageAt into the run
	// (default 20 s).
	RedisOutage   time.Duration
	RedisOutageAt time.Duration
	// NoRedisRestart disables the restart that loses every key. It happens
	// RedisRestartAt into the run (default 70 s), after the outage.
	NoRedisRestart bool
	RedisRestartAt time.Duration
	// RedisCluster runs the fleet on a throwaway Redis Cluster the
	// campaign starts (six redis-server processes: three masters, three
	// replicas) with FERRY_REDIS_MODE=cluster, instead of one
	// redis-server. The workers reach the nodes directly: toxiproxy cannot
	// stand in front of a cluster, whose clients connect to the addresses
	// the nodes announce. So the Redis outage, the key-losing restart and
	// the Redis network faults do not apply (asking for an outage is an
	// error); a master's SIGKILL (FailoverAt) takes their place.
	RedisCluster bool
	// FailoverAt is when, into the run, the cluster master serving the
	// integration registry's marker (which every task reads) is killed
	// with SIGKILL, so that its replica takes over (default 30 s; negative
	// disables). Only with RedisCluster.
	FailoverAt time.Duration
	// SubmitOver spreads the submissions over this long, so that the
	// kills, the outage and the restart hit a fleet with work in hand
	// (default: 90 s, or 40 tasks a second for big runs).
	SubmitOver time.Duration
	// Seed makes the task mix and the chaos schedule reproducible.
	Seed uint64
	// Timeout bounds the whole campaign (default 30 min); tasks without an
	// outcome by then are counted lost.
	Timeout time.Duration
	// Dir receives the ferry binary and the workers' logs; "" makes a
	// temporary directory that is removed afterwards.
	Dir string
	// Ferry is a prebuilt ferry binary; "" builds ./cmd/ferry.
	Ferry string
	// Log receives the campaign's progress; the zero value discards it.
	Log zerolog.Logger
}

func (o *Options) defaults() {
	if o.Tasks <= 0 {
		o.Tasks = 10000
	}
	if o.Workers <= 0 {
		o.Workers = 4
	}
	if o.Concurrency <= 0 {
		o.Concurrency = 8
	}
	if o.KillEvery == 0 {
		o.KillEvery = 5 * time.Second
	}
	if o.FaultRate == 0 {
		o.FaultRate = 0.05
	}
	if o.MaxObjectBytes <= 0 {
		o.MaxObjectBytes = 64 << 20
	}
	if o.RedisCluster {
		if o.RedisOutage == 0 {
			o.RedisOutage = -1
		}
		o.NoRedisRestart = true
		if o.FailoverAt == 0 {
			o.FailoverAt = 30 * time.Second
		}
	}
	if o.RedisOutage == 0 {
		o.RedisOutage = 30 * time.Second
	}
	if o.RedisOutageAt <= 0 {
		o.RedisOutageAt = 20 * time.Second
	}
	if o.RedisRestartAt <= 0 {
		o.RedisRestartAt = 70 * time.Second
	}
	if o.SubmitOver <= 0 {
		o.SubmitOver = max(90*time.Second, time.Duration(o.Tasks)*time.Second/40)
	}
	if o.Timeout <= 0 {
		o.Timeout = 30 * time.Minute
	}
}

// visibility is the workers' FERRY_VISIBILITY_TIMEOUT: short, so a message a
// killed worker held comes back quickly, and so does one whose receive reply
// kumo lost (docs/architecture.md, Local AWS in tests).
const visibility = 10 * time.Second

// Run executes one campaign and returns its report. An error means the
// campaign itself could not run (no redis-server, build failure); a run
// whose ledger does not balance returns a Report with Failures.
func Run(ctx context.Context, o Options) (*Report, error) {
	o.defaults()
	if o.RedisCluster && o.RedisOutage > 0 {
		return nil, fmt.Errorf("chaos: a Redis outage needs toxiproxy in front of one redis-server; on a Redis Cluster the campaign kills a master instead (FailoverAt)")
	}
	if !o.RedisCluster && o.FailoverAt > 0 {
		return nil, fmt.Errorf("chaos: FailoverAt kills a Redis Cluster master: it needs RedisCluster")
	}
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	log := o.Log
	rep := &Report{Tasks: o.Tasks, Workers: o.Workers, Faults: map[string]int64{}}

	dir := o.Dir
	if dir == "" {
		d, err := os.MkdirTemp("", "ferry-chaos-")
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(d)
		dir = d
	}
	rep.Dir = dir
	bin := o.Ferry
	if bin == "" {
		log.Info().Msg("building ferry")
		var err error
		if bin, err = devproc.BuildFerry(ctx, dir); err != nil {
			return nil, err
		}
	}

	// The campaign's own client reaches Redis directly; the workers' goes
	// through toxiproxy when there is one server.
	var (
		rs         *redisServer
		rc         *redisCluster
		redisURL   string
		redisMode  = redisconn.Single
		redisProxy *toxiclient.Proxy
		err        error
	)
	if o.RedisCluster {
		if rc, err = startCluster(ctx, dir); err != nil {
			return nil, err
		}
		defer rc.stop()
		redisURL, redisMode = rc.url(), redisconn.Cluster
	} else {
		if rs, err = startRedis(ctx, dir); err != nil {
			return nil, err
		}
		defer rs.stop()
		redisURL = "redis://" + rs.addr()
	}
	rdb, err := redisconn.Open(redisURL, redisMode)
	if err != nil {
		return nil, err
	}
	defer rdb.Close()

	stack, err := localaws.Start(localaws.Options{Region: demo.DefaultRegion, TLS: !o.PlainHTTP})
	if err != nil {
		return nil, fmt.Errorf("start local AWS: %w", err)
	}
	defer stack.Close()

	// Network faults sit between the workers and both Redis and the AWS
	// endpoint; the campaign itself talks to both directly.
	tp, err := startToxiproxy(ctx)
	if err != nil {
		return nil, err
	}
	workerRedisURL := redisURL
	if rs != nil {
		if redisProxy, err = tp.proxy("redis", rs.addr()); err != nil {
			return nil, err
		}
		workerRedisURL = "redis://" + redisProxy.Listen
	}
	scheme, stackAddr, _ := strings.Cut(stack.URL, "://")
	awsProxy, err := tp.proxy("aws", stackAddr)
	if err != nil {
		return nil, err
	}

	m, env, err := demo.Seed(ctx, stack, workerRedisURL)
	if err != nil {
		return nil, fmt.Errorf("seed demo world: %w", err)
	}
	if err := demo.RegisterIntegrations(ctx, rdb, "ferry", &m); err != nil {
		return nil, err
	}
	if stack.TLS() {
		// The workers trust the local AWS as devstack -tls has a shell
		// trust it; the proxy passes TLS through and the certificate
		// names 127.0.0.1.
		ca := filepath.Join(dir, "localaws-ca.pem")
		if err := os.WriteFile(ca, stack.CAPEM(), 0o644); err != nil {
			return nil, fmt.Errorf("write the local AWS's CA: %w", err)
		}
		env = env.WithCABundle(ca)
	}
	byBucket, sources, err := seedObjects(ctx, stack, m, o.MaxObjectBytes)
	if err != nil {
		return nil, err
	}
	tasks := plan(o.Tasks, o.Seed, byBucket)
	led := newLedger(tasks)
	fleet := localaws.Account{ID: m.FleetAccountID, AccessKeyID: env.Lookup("AWS_ACCESS_KEY_ID"), SecretAccessKey: env.Lookup("AWS_SECRET_ACCESS_KEY")}
	a := newAWS(stack, fleet, m)

	workers := make([]*workerProc, o.Workers)
	wenv := workerEnv(env, scheme+"://"+awsProxy.Listen, redisMode, o.Concurrency)
	for i := range workers {
		workers[i] = &workerProc{id: i, bin: bin, env: wenv, logPath: filepath.Join(dir, fmt.Sprintf("worker-%d.log", i))}
		if err := workers[i].start(); err != nil {
			return nil, err
		}
	}
	defer func() {
		for _, w := range workers {
			w.kill()
		}
	}()

	// Collectors run until the ledger is final.
	collectCtx, stopCollect := context.WithCancel(context.WithoutCancel(ctx))
	var cg errgroup.Group
	cg.Go(func() error { a.collectEvents(collectCtx, led); return nil })
	cg.Go(func() error { a.collectDLQ(collectCtx, led); return nil })
	defer func() { stopCollect(); _ = cg.Wait() }()

	if !(o.FaultRate < 0) {
		if err := injectAWSFaults(stack, o.FaultRate); err != nil {
			return nil, err
		}
	}
	if !o.NoNetworkFaults {
		if err := tp.steadyToxics(redisProxy, awsProxy); err != nil {
			return nil, err
		}
	}

	log.Info().Int("tasks", len(tasks)).Int("workers", o.Workers).Dur("over", o.SubmitOver).Msg("submitting")
	runStart := time.Now()
	chaosCtx, stopChaos := context.WithCancel(ctx)
	submitted := make(chan error, 1)
	go func() {
		err := a.submit(ctx, tasks, o.SubmitOver, led)
		rep.Submitted = time.Since(runStart)
		submitted <- err
	}()

	var chaosWG sync.WaitGroup
	chaosWG.Add(1)
	go func() {
		defer chaosWG.Done()
		runChaos(chaosCtx, &o, rep, workers, rs, rc, rdb, &m, tp, redisProxy, awsProxy, led, runStart)
	}()

	if err := <-submitted; err != nil {
		stopChaos()
		chaosWG.Wait()
		return nil, err
	}
	// Wait until every task is settled and the tasks queue is empty.
	last := time.Now()
	for {
		done, total := led.settled()
		vis, inflight := a.queueDepth(ctx, m.Queues.Tasks)
		if done == total && vis+inflight == 0 {
			break
		}
		if ctx.Err() != nil {
			rep.Failures = append(rep.Failures, fmt.Sprintf("campaign timed out after %v with %d/%d tasks settled", o.Timeout, done, total))
			break
		}
		if time.Since(last) > 10*time.Second {
			last = time.Now()
			log.Info().Int("settled", done).Int("total", total).Int("queued", vis).Int("in_flight", inflight).
				Dur("elapsed", time.Since(runStart).Round(time.Second)).Msg("progress")
		}
		time.Sleep(500 * time.Millisecond)
	}
	stopChaos()
	chaosWG.Wait()
	stack.ClearFaults()
	_ = tp.client.ResetState()
	rep.Settled = time.Since(runStart)
	// A quiet period catches late duplicates: a delivery a killed worker
	// held comes back after the visibility timeout.
	quietUntil := time.Now().Add(visibility + 5*time.Second)
	for time.Now().Before(quietUntil) && ctx.Err() == nil {
		time.Sleep(500 * time.Millisecond)
	}
	for _, w := range workers {
		w.kill()
	}
	stopCollect()
	_ = cg.Wait()

	for op, c := range stack.Stats() {
		if n := c["fault"]; n > 0 {
			rep.Faults["aws "+op] += n
		}
	}
	if rep.Failover != nil {
		rep.Failover.measure(led, workers)
	}
	vctx := context.WithoutCancel(ctx)
	rep.audit(vctx, led, a, sources, rdb, workers, secretsOf(m, fleet))
	rep.Wall = time.Since(start)
	return rep, nil
}

// workerEnv is the environment of every `ferry work`: the devstack's, with
// the AWS endpoint behind toxiproxy and settings sized for the campaign.
func workerEnv(env demo.Env, awsEndpoint string, redisMode redisconn.Mode, concurrency int) []string {
	var out []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "AWS_") || strings.HasPrefix(kv, "FERRY_") {
			continue
		}
		out = append(out, kv)
	}
	for _, v := range env {
		val := v.Value
		if v.Name == "AWS_ENDPOINT_URL" {
			val = awsEndpoint
		}
		out = append(out, v.Name+"="+val)
	}
	return append(out,
		"FERRY_REDIS_MODE="+string(redisMode),
		"FERRY_METRICS_ADDR=off",
		fmt.Sprintf("FERRY_CONCURRENCY=%d", concurrency),
		fmt.Sprintf("FERRY_VISIBILITY_TIMEOUT=%ds", int(visibility/time.Second)),
		"FERRY_SHUTDOWN_TIMEOUT=20s",
		"FERRY_PART_SIZE=5MiB",
		"FERRY_LOG_FORMAT=json",
		"FERRY_LOG_LEVEL=debug",
	)
}

// runChaos is the schedule: SIGKILLs every ~KillEvery, one SIGTERM, the
// Redis outage, the Redis restart (or, on a cluster, a master's SIGKILL),
// and bursts of connection resets.
func runChaos(ctx context.Context, o *Options, rep *Report, workers []*workerProc, rs *redisServer, rc *redisCluster,
	rdb redis.UniversalClient, m *demo.Manifest, tp *toxi, redisProxy, awsProxy *toxiclient.Proxy, led *ledger, runStart time.Time) {
	r := rand.New(rand.NewPCG(o.Seed, 7))
	log := o.Log
	var g sync.WaitGroup
	defer g.Wait()
	if rc != nil && o.FailoverAt > 0 {
		g.Add(1)
		go func() {
			defer g.Done()
			if !sleepUntil(ctx, runStart.Add(o.FailoverAt)) {
				return
			}
			f := &Failover{At: time.Since(runStart)}
			log.Info().Msg("redis cluster: SIGKILL of the registry marker's master")
			// The watch outlives the chaos context: a run that settles
			// during the failover must still see it through.
			err := rc.failover(context.WithoutCancel(ctx), "ferry:registry", time.Minute, f)
			rep.mu.Lock()
			rep.Failover = f
			rep.Faults["redis cluster master SIGKILL"]++
			if err != nil {
				rep.Failures = append(rep.Failures, "redis cluster failover: "+err.Error())
			}
			rep.mu.Unlock()
			log.Info().Str("master", f.Master).Str("replica", f.Replica).Dur("promoted", f.Promoted).
				Dur("recovered", f.Recovered).Msg("redis cluster failover done")
		}()
	}
	if o.RedisOutage > 0 && redisProxy != nil {
		g.Add(1)
		go func() {
			defer g.Done()
			if !sleepUntil(ctx, runStart.Add(o.RedisOutageAt)) {
				return
			}
			log.Info().Dur("for", o.RedisOutage).Msg("redis outage begins")
			from := time.Now()
			led.setOutage(from, time.Time{})
			if err := redisProxy.Disable(); err != nil {
				rep.note("redis outage: disable proxy: %v", err)
				return
			}
			sleepUntil(context.WithoutCancel(ctx), from.Add(o.RedisOutage))
			if err := redisProxy.Enable(); err != nil {
				rep.note("redis outage: enable proxy: %v", err)
			}
			led.setOutage(from, time.Now())
			rep.mu.Lock()
			rep.Faults["redis outage"]++
			rep.mu.Unlock()
			log.Info().Msg("redis outage ends")

			if o.NoRedisRestart || !sleepUntil(ctx, runStart.Add(max(o.RedisRestartAt, o.RedisOutageAt+o.RedisOutage+10*time.Second))) {
				return
			}
			// The restart loses every key. Integrations are the system of
			// record and are restored (ferry integration import) before the
			// fleet reconnects: the campaign tests what the fleet does with
			// lost credentials, locks and task states, not a missing
			// registry (see the report's notes).
			log.Info().Msg("redis restart (all keys lost)")
			_ = redisProxy.Disable()
			rctx := context.WithoutCancel(ctx)
			if err := rs.restart(rctx); err != nil {
				rep.note("redis restart: %v", err)
			}
			if err := demo.RegisterIntegrations(rctx, rdb, "ferry", m); err != nil {
				rep.note("redis restart: restore integrations: %v", err)
			}
			if err := redisProxy.Enable(); err != nil {
				rep.note("redis restart: enable proxy: %v", err)
			}
			rep.mu.Lock()
			rep.Faults["redis restart (keys lost)"]++
			rep.mu.Unlock()
		}()
	}
	if !o.NoNetworkFaults {
		g.Add(1)
		// Each schedule has a generator of its own (rand.Rand is not safe
		// for concurrent use), seeded from the run's seed.
		nr := rand.New(rand.NewPCG(o.Seed, 11))
		go func() {
			defer g.Done()
			for i := 0; ; i++ {
				if smithytime.SleepWithContext(ctx, time.Duration(5000+nr.IntN(5000))*time.Millisecond) != nil {
					return
				}
				p, name := awsProxy, "aws"
				if i%2 == 1 && redisProxy != nil {
					p, name = redisProxy, "redis"
				}
				if err := tp.resetBurst(ctx, p, 300*time.Millisecond); err != nil {
					rep.note("reset burst on %s: %v", name, err)
					continue
				}
				rep.mu.Lock()
				rep.Faults["network reset burst "+name]++
				rep.mu.Unlock()
			}
		}()
	}
	if o.KillEvery < 0 {
		<-ctx.Done()
		return
	}
	termDone := false
	for tick := 1; ; tick++ {
		jitter := time.Duration(r.Int64N(int64(o.KillEvery))) - o.KillEvery/2
		if smithytime.SleepWithContext(ctx, o.KillEvery+jitter) != nil {
			return
		}
		w := workers[r.IntN(len(workers))]
		if !termDone && tick == 4 {
			// The graceful path, once: SIGTERM while tasks are in flight;
			// the worker must drain and exit 0.
			termDone = true
			log.Info().Int("worker", w.id).Msg("SIGTERM")
			err, exited := w.signal(syscall.SIGTERM, 40*time.Second)
			rep.mu.Lock()
			rep.Terms++
			switch {
			case !exited:
				rep.Failures = append(rep.Failures, fmt.Sprintf("worker %d did not exit within 40 s of SIGTERM", w.id))
				w.kill()
			case err != nil:
				rep.Failures = append(rep.Failures, fmt.Sprintf("worker %d exited with %v after SIGTERM, want 0", w.id, err))
			default:
				rep.GracefulExits++
			}
			rep.mu.Unlock()
		} else {
			w.kill()
			rep.mu.Lock()
			rep.Kills++
			rep.mu.Unlock()
		}
		if err := w.start(); err != nil {
			rep.note("restart worker %d: %v", w.id, err)
		}
	}
}

func sleepUntil(ctx context.Context, at time.Time) bool {
	return smithytime.SleepWithContext(ctx, time.Until(at)) == nil
}

// injectAWSFaults sets the campaign's AWS faults: each faulted operation
// fails rate of its calls, split between the failures AWS really answers
// with: throttling, server errors, dropped connections and slow answers.
func injectAWSFaults(stack *localaws.Stack, rate float64) error {
	var faults []localaws.Fault
	split := func(op string, fs ...localaws.Fault) {
		for _, f := range fs {
			f.Operation = op
			f.Probability = rate / float64(len(fs))
			faults = append(faults, f)
		}
	}
	s3Kinds := []localaws.Fault{
		{Status: 503, Code: "SlowDown"},
		{Status: 500, Code: "InternalError"},
		{Drop: true},
		{LatencyMS: 2000},
		{LatencyMS: 5000},
		{LatencyMS: 10000},
	}
	split("s3:GetObject", s3Kinds...)
	split("s3:UploadPart", s3Kinds...)
	split("s3:PutObject", localaws.Fault{Status: 503, Code: "SlowDown"}, localaws.Fault{Status: 500, Code: "InternalError"})
	for _, op := range []string{"sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:DeleteMessageBatch", "sqs:ChangeMessageVisibility", "sqs:ChangeMessageVisibilityBatch"} {
		split(op, localaws.Fault{Status: 500, Code: "InternalError"})
	}
	split("sts:AssumeRole", localaws.Fault{Code: "Throttling", Status: 400})
	for _, f := range faults {
		if err := stack.InjectFault(f); err != nil {
			return fmt.Errorf("inject %s: %w", f.Operation, err)
		}
	}
	return nil
}

// toxi is a toxiproxy server run in this process and a client of it.
type toxi struct {
	client *toxiclient.Client
}

func startToxiproxy(ctx context.Context) (*toxi, error) {
	port, err := devproc.FreePort()
	if err != nil {
		return nil, err
	}
	srv := toxiproxy.NewServer(toxiproxy.NewMetricsContainer(nil), zerolog.Nop())
	go srv.Listen("127.0.0.1", fmt.Sprint(port))
	c := toxiclient.NewClient(fmt.Sprintf("127.0.0.1:%d", port))
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := c.Proxies(); err == nil {
			return &toxi{client: c}, nil
		} else if time.Now().After(deadline) || ctx.Err() != nil {
			return nil, fmt.Errorf("toxiproxy did not start: %w", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (t *toxi) proxy(name, upstream string) (*toxiclient.Proxy, error) {
	port, err := devproc.FreePort()
	if err != nil {
		return nil, err
	}
	p, err := t.client.CreateProxy(name, fmt.Sprintf("127.0.0.1:%d", port), upstream)
	if err != nil {
		return nil, fmt.Errorf("toxiproxy %s: %w", name, err)
	}
	return p, nil
}

// steadyToxics add latency to a share of connections for the whole run.
func (t *toxi) steadyToxics(redisProxy, awsProxy *toxiclient.Proxy) error {
	if _, err := redisProxy.AddToxic("redis-latency", "latency", "downstream", 0.2, toxiclient.Attributes{"latency": 20, "jitter": 20}); err != nil {
		return err
	}
	_, err := awsProxy.AddToxic("aws-latency", "latency", "downstream", 0.1, toxiclient.Attributes{"latency": 50, "jitter": 50})
	return err
}

// resetBurst resets every connection that carries data for d.
func (t *toxi) resetBurst(ctx context.Context, p *toxiclient.Proxy, d time.Duration) error {
	if _, err := p.AddToxic("reset", "reset_peer", "downstream", 1, toxiclient.Attributes{"timeout": 0}); err != nil {
		return err
	}
	_ = smithytime.SleepWithContext(context.WithoutCancel(ctx), d)
	return p.RemoveToxic("reset")
}

// Report is what a campaign measured.
type Report struct {
	mu sync.Mutex

	Tasks, Workers int
	Dir            string
	Submitted      time.Duration // time to enqueue every message
	Settled        time.Duration // until every task had its outcome
	Wall           time.Duration

	Outcomes        map[string]int
	Lost            []string
	Conflicting     []string
	WrongOutcome    []string
	DuplicateEvents int
	Events          int
	DLQ             int
	DLQInvalid      int
	DLQExhausted    []string
	DLQNoLastError  []string
	DLQAfterEvent   int
	DLQCopies       int
	MissingFromDLQ  []string
	Unexpected      []string
	DuringOutage    map[string]int

	CopiesChecked      int
	ChecksumFailures   []string
	OpenUploads        []string
	UnreferencedCopies int
	// DeadUploadsAborted counts the uploads left open by killed attempts of
	// tasks that then exhausted their receives, aborted as a DLQ purge does.
	DeadUploadsAborted int

	LogLinesScanned int
	RedisValues     int
	SecretLeaks     []string

	Kills, Terms, GracefulExits int
	Faults                      map[string]int64
	// Failover is the Redis Cluster failover's measure (RedisCluster).
	Failover *Failover
	Notes    []string
	Failures []string
}

func (r *Report) note(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.Notes = append(r.Notes, fmt.Sprintf(format, args...))
}

// OK reports whether the ledger balanced and every check passed.
func (r *Report) OK() bool { return len(r.Failures) == 0 }

// String renders the report for a terminal.
func (r *Report) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "chaos campaign: %d tasks, %d workers, wall %v (submitted in %v, settled after %v)\n",
		r.Tasks, r.Workers, r.Wall.Round(time.Second), r.Submitted.Round(time.Millisecond), r.Settled.Round(time.Second))
	fmt.Fprintf(&b, "  outcomes:            %v (%d events received)\n", r.Outcomes, r.Events)
	fmt.Fprintf(&b, "  lost:                %d\n", len(r.Lost))
	fmt.Fprintf(&b, "  conflicting:         %d\n", len(r.Conflicting))
	fmt.Fprintf(&b, "  wrong outcome:       %d\n", len(r.WrongOutcome))
	fmt.Fprintf(&b, "  duplicate identical events: %d\n", r.DuplicateEvents)
	fmt.Fprintf(&b, "  DLQ:                 %d messages (%d invalid as expected, %d valid tasks that exhausted their receives [%d without a recorded last error], %d valid after their event, %d extra copies)\n",
		r.DLQ, r.DLQInvalid, len(r.DLQExhausted), len(r.DLQNoLastError), r.DLQAfterEvent, r.DLQCopies)
	if len(r.DuringOutage) > 0 {
		fmt.Fprintf(&b, "  events during the Redis outage: %v\n", r.DuringOutage)
	}
	if r.Failover != nil {
		b.WriteString(r.Failover.String())
	}
	fmt.Fprintf(&b, "  stored copies checked: %d, sha256 mismatches: %d, open multipart uploads: %d (after the DLQ purge aborted %d of dead-lettered tasks), objects no event names: %d\n",
		r.CopiesChecked, len(r.ChecksumFailures), len(r.OpenUploads), r.DeadUploadsAborted, r.UnreferencedCopies)
	fmt.Fprintf(&b, "  secret scan: %d log lines, %d Redis values, %d leaks\n", r.LogLinesScanned, r.RedisValues, len(r.SecretLeaks))
	fmt.Fprintf(&b, "  workers: %d SIGKILLs, %d SIGTERM (%d clean exits)\n", r.Kills, r.Terms, r.GracefulExits)
	keys := make([]string, 0, len(r.Faults))
	for k := range r.Faults {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	b.WriteString("  faults injected:\n")
	for _, k := range keys {
		fmt.Fprintf(&b, "    %-45s %d\n", k, r.Faults[k])
	}
	for _, n := range r.Notes {
		fmt.Fprintf(&b, "  note: %s\n", n)
	}
	if r.OK() {
		b.WriteString("  RESULT: PASS\n")
	} else {
		b.WriteString("  RESULT: FAIL\n")
		for _, f := range r.Failures {
			fmt.Fprintf(&b, "    - %s\n", f)
		}
	}
	return b.String()
}
