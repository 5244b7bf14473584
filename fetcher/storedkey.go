package fetcher

import (
	"path"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

const (
	maxBaseNameBytes = 200
	maxSegmentBytes  = 128
	maxExtBytes      = 16
)

// StoredKey is the key in the internal bucket (under keyPrefix, the
// Options.KeyPrefix of the copier) the copy of req's attachment is written
// to. It depends only on the request, so a retry writes the same key and
// whoever disposes of a task finds what its attempts left there; an error
// means req.URI is not an attachment ferry would copy.
func StoredKey(keyPrefix string, req Request) (string, error) {
	loc, err := ParseURI(req.URI)
	if err != nil {
		return "", err
	}
	return storedKey(keyPrefix, req, loc), nil
}

func storedKey(keyPrefix string, req Request, loc Location) string {
	return destKey(keyPrefix, req.CustomerID, req.TaskID, req.Index, baseName(req.Name, loc))
}

// destKey is KeyPrefix/customer/task/index-basename. Every component is
// sanitised here even though the worker validates IDs, so no task message can
// place an object outside KeyPrefix/customer/.
func destKey(prefix, customer, task string, index int, base string) string {
	var parts []string
	for _, p := range strings.Split(prefix, "/") {
		if p = safeSegment(p); p != "" && p != "_" {
			parts = append(parts, p)
		}
	}
	parts = append(parts, orUnderscore(safeSegment(customer)), orUnderscore(safeSegment(task)),
		strconv.Itoa(max(index, 0))+"-"+base)
	return strings.Join(parts, "/")
}

func orUnderscore(s string) string {
	if s == "" {
		return "_"
	}
	return s
}

// safeSegment keeps [A-Za-z0-9._-], replaces everything else with '_', and
// refuses the dot segments.
func safeSegment(s string) string {
	var b strings.Builder
	for i := 0; i < len(s) && b.Len() < maxSegmentBytes; i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '-' || c == '_' {
			b.WriteByte(c)
		} else {
			b.WriteByte('_')
		}
	}
	out := b.String()
	if strings.Trim(out, ".") == "" && out != "" {
		return strings.Repeat("_", len(out))
	}
	return out
}

// baseName is the stored object's base name: the attachment's name if given,
// else the last segment of the key or URL path; "object" when neither gives
// anything usable.
func baseName(name string, loc Location) string {
	src := name
	if src == "" {
		switch {
		case loc.Scheme == SchemeS3:
			src = loc.Key
		case loc.URL != nil:
			src = loc.URL.Path
		}
		src = strings.TrimRight(src, "/")
		if i := strings.LastIndexByte(src, '/'); i >= 0 {
			src = src[i+1:]
		}
	}
	return safeBaseName(src)
}

// safeBaseName strips path separators, control characters and dot segments,
// keeps letters and digits of any script, and shortens long names while
// keeping the extension.
func safeBaseName(s string) string {
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
	if len(out) > maxBaseNameBytes {
		ext := path.Ext(out)
		if len(ext) > maxExtBytes {
			ext = ""
		}
		stem := out[:len(out)-len(ext)]
		// Cutting the stem may leave it ending in a dot, which would meet
		// the extension's dot as "..".
		stem = strings.TrimRight(truncateUTF8(stem, maxBaseNameBytes-len(ext)), ".")
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
