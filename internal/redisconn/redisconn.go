// Package redisconn opens ferry's Redis client from a URL and a mode: one
// server (go-redis's ParseURL form) or a Redis Cluster (its ParseClusterURL
// form, seed nodes as addr= query parameters). Every command, the devstack
// and the test helpers open Redis here, so both deployments are read the
// same way everywhere.
package redisconn

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"strings"
	"sync"

	"github.com/redis/go-redis/v9"
)

// Mode says whether a Redis URL names one server or the seed nodes of a
// Redis Cluster (FERRY_REDIS_MODE).
type Mode string

// Redis modes.
const (
	// Single is one server (or a primary behind a failover endpoint): the
	// URL is redis://, rediss:// or unix://.
	Single Mode = "single"
	// Cluster is a Redis Cluster (ElastiCache cluster mode, or
	// self-hosted): the URL is go-redis's cluster URL,
	// redis://host:port?addr=host2:port2&addr=… (rediss:// for TLS), naming
	// one or more seed nodes; the client discovers the rest and follows
	// failovers.
	Cluster Mode = "cluster"
)

// Modes lists the valid modes, the default first.
func Modes() []Mode { return []Mode{Single, Cluster} }

// CheckURL reports whether rawURL is a URL Open reads in mode, saying what
// is wrong (never the password).
func CheckURL(rawURL string, mode Mode) error {
	c, err := Open(rawURL, mode)
	if err != nil {
		return err
	}
	return c.Close()
}

// Open returns a client for url without contacting Redis: a *redis.Client
// for one server, or in Cluster mode a *redis.ClusterClient, which
// discovers the cluster's nodes from the seeds in url and follows its
// failovers and resharding (MOVED/ASK). The error names what is wrong with
// url, never its password.
func Open(rawURL string, mode Mode) (redis.UniversalClient, error) {
	switch mode {
	case Single, "":
	case Cluster:
		return openCluster(rawURL)
	default:
		return nil, fmt.Errorf("redis mode %q: want %s or %s", mode, Single, Cluster)
	}
	opt, err := redis.ParseURL(rawURL)
	if err != nil {
		return nil, fmt.Errorf("parse redis URL %s: %w", Redact(rawURL), err)
	}
	return redis.NewClient(opt), nil
}

func openCluster(rawURL string) (redis.UniversalClient, error) {
	opt, err := redis.ParseClusterURL(rawURL)
	if err == nil {
		err = checkClusterURL(rawURL)
	}
	if err != nil {
		return nil, fmt.Errorf("parse redis cluster URL %s: %w (want redis://host:port?addr=host2:port2&addr=…)", Redact(rawURL), err)
	}
	return redis.NewClusterClient(opt), nil
}

// checkClusterURL refuses what ParseClusterURL lets through but a cluster
// cannot serve: a database other than 0 (a cluster has only database 0), a
// seed without a port.
func checkClusterURL(rawURL string) error {
	u, err := url.Parse(rawURL)
	if err != nil {
		return err
	}
	if p := strings.Trim(u.Path, "/"); p != "" && p != "0" {
		return fmt.Errorf("database %s: a cluster has only database 0", p)
	}
	for _, a := range u.Query()["addr"] {
		if _, port, err := net.SplitHostPort(a); err != nil || port == "" {
			return fmt.Errorf("seed %q: want host:port", a)
		}
	}
	return nil
}

// ClusterURL is the cluster URL (redis://first?addr=second&addr=…) of
// seed nodes given as host:port, the form Open reads in Cluster mode.
func ClusterURL(addrs []string) string {
	if len(addrs) == 0 {
		return ""
	}
	q := url.Values{}
	for _, a := range addrs[1:] {
		q.Add("addr", a)
	}
	u := url.URL{Scheme: "redis", Host: addrs[0], RawQuery: q.Encode()}
	return u.String()
}

// Keys returns every key matching pattern, walking the keyspace with SCAN:
// on one server, its keys; on a cluster, every master's (a cluster answers
// SCAN, like KEYS, for one node only). It reads the whole keyspace, so it is
// for operators and tests, never for the task path.
func Keys(ctx context.Context, c redis.UniversalClient, pattern string) ([]string, error) {
	var mu sync.Mutex
	var keys []string
	scan := func(ctx context.Context, c redis.UniversalClient) error {
		iter := c.Scan(ctx, 0, pattern, 500).Iterator()
		for iter.Next(ctx) {
			mu.Lock()
			keys = append(keys, iter.Val())
			mu.Unlock()
		}
		return iter.Err()
	}
	if cc, ok := c.(*redis.ClusterClient); ok {
		err := cc.ForEachMaster(ctx, func(ctx context.Context, n *redis.Client) error { return scan(ctx, n) })
		return keys, err
	}
	return keys, scan(ctx, c)
}

// Redact returns rawURL with its password replaced, for messages.
func Redact(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		// Do not echo something that may hold a password in a form url
		// cannot find.
		if strings.Contains(rawURL, "@") {
			return "(unparsable URL)"
		}
		return rawURL
	}
	return u.Redacted()
}
