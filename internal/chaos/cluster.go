package chaos

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ferryworks/ferry/internal/devproc"
	"github.com/ferryworks/ferry/internal/redisconn"
)

// clusterNodeTimeout is the cluster's cluster-node-timeout: how long a
// master must be unreachable before the others mark it failed and its
// replica may take over. It is .ci/with-redis-cluster.sh's default; a
// longer one stretches a failover by as much (docs/capacity.md, Redis
// Cluster failover).
const clusterNodeTimeout = 2 * time.Second

// redisCluster is a throwaway Redis Cluster like the one
// .ci/with-redis-cluster.sh makes for the test pass (six redis-server
// processes without persistence: three masters, three replicas, joined by
// `redis-cli --cluster create`), started by the campaign itself so that it
// can SIGKILL one of its masters.
type redisCluster struct {
	nodes []*redisServer
}

func startCluster(ctx context.Context, dir string) (*redisCluster, error) {
	for _, bin := range []string{"redis-server", "redis-cli"} {
		if _, err := exec.LookPath(bin); err != nil {
			return nil, fmt.Errorf("%s not found in PATH (Debian: apt-get install redis-server redis-tools; make test installs them): %w", bin, err)
		}
	}
	c := &redisCluster{}
	for i := 0; len(c.nodes) < 6; i++ {
		if i == 30 {
			c.stop()
			return nil, fmt.Errorf("could not start six redis-server cluster nodes")
		}
		port, err := clusterPort()
		if err != nil {
			continue
		}
		ndir := filepath.Join(dir, "redis-"+strconv.Itoa(port))
		if err := os.MkdirAll(ndir, 0o755); err != nil {
			c.stop()
			return nil, err
		}
		n := &redisServer{port: port, dir: ndir, args: []string{
			"--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
			"--cluster-node-timeout", strconv.Itoa(int(clusterNodeTimeout / time.Millisecond)),
		}}
		if err := n.start(ctx); err != nil {
			continue // lost the port to another process: take another
		}
		c.nodes = append(c.nodes, n)
	}
	args := []string{"--cluster", "create"}
	args = append(args, c.addrs()...)
	args = append(args, "--cluster-replicas", "1", "--cluster-yes")
	if out, err := exec.CommandContext(ctx, "redis-cli", args...).CombinedOutput(); err != nil {
		c.stop()
		return nil, fmt.Errorf("redis-cli --cluster create: %v: %s", err, lastLines(string(out), 10))
	}
	// Ready when every node sees every slot served and every replica is in
	// sync: a failover before that would lose data the test put there.
	deadline := time.Now().Add(60 * time.Second)
	for {
		ok, why := c.ready(ctx)
		if ok {
			return c, nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			c.stop()
			return nil, fmt.Errorf("the Redis Cluster did not become ready within 60 s: %s", why)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// clusterPort is a free port whose cluster bus port (port+10000) is free too.
func clusterPort() (int, error) {
	p, err := devproc.FreePort()
	if err != nil {
		return 0, err
	}
	if p+10000 > 65535 {
		return 0, fmt.Errorf("port %d: no room for its bus port", p)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p+10000))
	if err != nil {
		return 0, err
	}
	_ = ln.Close()
	return p, nil
}

func (c *redisCluster) addrs() []string {
	out := make([]string, len(c.nodes))
	for i, n := range c.nodes {
		out[i] = n.addr()
	}
	return out
}

// url is the cluster URL of every node, the form ferry reads with
// FERRY_REDIS_MODE=cluster.
func (c *redisCluster) url() string { return redisconn.ClusterURL(c.addrs()) }

func (c *redisCluster) stop() {
	for _, n := range c.nodes {
		n.stop()
	}
}

func (c *redisCluster) node(addr string) *redisServer {
	for _, n := range c.nodes {
		if n.addr() == addr {
			return n
		}
	}
	return nil
}

// ready reports whether every node answers cluster_state:ok and every
// replica's link to its master is up; why says what is not yet so.
func (c *redisCluster) ready(ctx context.Context) (bool, string) {
	for _, n := range c.nodes {
		state, err := clusterState(ctx, n.addr())
		if err != nil || state != "ok" {
			return false, fmt.Sprintf("%s: cluster_state %q %v", n.addr(), state, err)
		}
		info, err := nodeInfo(ctx, n.addr(), "replication")
		if err != nil {
			return false, fmt.Sprintf("%s: %v", n.addr(), err)
		}
		if info["role"] == "slave" && info["master_link_status"] != "up" {
			return false, n.addr() + ": replica not in sync"
		}
	}
	return true, ""
}

// nodeClient is a client of one node, failing fast: the campaign polls.
func nodeClient(addr string) *redis.Client {
	return redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1, DialTimeout: time.Second,
		ReadTimeout: time.Second, WriteTimeout: time.Second, PoolSize: 1})
}

// nodeInfo is one INFO section of the node at addr, as field → value.
func nodeInfo(ctx context.Context, addr, section string) (map[string]string, error) {
	c := nodeClient(addr)
	defer c.Close()
	s, err := c.Info(ctx, section).Result()
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, line := range strings.Split(s, "\n") {
		if k, v, ok := strings.Cut(strings.TrimSpace(line), ":"); ok {
			out[k] = v
		}
	}
	return out, nil
}

// clusterState is CLUSTER INFO's cluster_state on the node at addr: "ok",
// or "fail" while a slot has no reachable master.
func clusterState(ctx context.Context, addr string) (string, error) {
	c := nodeClient(addr)
	defer c.Close()
	s, err := c.ClusterInfo(ctx).Result()
	if err != nil {
		return "", err
	}
	for _, line := range strings.Split(s, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "cluster_state:"); ok {
			return v, nil
		}
	}
	return "", fmt.Errorf("no cluster_state in CLUSTER INFO")
}

// clusterNode is one line of CLUSTER NODES.
type clusterNode struct {
	id, addr, masterID string
	master, failed     bool
	slots              [][2]int
}

// clusterNodes is the cluster's topology as the node at addr sees it
// (https://redis.io/docs/latest/commands/cluster-nodes/).
func clusterNodes(ctx context.Context, addr string) ([]clusterNode, error) {
	c := nodeClient(addr)
	defer c.Close()
	s, err := c.ClusterNodes(ctx).Result()
	if err != nil {
		return nil, err
	}
	var out []clusterNode
	for _, line := range strings.Split(strings.TrimSpace(s), "\n") {
		f := strings.Fields(line)
		if len(f) < 8 {
			continue
		}
		// ip:port@cport[,hostname]
		a, _, _ := strings.Cut(f[1], "@")
		n := clusterNode{id: f[0], addr: a, masterID: f[3]}
		for _, flag := range strings.Split(f[2], ",") {
			switch flag {
			case "master":
				n.master = true
			case "fail", "fail?":
				n.failed = true
			}
		}
		for _, r := range f[8:] {
			if strings.HasPrefix(r, "[") {
				continue // a slot being migrated
			}
			lo, hi, isRange := strings.Cut(r, "-")
			if !isRange {
				hi = lo
			}
			l, err1 := strconv.Atoi(lo)
			h, err2 := strconv.Atoi(hi)
			if err1 == nil && err2 == nil {
				n.slots = append(n.slots, [2]int{l, h})
			}
		}
		out = append(out, n)
	}
	return out, nil
}

// masterOf returns the master serving key and its replicas' addresses.
func (c *redisCluster) masterOf(ctx context.Context, key string) (master clusterNode, replicas []string, err error) {
	seed := c.nodes[0].addr()
	cl := nodeClient(seed)
	slot, err := cl.ClusterKeySlot(ctx, key).Result()
	cl.Close()
	if err != nil {
		return clusterNode{}, nil, err
	}
	nodes, err := clusterNodes(ctx, seed)
	if err != nil {
		return clusterNode{}, nil, err
	}
	found := false
	for _, n := range nodes {
		for _, r := range n.slots {
			if n.master && int(slot) >= r[0] && int(slot) <= r[1] {
				master, found = n, true
			}
		}
	}
	if !found {
		return clusterNode{}, nil, fmt.Errorf("no master serves slot %d of %s", slot, key)
	}
	for _, n := range nodes {
		if !n.master && n.masterID == master.id {
			replicas = append(replicas, n.addr)
		}
	}
	if len(replicas) == 0 {
		return clusterNode{}, nil, fmt.Errorf("the master %s of %s has no replica", master.addr, key)
	}
	return master, replicas, nil
}

// failover SIGKILLs the master serving key and watches the cluster until a
// replica of it is master and every live node answers cluster_state:ok
// again, or until timeout. It fills f's topology and timings.
func (c *redisCluster) failover(ctx context.Context, key string, timeout time.Duration, f *Failover) error {
	master, replicas, err := c.masterOf(ctx, key)
	if err != nil {
		return err
	}
	victim := c.node(master.addr)
	if victim == nil {
		return fmt.Errorf("master %s is not one of the campaign's nodes", master.addr)
	}
	f.Master = master.addr
	var live []string
	for _, a := range c.addrs() {
		if a != master.addr {
			live = append(live, a)
		}
	}
	killed := time.Now()
	f.killedAt = killed
	victim.stop() // SIGKILL: no goodbye to the cluster, as a crashed node
	var downFrom, downTo time.Time
	for time.Since(killed) < timeout && ctx.Err() == nil {
		now := time.Now()
		if f.Replica == "" {
			for _, r := range replicas {
				if info, err := nodeInfo(ctx, r, "replication"); err == nil && info["role"] == "master" {
					f.Replica, f.Promoted = r, now.Sub(killed)
				}
			}
		}
		allOK := true
		for _, a := range live {
			state, err := clusterState(ctx, a)
			switch {
			case err != nil:
				allOK = false
			case state != "ok":
				allOK = false
				if downFrom.IsZero() {
					downFrom = now
				}
				downTo = now
			}
		}
		if !downFrom.IsZero() {
			f.ClusterDown = downTo.Sub(downFrom)
		}
		if f.Replica != "" && allOK {
			f.Recovered = now.Sub(killed)
			f.recoveredAt = now
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	if f.Replica == "" {
		return fmt.Errorf("no replica of %s became master within %v of its SIGKILL", master.addr, timeout)
	}
	return fmt.Errorf("the cluster did not answer cluster_state:ok on every live node within %v of the SIGKILL", timeout)
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
