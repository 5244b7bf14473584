package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/ferryworks/ferry/internal/testenv"
)

// The identity test binaries are stamped with, through the Makefile's own
// -ldflags, so the tests see what `make build` produces.
const (
	testVersion  = "v0.0.0-test"
	testRevision = "0123456789abcdef0123456789abcdef01234567"
)

// stampedLDFlags asks the Makefile for the -ldflags that stamp the build.
func stampedLDFlags() (string, error) {
	cmd := exec.Command("make", "-s", "--no-print-directory", "ldflags", "VERSION="+testVersion, "REVISION="+testRevision)
	cmd.Dir = filepath.Join("..", "..")
	out, err := cmd.Output()
	return strings.TrimSpace(string(out)), err
}

func TestVersion(t *testing.T) {
	t.Parallel()
	testenv.Integration(t)
	bin := builtFerry.Path(t)
	want := "ferry " + testVersion + "\ncommit: " + testRevision + "\ngo: " + runtime.Version() + "\n"
	for _, args := range [][]string{{"version"}, {"--version"}} {
		out, err := exec.Command(bin, args...).Output()
		if err != nil {
			t.Fatalf("ferry %s: %v", strings.Join(args, " "), err)
		}
		if string(out) != want {
			t.Errorf("ferry %s printed\n%s\nwant\n%s", strings.Join(args, " "), out, want)
		}
	}
	out, err := exec.Command(bin, "version", "-o", "json").Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{`"version": "` + testVersion + `"`, `"revision": "` + testRevision + `"`, `"go_version": "` + runtime.Version() + `"`} {
		if !strings.Contains(string(out), s) {
			t.Errorf("ferry version -o json = %s, want it to contain %s", out, s)
		}
	}
}

// The image is stamped the way the Makefile stamps a build.
func TestDockerfileStampsBuild(t *testing.T) {
	t.Parallel()
	df, err := os.ReadFile(filepath.Join("..", "..", "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{
		"-X github.com/ferryworks/ferry/internal/buildinfo.version=${VERSION}",
		"-X github.com/ferryworks/ferry/internal/buildinfo.revision=${REVISION}",
		`-ldflags="$LDFLAGS" -o /out/ferry ./cmd/ferry`,
	} {
		if !strings.Contains(string(df), s) {
			t.Errorf("Dockerfile does not contain %q", s)
		}
	}
}
