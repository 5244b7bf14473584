package main

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/ferryworks/ferry/config"
	"github.com/ferryworks/ferry/internal/output"
	"github.com/ferryworks/ferry/internal/progress"
	"github.com/ferryworks/ferry/internal/render"
	"github.com/ferryworks/ferry/queue"
	"github.com/ferryworks/ferry/task"
	"github.com/ferryworks/ferry/worker"
)

const enqueueUsage = `Enqueue task submissions on FERRY_QUEUE_URL.

Tasks come from one of:
  --file F         a JSON file: one task object, an array of them, or JSON
                   lines (one task per line); --file - reads stdin
  (stdin)          the same, when neither --file nor --task is given
  --customer C --task T --uri U [--uri U2 ...] [--submission S]

Every attachment URI is checked with the parser the workers use before
anything is sent: a URI ferry can never fetch (ftp://, s3:// without a key)
is refused and nothing is sent (exit status 2). Every task is then validated;
one result line is printed per task. Exit status 1 when any task was not
enqueued.`

// enqueueProgressMin is the most tasks enqueue sends without a progress
// report: a few hundred go out in about a second.
const enqueueProgressMin = 300

// enqueueCommand is `ferry enqueue`.
type enqueueCommand struct {
	app                              *app
	file, customer, task, submission string
	uris                             []string
	format                           *output.Flag
}

func newEnqueueCommand(a *app) *cobra.Command {
	c := &enqueueCommand{app: a, format: output.NewFlag()}
	cmd := &cobra.Command{
		Use:   "enqueue",
		Short: "Enqueue task submissions",
		Long:  enqueueUsage,
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return c.Run(cmd.Context(), cmd.InOrStdin())
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&c.file, "file", "", "JSON `FILE`: one task, an array of tasks, or JSON lines (- for stdin)")
	fl.StringVar(&c.customer, "customer", "", "customer `ID` (with --task and --uri)")
	fl.StringVar(&c.task, "task", "", "task `ID` (with --customer and --uri)")
	fl.StringVar(&c.submission, "submission", "", "submission `ID`, to resubmit a task that already has a terminal event")
	fl.StringArrayVar(&c.uris, "uri", nil, "attachment `URI` (repeatable)")
	c.format.Register(fl)
	return a.settings(cmd, config.GroupTasks, config.GroupTaskLimits, config.GroupAWS, config.GroupProgress)
}

func (c *enqueueCommand) Run(ctx context.Context, stdin io.Reader) error {
	a := c.app
	tasks, err := c.tasks(stdin)
	if err != nil {
		return err
	}
	if len(tasks) == 0 {
		return usagef("no tasks given: pass --file, JSON lines on stdin, or --customer/--task/--uri")
	}
	for _, t := range tasks {
		if err := worker.CheckURIs(t); err != nil {
			return usagef("task %q: %v; nothing was sent", t.TaskID, err)
		}
	}
	if err := a.need(config.NeedQueue); err != nil {
		return err
	}
	awsCfg, err := a.awsConfig(ctx)
	if err != nil {
		return err
	}
	p := queue.NewProducer(a.sqsClient(awsCfg), a.cfg.QueueURL, task.Limits{MaxAttachments: a.cfg.MaxAttachments})
	var prog *progress.Reporter // nil reports nothing
	if len(tasks) > enqueueProgressMin {
		prog = a.progress(progress.Options{What: "enqueue", Unit: "tasks", Total: len(tasks)})
		p.Progress = func(done int) { prog.Update(done, "") }
	}
	results := p.Send(ctx, tasks)
	prog.Finish()
	failed := 0
	out := output.New(a.stdout, c.format.Format)
	for _, r := range results {
		if r.Err != nil {
			failed++
		}
		line := map[string]string{"task_id": r.TaskID, "status": "enqueued", "message_id": r.MessageID}
		if r.Err != nil {
			line = map[string]string{"task_id": r.TaskID, "status": "error", "error": r.Err.Error()}
		}
		_ = out.Item(line, func(w io.Writer) error { return render.SendResult(w, r) })
	}
	if failed > 0 {
		fmt.Fprintf(a.stderr, "ferry: %d of %d tasks not enqueued (see the lines above)\n", failed, len(results))
		return exitError{code: 1}
	}
	return nil
}

// tasks reads the tasks from exactly one source; a malformed source is a
// usage error naming the file and line.
func (c *enqueueCommand) tasks(stdin io.Reader) ([]task.Task, error) {
	inline := c.customer != "" || c.task != "" || len(c.uris) > 0
	switch {
	case c.file != "" && inline:
		return nil, usagef("--file and --customer/--task/--uri are alternatives: pass one")
	case inline:
		if c.customer == "" || c.task == "" || len(c.uris) == 0 {
			return nil, usagef("--customer, --task and at least one --uri are needed together")
		}
		t := task.Task{Version: task.Version, TaskID: c.task, CustomerID: c.customer, SubmissionID: c.submission}
		for _, u := range c.uris {
			t.Attachments = append(t.Attachments, task.Attachment{URI: u})
		}
		return []task.Task{t}, nil
	case c.file != "" && c.file != "-":
		fh, err := os.Open(c.file)
		if err != nil {
			return nil, fmt.Errorf("read --file: %w", err)
		}
		defer fh.Close()
		ts, err := task.ReadAll(fh)
		if err != nil {
			return nil, usagef("%s: %v", c.file, err)
		}
		return ts, nil
	default:
		// Waiting for a person to type JSON is never what was meant.
		if f, ok := stdin.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
			return nil, usagef("no tasks given: pass --file, JSON lines on stdin, or --customer/--task/--uri")
		}
		ts, err := task.ReadAll(stdin)
		if err != nil {
			return nil, usagef("stdin: %v", err)
		}
		return ts, nil
	}
}
