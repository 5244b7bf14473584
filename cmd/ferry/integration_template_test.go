package main

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty/function"
	"github.com/zclconf/go-cty/cty/function/stdlib"
	"go.yaml.in/yaml/v3"

	"github.com/ferryworks/ferry/internal/demo"
	"github.com/ferryworks/ferry/internal/localaws"
	"github.com/ferryworks/ferry/internal/testenv"
	"github.com/ferryworks/ferry/queue"
)

// deployCloudFormation does what CloudFormation would with the template's
// resources, through the IAM API as the customer's admin: CreateRole with
// the trust policy, PutRolePolicy for each inline policy. A resource type
// it does not know fails the test (the template grew something this test
// cannot apply). It returns the trust policy JSON it created the role with.
func deployCloudFormation(t *testing.T, ic *iam.Client, template string) string {
	t.Helper()
	var tmpl struct {
		Resources map[string]struct {
			Type       string         `yaml:"Type"`
			Properties map[string]any `yaml:"Properties"`
		} `yaml:"Resources"`
	}
	if err := yaml.Unmarshal([]byte(template), &tmpl); err != nil {
		t.Fatalf("the CloudFormation template is not YAML: %v\n%s", err, template)
	}
	if len(tmpl.Resources) == 0 {
		t.Fatalf("the template creates nothing:\n%s", template)
	}
	asJSON := func(v any) string {
		t.Helper()
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	ctx := testenv.Context(t, time.Minute)
	var trust string
	for id, r := range tmpl.Resources {
		if r.Type != "AWS::IAM::Role" {
			t.Fatalf("resource %s: type %s, which this test cannot deploy", id, r.Type)
		}
		p := r.Properties
		name, _ := p["RoleName"].(string)
		desc, _ := p["Description"].(string)
		trust = asJSON(p["AssumeRolePolicyDocument"])
		if _, err := ic.CreateRole(ctx, &iam.CreateRoleInput{RoleName: aws.String(name), Description: aws.String(desc),
			AssumeRolePolicyDocument: aws.String(trust)}); err != nil {
			t.Fatalf("CreateRole %s: %v", name, err)
		}
		policies, _ := p["Policies"].([]any)
		for _, raw := range policies {
			pol, _ := raw.(map[string]any)
			pname, _ := pol["PolicyName"].(string)
			if _, err := ic.PutRolePolicy(ctx, &iam.PutRolePolicyInput{RoleName: aws.String(name), PolicyName: aws.String(pname),
				PolicyDocument: aws.String(asJSON(pol["PolicyDocument"]))}); err != nil {
				t.Fatalf("PutRolePolicy %s/%s: %v", name, pname, err)
			}
		}
	}
	return trust
}

// terraformPolicies evaluates the jsonencode(...) policy documents of the
// Terraform configuration as Terraform would.
func terraformPolicies(t *testing.T, src string) (trust, read string) {
	t.Helper()
	f, diags := hclsyntax.ParseConfig([]byte(src), "main.tf", hcl.InitialPos)
	if diags.HasErrors() {
		t.Fatalf("the Terraform configuration is not HCL: %v\n%s", diags, src)
	}
	ctx := &hcl.EvalContext{Functions: map[string]function.Function{"jsonencode": stdlib.JSONEncodeFunc}}
	for _, b := range f.Body.(*hclsyntax.Body).Blocks {
		for attr, dst := range map[string]*string{"assume_role_policy": &trust, "policy": &read} {
			if a := b.Body.Attributes[attr]; a != nil && b.Type == "resource" {
				v, diags := a.Expr.Value(ctx)
				if diags.HasErrors() {
					t.Fatalf("%s: %v", attr, diags)
				}
				*dst = v.AsString()
			}
		}
	}
	return trust, read
}

func sameJSONText(a, b string) bool {
	var x, y any
	return json.Unmarshal([]byte(a), &x) == nil && json.Unmarshal([]byte(b), &y) == nil && reflect.DeepEqual(x, y)
}

// The CloudFormation template `ferry integration enable -o cloudformation`
// prints, applied to an empty account (its IAM calls issued through the
// gate), makes a working integration: check-access reads a plain and an
// SSE-KMS object, integration verify passes, and a task completes. The Terraform configuration
// carries the same policies.
func TestSetupTemplatesApplied(t *testing.T) {
	t.Parallel()
	w := testenv.SharedWorld(t)
	env := cliEnv(w)
	ctx := testenv.Context(t, 5*time.Minute)
	const customer, bucket = "cfnco", "cfnco-data"
	spare := w.Manifest.SpareAccounts[1]
	acct := localaws.Account{ID: spare.AccountID, AccessKeyID: spare.AdminAccessKeyID, SecretAccessKey: spare.AdminSecretAccessKey}
	s3c := w.Stack.S3Client(acct, demo.DefaultRegion)
	if _, err := s3c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(bucket)}); err != nil {
		t.Fatal(err)
	}
	key, err := w.Stack.CreateKMSKey(acct.ID, demo.DefaultRegion, "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s3c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String("doc.txt"), Body: strings.NewReader("plain")}); err != nil {
		t.Fatal(err)
	}
	if _, err := s3c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String("secret.txt"), Body: strings.NewReader("encrypted"),
		ServerSideEncryption: s3types.ServerSideEncryptionAwsKms, SSEKMSKeyId: aws.String(key.ARN)}); err != nil {
		t.Fatal(err)
	}

	args := []string{"integration", "enable", customer, "--account", acct.ID, "--bucket", bucket, "--kms-key", key.ARN}
	cfn := runCLI(t, env, "", append(args, "-o", "cloudformation")...)
	if cfn.code != 0 {
		t.Fatalf("enable -o cloudformation: exit %d: %s", cfn.code, cfn.stderr)
	}
	trust := deployCloudFormation(t, iam.NewFromConfig(w.Stack.Config(acct, demo.DefaultRegion)), cfn.stdout)
	if r := runCLI(t, env, "", "check-access", "--customer", customer, "s3://"+bucket+"/doc.txt", "s3://"+bucket+"/secret.txt"); r.code != 0 {
		t.Fatalf("check-access after the template is applied: exit %d:\n%s%s", r.code, r.stdout, r.stderr)
	}
	// What support staff run once the customer applied the template.
	v := runCLI(t, env, "", "integration", "verify", customer, "--bucket", bucket, "--object", "s3://"+bucket+"/secret.txt", "--wait", "30s")
	if v.code != 0 {
		t.Fatalf("integration verify after the template is applied: exit %d:\n%s%s", v.code, v.stdout, v.stderr)
	}
	for _, check := range []string{"assume_role", "head_bucket", "get_object"} {
		if !strings.Contains(v.stdout, check) {
			t.Errorf("integration verify did not report %s:\n%s", check, v.stdout)
		}
	}
	startWorker(t, env)
	body := `{"version":1,"task_id":"cfn-1","customer_id":"` + customer + `","attachments":[{"uri":"s3://` + bucket + `/secret.txt"}]}`
	if r := runCLI(t, env, body+"\n", "enqueue", "-o", "json"); r.code != 0 {
		t.Fatalf("enqueue: exit %d: %s %s", r.code, r.stdout, r.stderr)
	}
	ev := runCLI(t, env, "", "events", "tail", "-o", "json", "--ack", "--max", "1")
	var e queue.Event
	if err := json.Unmarshal([]byte(ev.stdout), &e); err != nil || e.TaskID != "cfn-1" || e.Type != queue.EventCompleted {
		t.Fatalf("task through the deployed role: %v: %s %s", err, ev.stdout, ev.stderr)
	}

	// Terraform: the same documents (re-enabling keeps the external ID).
	tf := runCLI(t, env, "", append(args, "-o", "terraform")...)
	if tf.code != 0 {
		t.Fatalf("enable -o terraform: exit %d: %s", tf.code, tf.stderr)
	}
	tfTrust, tfRead := terraformPolicies(t, tf.stdout)
	if !sameJSONText(tfTrust, trust) {
		t.Fatalf("Terraform's trust policy %s differs from CloudFormation's %s", tfTrust, trust)
	}
	if !strings.Contains(tfRead, key.ARN) || !strings.Contains(tfRead, "arn:aws:s3:::"+bucket+"/*") {
		t.Fatalf("Terraform's read policy lacks the bucket or the key: %s", tfRead)
	}

	for _, b := range []struct {
		args []string
		want string
	}{
		{[]string{"integration", "enable", "x", "--account", acct.ID, "-o", "terraform"}, "needs --bucket"},
		{[]string{"integration", "enable", "x", "--account", acct.ID, "--bucket", "Not_A_Bucket", "-o", "cloudformation"}, "Not_A_Bucket"},
		{[]string{"integration", "enable", "x", "--account", acct.ID, "--bucket", bucket, "--kms-key", "alias/k", "-o", "cloudformation"}, "key ARN"},
		{[]string{"integration", "enable", "x", "--account", acct.ID, "-o", "pdf"}, "cloudformation or terraform"},
	} {
		if r := runCLI(t, env, "", b.args...); r.code != 2 || !strings.Contains(r.stderr, b.want) {
			t.Errorf("ferry %v: exit %d, stderr %q; want exit 2 mentioning %q", b.args, r.code, r.stderr, b.want)
		}
	}
	if r := runCLI(t, env, "", "integration", "show", "x"); r.code != 1 {
		t.Errorf("a refused template enabled the integration anyway: show x exits %d", r.code)
	}
}
