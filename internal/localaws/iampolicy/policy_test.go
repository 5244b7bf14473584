package iampolicy

import (
	"errors"
	"testing"
)

// The shapes of the documents the integration guide hands customers
// (credcache writes them; localaws's tests evaluate those very documents):
// a role's read policy for bucket b, the bucket policy granting an
// account's root, and the role trust policy requiring an external ID.
const (
	readPolicy = `{"Version":"2012-10-17","Statement":[{"Sid":"ScaleReadObjectsAndListBucket",` +
		`"Action":["s3:GetObject","s3:ListBucket"],"Effect":"Allow","Resource":["arn:aws:s3:::b/*","arn:aws:s3:::b"]}]}`
	trustPolicy = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111111111111:root"},` +
		`"Action":"sts:AssumeRole","Condition":{"StringEquals":{"sts:ExternalId":"ext-1"}}}]}`
)

func bucketPolicy(account string) string {
	return `{"Version":"2012-10-17","Statement":[{"Sid":"ScaleFleetReadObjects","Action":["s3:GetObject"],"Effect":"Allow",` +
		`"Principal":{"AWS":["arn:aws:iam::` + account + `:root"]},"Resource":"arn:aws:s3:::b/*"}]}`
}

func mustParse(t *testing.T, text string) *Policy {
	t.Helper()
	p, err := Parse(text)
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	return p
}

func TestEvaluatePolicy(t *testing.T) {
	t.Parallel()
	root := Principal{ARN: "arn:aws:iam::111111111111:root", Account: "111111111111"}
	session := Principal{ARN: "arn:aws:sts::222222222222:assumed-role/R/s", Account: "222222222222", RoleARN: "arn:aws:iam::222222222222:role/R"}
	get := func(p Principal, res string) EvalRequest {
		return EvalRequest{Principal: p, Action: "s3:GetObject", Resource: res}
	}
	tests := []struct {
		name     string
		policy   string
		resource bool
		req      EvalRequest
		want     Decision
	}{
		{"read policy allows object", readPolicy, false, get(session, "arn:aws:s3:::b/k"), Allow},
		{"read policy allows list", readPolicy, false, EvalRequest{Action: "s3:ListBucket", Resource: "arn:aws:s3:::b"}, Allow},
		{"read policy other bucket", readPolicy, false, get(session, "arn:aws:s3:::bb/k"), NoMatch},
		{"read policy no put", readPolicy, false, EvalRequest{Action: "s3:PutObject", Resource: "arn:aws:s3:::b/k"}, NoMatch},
		{"bucket policy names fleet root", bucketPolicy("111111111111"), true, get(root, "arn:aws:s3:::b/x/y"), Allow},
		{"bucket policy other account", bucketPolicy("111111111111"), true, get(session, "arn:aws:s3:::b/x"), NoMatch},
		{"bucket policy ignored as identity policy has no principal match", bucketPolicy("999999999999"), true, get(root, "arn:aws:s3:::b/x"), NoMatch},
		{"statement object not array", `{"Statement":{"Effect":"Allow","Action":"s3:*","Resource":"*"}}`, false, get(root, "arn:aws:s3:::b/k"), Allow},
		{"action case-insensitive", `{"Statement":{"Effect":"Allow","Action":"S3:getobject","Resource":"*"}}`, false, get(root, "arn:aws:s3:::b/k"), Allow},
		{"resource case-sensitive", `{"Statement":{"Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::B/*"}}`, false, get(root, "arn:aws:s3:::b/k"), NoMatch},
		{"question mark one char", `{"Statement":{"Effect":"Allow","Action":"s3:Get?bject","Resource":"arn:aws:s3:::b/?"}}`, false, get(root, "arn:aws:s3:::b/k"), Allow},
		{"question mark not two chars", `{"Statement":{"Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::b/?"}}`, false, get(root, "arn:aws:s3:::b/kk"), NoMatch},
		{"deny wins over allow", `{"Statement":[{"Effect":"Allow","Action":"*","Resource":"*"},{"Effect":"Deny","Action":"s3:Get*","Resource":"arn:aws:s3:::b/secret*"}]}`, false, get(root, "arn:aws:s3:::b/secret/1"), Deny},
		{"deny elsewhere leaves allow", `{"Statement":[{"Effect":"Allow","Action":"*","Resource":"*"},{"Effect":"Deny","Action":"s3:Get*","Resource":"arn:aws:s3:::b/secret*"}]}`, false, get(root, "arn:aws:s3:::b/public"), Allow},
		{"principal star string", `{"Statement":{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"*"}}`, true, get(session, "x"), Allow},
		{"principal AWS star", `{"Statement":{"Effect":"Allow","Principal":{"AWS":"*"},"Action":"s3:GetObject","Resource":"*"}}`, true, get(session, "x"), Allow},
		{"principal bare account id", `{"Statement":{"Effect":"Allow","Principal":{"AWS":"222222222222"},"Action":"s3:GetObject","Resource":"*"}}`, true, get(session, "x"), Allow},
		{"principal role arn matches its sessions", `{"Statement":{"Effect":"Allow","Principal":{"AWS":["arn:aws:iam::222222222222:role/R"]},"Action":"s3:GetObject","Resource":"*"}}`, true, get(session, "x"), Allow},
		{"principal other role", `{"Statement":{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::222222222222:role/Other"},"Action":"s3:GetObject","Resource":"*"}}`, true, get(session, "x"), NoMatch},
		{"principal session arn", `{"Statement":{"Effect":"Allow","Principal":{"AWS":"arn:aws:sts::222222222222:assumed-role/R/s"},"Action":"s3:GetObject","Resource":"*"}}`, true, get(session, "x"), Allow},
		{"resource policy without principal never matches", `{"Statement":{"Effect":"Allow","Action":"s3:GetObject","Resource":"*"}}`, true, get(root, "x"), NoMatch},
		{"NotAction", `{"Statement":{"Effect":"Allow","NotAction":"s3:Delete*","Resource":"*"}}`, false, get(root, "x"), Allow},
		{"NotAction excludes", `{"Statement":{"Effect":"Allow","NotAction":"s3:Get*","Resource":"*"}}`, false, get(root, "x"), NoMatch},
		{"NotResource", `{"Statement":{"Effect":"Deny","Action":"*","NotResource":"arn:aws:s3:::b/*"}}`, false, get(root, "arn:aws:s3:::c/k"), Deny},
		{"NotPrincipal", `{"Statement":{"Effect":"Deny","NotPrincipal":{"AWS":"111111111111"},"Action":"*","Resource":"*"}}`, true, get(session, "x"), Deny},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := mustParse(t, tt.policy).Evaluate(tt.req, tt.resource); got != tt.want {
				t.Fatalf("Evaluate = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestPolicyConditions(t *testing.T) {
	t.Parallel()
	fleet := Principal{ARN: "arn:aws:iam::111111111111:root", Account: "111111111111"}
	assume := func(ctx map[string][]string) EvalRequest {
		return EvalRequest{Principal: fleet, Action: "sts:AssumeRole", Resource: "arn:aws:iam::2:role/R", Context: ctx}
	}
	cond := func(op, key, val string) string {
		return `{"Statement":{"Effect":"Allow","Principal":"*","Action":"sts:AssumeRole","Condition":{"` + op + `":{"` + key + `":` + val + `}}}}`
	}
	ext := func(v string) map[string][]string { return map[string][]string{"sts:externalid": {v}} }
	pa := func(v string) map[string][]string { return map[string][]string{"aws:principalarn": {v}} }
	tests := []struct {
		name   string
		policy string
		ctx    map[string][]string
		want   Decision
	}{
		{"trust: right external id", trustPolicy, ext("ext-1"), Allow},
		{"trust: wrong external id", trustPolicy, ext("ext-2"), NoMatch},
		{"trust: no external id", trustPolicy, nil, NoMatch},
		{"condition key case-insensitive", cond("StringEquals", "STS:ExternalID", `"a"`), ext("a"), Allow},
		{"StringEquals list any", cond("StringEquals", "sts:ExternalId", `["x","a"]`), ext("a"), Allow},
		{"StringEquals value case-sensitive", cond("StringEquals", "sts:ExternalId", `"A"`), ext("a"), NoMatch},
		{"StringEqualsIgnoreCase", cond("StringEqualsIgnoreCase", "sts:ExternalId", `"A"`), ext("a"), Allow},
		{"StringLike", cond("StringLike", "sts:ExternalId", `"ext-*"`), ext("ext-9"), Allow},
		{"StringLike miss", cond("StringLike", "sts:ExternalId", `"ext-?"`), ext("ext-99"), NoMatch},
		{"StringNotEquals differs", cond("StringNotEquals", "sts:ExternalId", `"a"`), ext("b"), Allow},
		{"StringNotEquals equal", cond("StringNotEquals", "sts:ExternalId", `"a"`), ext("a"), NoMatch},
		{"StringNotEquals missing key holds", cond("StringNotEquals", "sts:ExternalId", `"a"`), nil, Allow},
		{"StringNotLike", cond("StringNotLike", "sts:ExternalId", `"a*"`), ext("b"), Allow},
		{"ArnLike", cond("ArnLike", "aws:PrincipalArn", `"arn:aws:iam::1111*:root"`), pa("arn:aws:iam::111111111111:root"), Allow},
		{"ArnLike miss", cond("ArnLike", "aws:PrincipalArn", `"arn:aws:iam::2*"`), pa("arn:aws:iam::111111111111:root"), NoMatch},
		{"ArnEquals", cond("ArnEquals", "aws:PrincipalArn", `"arn:aws:iam::111111111111:root"`), pa("arn:aws:iam::111111111111:root"), Allow},
		{"IfExists missing key holds", cond("StringEqualsIfExists", "sts:ExternalId", `"a"`), nil, Allow},
		{"IfExists present must match", cond("StringEqualsIfExists", "sts:ExternalId", `"a"`), ext("b"), NoMatch},
		{"Bool with JSON bool", cond("Bool", "aws:SecureTransport", `false`), map[string][]string{"aws:securetransport": {"false"}}, Allow},
		{"Null true on missing", cond("Null", "sts:ExternalId", `"true"`), nil, Allow},
		{"Null false on present", cond("Null", "sts:ExternalId", `"false"`), ext("a"), Allow},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := mustParse(t, tt.policy).Evaluate(assume(tt.ctx), true); got != tt.want {
				t.Fatalf("Evaluate = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestParseRejects(t *testing.T) {
	t.Parallel()
	for _, text := range []string{
		``, `[]`, `{}`, `{"Statement":null}`, `{"Statement":[{"Action":"s3:*"}]}`,
		`{"Statement":[{"Effect":"Permit","Action":"s3:*"}]}`,
		`{"Statement":[{"Effect":"Allow","Resource":"*"}]}`,
		`{"Statement":[{"Effect":"Allow","Action":"s3:*","Principal":"someone"}]}`,
		`{"Statement":[{"Effect":"Allow","Action":"s3:*","Condition":{"NumericLessThan":{"a":"1"}}}]}`,
		// The integration guide's own sample, with its trailing comma.
		`{"Version":"2012-10-17","Statement":[{"Sid":"scales3access","Action":["s3:GetObject","s3:ListBucket"],"Effect":"Allow","Resource":["arn:aws:s3:::b/*","arn:aws:s3:::b"],}]}`,
	} {
		if _, err := Parse(text); !errors.Is(err, ErrMalformed) {
			t.Errorf("Parse(%q) = %v, want ErrMalformed", text, err)
		}
	}
}

func TestGlobMatch(t *testing.T) {
	t.Parallel()
	tests := []struct {
		pattern, s string
		want       bool
	}{
		{"*", "", true}, {"*", "abc", true}, {"", "", true}, {"", "a", false},
		{"a*c", "abbbc", true}, {"a*c", "abbb", false}, {"a?c", "abc", true}, {"a?c", "ac", false},
		{"*a*b*c*", "xxaxxbxxcxx", true}, {"*a*b*c*", "xxaxxcxxbxx", false},
		{"arn:aws:s3:::b/*", "arn:aws:s3:::b/", true}, {"arn:aws:s3:::b/*", "arn:aws:s3:::b", false},
		{"**", "x", true}, {"?*", "", false},
	}
	for _, tt := range tests {
		if got := globMatch(tt.pattern, tt.s); got != tt.want {
			t.Errorf("globMatch(%q, %q) = %t, want %t", tt.pattern, tt.s, got, tt.want)
		}
	}
}

// FuzzEvaluatePolicy parses arbitrary documents, as PutRole and
// SetBucketPolicy receive them, and evaluates each that parses for a root and
// a role session, as resource and as identity policy: no document or pattern
// may panic or hang the evaluator, and a decision must not change between
// calls.
func FuzzEvaluatePolicy(f *testing.F) {
	f.Add(trustPolicy, "sts:AssumeRole", "arn:aws:iam::2:role/R", "ext-1")
	f.Add(readPolicy, "s3:GetObject", "arn:aws:s3:::b/k", "")
	f.Add(bucketPolicy("111111111111"), "s3:ListBucket", "arn:aws:s3:::b", "")
	f.Add(`{"Statement":{"Effect":"Deny","NotPrincipal":{"AWS":["*"]},"NotAction":"?*","Condition":{"NullIfExists":{"k":[true,1]}}}}`, "*", "**", "x")
	f.Fuzz(func(t *testing.T, policy, action, resource, ext string) {
		p, err := Parse(policy)
		if err != nil {
			return
		}
		for _, pr := range []Principal{{ARN: "arn:aws:iam::1:root", Account: "1"}, {ARN: "arn:aws:sts::1:assumed-role/R/s", Account: "1", RoleARN: "arn:aws:iam::1:role/R"}} {
			req := EvalRequest{Principal: pr, Action: action, Resource: resource, Context: map[string][]string{"sts:externalid": {ext}}}
			d1 := p.Evaluate(req, true)
			d2 := p.Evaluate(req, false)
			if d1 != p.Evaluate(req, true) || d2 != p.Evaluate(req, false) {
				t.Fatalf("evaluation is not deterministic")
			}
		}
	})
}
