package main

import (
	"encoding/json"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/ferryworks/ferry/config"
)

// typePlaceholder is how pflag names a flag's argument when nobody said what
// it takes.
var typePlaceholder = regexp.MustCompile(`--[a-z0-9-]+ (string|strings|stringArray|int|int64|uint|float|duration|flag|value|bool)\b`)

// subcommands lists the commands a help text offers.
func subcommands(help string) []string {
	_, rest, ok := strings.Cut(help, "Available Commands:\n")
	if !ok {
		return nil
	}
	var out []string
	for _, line := range strings.Split(rest, "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || !strings.HasPrefix(line, "  ") {
			break
		}
		out = append(out, f[0])
	}
	return out
}

// Every command's --help lists its own flags and exactly the settings it
// reads, each flag saying what it takes; `ferry options` lists them all.
func TestHelpShowsOnlyTheSettingsACommandReads(t *testing.T) {
	t.Parallel()
	env := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.TempDir()}
	help := func(args ...string) string {
		t.Helper()
		r := runCLI(t, env, "", append(args, "--help")...)
		if r.code != 0 {
			t.Fatalf("ferry %v --help: exit %d: %s", args, r.code, r.stderr)
		}
		return r.stdout
	}
	var leaves [][]string
	var visit func(path []string)
	visit = func(path []string) {
		h := help(path...)
		if m := typePlaceholder.FindString(h); m != "" {
			t.Errorf("ferry %s --help: %q does not say what the flag takes", strings.Join(path, " "), m)
		}
		subs := subcommands(h)
		if len(subs) == 0 {
			leaves = append(leaves, path)
		}
		for _, s := range subs {
			if s == "help" || s == "completion" {
				continue
			}
			visit(append(append([]string(nil), path...), s))
		}
	}
	visit(nil)
	if len(leaves) < 15 {
		t.Fatalf("found %d commands: %v", len(leaves), leaves)
	}

	flagsOf := func(args ...string) map[string]bool {
		out := map[string]bool{}
		h := help(args...)
		for _, v := range config.Vars() {
			if v.Flag != "" && strings.Contains(h, "--"+v.Flag+" ") {
				out[v.Name] = true
			}
		}
		return out
	}
	work := flagsOf("work")
	for _, v := range config.Vars() {
		if v.Flag != "" && !work[v.Name] {
			t.Errorf("ferry work reads everything; its help lacks --%s", v.Flag)
		}
	}
	enqueue := flagsOf("enqueue")
	for _, name := range []string{"FERRY_QUEUE_URL", "FERRY_MAX_ATTACHMENTS", "FERRY_LOG_LEVEL"} {
		if !enqueue[name] {
			t.Errorf("ferry enqueue --help lacks %s", name)
		}
	}
	for _, name := range []string{"FERRY_BUCKET", "FERRY_CONCURRENCY", "FERRY_REDIS_URL", "FERRY_DLQ_URL", "FERRY_CACHE_KEY"} {
		if enqueue[name] {
			t.Errorf("ferry enqueue --help lists %s, which it does not read", name)
		}
	}
	if tail := flagsOf("events", "tail"); len(tail) != 3 || !tail["FERRY_EVENTS_QUEUE_URL"] {
		t.Errorf("ferry events tail reads the events queue and logging, its help lists %v", tail)
	}
	if en := help("integration", "enable"); !strings.Contains(en, "--bucket NAME") || !strings.Contains(en, "--account ID") {
		t.Errorf("placeholders of integration enable:\n%s", en)
	}

	// ferry options: every setting, its flag, default, meaning and readers.
	opts := runCLI(t, env, "", "options")
	if opts.code != 0 {
		t.Fatalf("options: exit %d: %s", opts.code, opts.stderr)
	}
	for _, v := range config.Vars() {
		if !strings.Contains(opts.stdout, v.Name) || !strings.Contains(opts.stdout, v.Usage) {
			t.Errorf("ferry options lacks %s or its description", v.Name)
		}
	}
	if !strings.Contains(opts.stdout, "FERRY_PART_SIZE, --part-size SIZE\n") || !strings.Contains(opts.stdout, "default: 8MiB") {
		t.Errorf("ferry options:\n%s", opts.stdout)
	}
	var list []config.Option
	if r := runCLI(t, env, "", "options", "-o", "json"); json.Unmarshal([]byte(r.stdout), &list) != nil || len(list) != len(config.Vars()) {
		t.Fatalf("options -o json: exit %d: %s", r.code, r.stdout)
	}
	for _, o := range list {
		if o.Name == "FERRY_QUEUE_URL" && strings.Join(o.ReadBy, ",") != "dlq replay,enqueue,work" {
			t.Errorf("FERRY_QUEUE_URL read by %v", o.ReadBy)
		}
	}
}

// A command fails only on the settings it reads: a bad FERRY_CONCURRENCY
// stops `ferry work` with what to set, and means nothing to `ferry version`
// or `ferry enqueue` (which TestEnqueueSources runs with it).
func TestBadSettingFailsOnlyItsReaders(t *testing.T) {
	t.Parallel()
	env := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.TempDir(), "FERRY_CONCURRENCY=abc", "FERRY_LOG_FORMAT=json"}
	r := runCLI(t, env, "", "work")
	if r.code != 1 || !strings.Contains(r.stderr, `FERRY_CONCURRENCY="abc": want a positive integer`) || !strings.Contains(r.stderr, "set the variables") {
		t.Errorf("work with FERRY_CONCURRENCY=abc: exit %d, stderr %q; want exit 1 naming the variable and what to set", r.code, r.stderr)
	}
	if r := runCLI(t, env, "", "version"); r.code != 0 {
		t.Errorf("version with FERRY_CONCURRENCY=abc: exit %d: %s", r.code, r.stderr)
	}
	// A flag fixes what the environment got wrong.
	if r := runCLI(t, env, "", "work", "--concurrency", "4"); strings.Contains(r.stderr, "FERRY_CONCURRENCY") {
		t.Errorf("--concurrency 4 does not override FERRY_CONCURRENCY=abc: %s", r.stderr)
	}
	if r := runCLI(t, append(env, "FERRY_LOG_LEVEL=loud"), "", "version"); r.code != 1 || !strings.Contains(r.stderr, "FERRY_LOG_LEVEL") {
		t.Errorf("version with FERRY_LOG_LEVEL=loud: exit %d: %s", r.code, r.stderr)
	}
}
