package deadletter

import (
	"testing"

	"golang.org/x/time/rate"
)

func TestFilterAndRate(t *testing.T) {
	t.Parallel()
	row := Row{TaskID: "t-1", CustomerID: "acme", Error: "copy: get_object SlowDown"}
	filters := []struct {
		in      string
		match   bool
		invalid bool
	}{
		{"", true, false},
		{"customer=acme", true, false},
		{"customer=ac*,task=t-?", true, false},
		{"customer=globex", false, false},
		{"error=slowdown", true, false},
		{"error=AccessDenied", false, false},
		{"colour=red", false, true},
		{"customer", false, true},
		{"task=[", false, true},
	}
	for _, c := range filters {
		f, err := ParseFilter(c.in)
		if (err != nil) != c.invalid {
			t.Errorf("ParseFilter(%q): %v, invalid %v", c.in, err, c.invalid)
			continue
		}
		if err == nil && f.Match(row) != c.match {
			t.Errorf("filter %q matches %v, want %v", c.in, !c.match, c.match)
		}
	}
	rates := []struct {
		in   string
		want rate.Limit
		bad  bool
	}{{"", rate.Inf, false}, {"0", rate.Inf, false}, {"10", 10, false}, {"50/s", 50, false}, {"120/m", 2, false}, {"x/s", 0, true}, {"5/h", 0, true}, {"-1", 0, true}}
	for _, c := range rates {
		got, err := ParseRate(c.in)
		if (err != nil) != c.bad || got != c.want {
			t.Errorf("ParseRate(%q) = %v, %v; want %v (error %v)", c.in, got, err, c.want, c.bad)
		}
	}
}
