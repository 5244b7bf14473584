package localaws

import (
	"bytes"
	"encoding/xml"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/ferryworks/ferry/internal/localaws/iampolicy"
	"github.com/ferryworks/ferry/internal/localaws/sigv4"
)

// s3Call is an S3 request as IAM sees it.
type s3Call struct {
	Op     string // "s3:GetObject", for stats and faults
	Action string // IAM action evaluated
	Bucket string
	Key    string
	// OwnerOnly marks bucket configuration calls only principals of the
	// owning account may make (bucket policy, versioning, …).
	OwnerOnly bool
}

// Resource is the IAM resource ARN of the call.
func (c s3Call) Resource() string {
	if c.Key == "" {
		return "arn:aws:s3:::" + c.Bucket
	}
	return "arn:aws:s3:::" + c.Bucket + "/" + c.Key
}

// classifyS3 maps a path-style request to its operation and IAM action.
func classifyS3(r *http.Request) s3Call {
	p := strings.TrimPrefix(r.URL.Path, "/")
	bucket, key, _ := strings.Cut(p, "/")
	c := s3Call{Bucket: bucket, Key: key}
	q := r.URL.Query()
	has := func(k string) bool { _, ok := q[k]; return ok }
	set := func(op, action string) s3Call {
		c.Op, c.Action = "s3:"+op, "s3:"+action
		return c
	}
	copySrc := r.Header.Get("X-Amz-Copy-Source") != ""
	if bucket == "" {
		return set("ListBuckets", "ListAllMyBuckets")
	}
	if key == "" {
		switch r.Method {
		case http.MethodHead:
			return set("HeadBucket", "ListBucket")
		case http.MethodGet:
			switch {
			case has("location"):
				return set("GetBucketLocation", "GetBucketLocation")
			case has("policy"):
				c.OwnerOnly = true
				return set("GetBucketPolicy", "GetBucketPolicy")
			case has("uploads"):
				return set("ListMultipartUploads", "ListBucketMultipartUploads")
			case has("versions"):
				return set("ListObjectVersions", "ListBucketVersions")
			case q.Get("list-type") == "2":
				return set("ListObjectsV2", "ListBucket")
			case len(q) == 0 || has("prefix") || has("delimiter") || has("marker") || has("max-keys") || has("encoding-type"):
				return set("ListObjects", "ListBucket")
			}
			c.OwnerOnly = true
			if has("encryption") {
				return set("GetBucketEncryption", "GetEncryptionConfiguration")
			}
			return set("GetBucket"+subresourceName(q), "GetBucket"+subresourceName(q))
		case http.MethodPut:
			switch {
			case has("policy"):
				c.OwnerOnly = true
				return set("PutBucketPolicy", "PutBucketPolicy")
			case len(q) == 0:
				return set("CreateBucket", "CreateBucket")
			}
			c.OwnerOnly = true
			if has("encryption") {
				return set("PutBucketEncryption", "PutEncryptionConfiguration")
			}
			return set("PutBucket"+subresourceName(q), "PutBucket"+subresourceName(q))
		case http.MethodDelete:
			switch {
			case has("policy"):
				c.OwnerOnly = true
				return set("DeleteBucketPolicy", "DeleteBucketPolicy")
			case len(q) == 0:
				c.OwnerOnly = true
				return set("DeleteBucket", "DeleteBucket")
			}
			c.OwnerOnly = true
			if has("encryption") {
				return set("DeleteBucketEncryption", "PutEncryptionConfiguration")
			}
			return set("DeleteBucket"+subresourceName(q), "PutBucket"+subresourceName(q))
		case http.MethodPost:
			if has("delete") {
				// IAM checks each key; the gate checks the bucket's objects
				// as a whole.
				c.Key = "*"
				return set("DeleteObjects", "DeleteObject")
			}
		}
		c.OwnerOnly = true
		return set("Unknown", "Unknown")
	}
	switch r.Method {
	case http.MethodGet:
		switch {
		case has("uploadId"):
			return set("ListParts", "ListMultipartUploadParts")
		case has("tagging"):
			return set("GetObjectTagging", "GetObjectTagging")
		case has("acl"):
			return set("GetObjectAcl", "GetObjectAcl")
		case has("attributes"):
			return set("GetObjectAttributes", "GetObject")
		}
		return set("GetObject", "GetObject")
	case http.MethodHead:
		return set("HeadObject", "GetObject")
	case http.MethodPut:
		switch {
		case has("partNumber") && has("uploadId") && copySrc:
			return set("UploadPartCopy", "PutObject")
		case has("partNumber") && has("uploadId"):
			return set("UploadPart", "PutObject")
		case has("tagging"):
			return set("PutObjectTagging", "PutObjectTagging")
		case has("acl"):
			return set("PutObjectAcl", "PutObjectAcl")
		case copySrc:
			return set("CopyObject", "PutObject")
		}
		return set("PutObject", "PutObject")
	case http.MethodPost:
		switch {
		case has("uploads"):
			return set("CreateMultipartUpload", "PutObject")
		case has("uploadId"):
			return set("CompleteMultipartUpload", "PutObject")
		case has("restore"):
			return set("RestoreObject", "RestoreObject")
		}
		return set("PostObject", "PutObject")
	case http.MethodDelete:
		switch {
		case has("uploadId"):
			return set("AbortMultipartUpload", "AbortMultipartUpload")
		case has("tagging"):
			return set("DeleteObjectTagging", "DeleteObjectTagging")
		}
		return set("DeleteObject", "DeleteObject")
	}
	return set("Unknown", "Unknown")
}

// subresourceName turns the first query key into an operation suffix
// ("versioning" → "Versioning").
func subresourceName(q url.Values) string {
	for k := range q {
		if k == "" {
			continue
		}
		return strings.ToUpper(k[:1]) + k[1:]
	}
	return "Configuration"
}

// s3Denied is S3's answer to a call IAM refuses.
func s3Denied() apiError {
	return apiError{Status: http.StatusForbidden, Code: "AccessDenied", Message: "Access Denied"}
}

// serveS3 applies S3's order of answers — bucket, region, expected owner,
// authorisation, then key existence — and forwards what passes to kumo.
func (s *Stack) serveS3(w http.ResponseWriter, r *http.Request, k *accessKey, si sigv4.Info, c s3Call) {
	p := k.principal()
	if e := wrongSigningRegion(r, si); e != nil {
		s.stats.add(c.Op, outcomeRedirect)
		writeError(w, r, svcS3, *e)
		return
	}
	if c.Bucket == "" {
		if c.Op == "s3:ListBuckets" {
			s.serveListBuckets(w, p)
			return
		}
		s.forward(w, r, &gateState{op: c.Op})
		return
	}
	if c.Op == "s3:CreateBucket" {
		s.createBucket(w, r, p, si, c)
		return
	}
	s.mu.RLock()
	b := s.buckets[c.Bucket]
	s.mu.RUnlock()
	refuse := func(outcome string, e apiError) {
		s.stats.add(c.Op, outcome)
		s.log.Debug().Str("op", c.Op).Str("principal", p.ARN).Str("bucket", c.Bucket).Str("code", e.Code).Msg("s3 call refused")
		writeError(w, r, svcS3, e)
	}
	if b == nil {
		refuse(outcomeNotFound, apiError{Status: http.StatusNotFound, Code: "NoSuchBucket", Message: "The specified bucket does not exist"})
		return
	}
	regionHeader := map[string]string{"x-amz-bucket-region": b.region}
	if c.Op != "s3:GetBucketLocation" {
		if e := wrongBucketRegion(r, si, c.Bucket, b.region); e != nil {
			refuse(outcomeRedirect, *e)
			return
		}
	}
	expected := r.Header.Get("X-Amz-Expected-Bucket-Owner")
	if expected == "" {
		expected = r.URL.Query().Get("x-amz-expected-bucket-owner")
	}
	denied := s3Denied()
	if c.Op == "s3:HeadBucket" {
		denied.Header = regionHeader
	}
	if expected != "" && expected != b.owner {
		refuse(outcomeDenied, denied)
		return
	}
	v := s.s3Verdict(p, c.Action, c.Resource(), b, c.OwnerOnly, r)
	if !v.allowed && !v.explicitDeny && c.Action == "s3:GetObject" && c.Key != "" && b.ownership != OwnershipBucketOwnerEnforced {
		// Object ACLs are one more resource-based grant: across accounts
		// the caller's identity must allow as well; with
		// BucketOwnerEnforced they grant nothing
		// (https://docs.aws.amazon.com/AmazonS3/latest/userguide/about-object-ownership.html).
		s.mu.RLock()
		granted := s.aclGrantsReadLocked(c.Bucket, c.Key, p)
		s.mu.RUnlock()
		v.allowed = granted && (p.Account == b.owner || v.identity == iampolicy.Allow)
	}
	if !v.allowed {
		refuse(outcomeDenied, denied)
		return
	}
	if b.requesterPays && p.Account != b.owner && !requesterPaysAcknowledged(r) {
		// "If the request does not include x-amz-request-payer, Amazon S3
		// returns a 403 error"
		// (https://docs.aws.amazon.com/AmazonS3/latest/userguide/ObjectsinRequesterPaysBuckets.html).
		refuse(outcomeDenied, denied)
		return
	}
	if c.Op == "s3:CopyObject" || c.Op == "s3:UploadPartCopy" {
		if e := s.checkCopySource(p, r.Header.Get("X-Amz-Copy-Source"), r); e != nil {
			refuse(outcomeDenied, *e)
			return
		}
	}
	switch {
	case c.Op == "s3:PutBucketPolicy", c.Op == "s3:GetBucketPolicy", c.Op == "s3:DeleteBucketPolicy":
		s.serveBucketPolicy(w, r, c)
		return
	case isBucketSetting(c.Op):
		s.serveBucketSetting(w, r, c, p, si)
		return
	case c.Op == "s3:PutObjectAcl", c.Op == "s3:GetObjectAcl":
		s.serveObjectACL(w, r, c, b)
		return
	}
	st := &gateState{op: c.Op}
	switch c.Op {
	case "s3:PutObject", "s3:CopyObject", "s3:CreateMultipartUpload":
		grants, canned, present, e := aclFromRequest(r.Header, nil, b.owner)
		if e == nil {
			e = checkWriteACL(b, grants, canned, present)
		}
		if e == nil {
			e = s.applySSE(r, p, b)
		}
		if e != nil {
			refuse(outcomeDenied, *e)
			return
		}
		// A write replaces the object's ACL with the one it carries
		// (private when none). A multipart upload's ACL is recorded when
		// it starts: the gate does not track uploads.
		ak := aclKey(c.Bucket, c.Key)
		sse, sseKey := r.Header.Get("X-Amz-Server-Side-Encryption"), r.Header.Get("X-Amz-Server-Side-Encryption-Aws-Kms-Key-Id")
		// kumo answers a write once it read the whole body, so by then a
		// trailing checksum has arrived and been verified.
		bc, _ := r.Context().Value(bodyCheckKey{}).(*bodyCheck)
		put := c.Op == "s3:PutObject"
		st.onResponse = func(resp *http.Response) {
			if resp.StatusCode/100 != 2 {
				return
			}
			// S3 answers a write with the encryption it applied, and a
			// PutObject with the checksum it stored.
			if sse != "" {
				resp.Header.Set("X-Amz-Server-Side-Encryption", sse)
				if sseKey != "" {
					resp.Header.Set("X-Amz-Server-Side-Encryption-Aws-Kms-Key-Id", sseKey)
				}
			}
			if sum, ok := bc.checksum(); ok && put {
				resp.Header.Set(sum.header, sum.value)
			}
		}
		st.onStatus = func(status int) {
			if status/100 != 2 {
				return
			}
			s.mu.Lock()
			s.setGrantsLocked(ak, grants)
			if sse == "" {
				delete(s.objectSSE, ak)
			} else {
				s.objectSSE[ak] = objectSSE{alg: sse, keyARN: sseKey}
			}
			// A copy's checksum is not emulated: the copy keeps none.
			if sum, ok := bc.checksum(); ok && put {
				s.objectChecksums[ak] = sum
			} else if c.Op != "s3:CreateMultipartUpload" {
				delete(s.objectChecksums, ak)
			}
			s.mu.Unlock()
		}
	case "s3:CompleteMultipartUpload":
		// The completed upload replaces the object; its composite
		// checksum is not emulated.
		ak := aclKey(c.Bucket, c.Key)
		st.onStatus = func(status int) {
			if status/100 == 2 {
				s.mu.Lock()
				delete(s.objectChecksums, ak)
				s.mu.Unlock()
			}
		}
	case "s3:DeleteObject":
		ak := aclKey(c.Bucket, c.Key)
		st.onStatus = func(status int) {
			if status/100 == 2 {
				s.mu.Lock()
				delete(s.acls, ak)
				delete(s.objectSSE, ak)
				delete(s.objectChecksums, ak)
				s.mu.Unlock()
			}
		}
	}
	switch c.Op {
	case "s3:GetObject", "s3:HeadObject":
		st.hideMissing = !s.allowedS3(p, "s3:ListBucket", "arn:aws:s3:::"+c.Bucket, b, false, r)
		ak := aclKey(c.Bucket, c.Key)
		get := c.Op == "s3:GetObject"
		wantSum := checksumModeEnabled(r)
		st.onResponse = func(resp *http.Response) {
			if resp.StatusCode/100 != 2 {
				return
			}
			s.mu.RLock()
			enc, ok := s.objectSSE[ak]
			sum, hasSum := s.objectChecksums[ak]
			s.mu.RUnlock()
			// A ranged read answers no full-object checksum.
			if wantSum && hasSum && resp.StatusCode == http.StatusOK {
				resp.Header.Set(sum.header, sum.value)
			}
			if !ok {
				return
			}
			// S3 names the encryption on every read, ranged ones too
			// (kumo omits it from partial answers).
			resp.Header.Set("X-Amz-Server-Side-Encryption", enc.alg)
			if enc.keyARN != "" {
				resp.Header.Set("X-Amz-Server-Side-Encryption-Aws-Kms-Key-Id", enc.keyARN)
			}
			if !get {
				return // HeadObject reads metadata only: no kms:Decrypt
			}
			if e := s.kmsReadCheck(p, enc, b); e != nil {
				s.log.Debug().Str("op", c.Op).Str("principal", p.ARN).Str("bucket", c.Bucket).Msg("kms:Decrypt refused")
				replaceWithError(resp, *e)
			}
		}
	case "s3:HeadBucket":
		st.bucketRegion = b.region
	case "s3:DeleteBucket":
		st.onStatus = func(status int) {
			if status/100 == 2 {
				s.mu.Lock()
				delete(s.buckets, c.Bucket)
				s.mu.Unlock()
			}
		}
	}
	s.forward(w, r, st)
}

// allowedS3 evaluates IAM for an S3 call: an explicit Deny anywhere refuses;
// within the owner's account an identity or bucket-policy Allow suffices
// (the root is allowed everything); across accounts both must allow.
func (s *Stack) allowedS3(p iampolicy.Principal, action, resource string, b *bucketInfo, ownerOnly bool, r *http.Request) bool {
	return s.s3Verdict(p, action, resource, b, ownerOnly, r).allowed
}

// s3Verdict is allowedS3 with what led to it, for grants beyond policies
// (object ACLs) that an explicit Deny still beats.
type s3Verdict struct {
	allowed      bool
	explicitDeny bool
	identity     iampolicy.Decision
}

func (s *Stack) s3Verdict(p iampolicy.Principal, action, resource string, b *bucketInfo, ownerOnly bool, r *http.Request) s3Verdict {
	req := iampolicy.EvalRequest{Principal: p, Action: action, Resource: resource, Context: s3Context(p, r)}
	s.mu.RLock()
	defer s.mu.RUnlock()
	identity := s.identityDecision(p, req)
	v := s3Verdict{identity: identity}
	if identity == iampolicy.Deny {
		v.explicitDeny = true
		return v
	}
	if ownerOnly {
		v.allowed = p.Account == b.owner && identity == iampolicy.Allow
		return v
	}
	bucket := b.policy.Evaluate(req, true)
	if bucket == iampolicy.Deny {
		v.explicitDeny = true
		return v
	}
	if p.Account == b.owner {
		v.allowed = identity == iampolicy.Allow || bucket == iampolicy.Allow
	} else {
		v.allowed = identity == iampolicy.Allow && bucket == iampolicy.Allow
	}
	return v
}

// requesterPaysAcknowledged reports whether a request carries
// x-amz-request-payer: requester (a header, or a presigned URL's query).
func requesterPaysAcknowledged(r *http.Request) bool {
	v := r.Header.Get("X-Amz-Request-Payer")
	if v == "" {
		v = r.URL.Query().Get("x-amz-request-payer")
	}
	return strings.EqualFold(v, "requester")
}

// identityDecision is the caller's own policies' verdict: a root may do
// anything in IAM terms, a role session what its role's policies allow.
// The caller must hold s.mu.
func (s *Stack) identityDecision(p iampolicy.Principal, req iampolicy.EvalRequest) iampolicy.Decision {
	if p.IsRoot() {
		return iampolicy.Allow
	}
	role := s.activeRoleLocked(p.RoleARN)
	if role == nil {
		return iampolicy.NoMatch
	}
	d := iampolicy.NoMatch
	for _, pol := range s.policiesOf(role) {
		switch pol.Evaluate(req, false) {
		case iampolicy.Deny:
			return iampolicy.Deny
		case iampolicy.Allow:
			d = iampolicy.Allow
		}
	}
	return d
}

func s3Context(p iampolicy.Principal, r *http.Request) map[string][]string {
	pa := p.RoleARN
	if pa == "" {
		pa = p.ARN
	}
	ctx := map[string][]string{
		"aws:principalarn":     {pa},
		"aws:principalaccount": {p.Account},
		"aws:securetransport":  {strconv.FormatBool(r.TLS != nil)},
	}
	if prefix := r.URL.Query().Get("prefix"); prefix != "" {
		ctx["s3:prefix"] = []string{prefix}
	}
	return ctx
}

// checkCopySource authorises s3:GetObject on the source of a copy.
func (s *Stack) checkCopySource(p iampolicy.Principal, src string, r *http.Request) *apiError {
	src, _, _ = strings.Cut(src, "?")
	if u, err := url.PathUnescape(src); err == nil {
		src = u
	}
	bucket, key, _ := strings.Cut(strings.TrimPrefix(src, "/"), "/")
	s.mu.RLock()
	b := s.buckets[bucket]
	s.mu.RUnlock()
	if b == nil {
		return &apiError{Status: http.StatusNotFound, Code: "NoSuchBucket", Message: "The specified bucket does not exist"}
	}
	if !s.allowedS3(p, "s3:GetObject", "arn:aws:s3:::"+bucket+"/"+key, b, false, r) {
		e := s3Denied()
		return &e
	}
	return nil
}

// createBucket records the new bucket's owner and region (from the
// LocationConstraint) and lets kumo store it. Names are global: another
// account's name is BucketAlreadyExists.
func (s *Stack) createBucket(w http.ResponseWriter, r *http.Request, p iampolicy.Principal, si sigv4.Info, c s3Call) {
	raw, err := io.ReadAll(io.LimitReader(r.Body, 64<<10))
	if err != nil {
		writeError(w, r, svcS3, apiError{Status: http.StatusBadRequest, Code: "IncompleteBody", Message: "could not read the request body"})
		return
	}
	var cfg struct {
		LocationConstraint string
	}
	if len(bytes.TrimSpace(raw)) > 0 {
		if err := xml.Unmarshal(raw, &cfg); err != nil {
			s.stats.add(c.Op, outcomeError)
			writeError(w, r, svcS3, apiError{Status: http.StatusBadRequest, Code: "MalformedXML",
				Message: "The XML you provided was not well-formed or did not validate against our published schema"})
			return
		}
	}
	region := cfg.LocationConstraint
	switch region {
	case "":
		region = "us-east-1"
	case "EU":
		region = "eu-west-1"
	}
	if si.Region != "us-east-1" && region != si.Region {
		s.stats.add(c.Op, outcomeError)
		writeError(w, r, svcS3, apiError{Status: http.StatusBadRequest, Code: "IllegalLocationConstraintException",
			Message: "The " + orUnspecified(cfg.LocationConstraint) + " location constraint is incompatible for the region specific endpoint this request was sent to."})
		return
	}
	s.mu.Lock()
	if old, ok := s.buckets[c.Bucket]; ok {
		s.mu.Unlock()
		if old.owner == p.Account && old.region == "us-east-1" {
			// us-east-1 keeps its legacy answer: re-creating your own bucket succeeds.
			s.stats.add(c.Op, outcomeOK)
			w.Header().Set("Location", "/"+c.Bucket)
			w.WriteHeader(http.StatusOK)
			return
		}
		s.stats.add(c.Op, outcomeError)
		if old.owner == p.Account {
			writeError(w, r, svcS3, apiError{Status: http.StatusConflict, Code: "BucketAlreadyOwnedByYou",
				Message: "Your previous request to create the named bucket succeeded and you already own it."})
			return
		}
		writeError(w, r, svcS3, apiError{Status: http.StatusConflict, Code: "BucketAlreadyExists",
			Message: "The requested bucket name is not available. The bucket namespace is shared by all users of the system. Please select a different name and try again."})
		return
	}
	// New buckets have ACLs disabled unless the request asks otherwise
	// (https://docs.aws.amazon.com/AmazonS3/latest/userguide/about-object-ownership.html).
	ownership := r.Header.Get("X-Amz-Object-Ownership")
	switch ownership {
	case "":
		ownership = OwnershipBucketOwnerEnforced
	case OwnershipBucketOwnerEnforced, OwnershipBucketOwnerPreferred, OwnershipObjectWriter:
	default:
		s.mu.Unlock()
		s.stats.add(c.Op, outcomeError)
		writeError(w, r, svcS3, apiError{Status: http.StatusBadRequest, Code: "InvalidArgument", Message: "Invalid x-amz-object-ownership header: " + ownership})
		return
	}
	bi := &bucketInfo{owner: p.Account, region: region, ownership: ownership, created: s.opts.Now()}
	s.buckets[c.Bucket] = bi
	s.mu.Unlock()
	r.Body = io.NopCloser(bytes.NewReader(raw))
	r.ContentLength = int64(len(raw))
	s.forward(w, r, &gateState{op: c.Op, onStatus: func(status int) {
		if status/100 != 2 {
			s.mu.Lock()
			if s.buckets[c.Bucket] == bi {
				delete(s.buckets, c.Bucket)
			}
			s.mu.Unlock()
		}
	}})
}

func orUnspecified(s string) string {
	if s == "" {
		return "unspecified"
	}
	return s
}

// serveBucketPolicy answers bucket policy calls from the gate's own record,
// which is what authorisation reads.
func (s *Stack) serveBucketPolicy(w http.ResponseWriter, r *http.Request, c s3Call) {
	switch c.Op {
	case "s3:PutBucketPolicy":
		raw, err := io.ReadAll(io.LimitReader(r.Body, 20<<10+1))
		if err != nil || len(raw) > 20<<10 {
			s.stats.add(c.Op, outcomeError)
			writeError(w, r, svcS3, apiError{Status: http.StatusBadRequest, Code: "PolicyTooLarge", Message: "Policies must be at most 20 KB"})
			return
		}
		if err := s.SetBucketPolicy(c.Bucket, string(raw)); err != nil {
			s.stats.add(c.Op, outcomeError)
			writeError(w, r, svcS3, apiError{Status: http.StatusBadRequest, Code: "MalformedPolicy", Message: err.Error()})
			return
		}
		s.stats.add(c.Op, outcomeOK)
		w.WriteHeader(http.StatusNoContent)
	case "s3:DeleteBucketPolicy":
		_ = s.SetBucketPolicy(c.Bucket, "")
		s.stats.add(c.Op, outcomeOK)
		w.WriteHeader(http.StatusNoContent)
	default:
		s.mu.RLock()
		var text string
		if b := s.buckets[c.Bucket]; b != nil {
			text = b.policyText
		}
		s.mu.RUnlock()
		if text == "" {
			s.stats.add(c.Op, outcomeNotFound)
			writeError(w, r, svcS3, apiError{Status: http.StatusNotFound, Code: "NoSuchBucketPolicy", Message: "The bucket policy does not exist"})
			return
		}
		s.stats.add(c.Op, outcomeOK)
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, text)
	}
}
