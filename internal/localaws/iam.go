package localaws

import (
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ferryworks/ferry/internal/localaws/iampolicy"
)

// The IAM side of the gate: the calls a customer makes to set up (or break)
// an integration role, answered from the gate's own records, which are what
// STS and S3 authorisation read. IAM speaks the query protocol
// (https://docs.aws.amazon.com/IAM/latest/APIReference/iam-api.pdf), signed
// for service "iam" in us-east-1.

const iamNS = "https://iam.amazonaws.com/doc/2010-05-08/"

// roleInfo is one version of an IAM role. Every change makes a new version
// that points at the one before; with Options.IAMDelay a version takes
// effect only at activeAt, and STS and S3 keep seeing the previous one until
// then (a role that does not exist yet, for a new role), as AWS documents:
// "changes that you make in IAM take time to become visible"
// (https://docs.aws.amazon.com/IAM/latest/UserGuide/troubleshoot_general.html#troubleshoot_general_eventual-consistency).
// IAM's own reads (GetRole, ListRoles) show the newest version at once.
type roleInfo struct {
	arn         string
	id          string
	account     string
	name        string
	path        string
	description string
	created     time.Time
	maxSession  time.Duration
	trustText   string
	trust       *iampolicy.Policy
	inline      []inlinePolicy
	attached    []string // managed policy ARNs
	deleted     bool
	activeAt    time.Time
	prev        *roleInfo
}

type inlinePolicy struct {
	name string
	text string
	doc  *iampolicy.Policy
}

// managedPolicy is a customer-managed policy (CreatePolicy), attachable to
// roles of its account.
type managedPolicy struct {
	arn     string
	id      string
	name    string
	path    string
	text    string
	doc     *iampolicy.Policy
	created time.Time
}

// activeRoleLocked is the version of the role STS and S3 see now, nil when
// the role does not exist (yet, or any more). The caller holds s.mu.
func (s *Stack) activeRoleLocked(arn string) *roleInfo {
	now := s.opts.Now()
	r := s.roles[arn]
	for r != nil && now.Before(r.activeAt) {
		r = r.prev
	}
	if r == nil || r.deleted {
		return nil
	}
	return r
}

// latestRoleLocked is the newest version, as IAM's own reads show it.
func (s *Stack) latestRoleLocked(arn string) *roleInfo {
	r := s.roles[arn]
	if r == nil || r.deleted {
		return nil
	}
	return r
}

// putRoleVersionLocked records a new version of a role. Changes made
// through the API take effect after Options.IAMDelay; versions that are
// already in force behind the newest one are dropped. The caller holds
// s.mu.
func (s *Stack) putRoleVersionLocked(r *roleInfo, delayed bool) {
	now := s.opts.Now()
	if delayed && s.opts.IAMDelay > 0 {
		r.activeAt = now.Add(s.opts.IAMDelay)
		r.prev = s.roles[r.arn]
		// Keep the chain down to the first version in force.
		for v := r.prev; v != nil; v = v.prev {
			if !now.Before(v.activeAt) {
				v.prev = nil
				break
			}
		}
	} else {
		r.prev = nil
	}
	s.roles[r.arn] = r
}

// policiesOf is the role's permission policies: inline, then attached
// managed ones. The caller holds s.mu.
func (s *Stack) policiesOf(r *roleInfo) []*iampolicy.Policy {
	out := make([]*iampolicy.Policy, 0, len(r.inline)+len(r.attached))
	for _, p := range r.inline {
		out = append(out, p.doc)
	}
	for _, a := range r.attached {
		if mp := s.policies[a]; mp != nil {
			out = append(out, mp.doc)
		}
	}
	return out
}

func (r *roleInfo) clone() *roleInfo {
	c := *r
	c.inline = slices.Clone(r.inline)
	c.attached = slices.Clone(r.attached)
	c.prev, c.activeAt = nil, time.Time{}
	return &c
}

func iamErr(status int, code, msg string) apiError {
	return apiError{Status: status, Code: code, Message: msg}
}

func noSuchRole(name string) apiError {
	return iamErr(http.StatusNotFound, "NoSuchEntity", "The role with name "+name+" cannot be found.")
}

// serveIAM answers the IAM calls of a customer's integration setup. Each is
// authorised with the caller's identity policies (a root key may do
// anything in its own account) and acts on the caller's own account only.
func (s *Stack) serveIAM(w http.ResponseWriter, r *http.Request, op string, k *accessKey, form url.Values) {
	action := form.Get("Action")
	account := k.account
	fail := func(outcome string, e apiError) {
		s.stats.add(op, outcome)
		s.log.Debug().Str("op", op).Str("principal", k.arn).Str("code", e.Code).Msg("iam call refused")
		writeError(w, r, svcIAM, e)
	}
	ok := func(result string) {
		s.stats.add(op, outcomeOK)
		writeQueryResult(w, iamNS, action, result)
	}
	roleName := form.Get("RoleName")
	resource := "arn:aws:iam::" + account + ":role/" + roleName
	switch action {
	case "CreatePolicy":
		resource = "arn:aws:iam::" + account + ":policy" + normPath(form.Get("Path")) + form.Get("PolicyName")
	case "AttachRolePolicy", "DetachRolePolicy":
		// Authorised on the role, as IAM does.
	case "ListRoles":
		resource = "arn:aws:iam::" + account + ":role/"
	case "CreateRole", "GetRole", "DeleteRole", "UpdateAssumeRolePolicy", "PutRolePolicy", "DeleteRolePolicy",
		"GetRolePolicy", "ListRolePolicies", "ListAttachedRolePolicies":
	default:
		fail(outcomeError, iamErr(http.StatusBadRequest, "InvalidAction", "Could not find operation "+action+" for version "+form.Get("Version")))
		return
	}
	p := k.principal()
	s.mu.RLock()
	d := s.identityDecision(p, iampolicy.EvalRequest{Principal: p, Action: "iam:" + action, Resource: resource,
		Context: map[string][]string{"aws:principalarn": {principalARN(p)}, "aws:principalaccount": {account}}})
	s.mu.RUnlock()
	if d != iampolicy.Allow {
		fail(outcomeDenied, iamErr(http.StatusForbidden, "AccessDenied", "User: "+k.arn+" is not authorized to perform: iam:"+action+
			" on resource: "+resource+" because no identity-based policy allows the iam:"+action+" action"))
		return
	}
	if action != "ListRoles" && action != "CreatePolicy" && !roleNamePattern.MatchString(roleName) {
		fail(outcomeError, validationError("roleName", roleName, "Member must satisfy regular expression pattern: [\\w+=,.@-]+"))
		return
	}
	arn := RoleARN(account, roleName)
	now := s.opts.Now().UTC().Truncate(time.Second)

	s.mu.Lock()
	defer s.mu.Unlock()
	cur := s.latestRoleLocked(arn)
	if cur == nil && action != "CreateRole" && action != "ListRoles" && action != "CreatePolicy" {
		fail(outcomeNotFound, noSuchRole(roleName))
		return
	}
	parse := func(field string) (string, *iampolicy.Policy, bool) {
		text := form.Get(field)
		doc, err := iampolicy.Parse(text)
		if err != nil {
			fail(outcomeError, iamErr(http.StatusBadRequest, "MalformedPolicyDocument", err.Error()))
			return "", nil, false
		}
		return text, doc, true
	}
	switch action {
	case "CreateRole":
		if cur != nil {
			fail(outcomeError, iamErr(http.StatusConflict, "EntityAlreadyExists", "Role with name "+roleName+" already exists."))
			return
		}
		text, doc, good := parse("AssumeRolePolicyDocument")
		if !good {
			return
		}
		maxSession, bad := secondsParam(form, "MaxSessionDuration", 3600, 43200)
		if bad != nil {
			fail(outcomeError, *bad)
			return
		}
		ri := &roleInfo{arn: arn, id: "AROA" + randomUpper(17), account: account, name: roleName,
			path: normPath(form.Get("Path")), description: form.Get("Description"), created: now,
			maxSession: maxSession, trustText: text, trust: doc}
		s.putRoleVersionLocked(ri, true)
		ok("<Role>" + roleXML(ri) + "</Role>")
	case "GetRole":
		ok("<Role>" + roleXML(cur) + "</Role>")
	case "ListRoles":
		var b strings.Builder
		var arns []string
		for a := range s.roles {
			if roleAccount(a) == account && s.latestRoleLocked(a) != nil {
				arns = append(arns, a)
			}
		}
		slices.Sort(arns)
		for _, a := range arns {
			b.WriteString("<member>" + roleXML(s.roles[a]) + "</member>")
		}
		ok("<IsTruncated>false</IsTruncated><Roles>" + b.String() + "</Roles>")
	case "DeleteRole":
		if len(cur.inline) > 0 {
			fail(outcomeError, iamErr(http.StatusConflict, "DeleteConflict", "Cannot delete entity, must delete policies first."))
			return
		}
		if len(cur.attached) > 0 {
			fail(outcomeError, iamErr(http.StatusConflict, "DeleteConflict", "Cannot delete entity, must detach all policies first."))
			return
		}
		nr := cur.clone()
		nr.deleted = true
		s.putRoleVersionLocked(nr, true)
		ok("")
	case "UpdateAssumeRolePolicy":
		text, doc, good := parse("PolicyDocument")
		if !good {
			return
		}
		nr := cur.clone()
		nr.trustText, nr.trust = text, doc
		s.putRoleVersionLocked(nr, true)
		ok("")
	case "PutRolePolicy":
		name := form.Get("PolicyName")
		if !roleNamePattern.MatchString(name) {
			fail(outcomeError, validationError("policyName", name, "Member must satisfy regular expression pattern: [\\w+=,.@-]+"))
			return
		}
		text, doc, good := parse("PolicyDocument")
		if !good {
			return
		}
		nr := cur.clone()
		nr.inline = slices.DeleteFunc(nr.inline, func(p inlinePolicy) bool { return p.name == name })
		nr.inline = append(nr.inline, inlinePolicy{name: name, text: text, doc: doc})
		s.putRoleVersionLocked(nr, true)
		ok("")
	case "DeleteRolePolicy", "GetRolePolicy":
		name := form.Get("PolicyName")
		i := slices.IndexFunc(cur.inline, func(p inlinePolicy) bool { return p.name == name })
		if i < 0 {
			fail(outcomeNotFound, iamErr(http.StatusNotFound, "NoSuchEntity", "The role policy with name "+name+" cannot be found."))
			return
		}
		if action == "GetRolePolicy" {
			ok("<RoleName>" + xmlEscape(roleName) + "</RoleName><PolicyName>" + xmlEscape(name) +
				"</PolicyName><PolicyDocument>" + xmlEscape(rfc3986Escape(cur.inline[i].text)) + "</PolicyDocument>")
			return
		}
		nr := cur.clone()
		nr.inline = slices.Delete(nr.inline, i, i+1)
		s.putRoleVersionLocked(nr, true)
		ok("")
	case "ListRolePolicies":
		var b strings.Builder
		for _, p := range cur.inline {
			b.WriteString("<member>" + xmlEscape(p.name) + "</member>")
		}
		ok("<IsTruncated>false</IsTruncated><PolicyNames>" + b.String() + "</PolicyNames>")
	case "ListAttachedRolePolicies":
		var b strings.Builder
		for _, a := range cur.attached {
			name := a[strings.LastIndex(a, "/")+1:]
			b.WriteString("<member><PolicyName>" + xmlEscape(name) + "</PolicyName><PolicyArn>" + xmlEscape(a) + "</PolicyArn></member>")
		}
		ok("<IsTruncated>false</IsTruncated><AttachedPolicies>" + b.String() + "</AttachedPolicies>")
	case "AttachRolePolicy", "DetachRolePolicy":
		pa := form.Get("PolicyArn")
		if mp := s.policies[pa]; mp == nil || roleAccount(pa) != account {
			fail(outcomeNotFound, iamErr(http.StatusNotFound, "NoSuchEntity", "Policy "+pa+" does not exist or is not attachable."))
			return
		}
		attached := slices.Contains(cur.attached, pa)
		if action == "DetachRolePolicy" && !attached {
			fail(outcomeNotFound, iamErr(http.StatusNotFound, "NoSuchEntity", "Policy "+pa+" was not found."))
			return
		}
		if action == "AttachRolePolicy" && attached {
			ok("") // attaching twice is a no-op in IAM
			return
		}
		nr := cur.clone()
		if action == "AttachRolePolicy" {
			nr.attached = append(nr.attached, pa)
		} else {
			nr.attached = slices.DeleteFunc(nr.attached, func(a string) bool { return a == pa })
		}
		s.putRoleVersionLocked(nr, true)
		ok("")
	case "CreatePolicy":
		name := form.Get("PolicyName")
		if !roleNamePattern.MatchString(name) || len(name) > 128 {
			fail(outcomeError, validationError("policyName", name, "Member must satisfy regular expression pattern: [\\w+=,.@-]+"))
			return
		}
		path := normPath(form.Get("Path"))
		pa := "arn:aws:iam::" + account + ":policy" + path + name
		if s.policies[pa] != nil {
			fail(outcomeError, iamErr(http.StatusConflict, "EntityAlreadyExists", "A policy called "+name+" already exists. Duplicate names are not allowed."))
			return
		}
		text, doc, good := parse("PolicyDocument")
		if !good {
			return
		}
		mp := &managedPolicy{arn: pa, id: "ANPA" + randomUpper(17), name: name, path: path, text: text, doc: doc, created: now}
		s.policies[pa] = mp
		ok("<Policy><PolicyName>" + xmlEscape(name) + "</PolicyName><PolicyId>" + mp.id + "</PolicyId><Arn>" + xmlEscape(pa) +
			"</Arn><Path>" + xmlEscape(path) + "</Path><DefaultVersionId>v1</DefaultVersionId><AttachmentCount>0</AttachmentCount>" +
			"<IsAttachable>true</IsAttachable><CreateDate>" + now.Format(time.RFC3339) + "</CreateDate><UpdateDate>" +
			now.Format(time.RFC3339) + "</UpdateDate></Policy>")
	}
}

// roleXML renders a role as IAM does; policy documents are URL-encoded
// (RFC 3986), as IAM returns them.
func roleXML(r *roleInfo) string {
	var b strings.Builder
	b.WriteString("<Path>" + xmlEscape(r.path) + "</Path><RoleName>" + xmlEscape(r.name) + "</RoleName><RoleId>" + r.id +
		"</RoleId><Arn>" + xmlEscape(r.arn) + "</Arn><CreateDate>" + r.created.UTC().Format(time.RFC3339) +
		"</CreateDate><AssumeRolePolicyDocument>" + xmlEscape(rfc3986Escape(r.trustText)) + "</AssumeRolePolicyDocument>")
	if r.description != "" {
		b.WriteString("<Description>" + xmlEscape(r.description) + "</Description>")
	}
	b.WriteString("<MaxSessionDuration>" + strconv.Itoa(int(r.maxSession/time.Second)) + "</MaxSessionDuration>")
	return b.String()
}

// writeQueryResult writes a query-protocol answer (IAM, STS): the action's
// Response element with its Result and the request ID.
func writeQueryResult(w http.ResponseWriter, ns, action, result string) {
	id := requestID()
	var body string
	if result == "" {
		body = `<` + action + `Response xmlns="` + ns + `"><ResponseMetadata><RequestId>` + id +
			`</RequestId></ResponseMetadata></` + action + `Response>`
	} else {
		body = `<` + action + `Response xmlns="` + ns + `"><` + action + `Result>` + result + `</` + action +
			`Result><ResponseMetadata><RequestId>` + id + `</RequestId></ResponseMetadata></` + action + `Response>`
	}
	w.Header().Set("Content-Type", "text/xml")
	w.Header().Set("x-amzn-RequestId", id)
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	_, _ = w.Write([]byte(body))
}

// normPath is an IAM path: "/" by default, always with slashes at both ends.
func normPath(p string) string {
	if p == "" {
		return "/"
	}
	if !strings.HasPrefix(p, "/") {
		p = "/" + p
	}
	if !strings.HasSuffix(p, "/") {
		p += "/"
	}
	return p
}

// rfc3986Escape percent-encodes everything but RFC 3986's unreserved
// characters, the way IAM encodes policy documents in its answers.
func rfc3986Escape(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.' || c == '~' {
			b.WriteByte(c)
			continue
		}
		b.WriteString("%" + strings.ToUpper(strconv.FormatInt(int64(c)|0x100, 16)[1:]))
	}
	return b.String()
}

func principalARN(p iampolicy.Principal) string {
	if p.RoleARN != "" {
		return p.RoleARN
	}
	return p.ARN
}
