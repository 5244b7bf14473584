package redisconn

import (
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"
)

func TestOpen(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		url   string
		mode  Mode
		addrs []string // wanted seed addresses; nil when Open must fail
		tls   bool
	}{
		{"single", "redis://127.0.0.1:6379/0", Single, []string{"127.0.0.1:6379"}, false},
		{"single unix", "unix:///run/redis.sock", Single, []string{"/run/redis.sock"}, false},
		{"cluster one seed", "redis://10.0.0.1:7000", Cluster, []string{"10.0.0.1:7000"}, false},
		{"cluster seeds", "redis://10.0.0.1:7000?addr=10.0.0.2:7001&addr=10.0.0.3:7002", Cluster,
			[]string{"10.0.0.1:7000", "10.0.0.2:7001", "10.0.0.3:7002"}, false},
		{"cluster tls", "rediss://u:secret@h1:6379?addr=h2:6379", Cluster, []string{"h1:6379", "h2:6379"}, true},
		{"cluster unix refused", "unix:///run/redis.sock", Cluster, nil, false},
		{"cluster unknown option", "redis://h1:6379?bogus=1", Cluster, nil, false},
		{"cluster database", "redis://u:secret@h1:6379/3", Cluster, nil, false},
		{"cluster seed without port", "redis://h1:6379?addr=h2", Cluster, nil, false},
		{"single bad scheme", "http://h1:6379", Single, nil, false},
		{"unknown mode", "redis://h1:6379", "sentinel", nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c, err := Open(tc.url, tc.mode)
			if tc.addrs == nil {
				if err == nil {
					_ = c.Close()
					t.Fatalf("Open(%q, %v) succeeded, want an error", tc.url, tc.mode)
				}
				if strings.Contains(err.Error(), "secret") {
					t.Errorf("error shows the password: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Open(%q, %v): %v", tc.url, tc.mode, err)
			}
			defer c.Close()
			switch c := c.(type) {
			case *redis.Client:
				if tc.mode == Cluster {
					t.Fatalf("got a single-server client for a cluster URL")
				}
				if got := c.Options().Addr; got != tc.addrs[0] {
					t.Errorf("addr %q, want %q", got, tc.addrs[0])
				}
			case *redis.ClusterClient:
				if tc.mode != Cluster {
					t.Fatalf("got a cluster client in single mode")
				}
				o := c.Options()
				if strings.Join(o.Addrs, ",") != strings.Join(tc.addrs, ",") {
					t.Errorf("seeds %v, want %v", o.Addrs, tc.addrs)
				}
				if (o.TLSConfig != nil) != tc.tls {
					t.Errorf("TLS %v, want %v", o.TLSConfig != nil, tc.tls)
				}
			default:
				t.Fatalf("unexpected client %T", c)
			}
		})
	}
}

func TestClusterURLRoundTrip(t *testing.T) {
	t.Parallel()
	addrs := []string{"127.0.0.1:30001", "127.0.0.1:30002", "127.0.0.1:30003"}
	u := ClusterURL(addrs)
	o, err := redis.ParseClusterURL(u)
	if err != nil {
		t.Fatalf("ParseClusterURL(%q): %v", u, err)
	}
	if strings.Join(o.Addrs, ",") != strings.Join(addrs, ",") {
		t.Errorf("ClusterURL(%v) = %q reads back as %v", addrs, u, o.Addrs)
	}
	if ClusterURL(nil) != "" {
		t.Errorf("ClusterURL(nil) is not empty")
	}
}

func TestRedact(t *testing.T) {
	t.Parallel()
	if got := Redact("rediss://user:hunter2@h:6379?addr=h2:6379"); strings.Contains(got, "hunter2") {
		t.Errorf("Redact kept the password: %s", got)
	}
	if got := Redact("redis://h:6379/0"); got != "redis://h:6379/0" {
		t.Errorf("Redact changed a URL without a password: %s", got)
	}
}
