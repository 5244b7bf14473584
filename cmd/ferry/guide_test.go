package main

import (
	"encoding/json"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/google/shlex"

	"github.com/ferryworks/ferry/credcache"
	"github.com/ferryworks/ferry/internal/awscli"
	"github.com/ferryworks/ferry/internal/demo"
	"github.com/ferryworks/ferry/internal/testenv"
	"github.com/ferryworks/ferry/queue"
)

const guidePath = "../../docs/integration-guide.md"

// guideMarker names the fenced block that follows it: "file" blocks are
// documents the customer saves under that name, "run" blocks are aws CLI
// commands. Both are HTML comments, which a rendered guide does not show.
var guideMarker = regexp.MustCompile(`^<!-- (file|run): ([a-z0-9.-]+) -->$`)

// guideBlocks returns the guide's marked code blocks by kind and name.
func guideBlocks(t *testing.T, text string) (files, runs map[string]string) {
	t.Helper()
	files, runs = map[string]string{}, map[string]string{}
	lines := strings.Split(text, "\n")
	for i := 0; i < len(lines); i++ {
		m := guideMarker.FindStringSubmatch(strings.TrimSpace(lines[i]))
		if m == nil {
			continue
		}
		if i+1 >= len(lines) || !strings.HasPrefix(strings.TrimSpace(lines[i+1]), "```") {
			t.Fatalf("guide line %d: %s is not followed by a code block", i+1, lines[i])
		}
		var body []string
		j := i + 2
		for ; j < len(lines) && strings.TrimSpace(lines[j]) != "```"; j++ {
			body = append(body, lines[j])
		}
		if j == len(lines) {
			t.Fatalf("guide line %d: unterminated code block", i+2)
		}
		dst := files
		if m[1] == "run" {
			dst = runs
		}
		dst[m[2]] = strings.Join(body, "\n") + "\n"
		i = j
	}
	return files, runs
}

// guideCommands splits a run block into argvs without the leading "aws",
// the way a POSIX shell would (line continuations, quotes).
func guideCommands(t *testing.T, block string) [][]string {
	t.Helper()
	var cmds [][]string
	for _, line := range strings.Split(strings.ReplaceAll(block, "\\\n", " "), "\n") {
		if strings.TrimSpace(line) == "" {
			continue
		}
		argv, err := shlex.Split(line)
		if err != nil || len(argv) < 2 || argv[0] != "aws" {
			t.Fatalf("guide command %q is not an aws CLI command (%v)", line, err)
		}
		cmds = append(cmds, argv[1:])
	}
	return cmds
}

// The integration guide's own documents and aws CLI commands, run verbatim
// (placeholders substituted) against empty customer accounts, give the
// events and hints the guide promises.
// Not parallel: aws CLI round trips would hold a parallel slot long enough
// to run the contexts of waiting tests out on a loaded machine.
func TestIntegrationGuideCommands(t *testing.T) {
	w := testenv.SharedWorld(t)
	env := cliEnv(w)
	data, err := os.ReadFile(guidePath)
	if err != nil {
		t.Fatal(err)
	}
	guide := string(data)
	flatGuide := strings.Join(strings.Fields(guide), " ")
	files, runs := guideBlocks(t, guide)
	for _, name := range []string{"read-policy.json", "trust-policy.json", "bucket-policy.json"} {
		if files[name] == "" {
			t.Fatalf("the guide lost its %s document", name)
		}
	}
	for _, name := range []string{"create-role", "attach-read-policy", "bucket-policy", "kms-role-policy", "verification-object"} {
		if runs[name] == "" {
			t.Fatalf("the guide lost its %s commands", name)
		}
	}
	// promised is a hint the guide quotes; the event's hint must say it too.
	promised := func(quote string, r *strings.Replacer) string {
		t.Helper()
		if !strings.Contains(flatGuide, quote) {
			t.Fatalf("the guide no longer promises the hint %q", quote)
		}
		return r.Replace(quote)
	}
	if len(w.Manifest.SpareAccounts) < 3 {
		t.Fatalf("the world has %d spare accounts, want 3", len(w.Manifest.SpareAccounts))
	}
	cli := awscli.Start(t, map[string]string{"AWS_ENDPOINT_URL": w.Env.Lookup("AWS_ENDPOINT_URL"),
		"AWS_CA_BUNDLE": w.Env.Lookup("AWS_CA_BUNDLE"), "AWS_DEFAULT_REGION": demo.DefaultRegion})
	// as makes the CLI act as an account's admin, as the customer's own
	// profile would; each command reads the credentials file afresh.
	as := func(a demo.SpareAccount) {
		cli.File(t, ".credentials", "[default]\naws_access_key_id = "+a.AdminAccessKeyID+"\naws_secret_access_key = "+a.AdminSecretAccessKey+"\n")
	}
	// setup is what the guide takes for granted: a bucket with an object.
	setup := func(bucket string) {
		cli.Run(t, "s3api", "create-bucket", "--bucket", bucket)
		cli.Run(t, "s3api", "put-object", "--bucket", bucket, "--key", "doc.txt", "--body", strings.TrimPrefix(cli.File(t, "doc.txt", "hello from "+bucket), "file://"))
	}
	// run runs a run block of the guide with the placeholders of r.
	run := func(name string, r *strings.Replacer) {
		t.Helper()
		for _, argv := range guideCommands(t, runs[name]) {
			for i := range argv {
				argv[i] = r.Replace(argv[i])
			}
			cli.Run(t, argv...)
		}
	}
	save := func(name, content string) { cli.File(t, name, content) }

	startWorker(t, env)
	n := 0
	task := func(customer, uri string) queue.Event {
		t.Helper()
		n++
		id := customer + "-" + string(rune('a'+n))
		body := `{"version":1,"task_id":"` + id + `","customer_id":"` + customer + `","attachments":[{"uri":"` + uri + `"}]}`
		if r := runCLI(t, env, body+"\n", "enqueue", "-o", "json"); r.code != 0 {
			t.Fatalf("enqueue: exit %d: %s %s", r.code, r.stdout, r.stderr)
		}
		r := runCLI(t, env, "", "events", "tail", "-o", "json", "--ack", "--max", "1")
		var ev queue.Event
		if err := json.Unmarshal([]byte(r.stdout), &ev); err != nil || ev.TaskID != id || len(ev.Attachments) != 1 {
			t.Fatalf("event for %s: exit %d, %v: %s %s", id, r.code, err, r.stdout, r.stderr)
		}
		return ev
	}
	expect := func(ev queue.Event, typ, stage, hint string) {
		t.Helper()
		a := ev.Attachments[0]
		if ev.Type != typ {
			t.Fatalf("%s: %s (%+v), want %s", ev.TaskID, ev.Type, a.Error, typ)
		}
		if stage == "" {
			return
		}
		if a.Error == nil || a.Error.Stage != stage || !strings.Contains(a.Error.Hint, hint) {
			t.Fatalf("%s: error %+v, want stage %s with the hint %q", ev.TaskID, a.Error, stage, hint)
		}
	}
	enable := func(customer string, a demo.SpareAccount, bucket string) (printout, externalID string) {
		t.Helper()
		r := runCLI(t, env, "", "integration", "enable", customer, "--account", a.AccountID, "--bucket", bucket)
		if r.code != 0 {
			t.Fatalf("enable %s: exit %d: %s", customer, r.code, r.stderr)
		}
		var in credcache.Integration
		show := runCLI(t, env, "", "integration", "show", customer, "-o", "json")
		if err := json.Unmarshal([]byte(show.stdout), &in); err != nil || in.ExternalID == "" {
			t.Fatalf("show %s: %v: %s", customer, err, show.stdout)
		}
		return r.stdout, in.ExternalID
	}

	// Delegated access, as the guide says: the role with the printed
	// trust policy, the read policy, and a task completes.
	a1, bucket1 := w.Manifest.SpareAccounts[0], "guide-delegated-data"
	printout, ext := enable("guide-delegated", a1, bucket1)
	r1 := strings.NewReplacer("YOUR_ACCOUNT_ID", a1.AccountID, "YOUR_BUCKET_NAME", bucket1, "EXTERNAL_ID", ext,
		"FLEET_ACCOUNT_ID", w.Manifest.FleetAccountID, "SOME_KEY", "doc.txt")
	trust := r1.Replace(files["trust-policy.json"])
	for _, line := range strings.Split(strings.TrimSpace(trust), "\n") {
		if !strings.Contains(printout, strings.TrimSpace(line)) {
			t.Fatalf("the guide's trust policy line %q is not in what ferry integration enable printed:\n%s", line, printout)
		}
	}
	as(a1)
	setup(bucket1)
	save("trust-policy.json", trust)
	save("read-policy.json", r1.Replace(files["read-policy.json"]))
	run("create-role", r1)
	run("attach-read-policy", r1)
	expect(task("guide-delegated", "s3://"+bucket1+"/doc.txt"), "task.completed", "", "")

	// A permission policy without s3:GetObject.
	noGet := strings.Replace(r1.Replace(files["read-policy.json"]), `"s3:GetObject",`, "", 1)
	if noGet == r1.Replace(files["read-policy.json"]) {
		t.Fatal("the guide's read policy no longer lists s3:GetObject first")
	}
	save("read-policy.json", noGet)
	run("attach-read-policy", r1)
	expect(task("guide-delegated", "s3://"+bucket1+"/doc.txt"), "task.access_denied", "get_object", promised("grant s3:GetObject on", r1))
	save("read-policy.json", r1.Replace(files["read-policy.json"]))
	run("attach-read-policy", r1)

	// An SSE-KMS object whose key the role may not use, then the guide's grant.
	keyARN := strings.TrimSpace(cli.Run(t, "kms", "create-key", "--query", "KeyMetadata.Arn", "--output", "text"))
	cli.Run(t, "s3api", "put-object", "--bucket", bucket1, "--key", "secret.txt", "--body", strings.TrimPrefix(cli.File(t, "secret.txt", "kms"), "file://"),
		"--server-side-encryption", "aws:kms", "--ssekms-key-id", keyARN)
	rk := strings.NewReplacer("KEY_ARN", keyARN, "YOUR_ACCOUNT_ID", a1.AccountID)
	expect(task("guide-delegated", "s3://"+bucket1+"/secret.txt"), "task.access_denied", "get_object",
		promised("the object is encrypted with the KMS key KEY_ARN, which the role ScaleAI-Integration may not use: allow kms:Decrypt", rk))
	run("kms-role-policy", rk)
	expect(task("guide-delegated", "s3://"+bucket1+"/secret.txt"), "task.completed", "", "")

	// The wrong external ID in the trust policy.
	a2, bucket2 := w.Manifest.SpareAccounts[1], "guide-wrong-ext-data"
	_, ext2 := enable("guide-wrong-ext", a2, bucket2)
	r2 := strings.NewReplacer("YOUR_ACCOUNT_ID", a2.AccountID, "YOUR_BUCKET_NAME", bucket2, "EXTERNAL_ID", "not-"+ext2,
		"FLEET_ACCOUNT_ID", w.Manifest.FleetAccountID)
	as(a2)
	setup(bucket2)
	save("trust-policy.json", r2.Replace(files["trust-policy.json"]))
	save("read-policy.json", r2.Replace(files["read-policy.json"]))
	run("create-role", r2)
	run("attach-read-policy", r2)
	expect(task("guide-wrong-ext", "s3://"+bucket2+"/doc.txt"), "task.access_denied", "assume_role",
		promised("the role's trust policy does not accept this external ID", r2))

	// Cross-account access with a registered account: refused without the
	// bucket policy, read with it.
	a3, bucket3 := w.Manifest.SpareAccounts[2], "guide-cross-data"
	if r := runCLI(t, env, "", "integration", "register-account", "guide-cross", "--account", a3.AccountID); r.code != 0 {
		t.Fatalf("register-account: exit %d: %s", r.code, r.stderr)
	}
	r3 := strings.NewReplacer("YOUR_ACCOUNT_ID", a3.AccountID, "YOUR_BUCKET_NAME", bucket3, "FLEET_ACCOUNT_ID", w.Manifest.FleetAccountID)
	as(a3)
	setup(bucket3)
	expect(task("guide-cross", "s3://"+bucket3+"/doc.txt"), "task.access_denied", "get_object",
		promised("add the fleet account to the bucket policy", r3))
	save("bucket-policy.json", r3.Replace(files["bucket-policy.json"]))
	run("bucket-policy", r3)
	expect(task("guide-cross", "s3://"+bucket3+"/doc.txt"), "task.completed", "", "")

	// Proving control of the bucket with the guide's command.
	var cross credcache.Integration
	if show := runCLI(t, env, "", "integration", "show", "guide-cross", "-o", "json"); json.Unmarshal([]byte(show.stdout), &cross) != nil || cross.VerificationToken == "" {
		t.Fatalf("show guide-cross gives no verification token: %s", show.stdout)
	}
	save("verification-token.txt", cross.VerificationToken+"\n")
	run("verification-object", strings.NewReplacer("YOUR_BUCKET_NAME", bucket3, "YOUR_CUSTOMER_ID", "guide-cross"))
	if r := runCLI(t, env, "", "integration", "verify-bucket", "guide-cross", bucket3); r.code != 0 {
		t.Fatalf("verify-bucket after the guide's command: exit %d: %s%s", r.code, r.stdout, r.stderr)
	}
}
