package fetcher

import (
	"strconv"
	"strings"

	"github.com/ferryworks/ferry/fetcher/location"
)

const maxSegmentBytes = 128

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

func storedKey(keyPrefix string, req Request, loc location.Location) string {
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
func baseName(name string, loc location.Location) string {
	src := name
	if src == "" {
		switch {
		case loc.Scheme == location.SchemeS3:
			src = loc.Key
		case loc.URL != nil:
			src = loc.URL.Path
		}
		src = strings.TrimRight(src, "/")
		if i := strings.LastIndexByte(src, '/'); i >= 0 {
			src = src[i+1:]
		}
	}
	return location.SafeBaseName(src)
}
