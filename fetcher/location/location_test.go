package location

import (
	"errors"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in      string
		want    Location // URL ignored
		wantErr string   // substring of the message; "" means success
	}{
		{in: "s3://acme-data/img/1.jpg", want: Location{Scheme: SchemeS3, Bucket: "acme-data", Key: "img/1.jpg", Style: "s3"}},
		// s3:// keys are literal, as in the AWS CLI.
		{in: "s3://acme-data/a b+c%20d", want: Location{Scheme: SchemeS3, Bucket: "acme-data", Key: "a b+c%20d", Style: "s3"}},
		{in: "s3://acme-data/dir/", want: Location{Scheme: SchemeS3, Bucket: "acme-data", Key: "dir/", Style: "s3"}},
		{in: "s3://acme-data/ünï cødé/ファイル.png", want: Location{Scheme: SchemeS3, Bucket: "acme-data", Key: "ünï cødé/ファイル.png", Style: "s3"}},
		{in: "s3://acme-data/a#b?c", want: Location{Scheme: SchemeS3, Bucket: "acme-data", Key: "a#b?c", Style: "s3"}},
		{in: "s3://acme-data//lead", want: Location{Scheme: SchemeS3, Bucket: "acme-data", Key: "/lead", Style: "s3"}},
		{in: "S3://acme-data/k", want: Location{Scheme: SchemeS3, Bucket: "acme-data", Key: "k", Style: "s3"}},
		{in: "s3://my.dotted.bucket/k", want: Location{Scheme: SchemeS3, Bucket: "my.dotted.bucket", Key: "k", Style: "s3"}},
		// https S3 forms: percent-decoded path, '+' literal, region from host.
		{in: "https://s3.amazonaws.com/acme-data/a%20b+c", want: Location{Scheme: SchemeS3, Bucket: "acme-data", Key: "a b+c", Style: "path"}},
		{in: "https://s3-us-west-2.amazonaws.com/acme-data/k%2Fx", want: Location{Scheme: SchemeS3, Bucket: "acme-data", Key: "k/x", Region: "us-west-2", Style: "path"}},
		{in: "https://s3.us-west-2.amazonaws.com/acme-data/k", want: Location{Scheme: SchemeS3, Bucket: "acme-data", Key: "k", Region: "us-west-2", Style: "path"}},
		{in: "https://s3.dualstack.eu-central-1.amazonaws.com/acme-data/k", want: Location{Scheme: SchemeS3, Bucket: "acme-data", Key: "k", Region: "eu-central-1", Style: "path"}},
		{in: "https://acme-data.s3.amazonaws.com/img/%E3%83%95.png", want: Location{Scheme: SchemeS3, Bucket: "acme-data", Key: "img/フ.png", Style: "virtual"}},
		{in: "https://acme-data.s3.us-west-2.amazonaws.com/k", want: Location{Scheme: SchemeS3, Bucket: "acme-data", Key: "k", Region: "us-west-2", Style: "virtual"}},
		{in: "https://acme-data.s3-us-west-2.amazonaws.com/k/", want: Location{Scheme: SchemeS3, Bucket: "acme-data", Key: "k/", Region: "us-west-2", Style: "virtual"}},
		{in: "https://my.s3.bucket.s3.eu-west-1.amazonaws.com/k", want: Location{Scheme: SchemeS3, Bucket: "my.s3.bucket", Key: "k", Region: "eu-west-1", Style: "virtual"}},
		{in: "https://acme-data.s3.dualstack.us-east-2.amazonaws.com/k", want: Location{Scheme: SchemeS3, Bucket: "acme-data", Key: "k", Region: "us-east-2", Style: "virtual"}},
		{in: "https://acme-data.s3-external-1.amazonaws.com/k", want: Location{Scheme: SchemeS3, Bucket: "acme-data", Key: "k", Region: "us-east-1", Style: "virtual"}},
		{in: "https://s3.amazonaws.com/acme-data/k?versionId=v1", want: Location{Scheme: SchemeS3, Bucket: "acme-data", Key: "k", Style: "path", VersionID: "v1"}},
		// Presigned S3 URLs are plain downloads.
		{in: "https://acme-data.s3.amazonaws.com/k?X-Amz-Signature=abc&X-Amz-Credential=x", want: Location{Scheme: SchemeHTTPS}},
		// Plain https and http.
		{in: "https://example.com/a.png", want: Location{Scheme: SchemeHTTPS}},
		{in: "http://example.com/a.png", want: Location{Scheme: SchemeHTTP}},
		{in: "https://example.amazonaws.com/a.png", want: Location{Scheme: SchemeHTTPS}},
		// Refused.
		{in: "", wantErr: "empty URI"},
		{in: "file:///etc/passwd", wantErr: "unsupported scheme"},
		{in: "ftp://example.com/x", wantErr: "unsupported scheme"},
		{in: "gs://bucket/key", wantErr: "unsupported scheme"},
		{in: "/just/a/path", wantErr: "no scheme"},
		{in: "s3://acme-data", wantErr: "no key"},
		{in: "s3://acme-data/", wantErr: "empty key"},
		{in: "s3:///key", wantErr: "empty bucket"},
		{in: "s3://ab/k", wantErr: "3 to 63"},
		{in: "s3://" + strings.Repeat("a", 64) + "/k", wantErr: "3 to 63"},
		{in: "s3://Acme-Data/k", wantErr: "lowercase"},
		{in: "s3://acme_data/k", wantErr: "lowercase"},
		{in: "s3://-acme/k", wantErr: "start and end"},
		{in: "s3://acme-/k", wantErr: "start and end"},
		{in: "s3://ac..me/k", wantErr: "adjacent dots"},
		{in: "s3://192.168.1.1/k", wantErr: "IP address"},
		{in: "s3://xn--acme/k", wantErr: "reserved prefix"},
		{in: "s3://acme-s3alias/k", wantErr: "reserved suffix"},
		{in: "s3://acme/" + strings.Repeat("k", 1025), wantErr: "longer than"},
		{in: "s3://acme/\xff", wantErr: "UTF-8"},
		{in: "https://user:pw@example.com/x", wantErr: "user name or password"},
		{in: "https://example.com/x#frag", wantErr: "fragment"},
		{in: "https:///x", wantErr: "no host"},
		{in: "https://s3.amazonaws.com/acme-data", wantErr: "empty key"},
		{in: "https://s3.amazonaws.com/", wantErr: "no bucket"},
		{in: "https://Bad_Bucket.s3.amazonaws.com/k", wantErr: "lowercase"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			t.Parallel()
			got, err := Parse(tt.in)
			if tt.wantErr != "" {
				var le *Error
				if !errors.As(err, &le) {
					t.Fatalf("Parse(%q) err = %v, want *Error", tt.in, err)
				}
				if !strings.Contains(le.Message, tt.wantErr) {
					t.Fatalf("Parse(%q) message %q, want it to contain %q", tt.in, le.Message, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Parse(%q): %v", tt.in, err)
			}
			got.URL = nil
			if got != tt.want {
				t.Fatalf("Parse(%q) = %+v, want %+v", tt.in, got, tt.want)
			}
		})
	}
}

func TestLocationRedacted(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want string }{
		{"https://example.com/a.png?X-Amz-Signature=secret&token=t", "https://example.com/a.png?<redacted>"},
		{"https://example.com/a.png", "https://example.com/a.png"},
		{"s3://acme-data/k?x", "s3://acme-data/k?x"},
	}
	for _, tt := range tests {
		loc, err := Parse(tt.in)
		if err != nil {
			t.Fatal(err)
		}
		if got := loc.Redacted(); got != tt.want {
			t.Errorf("Redacted(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// FuzzParseURI feeds arbitrary strings to the parser every attachment goes
// through first: a rejection is an *Error with a message for the customer,
// and an accepted S3 location has a valid bucket and a key and survives
// String and Parse again unchanged (literally so for the s3:// form), so the
// object read is the object named.
func FuzzParseURI(f *testing.F) {
	for _, s := range []string{"s3://acme-data/k", "s3://a.b-c/x y+%20", "https://s3.amazonaws.com/b-b/k%20",
		"https://b-b.s3.us-west-2.amazonaws.com/k", "https://example.com/x?y", "s3://bad_bucket/k", "s3://ab/", "http://[::1]/"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		loc, err := Parse(s)
		if err != nil {
			var le *Error
			if !errors.As(err, &le) || le.Message == "" {
				t.Fatalf("Parse(%q) error %v is not an *Error with a message", s, err)
			}
			return
		}
		if loc.Scheme == SchemeS3 {
			if CheckBucket(loc.Bucket) != nil || loc.Key == "" {
				t.Fatalf("Parse(%q) accepted bucket %q key %q", s, loc.Bucket, loc.Key)
			}
			again, err := Parse(loc.String())
			if err != nil {
				t.Fatalf("re-parse of %q: %v", loc.String(), err)
			}
			if again.Bucket != loc.Bucket || again.Key != loc.Key {
				t.Fatalf("round trip of %q: got %q/%q want %q/%q", s, again.Bucket, again.Key, loc.Bucket, loc.Key)
			}
			if strings.HasPrefix(s, "s3://") && loc.String() != s {
				t.Fatalf("s3:// form did not round-trip: %q -> %q", s, loc.String())
			}
		}
	})
}

func TestRedactURLs(t *testing.T) {
	t.Parallel()
	in := `Get "https://b.s3.amazonaws.com/k?X-Amz-Signature=SECRET&X-Amz-Security-Token=TOK": EOF`
	got := RedactURLs(in)
	if strings.Contains(got, "SECRET") || strings.Contains(got, "TOK") || !strings.Contains(got, "https://b.s3.amazonaws.com/k?<redacted>") {
		t.Fatalf("RedactURLs = %q", got)
	}
}
