package main

import (
	"github.com/ferryworks/ferry/internal/demo"

	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/alicebob/miniredis/v2"
	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go"

	"github.com/ferryworks/ferry/credcache"
	"github.com/ferryworks/ferry/internal/redisconn"
	"github.com/ferryworks/ferry/internal/testenv"
)

// clientFor builds plain SDK clients from the exported environment, the way
// any tool in a shell that sourced the env file would, independent of
// localaws's own helpers.
type clientFor struct {
	endpoint string
}

func (c clientFor) config(region, keyID, secret, token string) aws.Config {
	return aws.Config{
		Region:       region,
		Credentials:  credentials.NewStaticCredentialsProvider(keyID, secret, token),
		BaseEndpoint: aws.String(c.endpoint),
		// A refusal must reach the test as it was answered, not retried.
		Retryer:          func() aws.Retryer { return aws.NopRetryer{} },
		RetryMaxAttempts: 1,
	}
}

func (c clientFor) s3(region, keyID, secret, token string) *s3.Client {
	return s3.NewFromConfig(c.config(region, keyID, secret, token), func(o *s3.Options) { o.UsePathStyle = true })
}

func (c clientFor) sts(region, keyID, secret, token string) *sts.Client {
	return sts.NewFromConfig(c.config(region, keyID, secret, token))
}

func apiCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

// readObject reads an object and returns its hex SHA-256 and size.
func readObject(ctx context.Context, c *s3.Client, bucket, key string) (string, int64, error) {
	out, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: &bucket, Key: &key})
	if err != nil {
		return "", 0, err
	}
	defer out.Body.Close()
	h := sha256.New()
	n, err := io.Copy(h, out.Body)
	if err != nil {
		return "", 0, err
	}
	return hex.EncodeToString(h.Sum(nil)), n, nil
}

func TestSeededWorld(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	// Plain http: the clients below are built from the exported variables
	// alone; TestTLSFromEnvFile covers the https world.
	stack := testenv.LocalAWSPlainHTTP(t)
	m, env, err := demo.Seed(ctx, stack, "redis://127.0.0.1:6379")
	if err != nil {
		t.Fatalf("seed: %v", err)
	}
	stack.ResetStats()

	vars, err := demo.ParseEnvScript(strings.NewReader(env.Script()))
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"AWS_ENDPOINT_URL", "AWS_REGION", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
		"FERRY_QUEUE_URL", "FERRY_EVENTS_QUEUE_URL", "FERRY_DLQ_URL", "FERRY_BUCKET", "FERRY_REDIS_URL", "FERRY_CACHE_KEY"} {
		if vars[name] == "" {
			t.Errorf("env lacks %s", name)
		}
	}
	cf := clientFor{endpoint: vars["AWS_ENDPOINT_URL"]}
	region, keyID, secret := vars["AWS_REGION"], vars["AWS_ACCESS_KEY_ID"], vars["AWS_SECRET_ACCESS_KEY"]
	fleetS3 := cf.s3(region, keyID, secret, "")

	cust := func(id string) demo.ManifestCustomer {
		c, ok := m.Customer(id)
		if !ok {
			t.Fatalf("manifest has no customer %s", id)
		}
		return c
	}
	checkAll := func(t *testing.T, c *s3.Client, mc demo.ManifestCustomer) {
		t.Helper()
		for _, key := range mc.Objects {
			sum, n, err := readObject(ctx, c, mc.Bucket, key)
			if err != nil {
				t.Fatalf("read s3://%s/%s: %v", mc.Bucket, key, err)
			}
			if sum != mc.SHA256[key] || n != mc.Sizes[key] {
				t.Errorf("s3://%s/%s: sha256 %s size %d, manifest says %s %d", mc.Bucket, key, sum, n, mc.SHA256[key], mc.Sizes[key])
			}
		}
	}

	t.Run("fleet identity", func(t *testing.T) {
		out, err := cf.sts(region, keyID, secret, "").GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
		if err != nil {
			t.Fatal(err)
		}
		if aws.ToString(out.Account) != m.FleetAccountID || m.FleetAccountID != demo.FleetAccountID {
			t.Errorf("caller account %s, manifest %s", aws.ToString(out.Account), m.FleetAccountID)
		}
	})

	t.Run("acme delegated", func(t *testing.T) {
		acme := cust("acme")
		if acme.Access != demo.AccessDelegated || acme.Expected != demo.ExpectCompleted || acme.RoleARN != "arn:aws:iam::"+acme.AccountID+":role/ScaleAI-Integration" {
			t.Fatalf("manifest entry: %+v", acme)
		}
		out, err := cf.sts(region, keyID, secret, "").AssumeRole(ctx, &sts.AssumeRoleInput{
			RoleArn: &acme.RoleARN, ExternalId: &acme.ExternalID, RoleSessionName: aws.String("devstack-test"),
		})
		if err != nil {
			t.Fatalf("AssumeRole: %v", err)
		}
		cr := out.Credentials
		checkAll(t, cf.s3(region, *cr.AccessKeyId, *cr.SecretAccessKey, *cr.SessionToken), acme)
		// The fleet's own keys are not granted on a delegated customer's bucket.
		_, _, err = readObject(ctx, fleetS3, acme.Bucket, acme.Objects[0])
		if apiCode(err) != "AccessDenied" {
			t.Errorf("fleet read of acme: %v, want AccessDenied", err)
		}
	})

	t.Run("globex cross-account", func(t *testing.T) {
		checkAll(t, fleetS3, cust("globex"))
	})

	t.Run("initech wrong external id", func(t *testing.T) {
		initech := cust("initech")
		if initech.Expected != demo.ExpectAccessDenied || initech.RoleARN == "" || initech.ExternalID == "" {
			t.Fatalf("manifest entry: %+v", initech)
		}
		_, err := cf.sts(region, keyID, secret, "").AssumeRole(ctx, &sts.AssumeRoleInput{
			RoleArn: &initech.RoleARN, ExternalId: &initech.ExternalID, RoleSessionName: aws.String("devstack-test"),
		})
		if apiCode(err) != "AccessDenied" {
			t.Fatalf("AssumeRole initech: %v, want AccessDenied", err)
		}
	})

	t.Run("umbrella no grant", func(t *testing.T) {
		u := cust("umbrella")
		_, _, err := readObject(ctx, fleetS3, u.Bucket, u.Objects[0])
		if apiCode(err) != "AccessDenied" {
			t.Fatalf("read umbrella: %v, want AccessDenied", err)
		}
	})

	t.Run("wrong secret", func(t *testing.T) {
		g := cust("globex")
		_, _, err := readObject(ctx, cf.s3(region, keyID, secret+"x", ""), g.Bucket, g.Objects[0])
		if apiCode(err) != "SignatureDoesNotMatch" {
			t.Fatalf("read with wrong secret: %v, want SignatureDoesNotMatch", err)
		}
	})

	t.Run("hooli other region", func(t *testing.T) {
		h := cust("hooli")
		if h.Region != "eu-west-1" {
			t.Fatalf("hooli region %s", h.Region)
		}
		_, _, err := readObject(ctx, fleetS3, h.Bucket, h.Objects[0])
		var re *awshttp.ResponseError
		if !errors.As(err, &re) || re.HTTPStatusCode() != http.StatusMovedPermanently {
			t.Fatalf("read hooli signed for us-east-1: %v, want 301", err)
		}
		if got := re.Response.Header.Get("x-amz-bucket-region"); got != "eu-west-1" {
			t.Errorf("x-amz-bucket-region %q, want eu-west-1", got)
		}
		checkAll(t, cf.s3(h.Region, keyID, secret, ""), h)
	})

	t.Run("stats", func(t *testing.T) {
		stats := adminStats(t, stack.URL)
		wantAtLeast := []struct{ op, outcome string }{
			{"sts:AssumeRole", "ok"},
			{"sts:AssumeRole", "denied"},
			{"s3:GetObject", "ok"},
			{"s3:GetObject", "denied"},
			{"s3:GetObject", "redirect"},
		}
		for _, w := range wantAtLeast {
			if stats[w.op][w.outcome] < 1 {
				t.Errorf("stats[%s][%s] = %d, want ≥ 1 (stats: %v)", w.op, w.outcome, stats[w.op][w.outcome], stats)
			}
		}
		if got := stats["sts:AssumeRole"]; got["ok"] != 1 || got["denied"] != 1 {
			t.Errorf("sts:AssumeRole %v, want exactly one ok and one denied", got)
		}
	})

	t.Run("fault via admin endpoint", func(t *testing.T) {
		g := cust("globex")
		body := `{"operation":"s3:GetObject","status":503,"code":"SlowDown","count":1}`
		resp, err := http.Post(stack.URL+"/_localaws/faults", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode/100 != 2 {
			t.Fatalf("POST /_localaws/faults: %s", resp.Status)
		}
		_, _, err = readObject(ctx, fleetS3, g.Bucket, g.Objects[0])
		if apiCode(err) != "SlowDown" {
			t.Fatalf("first read after the fault: %v, want SlowDown", err)
		}
		if _, _, err := readObject(ctx, fleetS3, g.Bucket, g.Objects[0]); err != nil {
			t.Fatalf("a count=1 fault should apply once: %v", err)
		}
		if n := adminStats(t, stack.URL)["s3:GetObject"]["fault"]; n != 1 {
			t.Errorf("stats fault count %d, want 1", n)
		}
	})
}

func adminStats(t *testing.T, base string) map[string]map[string]int64 {
	t.Helper()
	resp, err := http.Get(base + "/_localaws/stats")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /_localaws/stats: %s", resp.Status)
	}
	var stats map[string]map[string]int64
	if err := json.NewDecoder(resp.Body).Decode(&stats); err != nil {
		t.Fatalf("decode stats: %v", err)
	}
	return stats
}

// TestManifestShape pins the JSON field names demos and tests rely on.
func TestManifestShape(t *testing.T) {
	t.Parallel()
	data, err := manifestJSON(demo.Manifest{FleetAccountID: "111111111111", Customers: []demo.ManifestCustomer{{
		ID: "acme", AccountID: "222222222222", Bucket: "b", Region: "us-east-1", Access: demo.AccessDelegated,
		RoleARN: "arn", ExternalID: "x", Objects: []string{"reports/Q3 summary – café.pdf"}, Expected: demo.ExpectCompleted,
	}}})
	if err != nil {
		t.Fatal(err)
	}
	var raw struct {
		Fleet     string           `json:"fleet_account_id"`
		Customers []map[string]any `json:"customers"`
	}
	if err := json.Unmarshal(data, &raw); err != nil {
		t.Fatal(err)
	}
	if raw.Fleet != "111111111111" || len(raw.Customers) != 1 {
		t.Fatalf("%s", data)
	}
	for _, k := range []string{"id", "account_id", "bucket", "region", "access", "role_arn", "external_id", "objects", "expected"} {
		if _, ok := raw.Customers[0][k]; !ok {
			t.Errorf("customer lacks %q: %s", k, data)
		}
	}
	if !bytes.Contains(data, []byte("café")) {
		t.Errorf("keys should stay readable UTF-8: %s", data)
	}
}

func TestDemoWorldCoversEveryPath(t *testing.T) {
	t.Parallel()
	seen := map[string]bool{}
	for _, c := range demo.Customers {
		switch {
		case c.Access == demo.AccessDelegated && c.ExternalID == c.TrustExternalID:
			seen["delegated ok"] = true
		case c.Access == demo.AccessDelegated:
			seen["wrong external id"] = true
		case c.Access == demo.AccessCrossAccount && c.Region != demo.DefaultRegion:
			seen["other region"] = true
		case c.Access == demo.AccessCrossAccount:
			seen["cross-account ok"] = true
		case c.Access == demo.AccessNone:
			seen["no grant"] = true
		}
	}
	if len(seen) != 5 {
		t.Errorf("paths covered: %v", seen)
	}
	hasOdd := false
	for _, o := range demo.SampleObjects {
		if strings.Contains(o.Key, " ") && strings.ContainsFunc(o.Key, func(r rune) bool { return r > 127 }) {
			hasOdd = true
		}
	}
	if !hasOdd {
		t.Error("no sample key with spaces and non-ASCII characters")
	}
}

func TestEnvScriptQuoting(t *testing.T) {
	t.Parallel()
	env := demo.Env{{Name: "A", Value: "plain"}, {Name: "B", Value: "it's $HOME `x` \"q\""}, {Name: "C", Value: ""}}
	got, err := demo.ParseEnvScript(strings.NewReader(env.Script()))
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range env {
		if got[v.Name] != v.Value {
			t.Errorf("%s: %q, want %q", v.Name, got[v.Name], v.Value)
		}
	}
	// The script must mean the same to a real shell.
	if _, err := exec.LookPath("sh"); err == nil {
		out, err := exec.Command("sh", "-c", env.Script()+`printf '%s' "$B"`).Output()
		if err != nil || string(out) != env[1].Value {
			t.Errorf("sh read B as %q (%v), want %q", out, err, env[1].Value)
		}
	}
}

func TestRunBadUsage(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		args []string
		code int
	}{
		{"unknown flag", []string{"-nope"}, 2},
		{"missing value", []string{"-addr"}, 2},
		{"positional argument", []string{"serve"}, 2},
		{"help", []string{"-h"}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var stdout, stderr bytes.Buffer
			code := run(context.Background(), tt.args, func(string) string { return "" }, &stdout, &stderr)
			if code != tt.code {
				t.Errorf("exit %d, want %d; stderr:\n%s", code, tt.code, stderr.String())
			}
			if !strings.Contains(stderr.String(), "usage: devstack") {
				t.Errorf("no usage on stderr:\n%s", stderr.String())
			}
			if stdout.Len() != 0 {
				t.Errorf("stdout should stay empty: %q", stdout.String())
			}
		})
	}
}

func TestRunStartupError(t *testing.T) {
	t.Parallel()
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), []string{"-addr", "127.0.0.1:99999"}, func(string) string { return "" }, &stdout, &stderr)
	if code != 1 {
		t.Fatalf("exit %d, want 1; stderr:\n%s", code, stderr.String())
	}
	if !strings.Contains(stderr.String(), "devstack: start local AWS on 127.0.0.1:99999") {
		t.Errorf("stderr should say what failed:\n%s", stderr.String())
	}
}

// builtDevstack is the binary the tests that run it share, built once.
var builtDevstack = testenv.Binary{Pkg: "./cmd/devstack"}

func TestMain(m *testing.M) {
	code := m.Run()
	builtDevstack.Remove()
	os.Exit(code)
}

// environWithout returns the process environment minus the named variables.
func environWithout(names ...string) []string {
	var out []string
	for _, kv := range os.Environ() {
		drop := false
		for _, n := range names {
			if strings.HasPrefix(kv, n+"=") {
				drop = true
			}
		}
		if !drop {
			out = append(out, kv)
		}
	}
	return out
}

func TestBinary(t *testing.T) {
	t.Parallel()
	bin := builtDevstack.Path(t)

	t.Run("bad flag", func(t *testing.T) {
		t.Parallel()
		var stderr bytes.Buffer
		cmd := exec.Command(bin, "-no-such-flag")
		cmd.Stderr = &stderr
		err := cmd.Run()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 2 {
			t.Fatalf("exit: %v, want status 2", err)
		}
		if !strings.Contains(stderr.String(), "usage: devstack") {
			t.Errorf("no usage:\n%s", stderr.String())
		}
	})

	t.Run("unreachable cluster", func(t *testing.T) {
		t.Parallel()
		// An embedded single server is no stand-in for a cluster: the
		// worker would read its URL as a cluster's and fail later.
		var stderr bytes.Buffer
		cmd := exec.Command(bin, "-addr", "127.0.0.1:0")
		cmd.Env = append(environWithout("FERRY_REDIS_URL", "FERRY_REDIS_MODE", "AWS_ENDPOINT_URL"),
			"FERRY_REDIS_MODE=cluster", "FERRY_REDIS_URL=redis://127.0.0.1:1?addr=127.0.0.1:2")
		cmd.Stderr = &stderr
		err := cmd.Run()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 1 {
			t.Fatalf("exit: %v, want status 1\n%s", err, stderr.String())
		}
		if !strings.Contains(stderr.String(), "Redis Cluster at FERRY_REDIS_URL does not answer") {
			t.Errorf("the error does not say the cluster is unreachable:\n%s", stderr.String())
		}
	})

	given := miniredis.RunT(t)
	tests := []struct {
		name      string
		redisEnv  string
		mode      string
		wantRedis string // "" means: an embedded one, not redisEnv
	}{
		{"unreachable FERRY_REDIS_URL falls back to embedded", "redis://127.0.0.1:1", "", ""},
		{"reachable FERRY_REDIS_URL is used", "redis://" + given.Addr(), "single", "redis://" + given.Addr()},
	}
	if testenv.RedisCluster() {
		u := testenv.RedisURL(t)
		tests = append(tests, struct{ name, redisEnv, mode, wantRedis string }{"FERRY_REDIS_MODE=cluster seeds the cluster", u, "cluster", u})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			envFile, manifestFile, readyFile := filepath.Join(dir, "env"), filepath.Join(dir, "manifest.json"), filepath.Join(dir, "ready")
			cmd := exec.Command(bin, "-addr", "127.0.0.1:0", "-env-file", envFile, "-manifest", manifestFile, "-ready-file", readyFile)
			prefix := "ferry"
			if tt.mode == "cluster" {
				// The shared test cluster: keys under a prefix of this test's own.
				_, prefix = testenv.Redis(t)
			}
			cmd.Env = append(environWithout("FERRY_REDIS_URL", "FERRY_REDIS_MODE", "FERRY_REDIS_PREFIX", "AWS_ENDPOINT_URL"),
				"FERRY_REDIS_URL="+tt.redisEnv, "FERRY_REDIS_MODE="+tt.mode, "FERRY_REDIS_PREFIX="+prefix)
			var stdout bytes.Buffer
			cmd.Stdout = &stdout
			stderrPipe, err := cmd.StderrPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = cmd.Process.Kill() })

			// Wait for the ready line; EOF first means the process died.
			var logs strings.Builder
			sc := bufio.NewScanner(stderrPipe)
			ready := false
			for sc.Scan() {
				logs.WriteString(sc.Text() + "\n")
				if sc.Text() == "devstack ready" {
					ready = true
					break
				}
			}
			if !ready {
				_ = cmd.Wait()
				t.Fatalf("devstack never became ready:\n%s", logs.String())
			}
			done := make(chan struct{})
			go func() { _, _ = io.Copy(io.Discard, stderrPipe); close(done) }()

			if _, err := os.Stat(readyFile); err != nil {
				t.Errorf("ready file: %v", err)
			}
			envData, err := os.ReadFile(envFile)
			if err != nil {
				t.Fatal(err)
			}
			vars, err := demo.ParseEnvScript(bytes.NewReader(envData))
			if err != nil {
				t.Fatal(err)
			}
			var m demo.Manifest
			if data, err := os.ReadFile(manifestFile); err != nil {
				t.Fatal(err)
			} else if err := json.Unmarshal(data, &m); err != nil {
				t.Fatalf("manifest: %v", err)
			}
			if len(m.Customers) != len(demo.Customers) || m.Endpoint != vars["AWS_ENDPOINT_URL"] {
				t.Errorf("manifest %+v does not match env %v", m, vars["AWS_ENDPOINT_URL"])
			}

			if tt.wantRedis != "" && vars["FERRY_REDIS_URL"] != tt.wantRedis {
				t.Errorf("FERRY_REDIS_URL %q, want %q", vars["FERRY_REDIS_URL"], tt.wantRedis)
			}
			if tt.wantRedis == "" && vars["FERRY_REDIS_URL"] == tt.redisEnv {
				t.Errorf("an unreachable FERRY_REDIS_URL was exported as is")
			}
			if want := map[string]string{"cluster": "cluster"}[tt.mode]; vars["FERRY_REDIS_MODE"] != want {
				t.Errorf("FERRY_REDIS_MODE exported as %q, want %q", vars["FERRY_REDIS_MODE"], want)
			}
			rc, err := redisconn.Open(vars["FERRY_REDIS_URL"], redisconn.Mode(tt.mode))
			if err != nil {
				t.Fatal(err)
			}
			defer rc.Close()
			if err := rc.Ping(context.Background()).Err(); err != nil {
				t.Errorf("exported Redis does not answer: %v", err)
			}

			reg, err := credcache.NewRegistry(credcache.Options{Redis: rc, Prefix: prefix, Keys: devKeys(t, vars["FERRY_CACHE_KEY"])})
			if err != nil {
				t.Fatal(err)
			}
			acme, _ := m.Customer("acme")
			if in, err := reg.Get(context.Background(), "acme"); err != nil || !in.Enabled || in.ExternalID != acme.ExternalID {
				t.Errorf("acme's integration in the exported Redis: %+v, %v", in, err)
			}

			cf := clientFor{endpoint: vars["AWS_ENDPOINT_URL"]}
			out, err := cf.sts(vars["AWS_REGION"], vars["AWS_ACCESS_KEY_ID"], vars["AWS_SECRET_ACCESS_KEY"], "").
				GetCallerIdentity(context.Background(), &sts.GetCallerIdentityInput{})
			if err != nil || aws.ToString(out.Account) != m.FleetAccountID {
				t.Errorf("GetCallerIdentity with exported keys: %v", err)
			}

			if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
				t.Fatal(err)
			}
			<-done
			if err := cmd.Wait(); err != nil {
				t.Fatalf("exit after SIGTERM: %v\n%s", err, logs.String())
			}
			if stdout.String() != string(envData) {
				t.Errorf("stdout and env file differ:\n%s\n---\n%s", stdout.String(), envData)
			}
			if _, err := os.Stat(readyFile); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("ready file should be removed on exit: %v", err)
			}
			if strings.Contains(logs.String(), vars["AWS_SECRET_ACCESS_KEY"]) {
				t.Error("logs contain the fleet's secret key")
			}
		})
	}
}

func devKeys(t *testing.T, b64 string) [][]byte {
	t.Helper()
	k, err := base64.StdEncoding.DecodeString(b64)
	if err != nil || len(k) != 32 {
		t.Fatalf("FERRY_CACHE_KEY is not base64 of 32 bytes: %v", err)
	}
	return [][]byte{k}
}

func TestRegisterIntegrations(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	rdb, prefix := testenv.Redis(t)
	var m demo.Manifest
	for _, c := range demo.Customers {
		m.Customers = append(m.Customers, demo.ManifestCustomer{ID: c.ID, AccountID: c.AccountID, Access: c.Access, ExternalID: c.ExternalID})
	}
	// Twice: a devstack restart against the same Redis must succeed and
	// leave the same records.
	for range 2 {
		if err := demo.RegisterIntegrations(ctx, rdb, prefix, &m); err != nil {
			t.Fatal(err)
		}
	}
	reg, err := credcache.NewRegistry(credcache.Options{Redis: rdb, Prefix: prefix, Keys: devKeys(t, demo.DevCacheKey())})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		id          string
		integration string
		enabled     bool
	}{
		{"acme", demo.IntegrationEnabled, true},
		{"initech", demo.IntegrationEnabled, true},
		{"globex", demo.IntegrationAccountRegistered, false},
		{"hooli", demo.IntegrationAccountRegistered, false},
		{"umbrella", demo.IntegrationNone, false},
	}
	for _, tt := range tests {
		mc, _ := m.Customer(tt.id)
		if mc.Integration != tt.integration {
			t.Errorf("%s: manifest integration %q, want %q", tt.id, mc.Integration, tt.integration)
		}
		in, err := reg.Get(ctx, tt.id)
		if tt.integration == demo.IntegrationNone {
			if !errors.Is(err, credcache.ErrNotFound) {
				t.Errorf("%s: %+v, %v; want no record", tt.id, in, err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%s: %v", tt.id, err)
		}
		if in.Enabled != tt.enabled || in.AccountID != mc.AccountID {
			t.Errorf("%s: record %+v", tt.id, in)
		}
		if tt.enabled && in.ExternalID != mc.ExternalID {
			t.Errorf("%s: stored external ID differs from the manifest's", tt.id)
		}
	}
}
