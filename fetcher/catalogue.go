package fetcher

import (
	"strings"

	"github.com/ferryworks/ferry/credcache"
)

// The error catalogue: every (stage, code) an attachment can fail with in a
// terminal event, what it means and the hint the customer gets. The
// classification code picks a hint from this table (hintID.render); nothing
// else in the package writes a hint, so docs/errors.md, generated from
// Catalogue, is what customers are told.

// hintID names one row of the catalogue.
type hintID int

// The rows of the catalogue, in the order docs/errors.md lists them.
const (
	hInvalidURI hintID = iota
	hInsecureURL
	hCrossAccountDisabled
	hAccountNotRegistered
	hBucketNotVerified
	hAssumeNoRole
	hAssumeExternalID
	hAssumeDenied
	hNoSuchBucket
	hNoSuchKey
	hKMSDelegated
	hKMSCrossAccount
	hAllAccessDisabled
	hDeniedPinned
	hDeniedDelegated
	hDeniedCrossAccount
	hRequesterPays
	hS3Invalid
	hTooLarge
	hBlockedAddress
	hTooManyRedirects
	hInsecureRedirect
	hTLSCertificate
	hTLSHandshake
	hHTTPNotFound
	hHTTPDenied
	hHTTPInvalid
	numHints
)

// CatalogueEntry is one way an attachment fails for good. Hint holds
// placeholders in braces ({bucket}, {role}, {account}, {owner}, {kms_key},
// {limit}, {customer}, {verification_key}) that a real event fills in.
type CatalogueEntry struct {
	Stages []Stage
	// Codes are the error codes reported; "4xx" stands for any other
	// client-error code S3 or the server gives.
	Codes []string
	Kind  Kind
	Modes []Mode
	// When says what selects this row when several share a (stage, code).
	When    string
	Meaning string
	Hint    string
}

// s3Stages are the stages of a source request to S3 that a copy reports.
var s3Stages = []Stage{StageHeadObject, StageGetObject}

// deniedCodes are the S3 error codes that mean the request was refused for
// the caller's grants (and "Forbidden", the status text of a HEAD's 403,
// which has no body to carry a code).
var deniedCodes = []string{"AccessDenied", "Forbidden", "AllAccessDisabled", "InvalidAccessKeyId", "SignatureDoesNotMatch",
	"AccountProblem", "InvalidObjectState", "UnauthorizedAccess"}

var (
	s3Modes      = []Mode{ModeDelegated, ModeCrossAccount}
	crossOnly    = []Mode{ModeCrossAccount}
	delegateOnly = []Mode{ModeDelegated}
	httpsOnly    = []Mode{ModeHTTPS}
)

var catalogue = [numHints]CatalogueEntry{
	hInvalidURI: {Stages: []Stage{StageParse}, Codes: []string{"InvalidURI"}, Kind: KindInvalid,
		Meaning: "the attachment URI cannot be parsed, or names something ferry does not fetch (another scheme, a malformed bucket name or URL); a task naming one is usually refused as a whole first (`task.failed` with reason `invalid_message`)",
		Hint:    "attachments are s3://bucket/key, an S3 https URL, or an https URL"},
	hInsecureURL: {Stages: []Stage{StageParse}, Codes: []string{"InsecureURL"}, Kind: KindInvalid, Modes: httpsOnly,
		Meaning: "a plain http URL: customers' data must travel encrypted",
		Hint:    "give an https URL (or an s3:// URI)"},
	hCrossAccountDisabled: {Stages: []Stage{StagePolicy}, Codes: []string{"CrossAccountDisabled"}, Kind: KindAccessDenied, Modes: crossOnly,
		When:    "`FERRY_CROSS_ACCOUNT=deny`",
		Meaning: "this fleet reads customer buckets only with delegated access; no AWS call was made",
		Hint:    "enable delegated access: create the role " + credcache.DefaultRoleName + " as the integration guide describes and register your AWS account ID"},
	hAccountNotRegistered: {Stages: []Stage{StagePolicy}, Codes: []string{"AccountNotRegistered"}, Kind: KindAccessDenied, Modes: crossOnly,
		When:    "`FERRY_CROSS_ACCOUNT=require-owner` or `require-verified`",
		Meaning: "cross-account access requires a registered AWS account ID, and the customer has none; no AWS call was made",
		Hint:    "register the AWS account ID that owns your bucket with ferry (or enable delegated access)"},
	hBucketNotVerified: {Stages: []Stage{StagePolicy}, Codes: []string{"BucketNotVerified"}, Kind: KindAccessDenied, Modes: crossOnly,
		When:    "`FERRY_CROSS_ACCOUNT=require-verified`",
		Meaning: "the bucket is not verified for this customer under its registered account (`ferry integration verify-bucket`); no AWS call was made",
		Hint: "prove that your registered AWS account owns the bucket {bucket}: put an object at s3://{bucket}/{verification_key} whose content is your verification token (ferry support shows it with `ferry integration show {customer}`), " +
			"let the fleet's account read it (s3:GetObject), and have ferry support run `ferry integration verify-bucket {customer} {bucket}`; or enable delegated access"},
	hAssumeNoRole: {Stages: []Stage{StageAssumeRole}, Codes: []string{"NoSuchEntity", "AccessDenied"}, Kind: KindAccessDenied, Modes: delegateOnly,
		When:    "STS says the role does not exist",
		Meaning: "STS refused to issue credentials for the customer's role: there is no such role",
		Hint:    "create the role {role} in account {account} (see the integration guide), or correct the registered account ID"},
	hAssumeExternalID: {Stages: []Stage{StageAssumeRole}, Codes: []string{"AccessDenied"}, Kind: KindAccessDenied, Modes: delegateOnly,
		When:    "STS's message names the external ID",
		Meaning: "the role's trust policy requires another external ID than the one ferry presents",
		Hint:    "the role's trust policy does not accept this external ID: set the sts:ExternalId condition to the external ID ferry gave you"},
	hAssumeDenied: {Stages: []Stage{StageAssumeRole}, Codes: []string{"AccessDenied", "4xx"}, Kind: KindAccessDenied, Modes: delegateOnly,
		When:    "any other refusal by STS",
		Meaning: "STS refused AssumeRole; it says the same for a wrong external ID, a role that does not trust the fleet and a missing role",
		Hint: "the role's trust policy does not accept this external ID: set the sts:ExternalId condition to the external ID ferry gave you; " +
			"also check that the role {role} exists in account {account} and trusts the fleet's account"},
	hNoSuchBucket: {Stages: s3Stages, Codes: []string{"NoSuchBucket"}, Kind: KindNotFound, Modes: s3Modes,
		Meaning: "the bucket does not exist",
		Hint:    "the bucket {bucket} does not exist: check the bucket name in the attachment URI"},
	hNoSuchKey: {Stages: s3Stages, Codes: []string{"NoSuchKey", "NotFound"}, Kind: KindNotFound, Modes: s3Modes,
		Meaning: "the object does not exist (S3 says so only to a caller that may list the bucket; otherwise it answers 403)",
		Hint:    "the object does not exist: check the key in the attachment URI (keys are case-sensitive and taken literally)"},
	hKMSDelegated: {Stages: s3Stages, Codes: []string{"AccessDenied"}, Kind: KindAccessDenied, Modes: delegateOnly,
		When:    "S3's message names kms:Decrypt",
		Meaning: "the object is encrypted with SSE-KMS and the key policy or the role's policy does not let the role decrypt",
		Hint:    "the object is encrypted with the KMS key {kms_key}, which the role {role} may not use: allow kms:Decrypt for arn:aws:iam::{account}:role/{role} in the key policy of {kms_key}, and in the role's permission policy (see the integration guide)"},
	hKMSCrossAccount: {Stages: s3Stages, Codes: []string{"AccessDenied"}, Kind: KindAccessDenied, Modes: crossOnly,
		When:    "S3's message names kms:Decrypt",
		Meaning: "the object is encrypted with SSE-KMS and the key policy does not let the fleet's account decrypt",
		Hint:    "the object is encrypted with the KMS key {kms_key}, which the fleet's account may not use: allow kms:Decrypt for the fleet's account in the key policy of {kms_key} (see the integration guide), or enable delegated access"},
	hAllAccessDisabled: {Stages: s3Stages, Codes: []string{"AllAccessDisabled"}, Kind: KindAccessDenied, Modes: s3Modes,
		Meaning: "AWS disabled all access to the bucket's account",
		Hint:    "all access to this object has been disabled by AWS for the bucket's account"},
	hDeniedPinned: {Stages: s3Stages, Codes: deniedCodes, Kind: KindAccessDenied, Modes: crossOnly,
		When:    "the customer registered an AWS account (requests carry ExpectedBucketOwner)",
		Meaning: "S3 refused: the bucket belongs to another account than the registered one, or the bucket grants the fleet nothing (S3 says 403 for both)",
		Hint:    "either this bucket does not belong to the AWS account registered for this customer ({owner}), or that account has not granted the fleet's account s3:GetObject on arn:aws:s3:::{bucket}/*: add the fleet account to the bucket policy (see the integration guide) or enable delegated access"},
	hDeniedDelegated: {Stages: s3Stages, Codes: deniedCodes, Kind: KindAccessDenied, Modes: delegateOnly,
		Meaning: "the customer's role may not read the object (its permission policy, the bucket policy, or a missing key the role may not list)",
		Hint:    "grant s3:GetObject on arn:aws:s3:::{bucket}/* to the role {role} (and check that the bucket belongs to account {account} and its bucket policy or KMS key policy does not deny the role)"},
	hDeniedCrossAccount: {Stages: s3Stages, Codes: deniedCodes, Kind: KindAccessDenied, Modes: crossOnly,
		When:    "no registered account",
		Meaning: "neither the bucket policy nor an object ACL lets the fleet's account read the object (or the key is missing and the fleet may not list the bucket)",
		// Object ACLs grant nothing once the bucket's Object Ownership is
		// BucketOwnerEnforced, the default for new buckets
		// (https://docs.aws.amazon.com/AmazonS3/latest/userguide/about-object-ownership.html).
		Hint: "add the fleet account to the bucket policy (see the integration guide), granting s3:GetObject on arn:aws:s3:::{bucket}/*, or enable delegated access; an object ACL granting READ to the fleet's canonical user ID works only while the bucket's Object Ownership is not BucketOwnerEnforced: with BucketOwnerEnforced use the bucket policy"},
	hRequesterPays: {Stages: s3Stages, Codes: deniedCodes, Kind: KindAccessDenied, Modes: s3Modes,
		When:    "the read did not acknowledge Requester Pays (`FERRY_REQUESTER_PAYS`): appended to the three hints above",
		Meaning: "a Requester Pays bucket of another account refuses reads that do not say the requester pays",
		Hint:    "if the bucket has Requester Pays enabled, turn it off: this fleet does not pay for these reads"},
	hS3Invalid: {Stages: s3Stages, Codes: []string{"4xx"}, Kind: KindInvalid, Modes: s3Modes,
		Meaning: "S3 refused the request as malformed for this object (the message says why)"},
	hTooLarge: {Stages: []Stage{StageHeadObject, StageGetObject, StageHTTPGet}, Codes: []string{"TooLarge"}, Kind: KindTooLarge,
		Meaning: "the object is larger than `FERRY_MAX_OBJECT_BYTES`",
		Hint:    "ferry copies objects up to {limit} bytes; split the attachment"},
	hBlockedAddress: {Stages: []Stage{StageHTTPGet}, Codes: []string{"BlockedAddress"}, Kind: KindInvalid, Modes: httpsOnly,
		Meaning: "the URL's host resolves to a private, loopback or otherwise non-public address",
		Hint:    "ferry only fetches https URLs on public internet addresses"},
	hTooManyRedirects: {Stages: []Stage{StageHTTPGet}, Codes: []string{"TooManyRedirects"}, Kind: KindInvalid, Modes: httpsOnly,
		Meaning: "the URL redirects more than 5 times",
		Hint:    "give the final URL of the object instead of one that redirects more than 5 times"},
	hInsecureRedirect: {Stages: []Stage{StageHTTPGet}, Codes: []string{"InsecureRedirect"}, Kind: KindInvalid, Modes: httpsOnly,
		Meaning: "the URL redirects to plain http",
		Hint:    "the URL redirects to plain http; ferry only follows redirects to https"},
	hTLSCertificate: {Stages: []Stage{StageHTTPGet}, Codes: []string{"TLSCertificateInvalid"}, Kind: KindInvalid, Modes: httpsOnly,
		Meaning: "the server's certificate failed verification",
		Hint:    "the server's TLS certificate failed verification (unknown authority, expired, or issued for another name): the URL's host must serve a certificate from a public CA valid for its name"},
	hTLSHandshake: {Stages: []Stage{StageHTTPGet}, Codes: []string{"TLSHandshakeFailed"}, Kind: KindInvalid, Modes: httpsOnly,
		Meaning: "the TLS handshake failed: the server does not speak TLS there, or refused ferry's TLS settings",
		Hint:    "the TLS handshake with the server failed (it does not speak TLS on that port, or refused ferry's TLS settings): give an https URL of a server that accepts standard TLS 1.2+ clients"},
	hHTTPNotFound: {Stages: []Stage{StageHTTPGet}, Codes: []string{"HTTP404", "HTTP410"}, Kind: KindNotFound, Modes: httpsOnly,
		Meaning: "the server says the URL does not exist (or no longer does)",
		Hint:    "the server says the URL does not exist; check it, and that it has not expired"},
	hHTTPDenied: {Stages: []Stage{StageHTTPGet}, Codes: []string{"HTTP401", "HTTP403"}, Kind: KindAccessDenied, Modes: httpsOnly,
		Meaning: "the server refused the download without credentials",
		Hint:    "the server refused the download: give a URL that is readable without logging in (a presigned URL that has not expired), or use an s3:// URI with delegated access"},
	hHTTPInvalid: {Stages: []Stage{StageHTTPGet}, Codes: []string{"HTTP4xx"}, Kind: KindInvalid, Modes: httpsOnly,
		Meaning: "any other 4xx answer from the server (408 and 429 are retried instead)"},
}

// Catalogue returns every row of the error catalogue, in order, with the
// placeholders of its hint in place.
func Catalogue() []CatalogueEntry {
	out := make([]CatalogueEntry, len(catalogue))
	copy(out[:], catalogue[:])
	return out
}

// hintVars fills a hint's placeholders.
type hintVars struct {
	bucket, role, account, owner, kmsKey, limit, customer string
}

// render is the row's hint with v's values in place.
func (id hintID) render(v hintVars) string {
	role := v.role
	if role == "" {
		role = credcache.DefaultRoleName
	}
	return strings.NewReplacer(
		"{bucket}", v.bucket, "{role}", role, "{account}", v.account, "{owner}", v.owner, "{kms_key}", v.kmsKey,
		"{limit}", v.limit, "{customer}", v.customer, "{verification_key}", credcache.VerificationKey(v.customer),
	).Replace(catalogue[id].Hint)
}

// code is the row's first code, for rows that set it themselves.
func (id hintID) code() string { return catalogue[id].Codes[0] }
