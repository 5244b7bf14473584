// Package iampolicy parses IAM policy documents (identity, trust, bucket and
// key policies) and evaluates them for one request the way AWS documents:
// an explicit Deny beats every Allow, and a resource policy applies only
// to the principals it names.
package iampolicy

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// ErrMalformed is returned (wrapped) by Parse for a document IAM would
// reject; callers refuse such text when it is written (PutRole,
// CreateBucket, SetBucketPolicy), as AWS does, so evaluation never sees
// half-understood rules.
var ErrMalformed = errors.New("malformed policy")

// Decision is the outcome of evaluating one policy for one request.
type Decision int

const (
	// NoMatch means no statement applies: an implicit deny unless another
	// policy allows.
	NoMatch Decision = iota
	// Allow means an Allow statement applies and no Deny does.
	Allow
	// Deny means an explicit Deny applies; it beats every Allow in every
	// policy of the request.
	Deny
)

// String names the decision for logs and test failures.
func (d Decision) String() string {
	switch d {
	case Allow:
		return "Allow"
	case Deny:
		return "Deny"
	default:
		return "NoMatch"
	}
}

// Policy is a parsed IAM policy document (identity, trust or bucket policy).
type Policy struct {
	Statements []Statement
}

// Statement is one IAM policy statement. Nil Principal and NotPrincipal mean
// the element is absent (identity policies); a statement in a resource
// policy without either never matches.
type Statement struct {
	Sid          string
	Effect       string // "Allow" or "Deny"
	Principal    *PrincipalSet
	NotPrincipal *PrincipalSet
	Action       []string
	NotAction    []string
	Resource     []string
	NotResource  []string
	// Condition maps operator (e.g. "StringEquals", "ArnLikeIfExists") to
	// context key to accepted values.
	Condition map[string]map[string][]string
}

// PrincipalSet is a policy's Principal element: "*" (Any) or AWS principals
// (account IDs, account roots, role and session ARNs, "*").
type PrincipalSet struct {
	Any bool
	AWS []string
}

// Principal is the authenticated caller a request is evaluated for.
type Principal struct {
	// ARN is arn:aws:iam::ACCT:root or arn:aws:sts::ACCT:assumed-role/ROLE/SESSION.
	ARN string
	// Account is the caller's 12-digit account ID.
	Account string
	// RoleARN is arn:aws:iam::ACCT:role/ROLE for assumed-role sessions, "" for roots.
	RoleARN string
}

// IsRoot reports whether the principal is an account root user.
func (p Principal) IsRoot() bool { return p.RoleARN == "" }

// EvalRequest is what a policy is evaluated against.
type EvalRequest struct {
	Principal Principal
	Action    string // "s3:GetObject"
	Resource  string // "arn:aws:s3:::bucket/key"
	// Context holds condition keys (lower-cased names, e.g. "sts:externalid").
	Context map[string][]string
}

var knownConditionOps = map[string]bool{
	"stringequals": true, "stringnotequals": true, "stringequalsignorecase": true,
	"stringnotequalsignorecase": true, "stringlike": true, "stringnotlike": true,
	"arnequals": true, "arnlike": true, "arnnotequals": true, "arnnotlike": true,
	"bool": true, "null": true,
}

// Parse parses an IAM policy JSON document. Statement may be an object
// or an array; Action/Resource/Principal values may be strings or arrays.
// Unknown condition operators and missing Effect are errors wrapping
// ErrMalformed.
func Parse(text string) (*Policy, error) {
	var doc struct {
		Statement json.RawMessage
	}
	dec := json.NewDecoder(strings.NewReader(text))
	if err := dec.Decode(&doc); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	raw := bytes.TrimSpace(doc.Statement)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return nil, fmt.Errorf("%w: no Statement", ErrMalformed)
	}
	var rawStmts []json.RawMessage
	if raw[0] == '[' {
		if err := json.Unmarshal(raw, &rawStmts); err != nil {
			return nil, fmt.Errorf("%w: Statement: %v", ErrMalformed, err)
		}
	} else {
		rawStmts = []json.RawMessage{raw}
	}
	p := &Policy{Statements: make([]Statement, 0, len(rawStmts))}
	for i, rs := range rawStmts {
		st, err := parseStatement(rs)
		if err != nil {
			return nil, fmt.Errorf("%w: statement %d: %v", ErrMalformed, i, err)
		}
		p.Statements = append(p.Statements, st)
	}
	return p, nil
}

func parseStatement(raw json.RawMessage) (Statement, error) {
	var s struct {
		Sid          string
		Effect       string
		Principal    json.RawMessage
		NotPrincipal json.RawMessage
		Action       json.RawMessage
		NotAction    json.RawMessage
		Resource     json.RawMessage
		NotResource  json.RawMessage
		Condition    map[string]map[string]json.RawMessage
	}
	if err := json.Unmarshal(raw, &s); err != nil {
		return Statement{}, err
	}
	st := Statement{Sid: s.Sid, Effect: s.Effect}
	if s.Effect != "Allow" && s.Effect != "Deny" {
		return st, fmt.Errorf("Effect %q is neither Allow nor Deny", s.Effect)
	}
	var err error
	if st.Principal, err = parsePrincipal(s.Principal); err != nil {
		return st, fmt.Errorf("Principal: %w", err)
	}
	if st.NotPrincipal, err = parsePrincipal(s.NotPrincipal); err != nil {
		return st, fmt.Errorf("NotPrincipal: %w", err)
	}
	fields := []struct {
		name string
		raw  json.RawMessage
		dst  *[]string
	}{
		{"Action", s.Action, &st.Action}, {"NotAction", s.NotAction, &st.NotAction},
		{"Resource", s.Resource, &st.Resource}, {"NotResource", s.NotResource, &st.NotResource},
	}
	for _, f := range fields {
		if *f.dst, err = stringOrList(f.raw); err != nil {
			return st, fmt.Errorf("%s: %w", f.name, err)
		}
	}
	if len(st.Action) == 0 && len(st.NotAction) == 0 {
		return st, errors.New("no Action or NotAction")
	}
	if len(s.Condition) > 0 {
		st.Condition = make(map[string]map[string][]string, len(s.Condition))
		for op, kv := range s.Condition {
			base := strings.TrimSuffix(strings.ToLower(op), "ifexists")
			if !knownConditionOps[base] {
				return st, fmt.Errorf("unsupported condition operator %q", op)
			}
			m := make(map[string][]string, len(kv))
			for k, v := range kv {
				vals, err := conditionValues(v)
				if err != nil {
					return st, fmt.Errorf("Condition %s %s: %w", op, k, err)
				}
				m[strings.ToLower(k)] = vals
			}
			st.Condition[op] = m
		}
	}
	return st, nil
}

func parsePrincipal(raw json.RawMessage) (*PrincipalSet, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return nil, nil
	}
	var star string
	if err := json.Unmarshal(raw, &star); err == nil {
		if star != "*" {
			return nil, fmt.Errorf("string principal %q must be \"*\"", star)
		}
		return &PrincipalSet{Any: true}, nil
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, err
	}
	ps := &PrincipalSet{}
	for k, v := range m {
		vals, err := stringOrList(v)
		if err != nil {
			return nil, err
		}
		// Service and Federated principals never match a signed caller
		// here, but they are valid documents.
		if k == "AWS" {
			ps.AWS = append(ps.AWS, vals...)
		}
	}
	return ps, nil
}

func stringOrList(raw json.RawMessage) ([]string, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return nil, nil
	}
	if raw[0] == '"' {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, err
		}
		return []string{s}, nil
	}
	var l []string
	if err := json.Unmarshal(raw, &l); err != nil {
		return nil, err
	}
	return l, nil
}

// conditionValues accepts strings, booleans, numbers or lists of them, as
// IAM does ("aws:SecureTransport": false).
func conditionValues(raw json.RawMessage) ([]string, error) {
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		return nil, err
	}
	var items []any
	if l, ok := v.([]any); ok {
		items = l
	} else {
		items = []any{v}
	}
	out := make([]string, 0, len(items))
	for _, it := range items {
		switch x := it.(type) {
		case string:
			out = append(out, x)
		case bool:
			out = append(out, strconv.FormatBool(x))
		case float64:
			out = append(out, strconv.FormatFloat(x, 'f', -1, 64))
		default:
			return nil, fmt.Errorf("unsupported condition value %v", it)
		}
	}
	return out, nil
}

// Evaluate applies the policy to req. resourcePolicy says whether the
// document is a resource policy (bucket or trust policy), whose statements
// match only when their Principal names the caller. An applying Deny wins
// over any Allow.
func (p *Policy) Evaluate(req EvalRequest, resourcePolicy bool) Decision {
	if p == nil {
		return NoMatch
	}
	d := NoMatch
	for i := range p.Statements {
		st := &p.Statements[i]
		if !st.Applies(req, resourcePolicy) {
			continue
		}
		if st.Effect == "Deny" {
			return Deny
		}
		d = Allow
	}
	return d
}

// Applies reports whether the statement speaks to req: its Principal (in a
// resource policy), Action, Resource and every Condition match. Evaluate
// combines the statements that apply; KMS key policies need each one, to
// tell a grant to the caller itself from one to its account.
func (st *Statement) Applies(req EvalRequest, resourcePolicy bool) bool {
	if resourcePolicy {
		switch {
		case st.Principal != nil:
			if !st.Principal.matches(req.Principal) {
				return false
			}
		case st.NotPrincipal != nil:
			if st.NotPrincipal.matches(req.Principal) {
				return false
			}
		default:
			return false
		}
	}
	if len(st.Action) > 0 && !anyMatch(st.Action, req.Action, true) {
		return false
	}
	if len(st.NotAction) > 0 && anyMatch(st.NotAction, req.Action, true) {
		return false
	}
	// A statement without Resource (trust policies) applies to the resource
	// it is attached to.
	if len(st.Resource) > 0 && !anyMatch(st.Resource, req.Resource, false) {
		return false
	}
	if len(st.NotResource) > 0 && anyMatch(st.NotResource, req.Resource, false) {
		return false
	}
	for op, kv := range st.Condition {
		for key, vals := range kv {
			if !conditionHolds(op, req.Context[key], vals) {
				return false
			}
		}
	}
	return true
}

// matches reports whether the Principal element names the caller: "*", the
// caller's account (ID or root ARN: every principal of the account), the
// caller's role (every session of it), or the exact session ARN.
func (ps *PrincipalSet) matches(p Principal) bool {
	if ps.Any {
		return true
	}
	for _, a := range ps.AWS {
		switch {
		case a == "*":
			return true
		case a == p.Account, a == "arn:aws:iam::"+p.Account+":root":
			return true
		case a == p.ARN:
			return true
		case p.RoleARN != "" && a == p.RoleARN:
			return true
		}
	}
	return false
}

func anyMatch(patterns []string, s string, foldCase bool) bool {
	for _, pat := range patterns {
		if foldCase {
			if globMatch(strings.ToLower(pat), strings.ToLower(s)) {
				return true
			}
		} else if globMatch(pat, s) {
			return true
		}
	}
	return false
}

// conditionHolds evaluates one operator for one key. A missing key fails
// positive operators and satisfies negated ones, as in IAM; the IfExists
// suffix turns a missing key into a pass.
func conditionHolds(op string, have, want []string) bool {
	lop := strings.ToLower(op)
	ifExists := strings.HasSuffix(lop, "ifexists")
	lop = strings.TrimSuffix(lop, "ifexists")
	if lop == "null" {
		wantNull := len(want) > 0 && strings.EqualFold(want[0], "true")
		return (len(have) == 0) == wantNull
	}
	if len(have) == 0 {
		if ifExists {
			return true
		}
		return strings.Contains(lop, "not")
	}
	var match func(pat, v string) bool
	negate := false
	switch lop {
	case "stringequals", "arnequals":
		match = func(p, v string) bool { return p == v }
	case "stringnotequals", "arnnotequals":
		match, negate = func(p, v string) bool { return p == v }, true
	case "stringequalsignorecase":
		match = strings.EqualFold
	case "stringnotequalsignorecase":
		match, negate = strings.EqualFold, true
	case "stringlike", "arnlike":
		match = globMatch
	case "stringnotlike", "arnnotlike":
		match, negate = globMatch, true
	case "bool":
		match = strings.EqualFold
	default:
		return false
	}
	// A single-valued context key matches when any listed value matches:
	// several values for one key under one operator are ORed, so
	// "sts:ExternalId": ["new", "old"] admits either ID during a rotation.
	// https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_condition-logic-multiple-context-keys-or-values.html
	found := false
	for _, h := range have {
		for _, w := range want {
			if match(w, h) {
				found = true
			}
		}
	}
	return found != negate
}

// globMatch matches s against pattern with IAM wildcards: '*' any run of
// characters (also empty), '?' exactly one. Linear backtracking, no regexp,
// so hostile patterns cannot blow up.
func globMatch(pattern, s string) bool {
	p, i := 0, 0
	star, mark := -1, 0
	for i < len(s) {
		switch {
		case p < len(pattern) && (pattern[p] == '?' || pattern[p] == s[i]):
			p++
			i++
		case p < len(pattern) && pattern[p] == '*':
			star, mark = p, i
			p++
		case star >= 0:
			p = star + 1
			mark++
			i = mark
		default:
			return false
		}
	}
	for p < len(pattern) && pattern[p] == '*' {
		p++
	}
	return p == len(pattern)
}
