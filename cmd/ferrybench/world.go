package main

import (
	"github.com/ferryworks/ferry/internal/devproc"

	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"
	"golang.org/x/sync/errgroup"

	"github.com/ferryworks/ferry/credcache"
	"github.com/ferryworks/ferry/internal/demo"
	"github.com/ferryworks/ferry/internal/localaws"
	"github.com/ferryworks/ferry/internal/redisconn"
)

// Access modes of bench customers, spelled as the manifest spells them.
const (
	modeDelegated    = demo.AccessDelegated
	modeCrossAccount = demo.AccessCrossAccount
)

// benchCustomer is a customer the bench seeds beside the demo world. Keys
// are the customer account's own root keys: rclone reads a delegated
// customer's bucket with them, because rclone cannot assume a role with an
// external ID.
type benchCustomer struct {
	ID         string
	AccountID  string
	Bucket     string
	Mode       string
	RoleARN    string
	ExternalID string
	Keys       localaws.Account
}

// object is one seeded source object.
type object struct {
	Customer *benchCustomer
	Key      string
	Size     int64
}

func (o object) URI() string { return "s3://" + o.Customer.Bucket + "/" + o.Key }

// world is one fresh local AWS seeded for the bench: the demo fleet, queues
// and internal bucket, the bench customers with their integrations under a
// Redis prefix of its own, and the raw loop's queues.
type world struct {
	stack     *localaws.Stack
	env       demo.Env
	fleet     localaws.Account
	prefix    string
	customers []*benchCustomer
	rawTasks  string
	rawEvents string
	sqs       *sqs.Client
	objects   map[string][]object // by object set name
	caDir     string              // holds the CA's PEM over https
	// ferryAssume and ferryRuns add up the ferry fleets run on this world.
	ferryAssume int64
	ferryRuns   int
}

// benchCustomers is how many delegated and cross-account customers a world
// has; 1 KiB tasks rotate over all of them so every delegated customer costs
// the fleet one AssumeRole.
const benchCustomersPerMode = 4

// newWorld starts a local AWS and seeds it. rdb is the Redis the workers use;
// the world's integrations go under a fresh prefix so credentials cached for
// an earlier (closed) stack are never presented to this one.
//
// With useTLS the stack serves https from a CA generated at start, written
// to a file the world's clients are pointed at (AWS_CA_BUNDLE for ferry
// and the raw loop, RCLONE_CA_CERT for rclone): the transport production
// uses, with aws-chunked bodies and trailing checksums.
func newWorld(ctx context.Context, rdb redis.UniversalClient, redisURL string, useTLS bool, log zerolog.Logger) (*world, error) {
	// kumo's long polls end with EOF when a stack closes; only the gate's
	// real failures are worth a line.
	quiet := log.Level(zerolog.ErrorLevel)
	stack, err := localaws.Start(localaws.Options{Region: demo.DefaultRegion, Logger: &quiet, TLS: useTLS})
	if err != nil {
		return nil, fmt.Errorf("start local AWS: %w", err)
	}
	w := &world{stack: stack, prefix: "fb" + randHex(6), objects: map[string][]object{}}
	ok := false
	defer func() {
		if !ok {
			_ = w.close()
		}
	}()
	_, env, err := demo.Seed(ctx, stack, redisURL)
	if err != nil {
		return nil, fmt.Errorf("seed demo world: %w", err)
	}
	if useTLS {
		if w.caDir, err = os.MkdirTemp("", "ferrybench-ca"); err != nil {
			return nil, err
		}
		ca := filepath.Join(w.caDir, "ca.pem")
		if err := os.WriteFile(ca, stack.CAPEM(), 0o600); err != nil {
			return nil, err
		}
		env = env.WithCABundle(ca)
	}
	w.env = env
	w.fleet = localaws.Account{ID: demo.FleetAccountID, AccessKeyID: env.Lookup("AWS_ACCESS_KEY_ID"), SecretAccessKey: env.Lookup("AWS_SECRET_ACCESS_KEY")}
	w.sqs = stack.SQSClient(w.fleet, demo.DefaultRegion)
	if w.rawTasks, err = stack.CreateQueue(ctx, localaws.Queue{Name: "bench-raw-tasks", VisibilityTimeout: 10 * time.Second}); err != nil {
		return nil, err
	}
	if w.rawEvents, err = stack.CreateQueue(ctx, localaws.Queue{Name: "bench-raw-events"}); err != nil {
		return nil, err
	}
	reg, err := credcache.NewRegistry(credcache.Options{Redis: rdb, Prefix: w.prefix, Keys: demo.DevCacheKeys()})
	if err != nil {
		return nil, err
	}
	for i := range 2 * benchCustomersPerMode {
		mode, n := modeDelegated, i/2+1
		if i%2 == 1 {
			mode = modeCrossAccount
		}
		c := &benchCustomer{
			ID:        fmt.Sprintf("bench-%c%d", mode[0], n),
			AccountID: fmt.Sprintf("7%011d", i+1),
			Mode:      mode,
		}
		c.Bucket = c.ID + "-data"
		if c.Keys, err = stack.NewAccount(c.AccountID); err != nil {
			return nil, err
		}
		b := localaws.Bucket{Name: c.Bucket, Owner: c.AccountID}
		if mode == modeCrossAccount {
			b.Policy = credcache.BucketPolicy(c.Bucket, w.fleet.ID)
		}
		if err := stack.CreateBucket(ctx, b); err != nil {
			return nil, err
		}
		if mode == modeDelegated {
			c.ExternalID = "ferrybench-" + randHex(12)
			if c.RoleARN, err = stack.PutRole(localaws.Role{
				AccountID: c.AccountID, Name: credcache.DefaultRoleName,
				TrustPolicy: credcache.TrustPolicy(w.fleet.ID, c.ExternalID),
				Policies:    []string{credcache.RolePolicy(c.Bucket)},
			}); err != nil {
				return nil, err
			}
			_, err = reg.Enable(ctx, c.ID, c.AccountID, c.ExternalID)
		} else {
			_, err = reg.RegisterAccount(ctx, c.ID, c.AccountID)
		}
		if err != nil {
			return nil, fmt.Errorf("register %s: %w", c.ID, err)
		}
		w.customers = append(w.customers, c)
	}
	ok = true
	return w, nil
}

func (w *world) close() error {
	err := w.stack.Close()
	if w.caDir != "" {
		_ = os.RemoveAll(w.caDir)
	}
	return err
}

// delegated counts the world's delegated customers.
func (w *world) delegated() int {
	n := 0
	for _, c := range w.customers {
		if c.Mode == modeDelegated {
			n++
		}
	}
	return n
}

// seed puts count objects of size under name, rotating over the first
// nCustomers customers (delegated and cross-account alternate), with
// deterministic content. kumo serialises writes, so more than two uploads
// at once buy nothing.
func (w *world) seed(ctx context.Context, name string, size int64, count, nCustomers int) ([]object, error) {
	if objs, ok := w.objects[name]; ok {
		return objs, nil
	}
	nCustomers = min(max(nCustomers, 1), len(w.customers))
	objs := make([]object, count)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(2)
	for i := range objs {
		c := w.customers[i%nCustomers]
		objs[i] = object{Customer: c, Key: fmt.Sprintf("bench/%s/%04d.bin", name, i), Size: size}
		o := objs[i]
		g.Go(func() error {
			return w.stack.PutObject(gctx, o.Customer.Bucket, o.Key, demo.SampleContent(o.Customer.Bucket, o.Key, size), size, "application/octet-stream")
		})
	}
	if err := g.Wait(); err != nil {
		return nil, fmt.Errorf("seed %s: %w", name, err)
	}
	w.objects[name] = objs
	return objs, nil
}

// assumeRoleOK is the number of successful AssumeRole calls the stack served.
func (w *world) assumeRoleOK() int64 { return w.stack.Stats()["sts:AssumeRole"]["ok"] }

// workerEnv is the environment of a `ferry work` process on this world.
func (w *world) workerEnv(redisURL string, mode redisconn.Mode) []string {
	// The caller's AWS and FERRY settings would point the worker elsewhere.
	env := cleanEnv("AWS_", "FERRY_")
	for _, v := range w.env {
		val := v.Value
		if v.Name == "FERRY_REDIS_URL" {
			val = redisURL
		}
		env = append(env, v.Name+"="+val)
	}
	return append(env, "FERRY_REDIS_PREFIX="+w.prefix, "FERRY_REDIS_MODE="+string(mode))
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)[:n]
}

// redisServer is a private redis-server, so INFO commandstats counts ferry's
// commands and nobody else's.
type redisServer struct {
	url string
	cmd *exec.Cmd
}

func startRedisServer(ctx context.Context, dir string) (*redisServer, error) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return nil, fmt.Errorf("redis-server not found (Debian: apt-get install redis-server; `make bench` installs it): %w", err)
	}
	for attempt := 0; attempt < 5; attempt++ {
		port, err := devproc.FreePort()
		if err != nil {
			return nil, err
		}
		cmd := exec.Command(bin, "--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "",
			"--appendonly", "no", "--dir", dir, "--loglevel", "warning")
		setChildAttrs(cmd)
		if err := cmd.Start(); err != nil {
			return nil, fmt.Errorf("start redis-server: %w", err)
		}
		r := &redisServer{url: "redis://127.0.0.1:" + strconv.Itoa(port) + "/0", cmd: cmd}
		c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:" + strconv.Itoa(port), MaxRetries: -1})
		deadline := time.Now().Add(10 * time.Second)
		for time.Now().Before(deadline) {
			if c.Ping(ctx).Err() == nil {
				_ = c.Close()
				return r, nil
			}
			time.Sleep(50 * time.Millisecond)
		}
		_ = c.Close()
		r.stop() // lost the port to someone else: try another
	}
	return nil, fmt.Errorf("redis-server did not start")
}

func (r *redisServer) stop() {
	if r.cmd.Process != nil {
		_ = r.cmd.Process.Kill()
		_ = r.cmd.Wait()
	}
}

// commandCalls sums INFO commandstats calls, leaving out INFO itself. ok is
// false when the server does not report command statistics.
func commandCalls(ctx context.Context, rdb redis.UniversalClient) (int64, bool) {
	stats, ok := commandStats(ctx, rdb)
	var total int64
	for _, n := range stats {
		total += n
	}
	return total, ok
}
