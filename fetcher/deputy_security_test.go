package fetcher

import (
	"context"
	"errors"
	"strings"
	"testing"
	"unicode"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// Confused deputy: the fleet's own credentials can read every bucket that
// grants the fleet, so a task naming someone else's bucket must be refused
// whenever the customer registered an account (ExpectedBucketOwner), under
// require-owner when they did not, and always under deny. A delegated
// customer never falls back to the fleet's credentials. The victim bucket
// here grants the fleet, so only those rules stand between the attacker and
// the data.
func TestConfusedDeputy(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	ctx := context.Background()
	victim := e.newCustomer(t, "deputy-victim", "", true)
	attacker := e.newCustomer(t, "deputy-attacker", "", true)
	deleg := e.newCustomer(t, "deputy-deleg", "", false)
	body := randBytes(2048)
	for _, b := range []string{victim.bucket, attacker.bucket, deleg.bucket} {
		e.put(t, b, "secret/report.bin", body, "application/octet-stream")
	}
	if _, err := e.reg.RegisterAccount(ctx, "attacker", attacker.acct.ID); err != nil {
		t.Fatal(err)
	}
	e.enable(t, "deleg", deleg, deleg.bucket, "")
	allow := e.copier(t, nil)
	requireOwner := e.copier(t, func(o *Options) { o.CrossAccount = PolicyRequireOwner })
	deny := e.copier(t, func(o *Options) { o.CrossAccount = PolicyDeny })
	victimURIs := []string{
		"s3://deputy-victim/secret/report.bin",
		"https://deputy-victim.s3.amazonaws.com/secret/report.bin",
		"https://s3.us-east-1.amazonaws.com/deputy-victim/secret/report.bin",
		"https://deputy-victim.s3.us-east-1.amazonaws.com/secret/report.bin",
	}
	type tc struct {
		name     string
		c        *Copier
		customer string
		uri      string
		ok       bool
		mode     Mode
		stage    Stage
	}
	var tests []tc
	for _, u := range victimURIs {
		tests = append(tests,
			tc{"registered account, other owner's bucket (allow)", allow, "attacker", u, false, ModeCrossAccount, StageGetObject},
			tc{"registered account, other owner's bucket (require-owner)", requireOwner, "attacker", u, false, ModeCrossAccount, StageGetObject},
			tc{"delegated customer never uses the fleet's credentials", allow, "deleg", u, false, ModeDelegated, StageGetObject},
			tc{"no account under require-owner", requireOwner, "anon", u, false, ModeCrossAccount, StagePolicy},
			tc{"deny refuses cross-account", deny, "attacker", u, false, ModeCrossAccount, StagePolicy},
			tc{"deny refuses unregistered", deny, "anon", u, false, ModeCrossAccount, StagePolicy},
		)
	}
	tests = append(tests,
		tc{"registered account, own bucket", allow, "attacker", "s3://deputy-attacker/secret/report.bin", true, ModeCrossAccount, ""},
		tc{"registered account, own bucket (require-owner)", requireOwner, "attacker", "s3://deputy-attacker/secret/report.bin", true, ModeCrossAccount, ""},
		tc{"delegated, own bucket (deny)", deny, "deleg", "s3://deputy-deleg/secret/report.bin", true, ModeDelegated, ""},
		// The guide's own behaviour, kept under allow: an unregistered
		// customer reads whatever grants the fleet.
		tc{"unregistered under allow", allow, "anon", "s3://deputy-victim/secret/report.bin", true, ModeCrossAccount, ""},
	)
	for i, tt := range tests {
		res, err := tt.c.Copy(ctx, Request{CustomerID: tt.customer, TaskID: "t-deputy", Index: i, URI: tt.uri})
		if tt.ok {
			if err != nil || res.Mode != tt.mode || res.SHA256 != sum(body) {
				t.Errorf("%s %s: %+v, %v; want a copy in mode %s", tt.name, tt.uri, res, err, tt.mode)
			}
			continue
		}
		var fe *Error
		if !errors.As(err, &fe) || fe.Kind != KindAccessDenied || fe.Mode != tt.mode || fe.Stage != tt.stage || fe.Hint == "" {
			t.Errorf("%s %s: err %v (%+v), want access_denied at %s in mode %s with a hint", tt.name, tt.uri, err, fe, tt.stage, tt.mode)
		}
	}
}

// No task message can make ferry write outside
// FERRY_BUCKET/<prefix>/<customer>/<task>/: not with dot segments, absolute
// paths, backslashes, percent-encoding or control characters in attachment
// names or in source keys.
func TestStoredKeysStayInsideTaskPrefix(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	ctx := context.Background()
	src := e.newCustomer(t, "contain-src", "", true)
	if _, err := e.reg.RegisterAccount(ctx, "contain", src.acct.ID); err != nil {
		t.Fatal(err)
	}
	keys := []string{
		"a/../../escape.bin", "/abs/key.bin", "dir/..", "dir/.", "..", "%2e%2e/x.bin", `..\..\win.bin`,
		"ctl\x01\x1f\x7f.bin", "crlf\r\nX-Amz-Meta: y.bin", "tab\tname.bin", "unicode/ｆｕｌｌ／ｗｉｄｔｈ.bin", "trailing/",
	}
	var stored []string
	for _, k := range keys {
		if err := e.stack.PutObject(ctx, src.bucket, k, strings.NewReader("x"), 1, ""); err != nil {
			t.Logf("source key %q cannot be stored in the emulator (%v); still submitted", k, err)
		}
	}
	names := []string{"", "../../../etc/passwd", "/etc/passwd", `C:\Windows\win.ini`, "..", ".", "a\x00b", "\x1b[31mred",
		"line\nbreak", "%2e%2e%2f%2e%2e%2fx", "ok.png", strings.Repeat("../", 100) + "deep"}
	c := e.copier(t, func(o *Options) { o.KeyPrefix = "copies/" })
	i := 0
	for _, k := range keys {
		for _, name := range names {
			i++
			res, err := c.Copy(ctx, Request{CustomerID: "contain", TaskID: "t-contain", Index: i, URI: "s3://contain-src/" + k, Name: name})
			if err != nil {
				var fe *Error
				if !errors.As(err, &fe) || fe.Kind == KindTransient {
					t.Errorf("key %q name %q: %v", k, name, err)
				}
				continue
			}
			stored = append(stored, res.Stored)
		}
	}
	if len(stored) == 0 {
		t.Fatal("nothing was copied: the test would prove nothing")
	}
	want := "s3://" + e.bucket + "/copies/contain/t-contain/"
	for _, s := range stored {
		checkContained(t, s, want)
	}
	// And what the bucket really holds, not only what the results claim.
	out, err := e.s3.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String(e.bucket)})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Contents) == 0 {
		t.Fatal("internal bucket is empty")
	}
	for _, o := range out.Contents {
		checkContained(t, "s3://"+e.bucket+"/"+aws.ToString(o.Key), want)
	}
}

func checkContained(t *testing.T, stored, want string) {
	t.Helper()
	rest, ok := strings.CutPrefix(stored, want)
	if !ok {
		t.Errorf("stored %q outside %q", stored, want)
		return
	}
	if strings.ContainsAny(rest, `/\`) || rest == "" {
		t.Errorf("stored %q: base name %q has separators", stored, rest)
	}
	for _, seg := range strings.Split(strings.TrimPrefix(stored, "s3://"), "/") {
		if seg == "" || seg == "." || seg == ".." {
			t.Errorf("stored %q has segment %q", stored, seg)
		}
	}
	if strings.IndexFunc(stored, unicode.IsControl) >= 0 {
		t.Errorf("stored %q has a control character", stored)
	}
}
