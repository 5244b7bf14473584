package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/ferryworks/ferry/credcache"
	"github.com/ferryworks/ferry/fetcher"
	"github.com/ferryworks/ferry/internal/demo"
	"github.com/ferryworks/ferry/internal/localaws"
	"github.com/ferryworks/ferry/internal/testenv"
	"github.com/ferryworks/ferry/queue"
)

// listedStatus is one entry of `ferry integration list -o json`.
type listedStatus struct {
	CustomerID string                      `json:"customer_id"`
	Status     credcache.IntegrationStatus `json:"status"`
}

func listStatuses(t *testing.T, env []string) map[string]credcache.IntegrationStatus {
	t.Helper()
	r := runCLI(t, env, "", "integration", "list", "-o", "json")
	var all []listedStatus
	if err := json.Unmarshal([]byte(r.stdout), &all); err != nil || r.code != 0 {
		t.Fatalf("list -o json: exit %d, %v: %s %s", r.code, err, r.stdout, r.stderr)
	}
	out := map[string]credcache.IntegrationStatus{}
	for _, a := range all {
		out[a.CustomerID] = a.Status
	}
	return out
}

// A customer who creates the role only after `ferry integration enable`:
// verify fails with the hint the customer needs; once the role exists but
// IAM has not applied it yet, verify --wait says it waits and passes when
// the role is in force. Each verification becomes the integration's status,
// as do the tasks a worker runs, and `integration list` and `show` say so.
func TestIntegrationVerifyLateRole(t *testing.T) {
	t.Parallel()
	const iamDelay = 30 * time.Second
	w := testenv.NewWorldWith(t, localaws.Options{TLS: true, IAMDelay: iamDelay})
	env := cliEnv(w)
	spare := w.Manifest.SpareAccounts[0]
	cust := localaws.Account{ID: spare.AccountID, AccessKeyID: spare.AdminAccessKeyID, SecretAccessKey: spare.AdminSecretAccessKey}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	if r := runCLI(t, env, "", "integration", "enable", "late", "--account", cust.ID, "--bucket", "late-data"); r.code != 0 {
		t.Fatalf("enable: exit %d: %s", r.code, r.stderr)
	}
	var in credcache.Integration
	if r := runCLI(t, env, "", "integration", "show", "late", "-o", "json"); json.Unmarshal([]byte(r.stdout), &in) != nil || in.ExternalID == "" {
		t.Fatalf("show -o json: %s %s", r.stdout, r.stderr)
	}
	if st := listStatuses(t, env)["late"]; st.Status != credcache.StatusPending {
		t.Fatalf("a new integration is %+v, want pending", st)
	}

	// The customer's bucket, with an object; no role yet.
	s3c := w.Stack.S3Client(cust, demo.DefaultRegion)
	if _, err := s3c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("late-data")}); err != nil {
		t.Fatal(err)
	}
	if _, err := s3c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("late-data"), Key: aws.String("doc.txt"), Body: strings.NewReader("late")}); err != nil {
		t.Fatal(err)
	}
	verify := []string{"integration", "verify", "late", "--bucket", "late-data", "--object", "s3://late-data/doc.txt"}
	r := runCLI(t, env, "", verify...)
	if r.code != 1 || !strings.Contains(r.stdout, "assume_role") || !strings.Contains(r.stdout, "access_denied") ||
		!strings.Contains(r.stdout, "hint: the role's trust policy does not accept this external ID") || strings.Contains(r.stdout, in.ExternalID) {
		t.Fatalf("verify before the role exists: exit %d:\n%s%s", r.code, r.stdout, r.stderr)
	}
	if strings.Contains(r.stdout, "head_bucket") {
		t.Errorf("checks ran after AssumeRole failed:\n%s", r.stdout)
	}
	st := listStatuses(t, env)["late"]
	if st.Status != credcache.StatusFailing || st.LastError == nil || st.LastError.Source != "verify" || st.LastError.Stage != "assume_role" || st.LastError.Hint == "" {
		t.Fatalf("after a failed verification: %+v (error %+v)", st, st.LastError)
	}

	// The customer creates the role as the guide says, through IAM, which
	// applies it only after iamDelay.
	ic := iam.NewFromConfig(w.Stack.Config(cust, demo.DefaultRegion))
	if _, err := ic.CreateRole(ctx, &iam.CreateRoleInput{RoleName: aws.String(credcache.DefaultRoleName),
		AssumeRolePolicyDocument: aws.String(credcache.TrustPolicy(w.Manifest.FleetAccountID, in.ExternalID))}); err != nil {
		t.Fatal(err)
	}
	if _, err := ic.PutRolePolicy(ctx, &iam.PutRolePolicyInput{RoleName: aws.String(credcache.DefaultRoleName),
		PolicyName: aws.String("ScaleRead"), PolicyDocument: aws.String(credcache.RolePolicy("late-data"))}); err != nil {
		t.Fatal(err)
	}
	r = runCLI(t, env, "", append(verify, "--wait", "3m", "-o", "json")...)
	var rep fetcher.VerifyReport
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil || r.code != 0 || !rep.OK || rep.Attempts < 2 || len(rep.Checks) != 3 {
		t.Fatalf("verify --wait: exit %d (%v), %+v\nstdout %s\nstderr %s", r.code, err, rep, r.stdout, r.stderr)
	}
	if !strings.Contains(r.stderr, "waiting: assume_role") || !strings.Contains(r.stderr, "IAM may not have applied the role yet") {
		t.Errorf("verify --wait did not say it waits:\n%s", r.stderr)
	}
	for i, want := range []string{fetcher.CheckAssumeRole, fetcher.CheckHeadBucket, fetcher.CheckGetObject} {
		if rep.Checks[i].Check != want || !rep.Checks[i].OK {
			t.Errorf("check %d: %+v, want %s ok", i, rep.Checks[i], want)
		}
	}
	r = runCLI(t, env, "", verify...)
	if r.code != 0 || strings.Count(r.stdout, " ok\n") != 3 {
		t.Errorf("verify once the role is in force: exit %d:\n%s%s", r.code, r.stdout, r.stderr)
	}

	// A worker's tasks feed the statuses too: acme's completes.
	startWorker(t, env)
	acme := w.Customer(t, "acme")
	body := `{"version":1,"task_id":"status-1","customer_id":"acme","attachments":[{"uri":"s3://` + acme.Bucket + "/" + acme.Objects[0] + `"}]}`
	if r := runCLI(t, env, body+"\n", "enqueue"); r.code != 0 {
		t.Fatalf("enqueue: exit %d: %s", r.code, r.stderr)
	}
	r = runCLI(t, env, "", "events", "tail", "-o", "json", "--ack", "--max", "1")
	var ev queue.Event
	if err := json.Unmarshal([]byte(r.stdout), &ev); err != nil || ev.Type != queue.EventCompleted {
		t.Fatalf("acme's task: %v: %s %s", err, r.stdout, r.stderr)
	}
	var statuses map[string]credcache.IntegrationStatus
	waitFor(t, 2*time.Minute, "the worker to record acme's task", func() bool {
		statuses = listStatuses(t, env)
		return statuses["acme"].Status == credcache.StatusActive
	})
	if st := statuses["acme"]; st.LastUsed.IsZero() || st.LastSuccess.IsZero() {
		t.Errorf("acme after a completed task: %+v", st)
	}
	if st := statuses["globex"]; st.Status != credcache.StatusPending {
		t.Errorf("globex, never used: %+v", st)
	}
	if st := statuses["late"]; st.Status != credcache.StatusActive || st.LastError == nil {
		t.Errorf("late after verify --wait: %+v (the earlier error stays on record)", st)
	}

	text := runCLI(t, env, "", "integration", "list")
	lines := strings.Split(text.stdout, "\n")
	if !strings.Contains(lines[0], "STATUS") || !strings.Contains(lines[0], "LAST USED") || !strings.Contains(lines[0], "LAST ERROR") {
		t.Fatalf("list header: %q", lines[0])
	}
	for _, l := range lines {
		f := strings.Fields(l)
		if len(f) > 0 && f[0] == "late" && (!strings.Contains(l, " active ") || !strings.Contains(l, "AccessDenied at assume_role (verify)")) {
			t.Errorf("list line of late: %q", l)
		}
	}
	if show := runCLI(t, env, "", "integration", "show", "late"); !strings.Contains(show.stdout, "status:          active") || !strings.Contains(show.stdout, "last verified:") {
		t.Errorf("show late:\n%s", show.stdout)
	}

	// Mistakes say what was wrong.
	for _, b := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"integration", "verify"}, 2, "accepts 1 arg"},
		{[]string{"integration", "verify", "late", "--wait", "-1s"}, 2, "--wait"},
		{[]string{"integration", "verify", "ghost", "--bucket", "b"}, 1, "no integration"},
	} {
		r := runCLI(t, env, "", b.args...)
		if r.code != b.code || !strings.Contains(r.stderr+r.stdout, b.want) {
			t.Errorf("ferry %v: exit %d, %q %q; want exit %d mentioning %q", b.args, r.code, r.stdout, r.stderr, b.code, b.want)
		}
	}
}
