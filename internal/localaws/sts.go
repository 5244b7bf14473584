package localaws

import (
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/ferryworks/ferry/internal/localaws/iampolicy"
)

var (
	sessionNamePattern = regexp.MustCompile(`^[\w+=,.@-]{2,64}$`)
	externalIDPattern  = regexp.MustCompile(`^[\w+=,.@:/-]+$`)
)

const stsNS = "https://sts.amazonaws.com/doc/2011-06-15/"

// serveSTS answers STS itself (query protocol): AssumeRole and
// GetCallerIdentity, in the XML the SDK parses.
func (s *Stack) serveSTS(w http.ResponseWriter, r *http.Request, op string, k *accessKey, form url.Values, fault Fault) {
	switch form.Get("Action") {
	case "GetCallerIdentity":
		s.stats.add(op, outcomeOK)
		writeSTS(w, "GetCallerIdentity", "<Arn>"+xmlEscape(k.arn)+"</Arn><UserId>"+xmlEscape(k.userID)+
			"</UserId><Account>"+k.account+"</Account>")
	case "AssumeRole":
		s.assumeRole(w, r, op, k, form, fault.SessionSeconds)
	default:
		s.stats.add(op, outcomeError)
		writeError(w, r, svcSTS, apiError{Status: http.StatusBadRequest, Code: "InvalidAction",
			Message: "Could not find operation " + form.Get("Action") + " for version " + form.Get("Version")})
	}
}

func writeSTS(w http.ResponseWriter, action, result string) {
	id := requestID()
	body := `<` + action + `Response xmlns="` + stsNS + `"><` + action + `Result>` + result + `</` + action +
		`Result><ResponseMetadata><RequestId>` + id + `</RequestId></ResponseMetadata></` + action + `Response>`
	w.Header().Set("Content-Type", "text/xml")
	w.Header().Set("x-amzn-RequestId", id)
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	_, _ = w.Write([]byte(body))
}

func validationError(field, value, constraint string) apiError {
	return apiError{Status: http.StatusBadRequest, Code: "ValidationError",
		Message: "1 validation error detected: Value '" + value + "' at '" + field + "' failed to satisfy constraint: " + constraint}
}

// secondsParam reads the optional form parameter name, whole seconds from
// lo to hi, as IAM and STS validate it; absent, it is one hour (the default
// of both parameters read this way).
func secondsParam(form url.Values, name string, lo, hi int) (time.Duration, *apiError) {
	v := form.Get(name)
	if v == "" {
		return time.Hour, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < lo || n > hi {
		// The error names the member in lower camel case, as AWS does.
		e := validationError(strings.ToLower(name[:1])+name[1:], v, "Member must have value between "+strconv.Itoa(lo)+" and "+strconv.Itoa(hi))
		return 0, &e
	}
	return time.Duration(n) * time.Second, nil
}

// assumeRole issues temporary credentials when the role exists, its trust
// policy admits the caller (with the sts:ExternalId condition) and the
// caller's own policies allow sts:AssumeRole on it. sessionSeconds > 0 (a
// fault) cuts the session's lifetime to that many seconds.
func (s *Stack) assumeRole(w http.ResponseWriter, r *http.Request, op string, k *accessKey, form url.Values, sessionSeconds int) {
	fail := func(outcome string, e apiError) {
		s.stats.add(op, outcome)
		s.log.Debug().Str("op", op).Str("principal", k.arn).Str("role", form.Get("RoleArn")).Str("code", e.Code).Msg("AssumeRole refused")
		writeError(w, r, svcSTS, e)
	}
	roleARN := form.Get("RoleArn")
	sessionName := form.Get("RoleSessionName")
	externalID, hasExternalID := form["ExternalId"]
	switch {
	case roleARN == "":
		fail(outcomeError, validationError("roleArn", "null", "Member must not be null"))
		return
	case len(roleARN) < 20 || len(roleARN) > 2048:
		fail(outcomeError, validationError("roleArn", roleARN, "Member must have length between 20 and 2048"))
		return
	case !sessionNamePattern.MatchString(sessionName):
		// The value is echoed as STS does; session names are not secrets.
		fail(outcomeError, validationError("roleSessionName", sessionName,
			"Member must satisfy regular expression pattern: [\\w+=,.@-]* and have length between 2 and 64"))
		return
	case hasExternalID && (len(externalID[0]) < 2 || len(externalID[0]) > 1224 || !externalIDPattern.MatchString(externalID[0])):
		// External IDs are secrets: never echo them.
		fail(outcomeError, validationError("externalId", "***",
			"Member must satisfy regular expression pattern: [\\w+=,.@:\\/-]* and have length between 2 and 1224"))
		return
	}
	duration, bad := secondsParam(form, "DurationSeconds", 900, 43200)
	if bad != nil {
		fail(outcomeError, *bad)
		return
	}
	notAuthorized := apiError{Status: http.StatusForbidden, Code: "AccessDenied",
		Message: "User: " + k.arn + " is not authorized to perform: sts:AssumeRole on resource: " + roleARN}

	ctx := map[string][]string{
		"aws:principalaccount": {k.account},
		"sts:rolesessionname":  {sessionName},
	}
	if k.roleARN != "" {
		ctx["aws:principalarn"] = []string{k.roleARN}
	} else {
		ctx["aws:principalarn"] = []string{k.arn}
	}
	if hasExternalID {
		ctx["sts:externalid"] = externalID[:1]
	}
	req := iampolicy.EvalRequest{Principal: k.principal(), Action: "sts:AssumeRole", Resource: roleARN, Context: ctx}

	s.mu.RLock()
	role := s.activeRoleLocked(roleARN)
	var trust, identity iampolicy.Decision
	var maxDur time.Duration
	var roleID string
	if role != nil {
		trust = role.trust.Evaluate(req, true)
		identity = s.identityDecision(k.principal(), req)
		maxDur, roleID = role.maxSession, role.id
	}
	s.mu.RUnlock()
	if role == nil || trust != iampolicy.Allow || identity != iampolicy.Allow {
		fail(outcomeDenied, notAuthorized)
		return
	}
	// Role chaining caps sessions at one hour, whatever the role allows.
	if k.roleARN != "" && maxDur > time.Hour {
		maxDur = time.Hour
	}
	if duration > maxDur {
		fail(outcomeError, apiError{Status: http.StatusBadRequest, Code: "ValidationError",
			Message: "The requested DurationSeconds exceeds the MaxSessionDuration set for this role."})
		return
	}

	if sessionSeconds > 0 {
		duration = time.Duration(sessionSeconds) * time.Second
	}
	account := roleAccount(roleARN)
	roleName := roleARN[strings.LastIndex(roleARN, "/")+1:]
	tk := &accessKey{
		id:           "ASIA" + randomUpper(16),
		secret:       randomSecret(40),
		account:      account,
		arn:          "arn:aws:sts::" + account + ":assumed-role/" + roleName + "/" + sessionName,
		roleARN:      roleARN,
		userID:       roleID + ":" + sessionName,
		sessionToken: "FwoGZXIvYXdzE" + randomSecret(300),
		expires:      s.opts.Now().Add(duration).Truncate(time.Second),
	}
	s.mu.Lock()
	s.keys[tk.id] = tk
	s.pruneExpiredLocked()
	s.mu.Unlock()
	s.stats.add(op, outcomeOK)
	writeSTS(w, "AssumeRole",
		"<AssumedRoleUser><AssumedRoleId>"+xmlEscape(tk.userID)+"</AssumedRoleId><Arn>"+xmlEscape(tk.arn)+
			"</Arn></AssumedRoleUser><Credentials><AccessKeyId>"+tk.id+"</AccessKeyId><SecretAccessKey>"+
			xmlEscape(tk.secret)+"</SecretAccessKey><SessionToken>"+xmlEscape(tk.sessionToken)+
			"</SessionToken><Expiration>"+tk.expires.UTC().Format(time.RFC3339)+"</Expiration></Credentials>"+
			"<PackedPolicySize>0</PackedPolicySize>")
}

// roleAccount is the account field of arn:aws:iam::ACCT:role/NAME.
func roleAccount(arn string) string {
	parts := strings.SplitN(arn, ":", 6)
	if len(parts) < 5 {
		return ""
	}
	return parts[4]
}

// pruneExpiredLocked drops temporary keys expired for over a day, so a
// long-running devstack does not grow without bound; recently expired keys
// stay so their use still answers ExpiredToken. The caller holds s.mu.
func (s *Stack) pruneExpiredLocked() {
	cutoff := s.opts.Now().Add(-24 * time.Hour)
	for id, k := range s.keys {
		if k.sessionToken != "" && k.expires.Before(cutoff) {
			delete(s.keys, id)
		}
	}
}
