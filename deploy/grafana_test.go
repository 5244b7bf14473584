package deploy

import (
	"encoding/json"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"go.yaml.in/yaml/v3"

	"github.com/ferryworks/ferry/credcache"
	"github.com/ferryworks/ferry/fetcher"
	"github.com/ferryworks/ferry/internal/buildinfo"
	"github.com/ferryworks/ferry/queue"
	"github.com/ferryworks/ferry/worker"
)

// nameRecorder is a Registerer that keeps the names of the metrics its
// collectors describe. Describing, unlike gathering, also names the vectors
// that have no series yet.
type nameRecorder map[string]bool

var fqName = regexp.MustCompile(`fqName: "([^"]+)"`)

func (r nameRecorder) Register(c prometheus.Collector) error {
	ch := make(chan *prometheus.Desc)
	go func() { c.Describe(ch); close(ch) }()
	for d := range ch {
		if m := fqName.FindStringSubmatch(d.String()); m != nil {
			r[m[1]] = true
		}
	}
	return nil
}

func (r nameRecorder) MustRegister(cs ...prometheus.Collector) {
	for _, c := range cs {
		_ = r.Register(c)
	}
}

func (r nameRecorder) Unregister(prometheus.Collector) bool { return false }

// exportedMetrics are the names ferry's packages register, asked of their
// own constructors (the ones `ferry work` calls).
func exportedMetrics(t *testing.T) nameRecorder {
	t.Helper()
	r := nameRecorder{}
	worker.NewMetrics(r)
	queue.NewMetrics(r)
	fetcher.NewMetrics(r)
	credcache.NewMetrics(r)
	credcache.NewStatusCensus(r, nil, credcache.StatusCensusOptions{})
	worker.NewRedisWatch(r, nil, 0, zerolog.Nop())
	buildinfo.Register(r)
	if _, err := worker.NewQueueGauges(r, worker.QueueGaugesOptions{SQS: sqs.New(sqs.Options{Region: "us-east-1"}),
		Queues: []worker.WatchedQueue{{Label: "tasks", URL: "https://sqs.us-east-1.amazonaws.com/1/q"}}}); err != nil {
		t.Fatal(err)
	}
	if len(r) < 10 {
		t.Fatalf("only %d metric names recorded: %v", len(r), r)
	}
	return r
}

type dashboard struct {
	UID    string `json:"uid"`
	Title  string `json:"title"`
	Panels []struct {
		Title      string `json:"title"`
		Datasource struct {
			UID string `json:"uid"`
		} `json:"datasource"`
		Targets []struct {
			Expr string `json:"expr"`
		} `json:"targets"`
	} `json:"panels"`
}

func readDashboard(t *testing.T) dashboard {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("grafana", "ferry.json"))
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	if err := json.Unmarshal(data, &d); err != nil {
		t.Fatalf("grafana/ferry.json: %v", err)
	}
	return d
}

var metricRef = regexp.MustCompile(`\bferry_[a-z0-9_]+`)

// Every metric the dashboard's queries name is one ferry exports (a
// histogram through its _bucket, _sum or _count series), and the panels
// the operator needs are there.
func TestDashboardQueriesNameExportedMetrics(t *testing.T) {
	t.Parallel()
	exported := exportedMetrics(t)
	d := readDashboard(t)
	if d.UID == "" || d.Title == "" || len(d.Panels) == 0 {
		t.Fatalf("dashboard without uid, title or panels")
	}
	used := map[string]bool{}
	var queries []string
	for _, p := range d.Panels {
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, tg := range p.Targets {
			if strings.TrimSpace(tg.Expr) == "" {
				t.Errorf("panel %q has an empty query", p.Title)
			}
			queries = append(queries, tg.Expr)
			refs := metricRef.FindAllString(tg.Expr, -1)
			if len(refs) == 0 {
				t.Errorf("panel %q query %q names no ferry metric", p.Title, tg.Expr)
			}
			for _, m := range refs {
				base := m
				for _, suf := range []string{"_bucket", "_sum", "_count"} {
					if b, ok := strings.CutSuffix(m, suf); ok && exported[b] {
						base = b
					}
				}
				if !exported[base] {
					t.Errorf("panel %q queries %s, which ferry does not export", p.Title, m)
				}
				used[base] = true
			}
		}
	}
	for _, m := range []string{
		"ferry_queue_messages", "ferry_queue_message_age_seconds", "ferry_tasks_total", "ferry_busy_ratio",
		"ferry_build_info", "ferry_copied_bytes_total", "ferry_task_duration_seconds",
		"ferry_sts_assume_role_total", "ferry_redis_errors_total",
	} {
		if !used[m] {
			t.Errorf("the dashboard has no panel on %s", m)
		}
	}
	sort.Strings(queries)
	t.Logf("dashboard queries:\n%s", strings.Join(queries, "\n"))
}

// docker-compose.yml provisions Grafana with the dashboard and a Prometheus
// data source under the uid the panels use, and Prometheus scrapes the
// workers' metrics port.
func TestComposeProvisionsDashboard(t *testing.T) {
	t.Parallel()
	var c object
	data, err := os.ReadFile("../docker-compose.yml")
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(data, &c); err != nil {
		t.Fatal(err)
	}
	mounts := func(svc string) map[string]string { // container path → host path
		out := map[string]string{}
		vols, _ := get(c, "services", svc, "volumes").([]any)
		for _, v := range vols {
			parts := strings.Split(str(v), ":")
			if len(parts) >= 2 {
				out[parts[1]] = parts[0]
			}
		}
		return out
	}
	readYAML := func(hostPath string) object {
		t.Helper()
		b, err := os.ReadFile(filepath.Join("..", hostPath))
		if err != nil {
			t.Fatalf("compose mounts %s: %v", hostPath, err)
		}
		var o object
		if err := yaml.Unmarshal(b, &o); err != nil {
			t.Fatalf("%s: %v", hostPath, err)
		}
		return o
	}

	g := mounts("grafana")
	prov, ok := g["/etc/grafana/provisioning"]
	if !ok {
		t.Fatalf("grafana mounts no provisioning folder: %v", g)
	}
	provider := readYAML(path.Join(prov, "dashboards", "ferry.yaml"))
	dashDir := str(get(provider, "providers", "0", "options", "path"))
	host, ok := g[path.Join(dashDir, "ferry.json")]
	if !ok || path.Clean(host) != "deploy/grafana/ferry.json" {
		t.Errorf("the dashboard provider reads %s, but grafana mounts ferry.json at %v", dashDir, g)
	}
	ds := readYAML(path.Join(prov, "datasources", "prometheus.yaml"))
	uid := str(get(ds, "datasources", "0", "uid"))
	for _, p := range readDashboard(t).Panels {
		if p.Datasource.UID != uid {
			t.Errorf("panel %q uses data source %q, provisioned is %q", p.Title, p.Datasource.UID, uid)
		}
	}
	if url := str(get(ds, "datasources", "0", "url")); url != "http://prometheus:9090" || get(c, "services", "prometheus") == nil {
		t.Errorf("data source url %q, want the compose prometheus service", url)
	}

	pm := mounts("prometheus")
	pcfg := readYAML(pm["/etc/prometheus/prometheus.yml"])
	port := get(pcfg, "scrape_configs", "0", "dns_sd_configs", "0", "port")
	names := get(pcfg, "scrape_configs", "0", "dns_sd_configs", "0", "names", "0")
	addr := str(get(c, "services", "worker", "environment", "FERRY_METRICS_ADDR"))
	if str(names) != "worker" || ":"+str(port) != addr {
		t.Errorf("prometheus scrapes %v:%v; the workers serve metrics on %q", names, port, addr)
	}
}

// Every metric an alert names is one ferry exports, so a renamed metric
// cannot leave an alert that never fires.
func TestAlertsNameExportedMetrics(t *testing.T) {
	t.Parallel()
	exported := exportedMetrics(t)
	rule := must(t, manifests(t), "PrometheusRule/ferry")
	groups, _ := get(rule, "spec", "groups").([]any)
	for _, g := range groups {
		rules, _ := get(g, "rules").([]any)
		for _, r := range rules {
			for _, m := range metricRef.FindAllString(str(get(r, "expr")), -1) {
				base := m
				for _, suf := range []string{"_bucket", "_sum", "_count"} {
					if b, ok := strings.CutSuffix(m, suf); ok && exported[b] {
						base = b
					}
				}
				if !exported[base] {
					t.Errorf("alert %s names %s, which ferry does not export", str(get(r, "alert")), m)
				}
			}
		}
	}
}
