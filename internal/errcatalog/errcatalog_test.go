package errcatalog

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ferryworks/ferry/fetcher"
	"github.com/ferryworks/ferry/queue"
)

// docs/errors.md is what the code says today.
func TestErrorCatalogueUpToDate(t *testing.T) {
	t.Parallel()
	path := filepath.Join("..", "..", Path)
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v: run `%s` to write it", err, Command)
	}
	if want := Markdown(); !bytes.Equal(got, want) {
		t.Fatalf("%s is out of date with the code: run `%s` and commit the result", Path, Command)
	}
}

// Every code, event type and reason the code declares is in the page, and
// so is every hint as a customer reads it.
func TestErrorCatalogueCoversTheCode(t *testing.T) {
	t.Parallel()
	md := string(Markdown())
	for _, e := range fetcher.Catalogue() {
		for _, c := range e.Codes {
			if !strings.Contains(md, "`"+c+"`") {
				t.Errorf("code %s missing", c)
			}
		}
		if e.Hint != "" && !strings.Contains(md, cell(e.Hint)) {
			t.Errorf("hint %q missing", e.Hint)
		}
	}
	for _, d := range append(queue.EventTypes(), queue.FailedReasons()...) {
		if !strings.Contains(md, "`"+d.Code+"`") {
			t.Errorf("%s missing", d.Code)
		}
	}
	for _, want := range []string{"`policy`", "`BucketNotVerified`", "`assume_role`", "`task.access_denied`", `arn:aws:s3:::{bucket}/\*`} {
		if !strings.Contains(md, want) {
			t.Errorf("the catalogue lacks %s", want)
		}
	}
}

func TestCellEscapes(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"a|b":                "a\\|b",
		"arn:aws:s3:::b/*":   `arn:aws:s3:::b/\*`,
		"run `a_b *c*` now_": "run `a_b *c*` now\\_",
	} {
		if got := cell(in); got != want {
			t.Errorf("cell(%q) = %q, want %q", in, got, want)
		}
	}
}
