package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/ferryworks/ferry/config"
	"github.com/ferryworks/ferry/queue"
)

const enqueueUsage = `Enqueue task submissions on FERRY_QUEUE_URL.

Tasks come from one of:
  --file F         a JSON file: one task object or an array of them
  (stdin)          JSON lines, one task per line, when neither --file nor --task is given
  --customer C --task T --uri U [--uri U2 ...] [--submission S]

Every task is validated before anything is sent; one result line is printed
per task. Exit status 1 when any task was not enqueued.`

type enqueueFlags struct {
	file, customer, task, submission, output string
	uris                                     []string
}

func newEnqueueCommand(a *app) *cobra.Command {
	var f enqueueFlags
	cmd := &cobra.Command{
		Use:   "enqueue",
		Short: "Enqueue task submissions",
		Long:  enqueueUsage,
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.enqueue(cmd.Context(), f, cmd.InOrStdin())
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.file, "file", "", "JSON file with one task or an array of tasks")
	fl.StringVar(&f.customer, "customer", "", "customer id (with --task and --uri)")
	fl.StringVar(&f.task, "task", "", "task id (with --customer and --uri)")
	fl.StringVar(&f.submission, "submission", "", "submission id, to resubmit a task that already has a terminal event")
	fl.StringArrayVar(&f.uris, "uri", nil, "attachment URI (repeatable)")
	fl.StringVarP(&f.output, "output", "o", "text", "output format: text or json")
	return cmd
}

func (a *app) enqueue(ctx context.Context, f enqueueFlags, stdin io.Reader) error {
	if err := outputFormat(f.output); err != nil {
		return err
	}
	tasks, err := readTasks(f, stdin)
	if err != nil {
		return err
	}
	if len(tasks) == 0 {
		return usagef("no tasks given: pass --file, JSON lines on stdin, or --customer/--task/--uri")
	}
	if err := a.need(config.NeedQueue); err != nil {
		return err
	}
	awsCfg, err := a.awsConfig(ctx)
	if err != nil {
		return err
	}
	p := queue.NewProducer(a.sqsClient(awsCfg), a.cfg.QueueURL, queue.Limits{MaxAttachments: a.cfg.MaxAttachments})
	results := p.Send(ctx, tasks)
	failed := 0
	enc := json.NewEncoder(a.stdout)
	for _, r := range results {
		if r.Err != nil {
			failed++
		}
		if f.output == "json" {
			line := map[string]string{"task_id": r.TaskID, "status": "enqueued", "message_id": r.MessageID}
			if r.Err != nil {
				line = map[string]string{"task_id": r.TaskID, "status": "error", "error": r.Err.Error()}
			}
			_ = enc.Encode(line)
			continue
		}
		if r.Err != nil {
			fmt.Fprintf(a.stdout, "%-24s error     %v\n", r.TaskID, r.Err)
		} else {
			fmt.Fprintf(a.stdout, "%-24s enqueued  %s\n", r.TaskID, r.MessageID)
		}
	}
	if failed > 0 {
		fmt.Fprintf(a.stderr, "ferry: %d of %d tasks not enqueued (see the lines above)\n", failed, len(results))
		return exitError{code: 1}
	}
	return nil
}

// readTasks reads the tasks from exactly one source; a malformed source is
// a usage error naming the line or file.
func readTasks(f enqueueFlags, stdin io.Reader) ([]queue.Task, error) {
	inline := f.customer != "" || f.task != "" || len(f.uris) > 0
	switch {
	case f.file != "" && inline:
		return nil, usagef("--file and --customer/--task/--uri are alternatives: pass one")
	case inline:
		if f.customer == "" || f.task == "" || len(f.uris) == 0 {
			return nil, usagef("--customer, --task and at least one --uri are needed together")
		}
		t := queue.Task{Version: queue.TaskVersion, TaskID: f.task, CustomerID: f.customer, SubmissionID: f.submission}
		for _, u := range f.uris {
			t.Attachments = append(t.Attachments, queue.Attachment{URI: u})
		}
		return []queue.Task{t}, nil
	case f.file != "":
		raw, err := os.ReadFile(f.file)
		if err != nil {
			return nil, fmt.Errorf("read --file: %w", err)
		}
		raw = bytes.TrimSpace(raw)
		if len(raw) > 0 && raw[0] == '[' {
			var ts []queue.Task
			if err := json.Unmarshal(raw, &ts); err != nil {
				return nil, usagef("%s: not a JSON array of tasks: %v", f.file, err)
			}
			return withVersion(ts), nil
		}
		var t queue.Task
		if err := json.Unmarshal(raw, &t); err != nil {
			return nil, usagef("%s: not a JSON task object: %v", f.file, err)
		}
		return withVersion([]queue.Task{t}), nil
	default:
		if f, ok := stdin.(*os.File); ok {
			if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
				return nil, usagef("no tasks given: pass --file, JSON lines on stdin, or --customer/--task/--uri")
			}
		}
		var ts []queue.Task
		sc := bufio.NewScanner(stdin)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for n := 1; sc.Scan(); n++ {
			line := strings.TrimSpace(sc.Text())
			if line == "" {
				continue
			}
			var t queue.Task
			if err := json.Unmarshal([]byte(line), &t); err != nil {
				return nil, usagef("stdin line %d: not a JSON task: %v", n, err)
			}
			ts = append(ts, t)
		}
		if err := sc.Err(); err != nil {
			return nil, fmt.Errorf("read stdin: %w", err)
		}
		return withVersion(ts), nil
	}
}

// withVersion fills in the current version where a producer left it out.
func withVersion(ts []queue.Task) []queue.Task {
	for i := range ts {
		if ts[i].Version == 0 {
			ts[i].Version = queue.TaskVersion
		}
	}
	return ts
}
