package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/google/shlex"

	"github.com/ferryworks/ferry/internal/demo"
	"github.com/ferryworks/ferry/internal/testenv"
)

// composeRun matches the header's `docker compose run --rm worker ferry …`
// lines; the rest of such a line is what runs inside the worker container.
var composeRun = regexp.MustCompile(`^#\s+docker compose run --rm worker (ferry .*)$`)

// The commands docker-compose.yml's header offers work as written: run
// through the binary against a demo world whose tasks file stands where the
// compose stack's devstack writes it (/shared/tasks.jsonl), with a worker
// running as the stack's replicas do. Each must exit 0 and do its job.
func TestComposeHeaderCommands(t *testing.T) {
	t.Parallel()
	data, err := os.ReadFile(filepath.Join("..", "..", "docker-compose.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var cmds [][]string
	for _, line := range strings.Split(string(data), "\n") {
		if !strings.HasPrefix(line, "#") {
			break // the header ends at the first line that is not a comment
		}
		m := composeRun.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		argv, err := shlex.Split(m[1])
		if err != nil {
			t.Fatalf("header command %q: %v", m[1], err)
		}
		cmds = append(cmds, argv[1:])
	}
	if len(cmds) < 3 {
		t.Fatalf("docker-compose.yml's header offers %d ferry commands, want enqueue, events tail and dlq ls", len(cmds))
	}

	w := testenv.SharedWorld(t)
	env := cliEnv(w)
	lines, err := demo.TasksJSONLines(w.Manifest)
	if err != nil {
		t.Fatal(err)
	}
	tasksFile := filepath.Join(t.TempDir(), "tasks.jsonl")
	if err := os.WriteFile(tasksFile, lines, 0o644); err != nil {
		t.Fatal(err)
	}
	startWorker(t, env)
	tasks := demo.Tasks(w.Manifest)
	for _, argv := range cmds {
		for i := range argv {
			argv[i] = strings.ReplaceAll(argv[i], "/shared/tasks.jsonl", tasksFile)
		}
		r := runCLI(t, env, "", argv...)
		if r.code != 0 {
			t.Fatalf("ferry %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(argv, " "), r.code, r.stdout, r.stderr)
		}
		switch strings.Join(argv[:min(2, len(argv))], " ") {
		case "enqueue --file":
			for _, dt := range tasks {
				if !strings.Contains(r.stdout, dt.Task.TaskID) {
					t.Errorf("ferry %s did not report task %s:\n%s", strings.Join(argv, " "), dt.Task.TaskID, r.stdout)
				}
			}
		case "events tail":
			// The worker copies the tasks just enqueued; tail shows their
			// events and ends once none has come for its idle time.
			for _, dt := range tasks {
				if !strings.Contains(r.stdout, dt.Task.TaskID) {
					t.Errorf("ferry %s showed no event of task %s:\n%s", strings.Join(argv, " "), dt.Task.TaskID, r.stdout)
				}
			}
		}
	}
}
