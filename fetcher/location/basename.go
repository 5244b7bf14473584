package location

import (
	"path"
	"strings"
	"unicode"
	"unicode/utf8"
)

// MaxBaseNameBytes is the longest base name SafeBaseName returns, so a
// stored key built from it stays well inside S3's 1024-byte key limit.
const MaxBaseNameBytes = 200

// maxExtBytes is the longest extension kept when a name is shortened; a
// longer suffix after the last dot is cut like the rest of the name.
const maxExtBytes = 16

// SafeBaseName makes s usable as the last segment of an object key: it keeps
// only the last path component (either separator), strips control
// characters and dot segments, keeps letters and digits of any script,
// replaces anything else with '_', and shortens a name longer than
// MaxBaseNameBytes while keeping its extension. The result is never empty
// ("object" when nothing usable is left), never starts with a dot and never
// contains "..", so no attachment name can climb out of its task's prefix.
func SafeBaseName(s string) string {
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "_")
	}
	// Only the last path component counts, whatever separator was used.
	if i := strings.LastIndexAny(s, `/\`); i >= 0 {
		s = s[i+1:]
	}
	var b strings.Builder
	for _, r := range s {
		switch {
		case unicode.IsLetter(r) || unicode.IsDigit(r) || r == '.' || r == '-' || r == '_':
			b.WriteRune(r)
		case unicode.IsControl(r) || r == utf8.RuneError:
			// dropped
		default:
			b.WriteRune('_')
		}
	}
	out := strings.TrimLeft(b.String(), ".")
	for strings.Contains(out, "..") {
		out = strings.ReplaceAll(out, "..", ".")
	}
	if strings.Trim(out, "._-") == "" {
		return "object"
	}
	if len(out) > MaxBaseNameBytes {
		ext := path.Ext(out)
		if len(ext) > maxExtBytes {
			ext = ""
		}
		stem := out[:len(out)-len(ext)]
		// Cutting the stem may leave it ending in a dot, which would meet
		// the extension's dot as "..".
		stem = strings.TrimRight(truncateUTF8(stem, MaxBaseNameBytes-len(ext)), ".")
		if strings.Trim(stem, "._-") == "" {
			stem = "object"
		}
		out = stem + ext
	}
	return out
}

func truncateUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
