package main

import (
	"os"
	"strings"
	"testing"

	"github.com/google/shlex"
)

// The runbook's recipes are commands this binary accepts as written (every
// subcommand and flag exists), and a recipe that pipes `events tail` into
// another program ends on its own.
func TestRunbookRecipes(t *testing.T) {
	t.Parallel()
	data, err := os.ReadFile("../../docs/runbook.md")
	if err != nil {
		t.Fatal(err)
	}
	env := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.TempDir()}
	n := 0
	for _, line := range strings.Split(string(data), "\n") {
		code := strings.TrimSpace(line)
		if !strings.HasPrefix(line, "    ") || !strings.HasPrefix(code, "ferry ") {
			continue
		}
		n++
		cmdline, _, piped := strings.Cut(code, " | ")
		cmdline, _, _ = strings.Cut(cmdline, " # ")
		args, err := shlex.Split(cmdline)
		if err != nil {
			t.Fatalf("%q: %v", code, err)
		}
		if piped && args[1] == "events" && !strings.Contains(cmdline, "--max") && !strings.Contains(cmdline, "--idle-exit") {
			t.Errorf("%q pipes events tail, which never ends without --max or --idle-exit", code)
		}
		// --help after the recipe: cobra still parses every flag first, so an
		// unknown command or flag fails, and nothing runs.
		if r := runCLI(t, env, "", append(args[1:], "--help")...); r.code != 0 || strings.HasPrefix(r.stdout, "ferry copies") {
			t.Errorf("runbook recipe %q is not a ferry command: exit %d: %s", code, r.code, r.stderr)
		}
	}
	if n < 8 {
		t.Fatalf("found %d recipes in the runbook", n)
	}
}
