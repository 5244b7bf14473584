package fetcher

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/ferryworks/ferry/fetcher/location"
)

func TestDestKey(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("é", 300) + ".jpeg"
	tests := []struct {
		name                 string
		prefix, cust, task   string
		index                int
		uri, attachment      string
		want                 string
		wantPrefix, wantSufx string
	}{
		{name: "key basename", cust: "acme", task: "t-123", uri: "s3://acme-data/img/1.jpg", want: "acme/t-123/0-1.jpg"},
		{name: "prefix", prefix: "copies/", cust: "acme", task: "t-1", index: 3, uri: "s3://acme-data/a/b.png", want: "copies/acme/t-1/3-b.png"},
		{name: "attachment name wins", cust: "acme", task: "t", uri: "https://example.com/x?y=1", attachment: "a.png", want: "acme/t/0-a.png"},
		{name: "traversal in name", cust: "acme", task: "t", uri: "s3://b-b/k", attachment: "../../etc/passwd", want: "acme/t/0-passwd"},
		{name: "backslashes", cust: "acme", task: "t", uri: "s3://b-b/k", attachment: `..\..\win.ini`, want: "acme/t/0-win.ini"},
		{name: "dots only", cust: "acme", task: "t", uri: "s3://b-b/k", attachment: "..", want: "acme/t/0-object"},
		{name: "trailing slash key", cust: "acme", task: "t", uri: "s3://b-b/dir/sub/", want: "acme/t/0-sub"},
		{name: "spaces and unicode", cust: "acme", task: "t", uri: "s3://b-b/ファイル name+1.png", want: "acme/t/0-ファイル_name_1.png"},
		{name: "control chars", cust: "acme", task: "t", uri: "s3://b-b/a\x00b\nc.txt", want: "acme/t/0-abc.txt"},
		{name: "hostile ids", prefix: "p", cust: "../other", task: "t/../../x", uri: "s3://b-b/k", want: "p/.._other/t_.._.._x/0-k"},
		{name: "dot ids", cust: "..", task: ".", uri: "s3://b-b/k", want: "__/_/0-k"},
		{name: "negative index", cust: "c", task: "t", index: -4, uri: "s3://b-b/k", want: "c/t/0-k"},
		{name: "long name keeps extension", cust: "c", task: "t", uri: "s3://b-b/" + long, wantPrefix: "c/t/0-éé", wantSufx: "é.jpeg"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			loc, err := ParseURI(tt.uri)
			if err != nil {
				t.Fatal(err)
			}
			got := destKey(tt.prefix, tt.cust, tt.task, tt.index, baseName(tt.attachment, loc))
			if tt.want != "" && got != tt.want {
				t.Fatalf("destKey = %q, want %q", got, tt.want)
			}
			if !strings.HasPrefix(got, tt.wantPrefix) || !strings.HasSuffix(got, tt.wantSufx) {
				t.Fatalf("destKey = %q, want prefix %q suffix %q", got, tt.wantPrefix, tt.wantSufx)
			}
			if !utf8.ValidString(got) {
				t.Fatalf("destKey %q is not valid UTF-8", got)
			}
			segs := strings.Split(got, "/")
			for _, s := range segs {
				if s == "" || s == "." || s == ".." {
					t.Fatalf("destKey %q has segment %q", got, s)
				}
			}
			if base := segs[len(segs)-1]; len(base) > location.MaxBaseNameBytes+12 {
				t.Fatalf("base name %d bytes", len(base))
			}
		})
	}
}
