// Package redisconn opens ferry's Redis client from a URL and a mode: one
// server (go-redis's ParseURL form) or a Redis Cluster (its ParseClusterURL
// form, seed nodes as addr= query parameters). Every command, the devstack
// and the test helpers open Redis here, so both deployments are read the
// same way everywhere.
package redisconn

import (
	"fmt"
	"net"
	"net/url"
	"strings"

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
