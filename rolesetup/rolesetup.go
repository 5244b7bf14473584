// Package rolesetup describes the IAM role a customer creates for ferry's
// delegated access (its trust policy, its read policy) and renders it as a
// ready-made setup template: CloudFormation (YAML) and Terraform (HCL). Both
// are made from one Role, and carry the policy documents credcache makes, so
// a template says exactly what `ferry integration enable` prints.
package rolesetup

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/hashicorp/hcl/v2/hclwrite"
	"github.com/zclconf/go-cty/cty"
	ctyjson "github.com/zclconf/go-cty/cty/json"
	"go.yaml.in/yaml/v3"

	"github.com/ferryworks/ferry/credcache"
)

// ReadPolicyName is the name of the role's inline read policy, the one the
// integration guide's commands put too.
const ReadPolicyName = "ScaleRead"

// Role is the integration role of one customer.
type Role struct {
	// Name is the role's name (credcache.DefaultRoleName unless the fleet
	// runs with another FERRY_ROLE_NAME).
	Name string
	// FleetAccountID is the account the trust policy lets assume the role.
	FleetAccountID string
	// ExternalIDs are the IDs the trust policy accepts: the customer's
	// current one, then the previous one during a rotation.
	ExternalIDs []string
	// Buckets the role may read; at least one.
	Buckets []string
	// KMSKeyARNs the role may decrypt with (SSE-KMS objects); may be empty.
	KMSKeyARNs []string
}

// Validate says what is missing or malformed, so a template is never
// printed that the customer could not apply.
func (r Role) Validate() error {
	var errs []error
	if err := credcache.ValidRoleName(r.Name); err != nil {
		errs = append(errs, err)
	}
	if err := credcache.ValidAccountID(r.FleetAccountID); err != nil {
		errs = append(errs, fmt.Errorf("fleet account: %w", err))
	}
	if len(r.ExternalIDs) == 0 {
		errs = append(errs, errors.New("no external ID: enable delegated access first"))
	}
	for _, id := range r.ExternalIDs {
		if err := credcache.ValidExternalID(id); err != nil {
			errs = append(errs, err)
		}
	}
	if len(r.Buckets) == 0 {
		errs = append(errs, errors.New("no bucket: name the buckets the role may read"))
	}
	for _, b := range r.Buckets {
		// S3 bucket names: 3-63 characters of lowercase letters, digits,
		// dots and hyphens.
		// https://docs.aws.amazon.com/AmazonS3/latest/userguide/bucketnamingrules.html
		if len(b) < 3 || len(b) > 63 || strings.Trim(b, "abcdefghijklmnopqrstuvwxyz0123456789.-") != "" {
			errs = append(errs, fmt.Errorf("bucket %q: want 3-63 characters of a-z, 0-9, '.' and '-'", b))
		}
	}
	for _, k := range r.KMSKeyARNs {
		if !strings.HasPrefix(k, "arn:aws") || !strings.Contains(k, ":kms:") || !strings.Contains(k, ":key/") {
			errs = append(errs, fmt.Errorf("KMS key %q: want a key ARN, arn:aws:kms:REGION:ACCOUNT:key/KEY_ID", k))
		}
	}
	return errors.Join(errs...)
}

// TrustPolicy is the role's trust policy (credcache.TrustPolicyDocument).
func (r Role) TrustPolicy() map[string]any {
	return credcache.TrustPolicyDocument(r.FleetAccountID, r.ExternalIDs...)
}

// ReadPolicy is the role's permission policy
// (credcache.ReadPolicyDocument).
func (r Role) ReadPolicy() map[string]any {
	return credcache.ReadPolicyDocument(r.Buckets, r.KMSKeyARNs)
}

// Format is a setup template's format.
type Format string

// The template formats, as `ferry integration enable -o` names them.
const (
	// CloudFormation is a CloudFormation template in YAML (Role.CloudFormation).
	CloudFormation Format = "cloudformation"
	// Terraform is Terraform configuration in HCL (Role.Terraform).
	Terraform Format = "terraform"
)

// Formats lists the template formats.
func Formats() []Format { return []Format{CloudFormation, Terraform} }

// Render returns the role as a template in format f.
func (r Role) Render(f Format) ([]byte, error) {
	switch f {
	case CloudFormation:
		return r.CloudFormation()
	case Terraform:
		return r.Terraform()
	}
	return nil, fmt.Errorf("rolesetup: template format %q: want %s or %s", f, CloudFormation, Terraform)
}

// Write writes the role to w as a template in format f.
func (r Role) Write(w io.Writer, f Format) error {
	b, err := r.Render(f)
	if err != nil {
		return err
	}
	_, err = w.Write(b)
	return err
}

// cfnLogicalID is the role's logical ID in the CloudFormation template.
const cfnLogicalID = "ScaleAIIntegrationRole"

// CloudFormation returns a CloudFormation template (YAML) that creates the
// role with its trust policy and inline read policy and outputs its ARN. It
// uses no short-form intrinsic tags (Fn::GetAtt is written out), so any
// YAML parser reads it.
func (r Role) CloudFormation() ([]byte, error) {
	if err := r.Validate(); err != nil {
		return nil, err
	}
	// Structs rather than maps keep the template's keys in the order a
	// person expects; the policy documents (maps) come out sorted, as
	// ferry prints their JSON.
	type policy struct {
		PolicyName     string         `yaml:"PolicyName"`
		PolicyDocument map[string]any `yaml:"PolicyDocument"`
	}
	type roleProps struct {
		RoleName                 string         `yaml:"RoleName"`
		Description              string         `yaml:"Description"`
		AssumeRolePolicyDocument map[string]any `yaml:"AssumeRolePolicyDocument"`
		Policies                 []policy       `yaml:"Policies"`
	}
	type resource struct {
		Type       string    `yaml:"Type"`
		Properties roleProps `yaml:"Properties"`
	}
	type output struct {
		Description string         `yaml:"Description"`
		Value       map[string]any `yaml:"Value"`
	}
	tmpl := struct {
		Version     string              `yaml:"AWSTemplateFormatVersion"`
		Description string              `yaml:"Description"`
		Resources   map[string]resource `yaml:"Resources"`
		Outputs     map[string]output   `yaml:"Outputs"`
	}{
		Version:     "2010-09-09",
		Description: r.description(),
		Resources: map[string]resource{cfnLogicalID: {
			Type: "AWS::IAM::Role",
			Properties: roleProps{
				RoleName:                 r.Name,
				Description:              "Assumed by ferry to read the objects named in your tasks",
				AssumeRolePolicyDocument: r.TrustPolicy(),
				Policies:                 []policy{{PolicyName: ReadPolicyName, PolicyDocument: r.ReadPolicy()}},
			},
		}},
		Outputs: map[string]output{"RoleArn": {
			Description: "The role's ARN: send it to your ferry contact",
			Value:       map[string]any{"Fn::GetAtt": []string{cfnLogicalID, "Arn"}},
		}},
	}
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(tmpl); err != nil {
		return nil, fmt.Errorf("rolesetup: cloudformation: %w", err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("rolesetup: cloudformation: %w", err)
	}
	return buf.Bytes(), nil
}

// Terraform names of the resources the HCL declares.
const (
	tfRole   = "scaleai_integration"
	tfPolicy = "scale_read"
)

// Terraform returns the same role as Terraform configuration (HCL) for the
// AWS provider: an aws_iam_role with the trust policy, an
// aws_iam_role_policy with the read policy, both documents written with
// jsonencode so Terraform compares them as JSON, and the role's ARN as an
// output.
func (r Role) Terraform() ([]byte, error) {
	if err := r.Validate(); err != nil {
		return nil, err
	}
	trust, err := jsonencodeTokens(r.TrustPolicy())
	if err != nil {
		return nil, err
	}
	read, err := jsonencodeTokens(r.ReadPolicy())
	if err != nil {
		return nil, err
	}
	f := hclwrite.NewEmptyFile()
	body := f.Body()
	body.AppendUnstructuredTokens(hclwrite.Tokens{{Type: hclsyntax.TokenComment, Bytes: []byte("# " + r.description() + "\n")}})
	role := body.AppendNewBlock("resource", []string{"aws_iam_role", tfRole}).Body()
	role.SetAttributeValue("name", cty.StringVal(r.Name))
	role.SetAttributeValue("description", cty.StringVal("Assumed by ferry to read the objects named in your tasks"))
	role.SetAttributeRaw("assume_role_policy", trust)
	body.AppendNewline()
	pol := body.AppendNewBlock("resource", []string{"aws_iam_role_policy", tfPolicy}).Body()
	pol.SetAttributeValue("name", cty.StringVal(ReadPolicyName))
	pol.SetAttributeTraversal("role", hcl.Traversal{hcl.TraverseRoot{Name: "aws_iam_role"}, hcl.TraverseAttr{Name: tfRole}, hcl.TraverseAttr{Name: "id"}})
	pol.SetAttributeRaw("policy", read)
	body.AppendNewline()
	out := body.AppendNewBlock("output", []string{"role_arn"}).Body()
	out.SetAttributeValue("description", cty.StringVal("The role's ARN: send it to your ferry contact"))
	out.SetAttributeTraversal("value", hcl.Traversal{hcl.TraverseRoot{Name: "aws_iam_role"}, hcl.TraverseAttr{Name: tfRole}, hcl.TraverseAttr{Name: "arn"}})
	return hclwrite.Format(f.Bytes()), nil
}

// jsonencodeTokens is jsonencode(<doc as an HCL object>), through the
// document's JSON so the HCL value is exactly the JSON ferry prints.
func jsonencodeTokens(doc map[string]any) (hclwrite.Tokens, error) {
	b, err := json.Marshal(doc)
	if err != nil {
		return nil, fmt.Errorf("rolesetup: terraform: %w", err)
	}
	ty, err := ctyjson.ImpliedType(b)
	if err != nil {
		return nil, fmt.Errorf("rolesetup: terraform: %w", err)
	}
	v, err := ctyjson.Unmarshal(b, ty)
	if err != nil {
		return nil, fmt.Errorf("rolesetup: terraform: %w", err)
	}
	return hclwrite.TokensForFunctionCall("jsonencode", hclwrite.TokensForValue(v)), nil
}

func (r Role) description() string {
	d := fmt.Sprintf("ferry delegated access: role %s, assumable by account %s with your external ID, reading %s",
		r.Name, r.FleetAccountID, strings.Join(r.Buckets, ", "))
	// A template's Description holds at most 1024 bytes:
	// https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/template-description-structure.html
	if len(d) > 1024 {
		d = d[:1020] + " …"
	}
	return d
}
