package deadletter

import (
	"fmt"
	"path"
	"strings"

	"golang.org/x/time/rate"
	"strconv"
)

// Filter selects dead letters by customer, task and error text; empty fields
// match everything.
type Filter struct {
	Customer string // path.Match pattern of the customer id
	Task     string // path.Match pattern of the task id
	ErrText  string // case-insensitive substring of the last error or reject reason
}

// FilterSyntax is what ParseFilter accepts, for usage text.
const FilterSyntax = "customer=GLOB,task=GLOB,error=TEXT"

// ParseFilter reads comma-separated key=value pairs (customer=GLOB,
// task=GLOB, error=TEXT), all of which must match. "" matches everything. A
// bad pattern is refused here, so it cannot silently match nothing later.
func ParseFilter(s string) (Filter, error) {
	var f Filter
	if strings.TrimSpace(s) == "" {
		return f, nil
	}
	for _, part := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok || v == "" {
			return f, fmt.Errorf("%q: want key=value pairs (customer=, task=, error=)", part)
		}
		switch k {
		case "customer", "task":
			if _, err := path.Match(v, ""); err != nil {
				return f, fmt.Errorf("%s=%q: bad pattern: %v", k, v, err)
			}
			if k == "customer" {
				f.Customer = v
			} else {
				f.Task = v
			}
		case "error":
			f.ErrText = strings.ToLower(v)
		default:
			return f, fmt.Errorf("unknown key %q (want customer, task or error)", k)
		}
	}
	return f, nil
}

// Match reports whether r passes every part of the filter.
func (f Filter) Match(r Row) bool {
	if f.Customer != "" {
		if ok, _ := path.Match(f.Customer, r.CustomerID); !ok {
			return false
		}
	}
	if f.Task != "" {
		if ok, _ := path.Match(f.Task, r.TaskID); !ok {
			return false
		}
	}
	if f.ErrText != "" && !strings.Contains(strings.ToLower(r.searchText()), strings.ToLower(f.ErrText)) {
		return false
	}
	return true
}

// ParseRate reads a replay rate: "N", "N/s" or "N/m". "" or 0 is unlimited
// (rate.Inf).
func ParseRate(s string) (rate.Limit, error) {
	if s == "" {
		return rate.Inf, nil
	}
	num, unit, _ := strings.Cut(s, "/")
	v, err := strconv.ParseFloat(num, 64)
	if err != nil || v < 0 {
		return 0, fmt.Errorf("%q: want N/s or N/m (e.g. 50/s)", s)
	}
	switch unit {
	case "", "s":
	case "m":
		v /= 60
	default:
		return 0, fmt.Errorf("%q: unit must be /s or /m", s)
	}
	if v == 0 {
		return rate.Inf, nil
	}
	return rate.Limit(v), nil
}
