package buildinfo

import (
	"runtime/debug"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestCompute(t *testing.T) {
	t.Parallel()
	withVCS := func() (*debug.BuildInfo, bool) {
		return &debug.BuildInfo{GoVersion: "go1.99.1", Main: debug.Module{Version: "(devel)"}, Settings: []debug.BuildSetting{
			{Key: "vcs.revision", Value: "0123abcd"}, {Key: "vcs.modified", Value: "true"},
		}}, true
	}
	installed := func() (*debug.BuildInfo, bool) {
		return &debug.BuildInfo{GoVersion: "go1.99.1", Main: debug.Module{Version: "v1.2.0"}}, true
	}
	none := func() (*debug.BuildInfo, bool) { return nil, false }
	for _, c := range []struct {
		name          string
		ver, rev      string
		read          func() (*debug.BuildInfo, bool)
		wantVer, want string
		wantGo        string
	}{
		{"stamped wins", "v2.0.0", "feedbeef", withVCS, "v2.0.0", "feedbeef", "go1.99.1"},
		{"vcs fallback", "", "", withVCS, "devel", "0123abcd-dirty", "go1.99.1"},
		{"go install", "", "", installed, "v1.2.0", "unknown", "go1.99.1"},
		{"nothing recorded", "", "", none, "devel", "unknown", ""},
	} {
		got := compute(c.ver, c.rev, c.read)
		if got.Version != c.wantVer || got.Revision != c.want {
			t.Errorf("%s: got %+v, want version %q revision %q", c.name, got, c.wantVer, c.want)
		}
		if c.wantGo != "" && got.GoVersion != c.wantGo {
			t.Errorf("%s: go version %q, want %q", c.name, got.GoVersion, c.wantGo)
		}
		if !strings.HasPrefix(got.GoVersion, "go") {
			t.Errorf("%s: go version %q", c.name, got.GoVersion)
		}
	}
}

func TestRegister(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	Register(reg)
	in := Get()
	want := `# HELP ferry_build_info Always 1; the labels say which build of ferry this is.
# TYPE ferry_build_info gauge
ferry_build_info{goversion="` + in.GoVersion + `",revision="` + in.Revision + `",version="` + in.Version + `"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "ferry_build_info"); err != nil {
		t.Error(err)
	}
}

func TestText(t *testing.T) {
	t.Parallel()
	in := Info{Version: "v1.2.3", Revision: "abc123", GoVersion: "go1.26"}
	if got := in.Text(); got != "ferry v1.2.3\ncommit: abc123\ngo: go1.26\n" {
		t.Errorf("Text = %q", got)
	}
}
