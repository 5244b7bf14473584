package config

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// The flag.Value implementations below bind one setting to one Config field.
// Their String methods tolerate a nil pointer because the flag package calls
// String on a zero value to decide whether to print a default.

type stringValue struct{ p *string }

func (v stringValue) Set(s string) error { *v.p = s; return nil }
func (v stringValue) String() string {
	if v.p == nil {
		return ""
	}
	return *v.p
}

type intValue struct{ p *int }

func (v intValue) Set(s string) error {
	n, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil {
		return fmt.Errorf("not an integer")
	}
	*v.p = n
	return nil
}

func (v intValue) String() string {
	if v.p == nil {
		return "0"
	}
	return strconv.Itoa(*v.p)
}

type boolValue struct{ p *bool }

func (v boolValue) Set(s string) error {
	b, err := strconv.ParseBool(strings.TrimSpace(s))
	if err != nil {
		return fmt.Errorf("not a boolean")
	}
	*v.p = b
	return nil
}

func (v boolValue) String() string {
	if v.p == nil {
		return "false"
	}
	return strconv.FormatBool(*v.p)
}

func (v boolValue) words() []string { return []string{"true", "false"} }

// IsBoolFlag lets "-pprof" stand for "-pprof=true" on the command line.
func (v boolValue) IsBoolFlag() bool { return true }

// durationValue accepts Go durations ("90s", "1h30m") and, because SQS and
// most operators think in seconds, a bare integer as seconds ("60").
type durationValue struct{ p *time.Duration }

func (v durationValue) Set(s string) error {
	s = strings.TrimSpace(s)
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		if n > int64(time.Duration(1<<63-1)/time.Second) || n < 0 {
			return fmt.Errorf("out of range")
		}
		*v.p = time.Duration(n) * time.Second
		return nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("not a duration")
	}
	*v.p = d
	return nil
}

func (v durationValue) String() string {
	if v.p == nil {
		return "0s"
	}
	return formatDuration(*v.p)
}

// formatDuration prints whole hours and minutes without the trailing zero
// units time.Duration.String adds ("1h" rather than "1h0m0s").
func formatDuration(d time.Duration) string {
	switch {
	case d != 0 && d%time.Hour == 0:
		return strconv.FormatInt(int64(d/time.Hour), 10) + "h"
	case d != 0 && d%time.Minute == 0:
		return strconv.FormatInt(int64(d/time.Minute), 10) + "m"
	}
	return d.String()
}

type byteSizeValue struct{ p *ByteSize }

func (v byteSizeValue) Set(s string) error {
	b, err := ParseByteSize(s)
	if err != nil {
		return err
	}
	*v.p = b
	return nil
}

func (v byteSizeValue) String() string {
	if v.p == nil {
		return "0"
	}
	return v.p.String()
}

// listValue is a comma-separated list; blanks around items are dropped.
type listValue struct{ p *[]string }

func (v listValue) Set(s string) error {
	*v.p = splitList(s)
	return nil
}

func (v listValue) String() string {
	if v.p == nil {
		return ""
	}
	return strings.Join(*v.p, ",")
}

func splitList(s string) []string {
	var out []string
	for _, item := range strings.Split(s, ",") {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	return out
}

// enumValue accepts exactly one of a fixed set of words, so a typo fails at
// parse time instead of silently selecting a default.
type enumValue[T ~string] struct {
	p       *T
	allowed []T
}

func (v enumValue[T]) Set(s string) error {
	s = strings.ToLower(strings.TrimSpace(s))
	for _, a := range v.allowed {
		if string(a) == s {
			*v.p = a
			return nil
		}
	}
	return fmt.Errorf("not one of %s", v.choices())
}

func (v enumValue[T]) String() string {
	if v.p == nil {
		return ""
	}
	return string(*v.p)
}

func (v enumValue[T]) words() []string {
	out := make([]string, len(v.allowed))
	for i, a := range v.allowed {
		out[i] = string(a)
	}
	return out
}

func (v enumValue[T]) choices() string {
	words := make([]string, len(v.allowed))
	for i, a := range v.allowed {
		words[i] = string(a)
	}
	return strings.Join(words, " | ")
}

// addrValue is a listen address where "off" (or "none", "disabled") means
// none: an environment variable set to "" cannot be told apart from an unset
// one, so disabling needs a word.
type addrValue struct{ p *string }

func (v addrValue) Set(s string) error {
	s = strings.TrimSpace(s)
	switch strings.ToLower(s) {
	case "off", "none", "disabled":
		s = ""
	}
	*v.p = s
	return nil
}

func (v addrValue) String() string {
	if v.p == nil {
		return ""
	}
	return *v.p
}
