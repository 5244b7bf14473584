// Package buildinfo says which build of ferry is running: the version and
// revision the Makefile and Dockerfile stamp with -ldflags -X, and the Go
// toolchain. `ferry version`, the ferry_build_info metric and the traces'
// service.version all read it here.
package buildinfo

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// Stamped at link time:
//
//	go build -ldflags "-X github.com/ferryworks/ferry/internal/buildinfo.version=v1.2.3 \
//	  -X github.com/ferryworks/ferry/internal/buildinfo.revision=$(git rev-parse HEAD)"
//
// Unexported so nothing but the linker sets them.
var (
	version  string
	revision string
)

// Info identifies a build.
type Info struct {
	// Version is the release (a git tag, e.g. v1.4.0), else the module
	// version `go install` recorded, else "devel".
	Version string `json:"version"`
	// Revision is the commit the binary was built from ("unknown" when
	// neither the linker nor the Go toolchain recorded one); "-dirty" is
	// appended when the toolchain saw uncommitted changes.
	Revision  string `json:"revision"`
	GoVersion string `json:"go_version"`
}

var (
	once sync.Once
	info Info
)

// Get returns this binary's identity. What -ldflags -X stamped wins; the
// fallback is what the Go toolchain embeds (debug.ReadBuildInfo: the module
// version and the vcs.revision setting of a build inside a git checkout).
func Get() Info {
	once.Do(func() { info = compute(version, revision, debug.ReadBuildInfo) })
	return info
}

// Text is the build as `ferry version` prints it for people: version,
// commit and Go version, one per line.
func (i Info) Text() string {
	return fmt.Sprintf("ferry %s\ncommit: %s\ngo: %s\n", i.Version, i.Revision, i.GoVersion)
}

func compute(stampedVersion, stampedRevision string, read func() (*debug.BuildInfo, bool)) Info {
	in := Info{Version: stampedVersion, Revision: stampedRevision, GoVersion: runtime.Version()}
	bi, ok := read()
	if ok {
		if in.Version == "" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			in.Version = bi.Main.Version
		}
		if in.Revision == "" {
			var rev string
			var dirty bool
			for _, s := range bi.Settings {
				switch s.Key {
				case "vcs.revision":
					rev = s.Value
				case "vcs.modified":
					dirty = s.Value == "true"
				}
			}
			if rev != "" && dirty {
				rev += "-dirty"
			}
			in.Revision = rev
		}
		if bi.GoVersion != "" {
			in.GoVersion = bi.GoVersion
		}
	}
	if in.Version == "" {
		in.Version = "devel"
	}
	if in.Revision == "" {
		in.Revision = "unknown"
	}
	return in
}

// Register adds ferry_build_info{version,revision,goversion} 1 to reg, the
// usual way to join a build's identity onto other series
// (`* on(instance) group_left(version) ferry_build_info`). Ours rather than
// client_golang's version collector, which adds branch, platform and tag
// labels that ferry's builds do not set.
func Register(reg prometheus.Registerer) {
	in := Get()
	g := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "ferry_build_info",
		Help: "Always 1; the labels say which build of ferry this is.",
		ConstLabels: prometheus.Labels{
			"version": in.Version, "revision": in.Revision, "goversion": in.GoVersion,
		},
	})
	g.Set(1)
	reg.MustRegister(g)
}
