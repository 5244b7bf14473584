// Package deploy holds ferry's Kubernetes manifests; this test keeps them
// consistent with each other, with the binary's configuration and with the
// runbook, since no cluster runs in CI.
package deploy

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/ferryworks/ferry/config"
)

type object = map[string]any

// manifests parses every YAML document under deploy/ (kustomization and
// adapter rules included), keyed by "Kind/name".
func manifests(t *testing.T) map[string]object {
	t.Helper()
	files, err := filepath.Glob("*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no manifests: %v", err)
	}
	out := map[string]object{}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		dec := yaml.NewDecoder(bytes.NewReader(data))
		for {
			var o object
			err := dec.Decode(&o)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			if o == nil {
				continue
			}
			kind, _ := o["kind"].(string)
			name, _ := get(o, "metadata", "name").(string)
			if kind == "" || (name == "" && kind != "Kustomization") {
				t.Fatalf("%s: a document without kind or metadata.name", f)
			}
			key := kind + "/" + name
			if _, dup := out[key]; dup {
				t.Fatalf("%s: %s defined twice", f, key)
			}
			out[key] = o
		}
	}
	return out
}

// get walks maps by key and lists by decimal index; nil when absent.
func get(v any, path ...string) any {
	for _, p := range path {
		switch c := v.(type) {
		case map[string]any:
			v = c[p]
		case []any:
			i, err := strconv.Atoi(p)
			if err != nil || i < 0 || i >= len(c) {
				return nil
			}
			v = c[i]
		default:
			return nil
		}
	}
	return v
}

func str(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case int:
		return strconv.Itoa(x)
	}
	return ""
}

func labels(v any) map[string]string {
	m, _ := v.(map[string]any)
	out := map[string]string{}
	for k, x := range m {
		out[k] = str(x)
	}
	return out
}

// selects reports whether every selector label is on the target.
func selects(selector, target map[string]string) bool {
	if len(selector) == 0 {
		return false
	}
	for k, v := range selector {
		if target[k] != v {
			return false
		}
	}
	return true
}

func must(t *testing.T, m map[string]object, key string) object {
	t.Helper()
	o, ok := m[key]
	if !ok {
		t.Fatalf("%s missing from deploy/", key)
	}
	return o
}

func containerEnv(c any) map[string]string {
	env := map[string]string{}
	list, _ := get(c, "env").([]any)
	for _, e := range list {
		if v, ok := get(e, "value").(string); ok {
			env[str(get(e, "name"))] = v
		}
	}
	return env
}

// portNumber resolves a probe's or service's port (a number or a container
// port name) against the container.
func portNumber(c any, port any) int {
	if n, ok := port.(int); ok {
		return n
	}
	ports, _ := get(c, "ports").([]any)
	for _, p := range ports {
		if str(get(p, "name")) == str(port) {
			n, _ := get(p, "containerPort").(int)
			return n
		}
	}
	return -1
}

func TestDeployment(t *testing.T) {
	t.Parallel()
	m := manifests(t)
	dep := must(t, m, "Deployment/ferry-worker")
	pod := get(dep, "spec", "template", "spec")
	podLabels := labels(get(dep, "spec", "template", "metadata", "labels"))
	if !selects(labels(get(dep, "spec", "selector", "matchLabels")), podLabels) {
		t.Error("the Deployment's selector does not select its own pods")
	}
	containers, _ := get(pod, "containers").([]any)
	if len(containers) != 1 {
		t.Fatalf("%d containers, want 1", len(containers))
	}
	c := containers[0]
	env := containerEnv(c)

	shutdown, err := time.ParseDuration(env["FERRY_SHUTDOWN_TIMEOUT"])
	if err != nil {
		t.Fatalf("FERRY_SHUTDOWN_TIMEOUT %q must be set explicitly: %v", env["FERRY_SHUTDOWN_TIMEOUT"], err)
	}
	grace, _ := get(pod, "terminationGracePeriodSeconds").(int)
	// The pool flushes acks for up to 10 s after the drain; SIGKILL must not
	// come before.
	if time.Duration(grace)*time.Second <= shutdown+10*time.Second {
		t.Errorf("terminationGracePeriodSeconds %d must exceed FERRY_SHUTDOWN_TIMEOUT %s + 10 s", grace, shutdown)
	}

	_, metricsPort, err := net.SplitHostPort(env["FERRY_METRICS_ADDR"])
	if err != nil {
		t.Fatalf("FERRY_METRICS_ADDR %q: %v", env["FERRY_METRICS_ADDR"], err)
	}
	want, _ := strconv.Atoi(metricsPort)
	for _, p := range []struct{ probe, path string }{{"readinessProbe", "/readyz"}, {"livenessProbe", "/healthz"}} {
		if got := str(get(c, p.probe, "httpGet", "path")); got != p.path {
			t.Errorf("%s path %q, want %s", p.probe, got, p.path)
		}
		if got := portNumber(c, get(c, p.probe, "httpGet", "port")); got != want {
			t.Errorf("%s port %d, want %d (FERRY_METRICS_ADDR)", p.probe, got, want)
		}
	}

	nonRoot := get(c, "securityContext", "runAsNonRoot") == true || get(pod, "securityContext", "runAsNonRoot") == true
	if !nonRoot {
		t.Error("runAsNonRoot is not set")
	}
	for _, sc := range []any{get(pod, "securityContext"), get(c, "securityContext")} {
		if u, ok := get(sc, "runAsUser").(int); ok && u == 0 {
			t.Error("runAsUser 0")
		}
	}
	if get(c, "securityContext", "readOnlyRootFilesystem") != true {
		t.Error("readOnlyRootFilesystem is not true")
	}
	if get(c, "securityContext", "allowPrivilegeEscalation") != false {
		t.Error("allowPrivilegeEscalation is not false")
	}
	for _, r := range []string{"cpu", "memory"} {
		if str(get(c, "resources", "requests", r)) == "" {
			t.Errorf("no %s request", r)
		}
	}
	if args, _ := get(c, "args").([]any); len(args) == 0 || args[0] != "work" {
		t.Errorf("container args %v, want [work]", args)
	}
}

func TestScalingAndMonitoring(t *testing.T) {
	t.Parallel()
	m := manifests(t)
	dep := must(t, m, "Deployment/ferry-worker")
	depName := str(get(dep, "metadata", "name"))
	podLabels := labels(get(dep, "spec", "template", "metadata", "labels"))
	container := get(dep, "spec", "template", "spec", "containers", "0")

	so := must(t, m, "ScaledObject/ferry-worker")
	if str(get(so, "spec", "scaleTargetRef", "name")) != depName || str(get(so, "spec", "scaleTargetRef", "kind")) != "Deployment" {
		t.Errorf("ScaledObject targets %v, want Deployment/%s", get(so, "spec", "scaleTargetRef"), depName)
	}
	if typ := str(get(so, "spec", "triggers", "0", "type")); typ != "aws-sqs-queue" {
		t.Errorf("ScaledObject trigger %q, want aws-sqs-queue", typ)
	}
	if ref := str(get(so, "spec", "triggers", "0", "authenticationRef", "name")); ref != "" {
		must(t, m, "TriggerAuthentication/"+ref)
	}

	hpa := must(t, m, "HorizontalPodAutoscaler/ferry-worker")
	if str(get(hpa, "spec", "scaleTargetRef", "name")) != depName {
		t.Errorf("HPA targets %v, want %s", get(hpa, "spec", "scaleTargetRef", "name"), depName)
	}
	if str(get(hpa, "spec", "metrics", "0", "type")) != "Pods" || str(get(hpa, "spec", "metrics", "0", "pods", "metric", "name")) != "ferry_busy_ratio" {
		t.Errorf("HPA metric %v, want Pods ferry_busy_ratio", get(hpa, "spec", "metrics", "0"))
	}

	pdb := must(t, m, "PodDisruptionBudget/ferry-worker")
	if !selects(labels(get(pdb, "spec", "selector", "matchLabels")), podLabels) {
		t.Error("the PodDisruptionBudget's selector does not match the worker pods")
	}
	// An outage that turns every pod unready must not block node drains:
	// unready pods may always be evicted.
	if p := str(get(pdb, "spec", "unhealthyPodEvictionPolicy")); p != "AlwaysAllow" {
		t.Errorf("PodDisruptionBudget unhealthyPodEvictionPolicy %q, want AlwaysAllow", p)
	}

	svc := must(t, m, "Service/ferry-worker-metrics")
	if !selects(labels(get(svc, "spec", "selector")), podLabels) {
		t.Error("the metrics Service does not select the worker pods")
	}
	svcPort := get(svc, "spec", "ports", "0")
	if portNumber(container, get(svcPort, "targetPort")) <= 0 {
		t.Errorf("Service targetPort %v is not a port of the container", get(svcPort, "targetPort"))
	}
	sm := must(t, m, "ServiceMonitor/ferry-worker")
	if !selects(labels(get(sm, "spec", "selector", "matchLabels")), labels(get(svc, "metadata", "labels"))) {
		t.Error("the ServiceMonitor does not select the metrics Service")
	}
	if str(get(sm, "spec", "endpoints", "0", "port")) != str(get(svcPort, "name")) || str(get(sm, "spec", "endpoints", "0", "path")) != "/metrics" {
		t.Errorf("ServiceMonitor endpoint %v, want port %v path /metrics", get(sm, "spec", "endpoints", "0"), get(svcPort, "name"))
	}

	// The default set applies exactly one autoscaler, and every file exists.
	k := must(t, m, "Kustomization/")
	res, _ := get(k, "resources").([]any)
	set := map[string]bool{}
	for _, r := range res {
		if _, err := os.Stat(str(r)); err != nil {
			t.Errorf("kustomization lists %v: %v", r, err)
		}
		set[str(r)] = true
	}
	if set["keda-scaledobject.yaml"] == set["hpa-busy-ratio.yaml"] {
		t.Error("kustomization must apply exactly one of keda-scaledobject.yaml and hpa-busy-ratio.yaml")
	}
}

// Both autoscalers scale in slowly and out at once, KEDA watches the queue
// the workers consume and keeps a sane size when its scaler fails.
func TestAutoscalingBehaviour(t *testing.T) {
	t.Parallel()
	m := manifests(t)
	dep := must(t, m, "Deployment/ferry-worker")
	so := must(t, m, "ScaledObject/ferry-worker")
	hpa := must(t, m, "HorizontalPodAutoscaler/ferry-worker")
	minR, _ := get(so, "spec", "minReplicaCount").(int)
	maxR, _ := get(so, "spec", "maxReplicaCount").(int)
	poll, _ := get(so, "spec", "pollingInterval").(int)
	if poll == 0 {
		poll = 30 // KEDA's default
	}

	for name, b := range map[string]any{
		"ScaledObject": get(so, "spec", "advanced", "horizontalPodAutoscalerConfig", "behavior"),
		"HPA":          get(hpa, "spec", "behavior"),
	} {
		// Several scaler readings in the window, so one empty poll does not
		// remove pods that are draining tasks.
		win, _ := get(b, "scaleDown", "stabilizationWindowSeconds").(int)
		if win < 4*poll || win < 120 {
			t.Errorf("%s: scale-down stabilization window %ds, want at least 120 s and 4 polling intervals (%ds)", name, win, 4*poll)
		}
		policies, _ := get(b, "scaleDown", "policies").([]any)
		if len(policies) == 0 {
			t.Errorf("%s: no scale-down policies: the HPA may remove every extra pod at once", name)
		}
		for _, p := range policies {
			v, _ := get(p, "value").(int)
			if str(get(p, "type")) == "Percent" && v > 50 {
				t.Errorf("%s: scale-down policy removes %d%% per period, want at most 50%%", name, v)
			}
		}
		if sel := str(get(b, "scaleDown", "selectPolicy")); len(policies) > 1 && sel != "Min" {
			t.Errorf("%s: scale-down selectPolicy %q with several policies, want Min (the slowest)", name, sel)
		}
		if up, _ := get(b, "scaleUp", "stabilizationWindowSeconds").(int); up > poll {
			t.Errorf("%s: scale-up stabilization %ds delays reacting to a backlog; want at most one polling interval", name, up)
		}
	}

	// Fallback: a fixed size when the scaler errors. KEDA applies it only
	// to AverageValue metrics (the SQS scaler's default).
	thr, _ := get(so, "spec", "fallback", "failureThreshold").(int)
	fb, _ := get(so, "spec", "fallback", "replicas").(int)
	if thr < 1 || fb < minR || fb > maxR || fb == 0 {
		t.Errorf("fallback %v: want failureThreshold ≥ 1 and replicas within [%d, %d]", get(so, "spec", "fallback"), minR, maxR)
	}
	if mt := str(get(so, "spec", "triggers", "0", "metricType")); mt != "" && mt != "AverageValue" {
		t.Errorf("trigger metricType %q: KEDA ignores fallback unless it is AverageValue", mt)
	}
	// Workers report the queue gauges the alerts read: never scale to zero
	// (which is also the only case cooldownPeriod governs).
	if minR == 0 {
		t.Errorf("minReplicaCount 0: a worker must stay up to serve the alerts' metrics")
	}

	// The scaler reads the queue URL from the workers' own environment.
	meta := get(so, "spec", "triggers", "0", "metadata")
	if u := str(get(meta, "queueURL")); u != "" {
		t.Errorf("trigger sets queueURL %q, which wins over queueURLFromEnv: drop it", u)
	}
	fromEnv := str(get(meta, "queueURLFromEnv"))
	var queueVar string
	for _, v := range config.Vars() {
		if v.Flag == "queue-url" {
			queueVar = v.Name
		}
	}
	if queueVar == "" || fromEnv != queueVar {
		t.Errorf("queueURLFromEnv %q, want %q (the tasks queue the workers consume)", fromEnv, queueVar)
	}
	// KEDA resolves it from the scale target's first container (or
	// envSourceContainerName), from env or envFrom.
	c := get(dep, "spec", "template", "spec", "containers", "0")
	if src := str(get(so, "spec", "scaleTargetRef", "envSourceContainerName")); src != "" && src != str(get(c, "name")) {
		t.Errorf("envSourceContainerName %q is not the worker container %q", src, get(c, "name"))
	}
	_, inEnv := containerEnv(c)[fromEnv]
	envFrom, _ := get(c, "envFrom").([]any)
	if !inEnv && len(envFrom) == 0 {
		t.Errorf("the worker container has no %s in env and no envFrom source: KEDA cannot resolve it", fromEnv)
	}
}

// Every alert links to a section of the runbook that exists.
func TestAlertsHaveRunbookSections(t *testing.T) {
	t.Parallel()
	m := manifests(t)
	rule := must(t, m, "PrometheusRule/ferry")
	runbook, err := os.ReadFile("../docs/runbook.md")
	if err != nil {
		t.Fatal(err)
	}
	anchors := map[string]bool{}
	sc := bufio.NewScanner(bytes.NewReader(runbook))
	for sc.Scan() {
		if h, ok := strings.CutPrefix(sc.Text(), "## "); ok {
			anchors[githubAnchor(h)] = true
		}
	}
	groups, _ := get(rule, "spec", "groups").([]any)
	n := 0
	for _, g := range groups {
		rules, _ := get(g, "rules").([]any)
		for _, r := range rules {
			n++
			name, url := str(get(r, "alert")), str(get(r, "annotations", "runbook_url"))
			_, anchor, ok := strings.Cut(url, "#")
			if !ok || !anchors[anchor] {
				t.Errorf("alert %s: runbook_url %q has no matching '## ' section in docs/runbook.md", name, url)
			}
			if str(get(r, "expr")) == "" {
				t.Errorf("alert %s: no expr", name)
			}
		}
	}
	if n < 5 {
		t.Errorf("%d alerts, want at least 5 (DLQ, access denied, STS, Redis, queue age)", n)
	}
}

// Redis health is an alert on ferry_redis_up (worker.RedisWatch), not
// readiness.
func TestRedisDownIsAnAlertNotReadiness(t *testing.T) {
	t.Parallel()
	m := manifests(t)
	rule := must(t, m, "PrometheusRule/ferry")
	found := false
	groups, _ := get(rule, "spec", "groups").([]any)
	for _, g := range groups {
		rules, _ := get(g, "rules").([]any)
		for _, r := range rules {
			if str(get(r, "alert")) == "FerryRedisDown" {
				found = strings.Contains(str(get(r, "expr")), "ferry_redis_up")
			}
		}
	}
	if !found {
		t.Error("no FerryRedisDown alert on ferry_redis_up")
	}
}

var nonAnchor = regexp.MustCompile(`[^a-z0-9 -]`)

func githubAnchor(h string) string {
	return strings.ReplaceAll(nonAnchor.ReplaceAllString(strings.ToLower(strings.TrimSpace(h)), ""), " ", "-")
}

// The Dockerfile's production stage (the last one) runs the ferry binary,
// built static from ./cmd/ferry, as a non-root user, with OCI labels and no
// HEALTHCHECK (Kubernetes probes /readyz and /healthz instead).
func TestDockerfile(t *testing.T) {
	t.Parallel()
	data, err := os.ReadFile("../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	// Join continuation lines, drop comments.
	text := regexp.MustCompile(`\\\n\s*`).ReplaceAllString(string(data), " ")
	var stages [][]string
	for _, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if strings.HasPrefix(strings.ToUpper(line), "FROM ") {
			stages = append(stages, nil)
		}
		if len(stages) > 0 {
			stages[len(stages)-1] = append(stages[len(stages)-1], line)
		}
	}
	if len(stages) < 2 {
		t.Fatalf("%d stages, want a multi-stage build", len(stages))
	}
	all := strings.Join(stages[0], "\n")
	if !strings.Contains(all, "CGO_ENABLED=0") || !regexp.MustCompile(`go build [^\n]*-o /out/ferry \./cmd/ferry`).MatchString(all) {
		t.Error("the build stage does not build ./cmd/ferry with CGO_ENABLED=0 into /out/ferry")
	}
	final := stages[len(stages)-1]
	from := final[0]
	if !strings.Contains(from, "distroless/static") && !strings.Contains(from, "scratch") {
		t.Errorf("runtime image %q: want distroless static or scratch", from)
	}
	var user, entrypoint, copied string
	labelsSeen := 0
	for _, l := range final {
		f := strings.Fields(l)
		switch strings.ToUpper(f[0]) {
		case "USER":
			user = f[1]
		case "ENTRYPOINT":
			entrypoint = l
		case "COPY":
			if len(f) == 4 && f[1] == "--from=build" && f[2] == "/out/ferry" {
				copied = f[3]
			}
		case "LABEL":
			labelsSeen += strings.Count(l, "org.opencontainers.image.")
		case "HEALTHCHECK":
			t.Error("the runtime stage has a HEALTHCHECK")
		}
	}
	if u, _, _ := strings.Cut(user, ":"); u == "" || u == "0" || u == "root" {
		t.Errorf("runtime USER %q: want a non-root user", user)
	}
	if copied == "" || !strings.Contains(entrypoint, `"`+copied+`"`) {
		t.Errorf("ENTRYPOINT %q does not run the copied binary %q", entrypoint, copied)
	}
	if labelsSeen < 3 {
		t.Errorf("%d OCI labels, want title, source, version at least", labelsSeen)
	}
}

// docker-compose.yml runs the devstack where other containers can reach it
// and two workers that wait for its environment.
func TestCompose(t *testing.T) {
	t.Parallel()
	data, err := os.ReadFile("../docker-compose.yml")
	if err != nil {
		t.Fatal(err)
	}
	var c object
	if err := yaml.Unmarshal(data, &c); err != nil {
		t.Fatal(err)
	}
	cmd, _ := get(c, "services", "devstack", "command").([]any)
	joined := ""
	for _, a := range cmd {
		joined += str(a) + " "
	}
	if !strings.Contains(joined, "-addr 0.0.0.0:4566") || !strings.Contains(joined, "-ready-file /shared/ready") || !strings.Contains(joined, "-env-file /shared/devstack.env") {
		t.Errorf("devstack command %q: want -addr 0.0.0.0:4566 and the env and ready files on /shared", joined)
	}
	if n, _ := get(c, "services", "worker", "deploy", "replicas").(int); n != 2 {
		t.Errorf("worker replicas %d, want 2", n)
	}
	if w := str(get(c, "services", "worker", "command", "1")); w != "work" {
		t.Errorf("worker command %v, want ferry work", get(c, "services", "worker", "command"))
	}
	if _, err := os.Stat("compose-wait.sh"); err != nil {
		t.Error(err)
	}
}
