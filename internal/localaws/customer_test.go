package localaws

import (
	"context"
	"encoding/json"
	"net/url"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/ferryworks/ferry/internal/awscli"
)

// awsCLI drives the aws CLI as acct against s.
type awsCLI struct {
	t   *testing.T
	ses *awscli.Session
	dir string
}

func newAWSCLI(t *testing.T, s *Stack, acct Account) *awsCLI {
	t.Helper()
	ses := awscli.Start(t, map[string]string{"AWS_ENDPOINT_URL": s.URL, "AWS_ACCESS_KEY_ID": acct.AccessKeyID,
		"AWS_SECRET_ACCESS_KEY": acct.SecretAccessKey, "AWS_DEFAULT_REGION": "us-east-1"})
	return &awsCLI{t: t, ses: ses, dir: ses.Dir}
}

func (c *awsCLI) run(args ...string) string {
	c.t.Helper()
	return c.ses.Run(c.t, append(args, "--output", "json")...)
}

func (c *awsCLI) try(args ...string) (string, error) {
	return c.ses.Try(append(args, "--output", "json")...)
}

func (c *awsCLI) file(name, content string) string {
	c.t.Helper()
	return c.ses.File(c.t, name, content)
}

func jsonField(t *testing.T, out string, path ...string) string {
	t.Helper()
	var v any
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, out)
	}
	for _, p := range path {
		m, ok := v.(map[string]any)
		if !ok {
			t.Fatalf("no %s in %s", p, out)
		}
		v = m[p]
	}
	switch x := v.(type) {
	case string:
		return x
	case nil:
		t.Fatalf("no %v in %s", path, out)
	}
	b, _ := json.Marshal(v)
	return string(b)
}

func wantCLIError(t *testing.T, err error, code string) {
	t.Helper()
	if err == nil || !strings.Contains(err.Error(), code) {
		t.Fatalf("want an error with %s, got %v", code, err)
	}
}

// cliCtx bounds a test driven by the aws CLI. Such tests are not parallel:
// each CLI command costs a Python round trip, and on a loaded machine they
// would hold parallel slots long enough to run other tests' contexts out
// while those wait.
func cliCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// A customer sets up delegated access with the aws CLI, as the integration
// guide tells them: role, trust policy with external ID, a managed read
// policy, a bucket with an SSE-KMS default key. The fleet's reads follow
// each change from the next request on.
func TestCustomerDrivesDelegatedSetupWithCLI(t *testing.T) {
	s := startStack(t, Options{})
	fleet := mustAccount(t, s, "111111111111")
	cust := mustAccount(t, s, "")
	cli := newAWSCLI(t, s, cust)
	ctx := cliCtx(t)

	trust := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111111111111:root"},` +
		`"Action":"sts:AssumeRole","Condition":{"StringEquals":{"sts:ExternalId":"ext-1234"}}}]}`
	out := cli.run("iam", "create-role", "--role-name", "ScaleAI-Integration", "--assume-role-policy-document", cli.file("trust.json", trust))
	roleARN := jsonField(t, out, "Role", "Arn")
	if roleARN != RoleARN(cust.ID, "ScaleAI-Integration") {
		t.Fatalf("role arn %s", roleARN)
	}
	_, err := cli.try("iam", "create-role", "--role-name", "ScaleAI-Integration", "--assume-role-policy-document", cli.file("trust.json", trust))
	wantCLIError(t, err, "EntityAlreadyExists")
	out = cli.run("iam", "get-role", "--role-name", "ScaleAI-Integration")
	created, err := time.Parse(time.RFC3339, jsonField(t, out, "Role", "CreateDate"))
	if err != nil || time.Since(created) > time.Minute {
		t.Fatalf("CreateDate %v (%v)", created, err)
	}
	// botocore decodes IAM's URL-encoded policy documents back to JSON.
	if got := jsonField(t, out, "Role", "AssumeRolePolicyDocument", "Statement"); !strings.Contains(got, "ext-1234") {
		t.Fatalf("trust policy not returned: %s", got)
	}
	if out := cli.run("iam", "list-roles"); !strings.Contains(out, roleARN) {
		t.Fatalf("list-roles lacks the role: %s", out)
	}

	cli.run("s3api", "create-bucket", "--bucket", "cust-data")
	cli.run("s3api", "put-object", "--bucket", "cust-data", "--key", "a.txt", "--body", strings.TrimPrefix(cli.file("a.txt", "hello"), "file://"))

	assume := func(externalID string) (*s3.Client, error) {
		return assumedS3(t, s, fleet, roleARN, externalID, "us-east-1")
	}
	sess, err := assume("ext-1234")
	if err != nil {
		t.Fatalf("assume role: %v", err)
	}
	if _, err := assume("wrong"); err == nil {
		t.Fatal("a wrong external ID was accepted")
	}
	get := func(c *s3.Client, key string) (string, string) {
		_, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("cust-data"), Key: aws.String(key)}, noRetry)
		code, _ := apiCode(err)
		msg := ""
		if err != nil {
			msg = err.Error()
		}
		return code, msg
	}
	if code, _ := get(sess, "a.txt"); code != "AccessDenied" {
		t.Fatalf("role without a permission policy read the object: %q", code)
	}
	read := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["s3:GetObject","s3:ListBucket"],` +
		`"Resource":["arn:aws:s3:::cust-data/*","arn:aws:s3:::cust-data"]}]}`
	out = cli.run("iam", "create-policy", "--policy-name", "ferry-read", "--policy-document", cli.file("read.json", read))
	policyARN := jsonField(t, out, "Policy", "Arn")
	cli.run("iam", "attach-role-policy", "--role-name", "ScaleAI-Integration", "--policy-arn", policyARN)
	if code, msg := get(sess, "a.txt"); code != "" {
		t.Fatalf("attached read policy not applied: %s", msg)
	}
	cli.run("iam", "detach-role-policy", "--role-name", "ScaleAI-Integration", "--policy-arn", policyARN)
	if code, _ := get(sess, "a.txt"); code != "AccessDenied" {
		t.Fatalf("detached policy still applies: %q", code)
	}
	cli.run("iam", "put-role-policy", "--role-name", "ScaleAI-Integration", "--policy-name", "read", "--policy-document", cli.file("read.json", read))
	if code, msg := get(sess, "a.txt"); code != "" {
		t.Fatalf("inline read policy not applied: %s", msg)
	}

	// SSE-KMS: a key whose policy only enables IAM in the account does not
	// let the role decrypt until its own policy allows kms:Decrypt.
	out = cli.run("kms", "create-key", "--description", "customer data")
	keyARN := jsonField(t, out, "KeyMetadata", "Arn")
	keyID := jsonField(t, out, "KeyMetadata", "KeyId")
	if out := cli.run("kms", "get-key-policy", "--key-id", keyID, "--policy-name", "default"); !strings.Contains(out, "Enable IAM User Permissions") {
		t.Fatalf("default key policy: %s", out)
	}
	cli.run("s3api", "put-bucket-encryption", "--bucket", "cust-data", "--server-side-encryption-configuration",
		`{"Rules":[{"ApplyServerSideEncryptionByDefault":{"SSEAlgorithm":"aws:kms","KMSMasterKeyID":"`+keyID+`"}}]}`)
	out = cli.run("s3api", "put-object", "--bucket", "cust-data", "--key", "secret.txt", "--body", strings.TrimPrefix(cli.file("s.txt", "secret"), "file://"))
	if jsonField(t, out, "SSEKMSKeyId") != keyARN {
		t.Fatalf("put-object answer lacks the key: %s", out)
	}
	code, msg := get(sess, "secret.txt")
	if code != "AccessDenied" || !strings.Contains(msg, "kms:Decrypt") || !strings.Contains(msg, keyARN) {
		t.Fatalf("want a 403 naming kms:Decrypt and the key, got %q: %s", code, msg)
	}
	if code, _ := get(sess, "a.txt"); code != "" {
		t.Fatalf("an unencrypted object became unreadable: %s", code)
	}
	decrypt := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"kms:Decrypt","Resource":"` + keyARN + `"}]}`
	cli.run("iam", "put-role-policy", "--role-name", "ScaleAI-Integration", "--policy-name", "decrypt", "--policy-document", cli.file("dec.json", decrypt))
	if code, msg := get(sess, "secret.txt"); code != "" {
		t.Fatalf("kms:Decrypt granted by the role's policy under the default key policy: %s", msg)
	}
	// A key policy that names only the account's root... and nothing for the
	// role, replaced by one that enables nobody: the role loses access.
	cli.run("kms", "put-key-policy", "--key-id", keyID, "--policy-name", "default", "--policy",
		`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::`+cust.ID+`:user/admin"},"Action":"kms:*","Resource":"*"}]}`)
	if code, msg := get(sess, "secret.txt"); code != "AccessDenied" || !strings.Contains(msg, "no resource-based policy allows the kms:Decrypt action") {
		t.Fatalf("key policy without the account still let the role decrypt: %q %s", code, msg)
	}

	// Deleting a role needs its policies gone first.
	_, err = cli.try("iam", "delete-role", "--role-name", "ScaleAI-Integration")
	wantCLIError(t, err, "DeleteConflict")
	cli.run("iam", "delete-role-policy", "--role-name", "ScaleAI-Integration", "--policy-name", "read")
	cli.run("iam", "delete-role-policy", "--role-name", "ScaleAI-Integration", "--policy-name", "decrypt")
	cli.run("iam", "update-assume-role-policy", "--role-name", "ScaleAI-Integration", "--policy-document", cli.file("trust.json", strings.ReplaceAll(trust, "ext-1234", "ext-5678")))
	if _, err := assume("ext-1234"); err == nil {
		t.Fatal("the old external ID still works after update-assume-role-policy")
	}
	if _, err := assume("ext-5678"); err != nil {
		t.Fatalf("the new external ID: %v", err)
	}
	cli.run("iam", "delete-role", "--role-name", "ScaleAI-Integration")
	if _, err := assume("ext-5678"); err == nil {
		t.Fatal("a deleted role was assumed")
	}
	_, err = cli.try("iam", "get-role", "--role-name", "ScaleAI-Integration")
	wantCLIError(t, err, "NoSuchEntity")
}

// Cross-account access granted per object with ACLs, a bucket policy, and
// Requester Pays, as a customer sets them with the aws CLI.
func TestCustomerDrivesCrossAccountGrantsWithCLI(t *testing.T) {
	s := startStack(t, Options{})
	fleet := mustAccount(t, s, "111111111111")
	cust := mustAccount(t, s, "")
	cli := newAWSCLI(t, s, cust)
	ctx := cliCtx(t)
	fs3 := s.S3Client(fleet, "us-east-1")

	fleetCanon := *mustListBuckets(t, fs3).Owner.ID
	if fleetCanon != CanonicalUserID(fleet.ID) || len(fleetCanon) != 64 {
		t.Fatalf("fleet canonical ID %q", fleetCanon)
	}
	cli.run("s3api", "create-bucket", "--bucket", "acl-data")
	body := strings.TrimPrefix(cli.file("x", "payload"), "file://")
	for _, k := range []string{"granted.txt", "private.txt"} {
		cli.run("s3api", "put-object", "--bucket", "acl-data", "--key", k, "--body", body)
	}
	// New buckets have ACLs disabled.
	_, err := cli.try("s3api", "put-object-acl", "--bucket", "acl-data", "--key", "granted.txt", "--grant-read", "id="+fleetCanon)
	wantCLIError(t, err, "AccessControlListNotSupported")
	cli.run("s3api", "put-bucket-ownership-controls", "--bucket", "acl-data", "--ownership-controls", "Rules=[{ObjectOwnership=BucketOwnerPreferred}]")
	cli.run("s3api", "put-object-acl", "--bucket", "acl-data", "--key", "granted.txt", "--grant-read", "id="+fleetCanon)
	if out := cli.run("s3api", "get-object-acl", "--bucket", "acl-data", "--key", "granted.txt"); !strings.Contains(out, fleetCanon) {
		t.Fatalf("get-object-acl lacks the grant: %s", out)
	}
	get := func(key string, fns ...func(*s3.GetObjectInput)) string {
		in := &s3.GetObjectInput{Bucket: aws.String("acl-data"), Key: aws.String(key)}
		for _, f := range fns {
			f(in)
		}
		out, err := fs3.GetObject(ctx, in, noRetry)
		if err == nil {
			out.Body.Close()
		}
		code, _ := apiCode(err)
		return code
	}
	if code := get("granted.txt"); code != "" {
		t.Fatalf("ACL-granted object: %s", code)
	}
	if code := get("private.txt"); code != "AccessDenied" {
		t.Fatalf("object without a grant: %q", code)
	}
	cli.run("s3api", "put-bucket-ownership-controls", "--bucket", "acl-data", "--ownership-controls", "Rules=[{ObjectOwnership=BucketOwnerEnforced}]")
	if code := get("granted.txt"); code != "AccessDenied" {
		t.Fatalf("ACL still grants under BucketOwnerEnforced: %q", code)
	}
	policy := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111111111111:root"},` +
		`"Action":"s3:GetObject","Resource":"arn:aws:s3:::acl-data/*"}]}`
	cli.run("s3api", "put-bucket-policy", "--bucket", "acl-data", "--policy", policy)
	if out := cli.run("s3api", "get-bucket-policy", "--bucket", "acl-data"); !strings.Contains(out, "111111111111") {
		t.Fatalf("get-bucket-policy: %s", out)
	}
	if code := get("private.txt"); code != "" {
		t.Fatalf("bucket policy grant: %s", code)
	}

	// Requester Pays: the fleet must acknowledge it pays.
	cli.run("s3api", "put-bucket-request-payment", "--bucket", "acl-data", "--request-payment-configuration", "Payer=Requester")
	if code := get("private.txt"); code != "AccessDenied" {
		t.Fatalf("requester pays without x-amz-request-payer: %q", code)
	}
	if code := get("private.txt", func(in *s3.GetObjectInput) { in.RequestPayer = s3types.RequestPayerRequester }); code != "" {
		t.Fatalf("requester pays with x-amz-request-payer: %s", code)
	}
	// The owner's own reads need no header.
	if _, err := cli.try("s3api", "get-object", "--bucket", "acl-data", "--key", "private.txt", filepath.Join(cli.dir, "out")); err != nil {
		t.Fatalf("owner read of a requester-pays bucket: %v", err)
	}
	cli.run("s3api", "delete-bucket-policy", "--bucket", "acl-data")
	if code := get("private.txt", func(in *s3.GetObjectInput) { in.RequestPayer = s3types.RequestPayerRequester }); code != "AccessDenied" {
		t.Fatalf("deleted bucket policy still grants: %q", code)
	}
	// ListBuckets shows the caller's own buckets only.
	if out := cli.run("s3api", "list-buckets"); !strings.Contains(out, "acl-data") || jsonField(t, out, "Owner", "ID") != CanonicalUserID(cust.ID) {
		t.Fatalf("list-buckets: %s", out)
	}
	if l := mustListBuckets(t, fs3); len(l.Buckets) != 0 {
		t.Fatalf("the fleet sees another account's buckets: %v", l.Buckets)
	}
}

func mustListBuckets(t *testing.T, c *s3.Client) *s3.ListBucketsOutput {
	t.Helper()
	out, err := c.ListBuckets(testCtx(t), &s3.ListBucketsInput{})
	if err != nil {
		t.Fatalf("list buckets: %v", err)
	}
	return out
}

// With IAMDelay, a created or changed role reaches STS only after the
// delay, while IAM itself shows it at once.
func TestIAMDelay(t *testing.T) {
	t.Parallel()
	var offset atomic.Int64
	now := func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }
	s := startStack(t, Options{IAMDelay: 10 * time.Second, Now: now})
	fleet := mustAccount(t, s, "111111111111")
	cust := mustAccount(t, s, "")
	ctx := testCtx(t)
	ic := iam.NewFromConfig(s.Config(cust, "us-east-1"))
	trust := func(ext string) string {
		return `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111111111111:root"},` +
			`"Action":"sts:AssumeRole","Condition":{"StringEquals":{"sts:ExternalId":"` + ext + `"}}}]}`
	}
	out, err := ic.CreateRole(ctx, &iam.CreateRoleInput{RoleName: aws.String("r"), AssumeRolePolicyDocument: aws.String(trust("one-1"))})
	if err != nil {
		t.Fatal(err)
	}
	if doc, _ := url.QueryUnescape(aws.ToString(out.Role.AssumeRolePolicyDocument)); doc != trust("one-1") {
		t.Fatalf("AssumeRolePolicyDocument is not the URL-encoded document: %s", aws.ToString(out.Role.AssumeRolePolicyDocument))
	}
	assume := func(ext string) error {
		_, err := s.STSClient(fleet, "").AssumeRole(ctx, &sts.AssumeRoleInput{RoleArn: out.Role.Arn,
			RoleSessionName: aws.String("s1"), ExternalId: aws.String(ext)}, func(o *sts.Options) { o.RetryMaxAttempts = 1 })
		return err
	}
	if _, err := ic.GetRole(ctx, &iam.GetRoleInput{RoleName: aws.String("r")}); err != nil {
		t.Fatalf("IAM does not show the new role at once: %v", err)
	}
	if err := assume("one-1"); err == nil {
		t.Fatal("a role younger than the delay was assumed")
	}
	offset.Store(int64(11 * time.Second))
	if err := assume("one-1"); err != nil {
		t.Fatalf("after the delay: %v", err)
	}
	if _, err := ic.UpdateAssumeRolePolicy(ctx, &iam.UpdateAssumeRolePolicyInput{RoleName: aws.String("r"), PolicyDocument: aws.String(trust("two-2"))}); err != nil {
		t.Fatal(err)
	}
	if err := assume("one-1"); err != nil {
		t.Fatalf("the previous trust policy must hold during the delay: %v", err)
	}
	if err := assume("two-2"); err == nil {
		t.Fatal("the new trust policy applied before the delay")
	}
	offset.Store(int64(22 * time.Second))
	if err := assume("two-2"); err != nil {
		t.Fatalf("the new trust policy after the delay: %v", err)
	}
	if err := assume("one-1"); err == nil {
		t.Fatal("the old trust policy still applies after the delay")
	}
}

// A role session may call IAM only as its policies allow.
func TestIAMCallsAreAuthorised(t *testing.T) {
	t.Parallel()
	s := startStack(t, Options{})
	cust := mustAccount(t, s, "")
	ctx := testCtx(t)
	if _, err := s.PutRole(Role{AccountID: cust.ID, Name: "ops",
		TrustPolicy: `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::` + cust.ID + `:root"},"Action":"sts:AssumeRole"}]}`,
		Policies:    []string{`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iam:GetRole","Resource":"*"}]}`},
	}); err != nil {
		t.Fatal(err)
	}
	sess, err := s.STSClient(cust, "").AssumeRole(ctx, &sts.AssumeRoleInput{RoleArn: aws.String(RoleARN(cust.ID, "ops")), RoleSessionName: aws.String("me")})
	if err != nil {
		t.Fatal(err)
	}
	c := sess.Credentials
	ic := iam.NewFromConfig(s.configFor(credentials.NewStaticCredentialsProvider(*c.AccessKeyId, *c.SecretAccessKey, *c.SessionToken), "us-east-1"))
	if _, err := ic.GetRole(ctx, &iam.GetRoleInput{RoleName: aws.String("ops")}); err != nil {
		t.Fatalf("allowed GetRole: %v", err)
	}
	_, err = ic.CreateRole(ctx, &iam.CreateRoleInput{RoleName: aws.String("other"), AssumeRolePolicyDocument: aws.String(`{"Statement":[{"Effect":"Allow","Action":"sts:AssumeRole","Principal":{"AWS":"*"}}]}`)})
	if code, status := apiCode(err); code != "AccessDenied" || status != 403 {
		t.Fatalf("CreateRole without iam:CreateRole: %q %d", code, status)
	}
}

// The session_seconds fault cuts assumed sessions short.
func TestSessionSecondsFault(t *testing.T) {
	t.Parallel()
	s := startStack(t, Options{})
	cust := mustAccount(t, s, "")
	ctx := testCtx(t)
	if _, err := s.PutRole(Role{AccountID: cust.ID, Name: "r",
		TrustPolicy: `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"` + cust.ID + `"},"Action":"sts:AssumeRole"}]}`}); err != nil {
		t.Fatal(err)
	}
	if err := s.InjectFault(Fault{Operation: "s3:GetObject", SessionSeconds: 2}); err == nil {
		t.Fatal("session_seconds accepted on an operation other than sts:AssumeRole")
	}
	if err := s.InjectFault(Fault{Operation: "sts:AssumeRole", SessionSeconds: 2}); err != nil {
		t.Fatal(err)
	}
	out, err := s.STSClient(cust, "").AssumeRole(ctx, &sts.AssumeRoleInput{RoleArn: aws.String(RoleARN(cust.ID, "r")),
		RoleSessionName: aws.String("me"), DurationSeconds: aws.Int32(3600)})
	if err != nil {
		t.Fatal(err)
	}
	if left := time.Until(*out.Credentials.Expiration); left > 3*time.Second {
		t.Fatalf("session lasts %v, want about 2s", left)
	}
}
