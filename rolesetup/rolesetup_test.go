package rolesetup_test

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/function"
	"github.com/zclconf/go-cty/cty/function/stdlib"
	"go.yaml.in/yaml/v3"

	"github.com/ferryworks/ferry/credcache"
	"github.com/ferryworks/ferry/rolesetup"
)

var role = rolesetup.Role{
	Name:           credcache.DefaultRoleName,
	FleetAccountID: "111111111111",
	ExternalIDs:    []string{"new-ID_1+=,.@:/-", "old-id"},
	Buckets:        []string{"data-one", "data.two"},
	KMSKeyARNs:     []string{"arn:aws:kms:us-east-1:222233334444:key/1234abcd-12ab-34cd-56ef-1234567890ab"},
}

// sameJSON fails unless got and want are the same JSON value.
func sameJSON(t *testing.T, what string, got any, want string) {
	t.Helper()
	b, err := json.Marshal(got)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	var g, w any
	if err := json.Unmarshal(b, &g); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatalf("%s: want: %v", what, err)
	}
	if !reflect.DeepEqual(g, w) {
		t.Fatalf("%s:\n%s\nwant\n%s", what, b, want)
	}
}

func TestCloudFormationCarriesThePolicies(t *testing.T) {
	out, err := role.CloudFormation()
	if err != nil {
		t.Fatal(err)
	}
	var tmpl struct {
		Version   string `yaml:"AWSTemplateFormatVersion"`
		Resources map[string]struct {
			Type       string `yaml:"Type"`
			Properties struct {
				RoleName                 string         `yaml:"RoleName"`
				AssumeRolePolicyDocument map[string]any `yaml:"AssumeRolePolicyDocument"`
				Policies                 []struct {
					PolicyName     string         `yaml:"PolicyName"`
					PolicyDocument map[string]any `yaml:"PolicyDocument"`
				} `yaml:"Policies"`
			} `yaml:"Properties"`
		} `yaml:"Resources"`
		Outputs map[string]struct {
			Value map[string][]string `yaml:"Value"`
		} `yaml:"Outputs"`
	}
	if err := yaml.Unmarshal(out, &tmpl); err != nil {
		t.Fatalf("not YAML: %v\n%s", err, out)
	}
	if tmpl.Version != "2010-09-09" || len(tmpl.Resources) != 1 {
		t.Fatalf("template version %q with %d resources:\n%s", tmpl.Version, len(tmpl.Resources), out)
	}
	for id, r := range tmpl.Resources {
		p := r.Properties
		if r.Type != "AWS::IAM::Role" || p.RoleName != credcache.DefaultRoleName || len(p.Policies) != 1 || p.Policies[0].PolicyName != rolesetup.ReadPolicyName {
			t.Fatalf("resource %s = %+v", id, r)
		}
		sameJSON(t, "trust policy", p.AssumeRolePolicyDocument, credcache.TrustPolicy(role.FleetAccountID, role.ExternalIDs...))
		sameJSON(t, "read policy", p.Policies[0].PolicyDocument, credcache.PolicyJSON(credcache.ReadPolicyDocument(role.Buckets, role.KMSKeyARNs)))
		if got := tmpl.Outputs["RoleArn"].Value["Fn::GetAtt"]; len(got) != 2 || got[0] != id || got[1] != "Arn" {
			t.Fatalf("output RoleArn = %v", got)
		}
	}
}

func TestTerraformCarriesThePolicies(t *testing.T) {
	out, err := role.Terraform()
	if err != nil {
		t.Fatal(err)
	}
	f, diags := hclsyntax.ParseConfig(out, "main.tf", hcl.InitialPos)
	if diags.HasErrors() {
		t.Fatalf("not HCL: %v\n%s", diags, out)
	}
	ctx := &hcl.EvalContext{Functions: map[string]function.Function{"jsonencode": stdlib.JSONEncodeFunc}}
	// jsonText evaluates a jsonencode(...) attribute as Terraform would.
	jsonText := func(b *hclsyntax.Block, name string) string {
		t.Helper()
		attr := b.Body.Attributes[name]
		if attr == nil {
			t.Fatalf("%s %v has no %s", b.Type, b.Labels, name)
		}
		v, diags := attr.Expr.Value(ctx)
		if diags.HasErrors() || v.Type() != cty.String {
			t.Fatalf("%s: %v", name, diags)
		}
		return v.AsString()
	}
	blocks := map[string]*hclsyntax.Block{}
	for _, b := range f.Body.(*hclsyntax.Body).Blocks {
		blocks[b.Type+" "+strings.Join(b.Labels, ".")] = b
	}
	r, p, o := blocks["resource aws_iam_role.scaleai_integration"], blocks["resource aws_iam_role_policy.scale_read"], blocks["output role_arn"]
	if r == nil || p == nil || o == nil || len(blocks) != 3 {
		t.Fatalf("blocks %v:\n%s", blocks, out)
	}
	var trust, read any
	_ = json.Unmarshal([]byte(jsonText(r, "assume_role_policy")), &trust)
	_ = json.Unmarshal([]byte(jsonText(p, "policy")), &read)
	sameJSON(t, "trust policy", trust, credcache.TrustPolicy(role.FleetAccountID, role.ExternalIDs...))
	sameJSON(t, "read policy", read, credcache.PolicyJSON(credcache.ReadPolicyDocument(role.Buckets, role.KMSKeyARNs)))
	if name, _ := r.Body.Attributes["name"].Expr.Value(nil); name.AsString() != credcache.DefaultRoleName {
		t.Fatalf("role name %v", name)
	}
	for b, want := range map[*hclsyntax.Block][2]string{p: {"role", "aws_iam_role.scaleai_integration.id"}, o: {"value", "aws_iam_role.scaleai_integration.arn"}} {
		tr, diags := hcl.AbsTraversalForExpr(b.Body.Attributes[want[0]].Expr)
		if diags.HasErrors() || len(tr) != 3 || tr.RootName()+"."+tr[1].(hcl.TraverseAttr).Name+"."+tr[2].(hcl.TraverseAttr).Name != want[1] {
			t.Fatalf("%s %v: %s is not %s", b.Type, b.Labels, want[0], want[1])
		}
	}
}

func TestOneExternalIDIsAString(t *testing.T) {
	r := role
	r.ExternalIDs, r.KMSKeyARNs = []string{"only-one"}, nil
	out, err := r.CloudFormation()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(out), "sts:ExternalId: only-one") || strings.Contains(string(out), "kms:Decrypt") {
		t.Fatalf("one external ID, no KMS key:\n%s", out)
	}
}

func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		mut  func(*rolesetup.Role)
		want string
	}{
		{func(r *rolesetup.Role) { r.Buckets = nil }, "no bucket"},
		{func(r *rolesetup.Role) { r.Buckets = []string{"Bad_Bucket"} }, `bucket "Bad_Bucket"`},
		{func(r *rolesetup.Role) { r.ExternalIDs = nil }, "no external ID"},
		{func(r *rolesetup.Role) { r.ExternalIDs = []string{"bad id"} }, "external_id"},
		{func(r *rolesetup.Role) { r.FleetAccountID = "1" }, "fleet account"},
		{func(r *rolesetup.Role) { r.KMSKeyARNs = []string{"alias/mine"} }, "want a key ARN"},
		{func(r *rolesetup.Role) { r.Name = "" }, "role_name"},
	} {
		r := role
		tc.mut(&r)
		_, err1 := r.CloudFormation()
		_, err2 := r.Terraform()
		for _, err := range []error{err1, err2} {
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("%+v: %v, want an error saying %q", r, err, tc.want)
			}
		}
	}
}

func TestWriteInEachFormat(t *testing.T) {
	t.Parallel()
	want := map[rolesetup.Format]func() ([]byte, error){rolesetup.CloudFormation: role.CloudFormation, rolesetup.Terraform: role.Terraform}
	if len(rolesetup.Formats()) != len(want) {
		t.Fatalf("Formats() = %v, want %d formats", rolesetup.Formats(), len(want))
	}
	for _, f := range rolesetup.Formats() {
		render, ok := want[f]
		if !ok {
			t.Fatalf("format %q has no template method", f)
		}
		wantBytes, err := render()
		if err != nil {
			t.Fatal(err)
		}
		var b strings.Builder
		if err := role.Write(&b, f); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if b.String() != string(wantBytes) {
			t.Errorf("%s: Write wrote\n%s\nwant\n%s", f, b.String(), wantBytes)
		}
	}
	var b strings.Builder
	if err := role.Write(&b, "json"); err == nil || !strings.Contains(err.Error(), `"json"`) || b.Len() != 0 {
		t.Errorf("an unknown format: err = %v, wrote %q; want an error naming it and nothing written", err, b.String())
	}
	bad := role
	bad.Buckets = nil
	if err := bad.Write(&b, rolesetup.Terraform); err == nil || b.Len() != 0 {
		t.Errorf("a role without buckets: err = %v, wrote %q; want Validate's error and nothing written", err, b.String())
	}
}
