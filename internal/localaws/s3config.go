package localaws

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/ferryworks/ferry/internal/localaws/iampolicy"
	"github.com/ferryworks/ferry/internal/localaws/sigv4"
)

// The bucket settings real customer buckets carry and the gate enforces
// itself (kumo stores bytes, not permissions): Object Ownership and object
// ACLs, default encryption with SSE-KMS, and Requester Pays.

// Object Ownership settings
// (https://docs.aws.amazon.com/AmazonS3/latest/userguide/about-object-ownership.html).
const (
	OwnershipBucketOwnerEnforced  = "BucketOwnerEnforced"
	OwnershipBucketOwnerPreferred = "BucketOwnerPreferred"
	OwnershipObjectWriter         = "ObjectWriter"
)

const s3NS = "http://s3.amazonaws.com/doc/2006-03-01/"

// CanonicalUserID is the S3 canonical user ID of an account, the grantee
// ID object ACLs name (https://docs.aws.amazon.com/AmazonS3/latest/userguide/finding-canonical-user-id.html).
// It is stable per account, as in S3; ListBuckets shows it as Owner.ID.
func CanonicalUserID(account string) string {
	h := sha256.Sum256([]byte("localaws canonical user " + account))
	return hex.EncodeToString(h[:])
}

// Groups an ACL can grant to
// (https://docs.aws.amazon.com/AmazonS3/latest/userguide/acl-overview.html#specifying-grantee-predefined-groups).
const (
	groupAllUsers           = "http://acs.amazonaws.com/groups/global/AllUsers"
	groupAuthenticatedUsers = "http://acs.amazonaws.com/groups/global/AuthenticatedUsers"
)

// aclGrant is one grant of an object ACL.
type aclGrant struct {
	id, uri    string
	permission string // READ, READ_ACP, WRITE_ACP, FULL_CONTROL
}

func aclKey(bucket, key string) string { return bucket + "\x00" + key }

// setGrantsLocked records an object's ACL grants beyond its owner's; none
// (the owner alone) keeps no entry. The caller holds s.mu.
func (s *Stack) setGrantsLocked(k string, grants []aclGrant) {
	if len(grants) == 0 {
		delete(s.acls, k)
	} else {
		s.acls[k] = grants
	}
}

// objectSSE is how an object was encrypted: "AES256" or "aws:kms" with the
// key's ARN ("" for the AWS managed key aws/s3).
type objectSSE struct {
	alg    string
	keyARN string
}

// aclGrantsRead reports whether an object's ACL grants READ (or
// FULL_CONTROL) to p's account. The caller holds s.mu.
func (s *Stack) aclGrantsReadLocked(bucket, key string, p iampolicy.Principal) bool {
	canon := CanonicalUserID(p.Account)
	for _, g := range s.acls[aclKey(bucket, key)] {
		if g.permission != "READ" && g.permission != "FULL_CONTROL" {
			continue
		}
		if g.id == canon || g.uri == groupAllUsers || g.uri == groupAuthenticatedUsers {
			return true
		}
	}
	return false
}

// aclFromRequest reads an ACL from a canned x-amz-acl, x-amz-grant-*
// headers or an AccessControlPolicy body
// (https://docs.aws.amazon.com/AmazonS3/latest/API/API_PutObjectAcl.html).
// present is false when the request carries no ACL at all; canned is the
// canned ACL's name.
func aclFromRequest(h http.Header, body []byte, bucketOwner string) (grants []aclGrant, canned string, present bool, e *apiError) {
	bad := func(msg string) ([]aclGrant, string, bool, *apiError) {
		return nil, "", true, &apiError{Status: http.StatusBadRequest, Code: "InvalidArgument", Message: msg}
	}
	if c := h.Get("X-Amz-Acl"); c != "" {
		switch c {
		case "private", "bucket-owner-full-control":
		case "public-read":
			grants = append(grants, aclGrant{uri: groupAllUsers, permission: "READ"})
		case "authenticated-read":
			grants = append(grants, aclGrant{uri: groupAuthenticatedUsers, permission: "READ"})
		case "bucket-owner-read":
			grants = append(grants, aclGrant{id: CanonicalUserID(bucketOwner), permission: "READ"})
		default:
			return bad("canned ACL " + c + " is not valid")
		}
		return grants, c, true, nil
	}
	for hdr, perm := range map[string]string{"X-Amz-Grant-Read": "READ", "X-Amz-Grant-Read-Acp": "READ_ACP",
		"X-Amz-Grant-Write-Acp": "WRITE_ACP", "X-Amz-Grant-Full-Control": "FULL_CONTROL"} {
		v := h.Get(hdr)
		if v == "" {
			continue
		}
		present = true
		for _, item := range strings.Split(v, ",") {
			typ, val, ok := strings.Cut(strings.TrimSpace(item), "=")
			val = strings.Trim(strings.TrimSpace(val), `"`)
			if !ok || val == "" {
				return bad("grantee " + item + " is not id=…, uri=… or emailAddress=…")
			}
			switch strings.ToLower(strings.TrimSpace(typ)) {
			case "id":
				grants = append(grants, aclGrant{id: val, permission: perm})
			case "uri":
				grants = append(grants, aclGrant{uri: val, permission: perm})
			default:
				return bad("localaws grants to canonical user IDs and group URIs only, not " + typ)
			}
		}
	}
	if present {
		sortGrants(grants)
		return grants, "", true, nil
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return nil, "", false, nil
	}
	var doc struct {
		Grants []struct {
			Grantee struct {
				ID  string `xml:"ID"`
				URI string `xml:"URI"`
			} `xml:"Grantee"`
			Permission string `xml:"Permission"`
		} `xml:"AccessControlList>Grant"`
	}
	if err := xml.Unmarshal(body, &doc); err != nil {
		return nil, "", true, &apiError{Status: http.StatusBadRequest, Code: "MalformedACLError",
			Message: "The XML you provided was not well-formed or did not validate against our published schema"}
	}
	for _, g := range doc.Grants {
		if g.Grantee.ID == CanonicalUserID(bucketOwner) && g.Permission == "FULL_CONTROL" {
			continue // the owner's implicit grant
		}
		grants = append(grants, aclGrant{id: g.Grantee.ID, uri: g.Grantee.URI, permission: g.Permission})
	}
	sortGrants(grants)
	return grants, "", true, nil
}

func sortGrants(g []aclGrant) {
	sort.Slice(g, func(i, j int) bool {
		if g[i].permission != g[j].permission {
			return g[i].permission < g[j].permission
		}
		return g[i].id+g[i].uri < g[j].id+g[j].uri
	})
}

// aclsDisabled is S3's refusal of an ACL on a bucket whose Object Ownership
// is BucketOwnerEnforced.
func aclsDisabled() apiError {
	return apiError{Status: http.StatusBadRequest, Code: "AccessControlListNotSupported", Message: "The bucket does not allow ACLs"}
}

// checkWriteACL refuses ACL headers S3 would refuse on a write to b: with
// BucketOwnerEnforced only bucket-owner-full-control (or private) is
// accepted.
func checkWriteACL(b *bucketInfo, grants []aclGrant, canned string, present bool) *apiError {
	if !present || b.ownership != OwnershipBucketOwnerEnforced {
		return nil
	}
	if len(grants) == 0 && (canned == "" || canned == "private" || canned == "bucket-owner-full-control") {
		return nil
	}
	e := aclsDisabled()
	return &e
}

// serveObjectACL answers PutObjectAcl and GetObjectAcl from the gate's
// record of object ACLs.
func (s *Stack) serveObjectACL(w http.ResponseWriter, r *http.Request, c s3Call, b *bucketInfo) {
	if !s.kumoObjectExists(r.Context(), c.Bucket, c.Key) {
		s.stats.add(c.Op, outcomeNotFound)
		writeError(w, r, svcS3, apiError{Status: http.StatusNotFound, Code: "NoSuchKey", Message: "The specified key does not exist."})
		return
	}
	k := aclKey(c.Bucket, c.Key)
	if c.Op == "s3:GetObjectAcl" {
		s.mu.RLock()
		grants := s.acls[k]
		s.mu.RUnlock()
		owner := CanonicalUserID(b.owner)
		var g strings.Builder
		grant := func(typ, inner, perm string) {
			g.WriteString(`<Grant><Grantee xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:type="` + typ + `">` + inner +
				`</Grantee><Permission>` + perm + `</Permission></Grant>`)
		}
		grant("CanonicalUser", "<ID>"+owner+"</ID>", "FULL_CONTROL")
		for _, gr := range grants {
			if gr.uri != "" {
				grant("Group", "<URI>"+xmlEscape(gr.uri)+"</URI>", gr.permission)
			} else {
				grant("CanonicalUser", "<ID>"+xmlEscape(gr.id)+"</ID>", gr.permission)
			}
		}
		writeS3XML(w, `<AccessControlPolicy xmlns="`+s3NS+`"><Owner><ID>`+owner+`</ID></Owner><AccessControlList>`+
			g.String()+`</AccessControlList></AccessControlPolicy>`)
		s.stats.add(c.Op, outcomeOK)
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 64<<10))
	if err != nil {
		writeError(w, r, svcS3, apiError{Status: http.StatusBadRequest, Code: "IncompleteBody", Message: "could not read the request body"})
		return
	}
	if b.ownership == OwnershipBucketOwnerEnforced {
		s.stats.add(c.Op, outcomeError)
		writeError(w, r, svcS3, aclsDisabled())
		return
	}
	grants, _, _, e := aclFromRequest(r.Header, body, b.owner)
	if e != nil {
		s.stats.add(c.Op, outcomeError)
		writeError(w, r, svcS3, *e)
		return
	}
	s.mu.Lock()
	s.setGrantsLocked(k, grants)
	s.mu.Unlock()
	s.stats.add(c.Op, outcomeOK)
	w.WriteHeader(http.StatusOK)
}

// kumoObjectExists asks kumo directly whether an object exists.
func (s *Stack) kumoObjectExists(ctx context.Context, bucket, key string) bool {
	p := (&url.URL{Path: "/" + bucket + "/" + key}).EscapedPath()
	return s.kumoDo(ctx, http.MethodHead, p, nil, -1, "") == nil
}

func writeS3XML(w http.ResponseWriter, body string) {
	body = `<?xml version="1.0" encoding="UTF-8"?>` + "\n" + body
	w.Header().Set("Content-Type", "application/xml")
	w.Header().Set("x-amz-request-id", requestID())
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	_, _ = io.WriteString(w, body)
}

// serveBucketSetting answers the bucket configuration calls the gate keeps
// itself: ownership controls, default encryption and request payment.
func (s *Stack) serveBucketSetting(w http.ResponseWriter, r *http.Request, c s3Call, p iampolicy.Principal, si sigv4.Info) {
	fail := func(e apiError) {
		s.stats.add(c.Op, outcomeError)
		writeError(w, r, svcS3, e)
	}
	malformed := apiError{Status: http.StatusBadRequest, Code: "MalformedXML",
		Message: "The XML you provided was not well-formed or did not validate against our published schema"}
	var body []byte
	if r.Method == http.MethodPut {
		var err error
		if body, err = io.ReadAll(io.LimitReader(r.Body, 64<<10)); err != nil {
			fail(apiError{Status: http.StatusBadRequest, Code: "IncompleteBody", Message: "could not read the request body"})
			return
		}
	}
	// update changes the bucket and answers status. A bucket deleted since
	// the request was checked stays deleted (the error is ErrNoSuchBucket).
	update := func(status int, f func(nb *bucketInfo)) {
		_ = s.updateBucket(c.Bucket, c.Op, func(nb *bucketInfo) error { f(nb); return nil })
		s.stats.add(c.Op, outcomeOK)
		w.WriteHeader(status)
	}
	s.mu.RLock()
	b := *s.buckets[c.Bucket]
	s.mu.RUnlock()
	switch c.Op {
	case "s3:PutBucketOwnershipControls":
		var doc struct {
			Rules []string `xml:"Rule>ObjectOwnership"`
		}
		if xml.Unmarshal(body, &doc) != nil || len(doc.Rules) != 1 {
			fail(malformed)
			return
		}
		switch doc.Rules[0] {
		case OwnershipBucketOwnerEnforced, OwnershipBucketOwnerPreferred, OwnershipObjectWriter:
		default:
			fail(malformed)
			return
		}
		update(http.StatusOK, func(nb *bucketInfo) { nb.ownership = doc.Rules[0] })
	case "s3:GetBucketOwnershipControls":
		s.stats.add(c.Op, outcomeOK)
		writeS3XML(w, `<OwnershipControls xmlns="`+s3NS+`"><Rule><ObjectOwnership>`+b.ownership+`</ObjectOwnership></Rule></OwnershipControls>`)
	case "s3:DeleteBucketOwnershipControls":
		// Without controls a bucket behaves as ObjectWriter.
		update(http.StatusNoContent, func(nb *bucketInfo) { nb.ownership = OwnershipObjectWriter })
	case "s3:PutBucketRequestPayment":
		var doc struct {
			Payer string `xml:"Payer"`
		}
		if xml.Unmarshal(body, &doc) != nil || doc.Payer != "Requester" && doc.Payer != "BucketOwner" {
			fail(malformed)
			return
		}
		update(http.StatusOK, func(nb *bucketInfo) { nb.requesterPays = doc.Payer == "Requester" })
	case "s3:GetBucketRequestPayment":
		payer := "BucketOwner"
		if b.requesterPays {
			payer = "Requester"
		}
		s.stats.add(c.Op, outcomeOK)
		writeS3XML(w, `<RequestPaymentConfiguration xmlns="`+s3NS+`"><Payer>`+payer+`</Payer></RequestPaymentConfiguration>`)
	case "s3:PutBucketEncryption":
		var doc struct {
			Rules []struct {
				Algorithm string `xml:"ApplyServerSideEncryptionByDefault>SSEAlgorithm"`
				KeyID     string `xml:"ApplyServerSideEncryptionByDefault>KMSMasterKeyID"`
			} `xml:"Rule"`
		}
		if xml.Unmarshal(body, &doc) != nil || len(doc.Rules) != 1 {
			fail(malformed)
			return
		}
		alg, keyID := doc.Rules[0].Algorithm, doc.Rules[0].KeyID
		switch alg {
		case "AES256":
			keyID = ""
		case "aws:kms":
			if keyID != "" {
				s.mu.RLock()
				key := s.lookupKeyLocked(keyID, p.Account, si.Region)
				s.mu.RUnlock()
				if key == nil || key.region != b.region {
					fail(apiError{Status: http.StatusBadRequest, Code: "KMS.NotFoundException", Message: "Invalid keyId " + keyID})
					return
				}
				keyID = key.arn
			}
		default:
			fail(malformed)
			return
		}
		update(http.StatusOK, func(nb *bucketInfo) { nb.sseAlgorithm, nb.sseKeyARN = alg, keyID })
	case "s3:GetBucketEncryption":
		alg := b.sseAlgorithm
		if alg == "" {
			alg = "AES256" // every bucket encrypts by default since 2023
		}
		var key string
		if b.sseKeyARN != "" {
			key = "<KMSMasterKeyID>" + xmlEscape(b.sseKeyARN) + "</KMSMasterKeyID>"
		}
		s.stats.add(c.Op, outcomeOK)
		writeS3XML(w, `<ServerSideEncryptionConfiguration xmlns="`+s3NS+`"><Rule><ApplyServerSideEncryptionByDefault><SSEAlgorithm>`+
			alg+`</SSEAlgorithm>`+key+`</ApplyServerSideEncryptionByDefault><BucketKeyEnabled>false</BucketKeyEnabled></Rule></ServerSideEncryptionConfiguration>`)
	case "s3:DeleteBucketEncryption":
		update(http.StatusNoContent, func(nb *bucketInfo) { nb.sseAlgorithm, nb.sseKeyARN = "", "" })
	}
}

// isBucketSetting reports whether the gate answers op itself.
func isBucketSetting(op string) bool {
	switch op {
	case "s3:PutBucketOwnershipControls", "s3:GetBucketOwnershipControls", "s3:DeleteBucketOwnershipControls",
		"s3:PutBucketRequestPayment", "s3:GetBucketRequestPayment",
		"s3:PutBucketEncryption", "s3:GetBucketEncryption", "s3:DeleteBucketEncryption":
		return true
	}
	return false
}

// applySSE resolves the encryption of an object write (the request's
// x-amz-server-side-encryption headers, else the bucket's default), checks
// that the caller may use the KMS key (kms:GenerateDataKey, as S3 asks KMS
// on the caller's behalf:
// https://docs.aws.amazon.com/AmazonS3/latest/userguide/UsingKMSEncryption.html#require-sse-kms),
// and rewrites the headers kumo stores to the key's ARN, which is what S3
// answers on reads.
func (s *Stack) applySSE(r *http.Request, p iampolicy.Principal, b *bucketInfo) *apiError {
	alg := r.Header.Get("X-Amz-Server-Side-Encryption")
	keyID := r.Header.Get("X-Amz-Server-Side-Encryption-Aws-Kms-Key-Id")
	if alg == "" {
		alg, keyID = b.sseAlgorithm, b.sseKeyARN
	}
	if alg != "aws:kms" {
		if keyID != "" && alg != "" {
			return &apiError{Status: http.StatusBadRequest, Code: "InvalidArgument",
				Message: "Server Side Encryption with AWS KMS managed key requires HTTP header x-amz-server-side-encryption : aws:kms"}
		}
		return nil
	}
	r.Header.Set("X-Amz-Server-Side-Encryption", "aws:kms")
	if keyID == "" {
		// The AWS managed key aws/s3 serves principals of the bucket's
		// own account only.
		if p.Account != b.owner {
			e := s3Denied()
			return &e
		}
		r.Header.Del("X-Amz-Server-Side-Encryption-Aws-Kms-Key-Id")
		return nil
	}
	s.mu.RLock()
	key := s.lookupKeyLocked(keyID, p.Account, b.region)
	var allowed bool
	var why string
	if key != nil {
		allowed, why = s.kmsDecision(p, "kms:GenerateDataKey", key, kmsContext(p, "s3."+b.region+".amazonaws.com"))
	}
	s.mu.RUnlock()
	if key == nil || key.region != b.region {
		return &apiError{Status: http.StatusBadRequest, Code: "KMS.NotFoundException", Message: "Invalid keyId " + keyID}
	}
	if !allowed {
		return &apiError{Status: http.StatusForbidden, Code: "AccessDenied",
			Message: "User: " + p.ARN + " is not authorized to perform: kms:GenerateDataKey on resource: " + key.arn + " " + why}
	}
	r.Header.Set("X-Amz-Server-Side-Encryption-Aws-Kms-Key-Id", key.arn)
	return nil
}

// kmsReadCheck returns the refusal S3 gives a read of an SSE-KMS object
// whose key the caller may not use for kms:Decrypt (nil when allowed).
// S3 decrypts on the caller's behalf and relays KMS's refusal as a 403
// (https://repost.aws/knowledge-center/decrypt-kms-encrypted-objects-s3).
func (s *Stack) kmsReadCheck(p iampolicy.Principal, enc objectSSE, b *bucketInfo) *apiError {
	if enc.alg != "aws:kms" {
		return nil
	}
	keyARN := enc.keyARN
	if keyARN == "" {
		if p.Account == b.owner {
			return nil
		}
		return &apiError{Status: http.StatusForbidden, Code: "AccessDenied",
			Message: "User: " + p.ARN + " is not authorized to perform: kms:Decrypt on the AWS managed key aws/s3 of account " + b.owner +
				": objects encrypted with it cannot be read from another account"}
	}
	s.mu.RLock()
	key := s.kmsKeys[keyARN]
	var allowed bool
	var why string
	if key != nil {
		allowed, why = s.kmsDecision(p, "kms:Decrypt", key, kmsContext(p, "s3."+b.region+".amazonaws.com"))
	}
	s.mu.RUnlock()
	if key == nil {
		why = "because the key does not exist"
	}
	if allowed {
		return nil
	}
	return &apiError{Status: http.StatusForbidden, Code: "AccessDenied",
		Message: "User: " + p.ARN + " is not authorized to perform: kms:Decrypt on resource: " + keyARN + " " + why}
}

// replaceWithError swaps a proxied answer for an S3 error.
func replaceWithError(resp *http.Response, e apiError) {
	_ = resp.Body.Close()
	id := requestID()
	body := `<?xml version="1.0" encoding="UTF-8"?>` + "\n<Error><Code>" + xmlEscape(e.Code) + "</Code><Message>" + xmlEscape(e.Message) +
		"</Message><RequestId>" + id + "</RequestId><HostId>" + id + "</HostId></Error>"
	if resp.Request.Method == http.MethodHead {
		body = ""
	}
	resp.StatusCode = e.Status
	resp.Status = strconv.Itoa(e.Status) + " " + http.StatusText(e.Status)
	resp.Header = http.Header{}
	resp.Header.Set("Content-Type", "application/xml")
	resp.Header.Set("x-amz-request-id", id)
	resp.Body = io.NopCloser(strings.NewReader(body))
	resp.ContentLength = int64(len(body))
	resp.Header.Set("Content-Length", strconv.Itoa(len(body)))
}

// serveListBuckets lists the caller's own buckets, with its canonical user
// ID as Owner (https://docs.aws.amazon.com/AmazonS3/latest/API/API_ListBuckets.html).
func (s *Stack) serveListBuckets(w http.ResponseWriter, p iampolicy.Principal) {
	type entry struct {
		name    string
		region  string
		created time.Time
	}
	var list []entry
	s.mu.RLock()
	for name, b := range s.buckets {
		if b.owner == p.Account {
			list = append(list, entry{name, b.region, b.created})
		}
	}
	s.mu.RUnlock()
	sort.Slice(list, func(i, j int) bool { return list[i].name < list[j].name })
	var bs strings.Builder
	for _, e := range list {
		bs.WriteString("<Bucket><Name>" + xmlEscape(e.name) + "</Name><CreationDate>" + e.created.UTC().Format("2006-01-02T15:04:05.000Z") +
			"</CreationDate><BucketRegion>" + e.region + "</BucketRegion></Bucket>")
	}
	s.stats.add("s3:ListBuckets", outcomeOK)
	writeS3XML(w, `<ListAllMyBucketsResult xmlns="`+s3NS+`"><Owner><ID>`+CanonicalUserID(p.Account)+`</ID></Owner><Buckets>`+
		bs.String()+`</Buckets></ListAllMyBucketsResult>`)
}

// SetBucketEncryption sets a bucket's default encryption to SSE-KMS with
// keyARN ("" removes it), as PutBucketEncryption does; objects put
// afterwards are encrypted with the key.
func (s *Stack) SetBucketEncryption(bucket, keyARN string) error {
	return s.updateBucket(bucket, "set encryption", func(b *bucketInfo) error {
		if keyARN != "" && s.kmsKeys[keyARN] == nil {
			return fmt.Errorf("no KMS key %s", keyARN)
		}
		b.sseAlgorithm, b.sseKeyARN = "", ""
		if keyARN != "" {
			b.sseAlgorithm, b.sseKeyARN = "aws:kms", keyARN
		}
		return nil
	})
}

// SetRequesterPays turns Requester Pays on or off for a bucket, as
// PutBucketRequestPayment does.
func (s *Stack) SetRequesterPays(bucket string, on bool) error {
	return s.updateBucket(bucket, "set request payment", func(b *bucketInfo) error {
		b.requesterPays = on
		return nil
	})
}
