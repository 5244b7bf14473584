package location

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestSafeBaseName(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("é", 300) + ".jpeg"
	tests := []struct{ in, want string }{
		{"1.jpg", "1.jpg"},
		{"../../etc/passwd", "passwd"},
		{`..\..\win.ini`, "win.ini"},
		{"..", "object"},
		{"", "object"},
		{"._-", "object"},
		{"ファイル name+1.png", "ファイル_name_1.png"},
		{"a\x00b\nc.txt", "abc.txt"},
		{"a..b...c", "a.b.c"},
		{".hidden", "hidden"},
		{"bad\xffutf8", "bad_utf8"},
	}
	for _, tt := range tests {
		if got := SafeBaseName(tt.in); got != tt.want {
			t.Errorf("SafeBaseName(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
	got := SafeBaseName(long)
	if len(got) > MaxBaseNameBytes || !utf8.ValidString(got) || !strings.HasSuffix(got, "é.jpeg") {
		t.Errorf("SafeBaseName of a %d-byte name = %q (%d bytes), want at most %d bytes ending in the extension",
			len(long), got, len(got), MaxBaseNameBytes)
	}
}

// FuzzBaseName checks that no attachment name, however hostile, yields a
// base name that is empty, holds a path separator or a dot segment, starts
// with a dot, is invalid UTF-8 or is longer than MaxBaseNameBytes.
func FuzzBaseName(f *testing.F) {
	f.Add("../../a.txt")
	f.Add("a/b\\c\x00.png")
	f.Fuzz(func(t *testing.T, name string) {
		got := SafeBaseName(name)
		if got == "" || strings.ContainsAny(got, "/\\") || strings.Contains(got, "..") || strings.HasPrefix(got, ".") {
			t.Fatalf("SafeBaseName(%q) = %q", name, got)
		}
		if !utf8.ValidString(got) || len(got) > MaxBaseNameBytes {
			t.Fatalf("SafeBaseName(%q) = %q (%d bytes)", name, got, len(got))
		}
	})
}
