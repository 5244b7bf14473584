package deadletter

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"
)

// WriteTable writes one line per row: message id, task, customer,
// receives, age and the last error cut to one line.
func WriteTable(w io.Writer, rows []Row) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "MESSAGE ID\tTASK\tCUSTOMER\tRECEIVES\tAGE\tLAST ERROR")
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\n", r.MessageID, dash(r.TaskID), dash(r.CustomerID),
			r.ReceiveCount, Age(time.Duration(r.AgeSeconds)*time.Second), dash(oneLine(r.Error, 100)))
	}
	return tw.Flush()
}

// WriteDetail writes one dead letter for a person: ids, attributes, the body
// indented, the last error with its hints, and what a replay would do.
// knowState is false when task state could not be read (no Redis), so a
// replay's effect is unknown.
func WriteDetail(w io.Writer, r Row, knowState bool) {
	fmt.Fprintf(w, "message    %s\n", r.MessageID)
	if r.OriginalMessageID != "" {
		fmt.Fprintf(w, "original   %s\n", r.OriginalMessageID)
	}
	fmt.Fprintf(w, "task       %s\ncustomer   %s\n", dash(r.TaskID), dash(r.CustomerID))
	if r.SubmissionID != "" {
		fmt.Fprintf(w, "submission %s\n", r.SubmissionID)
	}
	fmt.Fprintf(w, "sent       %s (%s ago)\nreceives   %d\nreplays    %d\n", r.SentAt.Format(time.RFC3339),
		Age(time.Duration(r.AgeSeconds)*time.Second), r.ReceiveCount, r.ReplayCount)
	fmt.Fprintln(w, "\nattributes:")
	keys := make([]string, 0, len(r.Attributes))
	for k := range r.Attributes {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(w, "  %s = %s\n", k, r.Attributes[k])
	}
	fmt.Fprintln(w, "\nbody:")
	var pretty bytes.Buffer
	switch {
	case r.Body != nil && json.Indent(&pretty, r.Body, "  ", "  ") == nil:
		fmt.Fprintf(w, "  %s\n", pretty.String())
	case r.Body != nil:
		fmt.Fprintf(w, "  %s\n", r.Body)
	default:
		fmt.Fprintf(w, "  %s\n", r.BodyText)
	}
	fmt.Fprintln(w, "\nlast error:")
	switch {
	case r.RejectReason != "":
		fmt.Fprintf(w, "  %s\n  hint: %s\n", r.Error, r.Hint)
	case r.LastError != nil:
		le := r.LastError
		fmt.Fprintf(w, "  %s (receive %d of message %s): %s\n", le.At.Format(time.RFC3339), le.ReceiveCount, le.MessageID, le.Error)
		for _, at := range le.Attachments {
			fmt.Fprintf(w, "  [%d] %s  %s %s %s: %s\n", at.Index, at.Source, at.Kind, at.Stage, at.Code, at.Message)
			if at.Hint != "" {
				fmt.Fprintf(w, "      hint: %s\n", at.Hint)
			}
		}
	default:
		fmt.Fprintln(w, "  none recorded")
	}
	fmt.Fprintln(w, "\nreplay:")
	switch {
	case r.RejectReason != "":
		fmt.Fprintln(w, "  would be rejected again")
	case r.Terminal != nil:
		fmt.Fprintf(w, "  terminal event %s (%s) already published at %s: a replay is acknowledged without work\n",
			r.Terminal.EventID, r.Terminal.Type, r.Terminal.At.Format(time.RFC3339))
	case !knowState:
		fmt.Fprintln(w, "  unknown (no Redis): a task without a terminal event is processed again")
	default:
		fmt.Fprintln(w, "  no terminal event yet: a replay processes the task again")
	}
}

// WriteSummary writes what a replay moved (or would move) and what failed,
// one line each, then the totals.
func WriteSummary(w io.Writer, s Summary) {
	verb := "moved"
	if s.DryRun {
		verb = "would move"
	}
	for _, it := range s.Moved {
		fmt.Fprintf(w, "%s  %s  task=%s customer=%s\n", verb, it.MessageID, dash(it.TaskID), dash(it.CustomerID))
	}
	for _, it := range s.Failed {
		fmt.Fprintf(w, "failed  %s  task=%s customer=%s: %s\n", it.MessageID, dash(it.TaskID), dash(it.CustomerID), it.Error)
	}
	fmt.Fprintf(w, "%s %d, skipped %d, failed %d (of %d read from %s, to %s)\n", verb, len(s.Moved), s.Skipped,
		len(s.Failed), s.Scanned, QueueLabel(s.From), QueueLabel(s.To))
	if s.SentNotDeleted > 0 {
		fmt.Fprintf(w, "%d of the failed were sent but are still in the DLQ too: a duplicate the fleet absorbs; a later replay sends them again\n", s.SentNotDeleted)
	}
	if s.DryRun {
		fmt.Fprintln(w, "dry run: nothing was moved")
	}
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// oneLine shortens s to one line of at most n runes for a table cell.
func oneLine(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}

// Age renders a duration the way people read queue ages: 45s, 12m, 3h10m,
// 2d4h.
func Age(d time.Duration) string {
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh%02dm", int(d.Hours()), int(d.Minutes())%60)
	default:
		return fmt.Sprintf("%dd%dh", int(d.Hours())/24, int(d.Hours())%24)
	}
}
