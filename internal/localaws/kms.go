package localaws

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/ferryworks/ferry/internal/localaws/iampolicy"
	"github.com/ferryworks/ferry/internal/localaws/sigv4"
)

// The KMS side of the gate: customer managed keys with key policies, enough
// for SSE-KMS buckets. Keys encrypt nothing (kumo stores plain bytes); what
// is emulated is who may use them. KMS speaks JSON 1.1
// (X-Amz-Target: TrentService.<Action>).

// kmsKey is a customer managed symmetric key.
type kmsKey struct {
	arn         string
	id          string
	account     string
	region      string
	description string
	created     time.Time
	policyText  string
	policy      *iampolicy.Policy
}

// kmsAction is the operation named by X-Amz-Target.
func kmsAction(r *http.Request) string {
	if _, a, ok := strings.Cut(r.Header.Get("X-Amz-Target"), "."); ok {
		return a
	}
	return "Unknown"
}

// defaultKeyPolicy is the key policy KMS gives a key created without one:
// the account's root may do everything, which lets IAM policies of the
// account grant use of the key
// (https://docs.aws.amazon.com/kms/latest/developerguide/key-policy-default.html).
func defaultKeyPolicy(account string) string {
	return `{"Version":"2012-10-17","Id":"key-default-1","Statement":[{"Sid":"Enable IAM User Permissions","Effect":"Allow",` +
		`"Principal":{"AWS":"arn:aws:iam::` + account + `:root"},"Action":"kms:*","Resource":"*"}]}`
}

// kmsDecision decides whether p may perform action (kms:Decrypt, …) with
// key, as KMS documents
// (https://docs.aws.amazon.com/kms/latest/developerguide/determining-access.html):
// the key policy is the primary control. A statement naming the principal
// itself (or "*") grants within the key's account; a statement naming the
// account (its root) only lets that account's IAM policies grant, so the
// caller's identity policy must allow too. Across accounts, both the key
// policy and the caller's IAM policy must allow. An explicit Deny in either
// wins. why completes KMS's "is not authorized to perform" message. The
// caller holds s.mu (read).
func (s *Stack) kmsDecision(p iampolicy.Principal, action string, key *kmsKey, ctx map[string][]string) (allowed bool, why string) {
	req := iampolicy.EvalRequest{Principal: p, Action: action, Resource: key.arn, Context: ctx}
	identity := s.identityDecision(p, req)
	if identity == iampolicy.Deny {
		return false, "with an explicit deny in an identity-based policy"
	}
	direct, viaAccount := iampolicy.NoMatch, iampolicy.NoMatch
	if key.policy != nil {
		for i := range key.policy.Statements {
			st := &key.policy.Statements[i]
			if !st.Applies(req, true) {
				continue
			}
			if st.Effect == "Deny" {
				return false, "with an explicit deny in a resource-based policy"
			}
			if namesPrincipal(st.Principal, p) {
				direct = iampolicy.Allow
			} else {
				viaAccount = iampolicy.Allow
			}
		}
	}
	keyAllows := direct == iampolicy.Allow || viaAccount == iampolicy.Allow
	switch {
	case p.Account == key.account && direct == iampolicy.Allow:
		return true, ""
	case keyAllows && identity == iampolicy.Allow:
		return true, ""
	case keyAllows:
		return false, "because no identity-based policy allows the " + action + " action"
	}
	return false, "because no resource-based policy allows the " + action + " action"
}

// namesPrincipal reports whether a statement's Principal names p itself
// (its session, role, "*", or the root user when p is the root) rather
// than only p's account.
func namesPrincipal(ps *iampolicy.PrincipalSet, p iampolicy.Principal) bool {
	if ps == nil {
		return false
	}
	if ps.Any {
		return true
	}
	for _, a := range ps.AWS {
		switch {
		case a == "*", a == p.ARN:
			return true
		case p.RoleARN != "" && a == p.RoleARN:
			return true
		case p.IsRoot() && (a == p.Account || a == "arn:aws:iam::"+p.Account+":root"):
			return true
		}
	}
	return false
}

// kmsContext is the condition context of a KMS request; via names the
// service that called KMS on the caller's behalf ("s3.us-east-1.amazonaws.com").
func kmsContext(p iampolicy.Principal, via string) map[string][]string {
	ctx := map[string][]string{
		"aws:principalarn":     {principalARN(p)},
		"aws:principalaccount": {p.Account},
		"kms:calleraccount":    {p.Account},
	}
	if via != "" {
		ctx["kms:viaservice"] = []string{via}
	}
	return ctx
}

// lookupKeyLocked resolves a KeyId (key ID or key ARN) as seen from account
// and region. The caller holds s.mu.
func (s *Stack) lookupKeyLocked(keyID, account, region string) *kmsKey {
	if strings.HasPrefix(keyID, "arn:") {
		return s.kmsKeys[keyID]
	}
	return s.kmsKeys["arn:aws:kms:"+region+":"+account+":key/"+keyID]
}

func kmsNotFound(keyID string) apiError {
	return apiError{Status: http.StatusBadRequest, Code: "NotFoundException", Message: "Key '" + keyID + "' does not exist"}
}

// serveKMS answers CreateKey, DescribeKey, GetKeyPolicy and PutKeyPolicy.
func (s *Stack) serveKMS(w http.ResponseWriter, r *http.Request, op string, k *accessKey, si sigv4.Info, body []byte) {
	fail := func(outcome string, e apiError) {
		s.stats.add(op, outcome)
		s.log.Debug().Str("op", op).Str("principal", k.arn).Str("code", e.Code).Msg("kms call refused")
		writeError(w, r, svcKMS, e)
	}
	var in struct {
		KeyId       string
		Policy      string
		PolicyName  string
		Description string
		KeyUsage    string
		KeySpec     string
	}
	if len(body) > 0 {
		if err := json.Unmarshal(body, &in); err != nil {
			fail(outcomeError, apiError{Status: http.StatusBadRequest, Code: "SerializationException", Message: "the request body is not valid JSON"})
			return
		}
	}
	p := k.principal()
	action := kmsAction(r)
	region := si.Region
	ok := func(v any) {
		s.stats.add(op, outcomeOK)
		b, _ := json.Marshal(v)
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		w.Header().Set("x-amzn-RequestId", requestID())
		w.Header().Set("Content-Length", strconv.Itoa(len(b)))
		_, _ = w.Write(b)
	}
	if action == "CreateKey" {
		if in.KeyUsage != "" && in.KeyUsage != "ENCRYPT_DECRYPT" || in.KeySpec != "" && in.KeySpec != "SYMMETRIC_DEFAULT" {
			fail(outcomeError, apiError{Status: http.StatusBadRequest, Code: "UnsupportedOperationException",
				Message: "localaws keys are symmetric ENCRYPT_DECRYPT keys only"})
			return
		}
		s.mu.RLock()
		d := s.identityDecision(p, iampolicy.EvalRequest{Principal: p, Action: "kms:CreateKey", Resource: "*", Context: kmsContext(p, "")})
		s.mu.RUnlock()
		if d != iampolicy.Allow {
			fail(outcomeDenied, apiError{Status: http.StatusBadRequest, Code: "AccessDeniedException",
				Message: "User: " + k.arn + " is not authorized to perform: kms:CreateKey because no identity-based policy allows the kms:CreateKey action"})
			return
		}
		text := in.Policy
		if text == "" {
			text = defaultKeyPolicy(k.account)
		}
		doc, err := iampolicy.Parse(text)
		if err != nil {
			fail(outcomeError, apiError{Status: http.StatusBadRequest, Code: "MalformedPolicyDocumentException", Message: err.Error()})
			return
		}
		id := newKeyID()
		key := &kmsKey{arn: "arn:aws:kms:" + region + ":" + k.account + ":key/" + id, id: id, account: k.account, region: region,
			description: in.Description, created: s.opts.Now().UTC(), policyText: text, policy: doc}
		s.mu.Lock()
		s.kmsKeys[key.arn] = key
		s.mu.Unlock()
		ok(map[string]any{"KeyMetadata": keyMetadata(key)})
		return
	}
	switch action {
	case "DescribeKey", "GetKeyPolicy", "PutKeyPolicy":
	default:
		fail(outcomeError, apiError{Status: http.StatusBadRequest, Code: "UnknownOperationException", Message: "localaws does not serve kms:" + action})
		return
	}
	s.mu.RLock()
	key := s.lookupKeyLocked(in.KeyId, k.account, region)
	var allowed bool
	var why string
	if key != nil {
		allowed, why = s.kmsDecision(p, "kms:"+action, key, kmsContext(p, ""))
	}
	s.mu.RUnlock()
	if key == nil {
		fail(outcomeNotFound, kmsNotFound(in.KeyId))
		return
	}
	if !allowed {
		fail(outcomeDenied, apiError{Status: http.StatusBadRequest, Code: "AccessDeniedException",
			Message: "User: " + k.arn + " is not authorized to perform: kms:" + action + " on resource: " + key.arn + " " + why})
		return
	}
	if (action == "GetKeyPolicy" || action == "PutKeyPolicy") && in.PolicyName != "" && in.PolicyName != "default" {
		fail(outcomeNotFound, apiError{Status: http.StatusBadRequest, Code: "NotFoundException", Message: "No such policy exists"})
		return
	}
	switch action {
	case "DescribeKey":
		ok(map[string]any{"KeyMetadata": keyMetadata(key)})
	case "GetKeyPolicy":
		ok(map[string]string{"Policy": key.policyText, "PolicyName": "default"})
	case "PutKeyPolicy":
		doc, err := iampolicy.Parse(in.Policy)
		if err != nil {
			fail(outcomeError, apiError{Status: http.StatusBadRequest, Code: "MalformedPolicyDocumentException", Message: err.Error()})
			return
		}
		s.mu.Lock()
		nk := *key
		nk.policyText, nk.policy = in.Policy, doc
		s.kmsKeys[key.arn] = &nk
		s.mu.Unlock()
		s.stats.add(op, outcomeOK)
		w.Header().Set("x-amzn-RequestId", requestID())
		w.WriteHeader(http.StatusOK)
	}
}

func keyMetadata(k *kmsKey) map[string]any {
	return map[string]any{
		"AWSAccountId": k.account, "KeyId": k.id, "Arn": k.arn,
		"CreationDate": float64(k.created.UnixMilli()) / 1000, "Enabled": true, "Description": k.description,
		"KeyUsage": "ENCRYPT_DECRYPT", "KeyState": "Enabled", "Origin": "AWS_KMS", "KeyManager": "CUSTOMER",
		"KeySpec": "SYMMETRIC_DEFAULT", "CustomerMasterKeySpec": "SYMMETRIC_DEFAULT",
		"EncryptionAlgorithms": []string{"SYMMETRIC_DEFAULT"}, "MultiRegion": false,
	}
}

// newKeyID is a random key ID in KMS's UUID form.
func newKeyID() string {
	h := randomFrom("0123456789abcdef", 32)
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// KMSKey is a customer managed key created by a setup helper.
type KMSKey struct {
	ID  string
	ARN string
}

// CreateKMSKey creates a key in account and region with the given key
// policy ("" for KMS's default policy) without going through the gate.
func (s *Stack) CreateKMSKey(account, region, policy string) (KMSKey, error) {
	if region == "" {
		region = s.opts.Region
	}
	if policy == "" {
		policy = defaultKeyPolicy(account)
	}
	doc, err := iampolicy.Parse(policy)
	if err != nil {
		return KMSKey{}, err
	}
	id := newKeyID()
	key := &kmsKey{arn: "arn:aws:kms:" + region + ":" + account + ":key/" + id, id: id, account: account, region: region,
		created: s.opts.Now().UTC(), policyText: policy, policy: doc}
	s.mu.Lock()
	s.kmsKeys[key.arn] = key
	s.mu.Unlock()
	return KMSKey{ID: id, ARN: key.arn}, nil
}
