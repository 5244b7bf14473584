package render

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/ferryworks/ferry/credcache"
	"github.com/ferryworks/ferry/fetcher"
	"github.com/ferryworks/ferry/queue"
)

func has(t *testing.T, what, got string, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(got, w) {
			t.Errorf("%s lacks %q:\n%s", what, w, got)
		}
	}
}

func TestCheckReport(t *testing.T) {
	t.Parallel()
	var b strings.Builder
	CheckReport(&b, fetcher.CheckReport{URI: "s3://a/k", Mode: fetcher.ModeDelegated, AssumeRole: "error", OK: false,
		Error: &fetcher.Error{Kind: "access_denied", Stage: "assume_role", Code: "AccessDenied", Message: "no", Hint: "fix the trust policy"}, Note: "wait a minute"})
	has(t, "a refusal", b.String(), "s3://a/k\n  NOT READABLE\n", "mode:         delegated", "assume role:  error",
		"error:        access_denied at assume_role: AccessDenied no", "hint:         fix the trust policy", "note:         wait a minute")
	b.Reset()
	CheckReport(&b, fetcher.CheckReport{URI: "s3://a/k", OK: true, Region: "eu-west-1", Object: &fetcher.ObjectInfo{Size: 5, ContentType: "text/plain"}})
	has(t, "a readable object", b.String(), "  READABLE\n", "region:       eu-west-1", "object:       5 bytes, text/plain")
	if strings.Contains(b.String(), "hint") {
		t.Errorf("a readable object has a hint:\n%s", b.String())
	}
}

func TestVerifyReport(t *testing.T) {
	t.Parallel()
	var b strings.Builder
	VerifyReport(&b, fetcher.VerifyReport{CustomerID: "acme", Mode: fetcher.ModeDelegated, AccountID: "222233334444", Attempts: 3,
		Checks: []fetcher.VerifyCheck{
			{Check: "assume_role", Target: "arn:aws:iam::222233334444:role/r", OK: true},
			{Check: "head_bucket", Target: "acme-data", Error: &fetcher.Error{Kind: fetcher.KindAccessDenied, Code: "AccessDenied",
				Message: "no", Hint: "grant s3:ListBucket"}, Note: "the role is new"},
			{Check: "get_object", Target: "s3://acme-data/k", Error: &fetcher.Error{Kind: fetcher.KindNotFound}},
		}})
	want := "acme: delegated, account 222233334444, 3 attempts\n" +
		"assume_role  arn:aws:iam::222233334444:role/r  ok\n" +
		"head_bucket  acme-data                         access_denied: AccessDenied: no; hint: grant s3:ListBucket; note: the role is new\n" +
		"get_object   s3://acme-data/k                  not_found\n"
	if b.String() != want {
		t.Errorf("a verification:\n%s\nwant\n%s", b.String(), want)
	}
	b.Reset()
	VerifyReport(&b, fetcher.VerifyReport{CustomerID: "acme", Mode: fetcher.ModeCrossAccount, Attempts: 1,
		Checks: []fetcher.VerifyCheck{{Check: "head_bucket", Target: "b", OK: true}}})
	if want := "acme: cross_account\nhead_bucket  b  ok\n"; b.String() != want {
		t.Errorf("one attempt, no account:\n%s\nwant\n%s", b.String(), want)
	}
	b.Reset()
	VerifyReport(&b, fetcher.VerifyReport{CustomerID: "acme", Error: &fetcher.Error{Message: "no integration", Hint: "enable it"}})
	if want := "acme: cannot verify: no integration\n  hint: enable it\n"; b.String() != want {
		t.Errorf("a verification that could not run:\n%s\nwant\n%s", b.String(), want)
	}
}

func TestEvent(t *testing.T) {
	t.Parallel()
	var b strings.Builder
	Event(&b, queue.Event{Type: "task.access_denied", CustomerID: "acme", TaskID: "t-1", OccurredAt: time.Now(), Reason: "access_denied",
		Attachments: []queue.AttachmentResult{
			{Source: "s3://a/1", Status: "copied", Mode: "delegated", Stored: "s3://in/1", Size: 7},
			{Source: "s3://a/2", Status: "access_denied", Mode: "delegated", Error: &queue.AttachmentError{Stage: "head_object", Code: "AccessDenied", Hint: "grant s3:GetObject"}},
		}})
	has(t, "an event", b.String(), "task.access_denied", "acme", "t-1", "reason=access_denied", "s3://a/1 -> s3://in/1 (7 bytes)",
		"s3://a/2  [head_object AccessDenied]", "hint: grant s3:GetObject")
}

func TestSendResult(t *testing.T) {
	t.Parallel()
	var b strings.Builder
	_ = SendResult(&b, queue.SendResult{TaskID: "t-1", MessageID: "m-1"})
	_ = SendResult(&b, queue.SendResult{TaskID: "t-2", Err: errors.New("too many attachments")})
	has(t, "send results", b.String(), "t-1                      enqueued  m-1\n", "t-2                      error     too many attachments\n")
}

func TestIntegrationsAndSetup(t *testing.T) {
	t.Parallel()
	updated := time.Date(2026, 3, 4, 5, 6, 0, 0, time.UTC)
	in := credcache.Integration{CustomerID: "acme", AccountID: "123456789012", ExternalID: "ext-secret-1234567890", RoleName: "ScaleAI-Integration", Enabled: true, UpdatedAt: updated}
	plain := credcache.Integration{CustomerID: "globex", UpdatedAt: updated}
	var b strings.Builder
	Integrations(&b, []credcache.Integration{in, plain}, nil, false)
	has(t, "list", b.String(), "CUSTOMER", "acme", "123456789012", "delegated", "ScaleAI-Integration", "2026-03-04 05:06", "globex", "cross_account")
	if strings.Contains(b.String(), in.ExternalID) {
		t.Errorf("list shows the external ID:\n%s", b.String())
	}
	b.Reset()
	Integrations(&b, []credcache.Integration{in}, nil, true)
	has(t, "show", b.String(), "EXTERNAL ID", in.ExternalID)

	b.Reset()
	if err := Setup(&b, in, "111111111111", credcache.TrustPolicy("111111111111", in.ExternalID), credcache.RolePolicy("YOUR_BUCKET_NAME"), "YOUR_BUCKET_NAME"); err != nil {
		t.Fatal(err)
	}
	has(t, "setup", b.String(), "Delegated access enabled for acme", "account ID 111111111111", "yes, "+in.ExternalID, in.RoleARN(),
		"YOUR_BUCKET_NAME", "ferry check-access --customer acme s3://YOUR_BUCKET_NAME/SOME_KEY")
	// The policies are printed whole and indented, so they paste as JSON.
	for _, doc := range []string{credcache.TrustPolicy("111111111111", in.ExternalID), credcache.RolePolicy("YOUR_BUCKET_NAME")} {
		if !json.Valid([]byte(doc)) {
			t.Fatalf("policy is not JSON: %s", doc)
		}
		has(t, "setup", b.String(), Indent(doc, "      "))
	}
	if got := Indent("a\nb", "  "); got != "  a\n  b" {
		t.Errorf("Indent = %q", got)
	}
}

func TestTrustPolicyDuringARotation(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 3, 4, 0, 0, 0, 0, time.UTC)
	in := credcache.Integration{CustomerID: "acme", AccountID: "123456789012", ExternalID: "new-id-1234567890123", RoleName: "R", Enabled: true,
		PreviousExternalID: "old-id-1234567890123", PreviousExternalIDExpires: now.Add(time.Hour)}
	var b strings.Builder
	TrustPolicy(&b, in, "", now)
	has(t, "trust policy", b.String(), "FLEET_ACCOUNT_ID", "new-id-1234567890123", "old-id-1234567890123", "rotation in progress", "rotate-external-id acme --finish")
	b.Reset()
	TrustPolicy(&b, credcache.Integration{CustomerID: "x"}, "1", now)
	if b.Len() != 0 {
		t.Errorf("no account, no trust policy: %q", b.String())
	}
	b.Reset()
	Verification(&b, credcache.Integration{CustomerID: "acme", AccountID: "1", VerificationToken: "tok",
		VerifiedBuckets: []credcache.VerifiedBucket{{Bucket: "b1", AccountID: "1"}, {Bucket: "b2", AccountID: "2"}}})
	has(t, "verification", b.String(), "verification token: tok", credcache.VerificationKey("acme"), "b1: verified (account 1", "b2: verified under a former account")
}
