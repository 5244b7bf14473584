package localaws

import (
	"testing"

	"github.com/ferryworks/ferry/credcache"
	"github.com/ferryworks/ferry/internal/localaws/iampolicy"
)

// The documents credcache hands customers (the role's read policy, the
// bucket policy, the trust policy) must mean to the gate what they mean to
// AWS. iampolicy's tests pin the rules on documents of the same shape; these
// rows evaluate the real ones, so a change to either side shows here.
func TestCredcacheDocuments(t *testing.T) {
	t.Parallel()
	const fleetID, keyARN = "111111111111", "arn:aws:kms:us-east-1:222222222222:key/k"
	fleet := iampolicy.Principal{ARN: "arn:aws:iam::" + fleetID + ":root", Account: fleetID}
	session := iampolicy.Principal{ARN: "arn:aws:sts::222222222222:assumed-role/R/s", Account: "222222222222",
		RoleARN: "arn:aws:iam::222222222222:role/R"}
	call := func(p iampolicy.Principal, action, resource, externalID string) iampolicy.EvalRequest {
		req := iampolicy.EvalRequest{Principal: p, Action: action, Resource: resource}
		if externalID != "" {
			req.Context = map[string][]string{"sts:externalid": {externalID}}
		}
		return req
	}
	role := credcache.RolePolicy("b")
	readKMS := credcache.PolicyJSON(credcache.ReadPolicyDocument([]string{"b"}, []string{keyARN}))
	bucket := credcache.BucketPolicy("b", fleetID)
	trust := credcache.TrustPolicy(fleetID, "ext-1")
	rotating := credcache.TrustPolicy(fleetID, "ext-new", "ext-old")
	assume := func(p iampolicy.Principal, externalID string) iampolicy.EvalRequest {
		return call(p, "sts:AssumeRole", "arn:aws:iam::222222222222:role/R", externalID)
	}
	for _, tt := range []struct {
		name     string
		policy   string
		resource bool
		req      iampolicy.EvalRequest
		want     iampolicy.Decision
	}{
		{"role policy allows object", role, false, call(session, "s3:GetObject", "arn:aws:s3:::b/k", ""), iampolicy.Allow},
		{"role policy allows list", role, false, call(session, "s3:ListBucket", "arn:aws:s3:::b", ""), iampolicy.Allow},
		{"role policy other bucket", role, false, call(session, "s3:GetObject", "arn:aws:s3:::bb/k", ""), iampolicy.NoMatch},
		{"role policy no put", role, false, call(session, "s3:PutObject", "arn:aws:s3:::b/k", ""), iampolicy.NoMatch},
		{"read policy with a key allows decrypt", readKMS, false, call(session, "kms:Decrypt", keyARN, ""), iampolicy.Allow},
		{"bucket policy names fleet root", bucket, true, call(fleet, "s3:GetObject", "arn:aws:s3:::b/x/y", ""), iampolicy.Allow},
		{"bucket policy no list", bucket, true, call(fleet, "s3:ListBucket", "arn:aws:s3:::b", ""), iampolicy.NoMatch},
		{"bucket policy other account", bucket, true, call(session, "s3:GetObject", "arn:aws:s3:::b/x", ""), iampolicy.NoMatch},
		{"trust: right external id", trust, true, assume(fleet, "ext-1"), iampolicy.Allow},
		{"trust: wrong external id", trust, true, assume(fleet, "ext-2"), iampolicy.NoMatch},
		{"trust: no external id", trust, true, assume(fleet, ""), iampolicy.NoMatch},
		{"trust: other account", trust, true, assume(session, "ext-1"), iampolicy.NoMatch},
		{"trust in rotation: new id", rotating, true, assume(fleet, "ext-new"), iampolicy.Allow},
		{"trust in rotation: old id", rotating, true, assume(fleet, "ext-old"), iampolicy.Allow},
	} {
		p, err := iampolicy.Parse(tt.policy)
		if err != nil {
			t.Errorf("%s: parse: %v", tt.name, err)
		} else if got := p.Evaluate(tt.req, tt.resource); got != tt.want {
			t.Errorf("%s: Evaluate = %v, want %v", tt.name, got, tt.want)
		}
	}
}
