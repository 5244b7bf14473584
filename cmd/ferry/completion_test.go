package main

import (
	"slices"
	"strings"
	"testing"

	"github.com/ferryworks/ferry/fetcher"
	"github.com/ferryworks/ferry/internal/testenv"
)

// completed runs cobra's hidden __complete through the binary, as the
// shell scripts of `ferry completion` do, and returns the candidates.
func completed(t *testing.T, env []string, args ...string) []string {
	t.Helper()
	r := runCLI(t, env, "", append([]string{"__complete"}, args...)...)
	if r.code != 0 {
		t.Fatalf("__complete %v: exit %d: %s", args, r.code, r.stderr)
	}
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if len(lines) == 0 || !strings.HasPrefix(lines[len(lines)-1], ":") {
		t.Fatalf("__complete %v: no directive: %q", args, r.stdout)
	}
	return lines[:len(lines)-1]
}

// Shell completion offers -o's formats, a setting's fixed values, and the
// registry's customers; without Redis it offers nothing and says nothing.
func TestShellCompletion(t *testing.T) {
	t.Parallel()
	w := testenv.SharedWorld(t)
	env := cliEnv(w)
	if got := strings.Join(completed(t, env, "enqueue", "-o", ""), ","); got != "text,json,yaml" {
		t.Errorf("enqueue -o completes to %s", got)
	}
	var policies []string
	for _, p := range fetcher.Policies() {
		policies = append(policies, string(p))
	}
	if got, want := strings.Join(completed(t, env, "work", "--cross-account", ""), ","), strings.Join(policies, ","); got != want {
		t.Errorf("work --cross-account completes to %s, want %s", got, want)
	}
	// The demo world's customers with an integration or a registered account.
	for _, args := range [][]string{
		{"integration", "show", ""},
		{"integration", "disable", "a"},
		{"check-access", "--customer", ""},
	} {
		got := completed(t, env, args...)
		if !slices.Contains(got, "acme") || (args[len(args)-1] == "" && !slices.Contains(got, "globex")) {
			t.Errorf("%v completes to %v, want the registry's customers", args, got)
		}
		for _, c := range got {
			if !strings.HasPrefix(c, args[len(args)-1]) {
				t.Errorf("%v offers %q", args, c)
			}
		}
	}
	if got := completed(t, env, "integration", "show", "acme", ""); len(got) != 0 {
		t.Errorf("a second customer argument is offered: %v", got)
	}
	// Redis unreachable: no candidates, no error on stderr.
	down := cliEnv(w, "FERRY_REDIS_URL=redis://127.0.0.1:1")
	r := runCLI(t, down, "", "__complete", "integration", "show", "")
	if r.code != 0 || strings.TrimSpace(r.stdout) != ":4" || strings.Contains(strings.ToLower(r.stderr), "redis") || strings.Contains(strings.ToLower(r.stderr), "error") {
		t.Errorf("completion without Redis: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	// The scripts exist for the shells the README covers.
	for _, sh := range []string{"bash", "zsh", "fish"} {
		if r := runCLI(t, env, "", "completion", sh); r.code != 0 || !strings.Contains(r.stdout, "__complete") {
			t.Errorf("completion %s: exit %d", sh, r.code)
		}
	}
}
