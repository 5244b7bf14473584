package progress

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/ferryworks/ferry/internal/testenv"
)

func lines(b *bytes.Buffer) []string {
	s := strings.TrimSuffix(b.String(), "\n")
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

// Off a terminal: one plain line per interval at most, and a last line
// when done, each saying how far, out of what, and how fast.
func TestLinesOffATerminal(t *testing.T) {
	t.Parallel()
	clock := testenv.FixedClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	var out bytes.Buffer
	r := New(&out, Options{What: "replay", Unit: "messages", Total: 200, Interval: 5 * time.Second, Now: clock.Now})
	r.Update(10, "moved 10, failed 0")
	if got := lines(&out); len(got) != 0 {
		t.Fatalf("a line before the first interval passed: %q", got)
	}
	clock.Advance(5 * time.Second)
	r.Update(50, "moved 49, failed 1")
	clock.Advance(time.Second)
	r.Update(60, "moved 59, failed 1") // within the interval: no line
	clock.Advance(4 * time.Second)
	r.Update(100, "moved 99, failed 1")
	clock.Advance(2 * time.Second)
	r.Update(200, "moved 199, failed 1")
	r.Finish()
	r.Finish()            // once only
	r.Update(201, "late") // nothing after Finish
	got := lines(&out)
	want := []string{
		"replay: 50/200 messages (25%), moved 49, failed 1; 10/s; 5s elapsed",
		"replay: 100/200 messages (50%), moved 99, failed 1; 10/s; 10s elapsed",
		"replay: 200/200 messages (100%), moved 199, failed 1; 17/s; done in 12s",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("lines:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// An unknown total still reports counts; SetTotal fills it in later.
func TestUnknownTotal(t *testing.T) {
	t.Parallel()
	clock := testenv.FixedClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	var out bytes.Buffer
	r := New(&out, Options{What: "purge", Unit: "messages", Now: clock.Now})
	clock.Advance(DefaultInterval)
	r.Update(3, "")
	r.SetTotal(6)
	r.Update(6, "")
	r.Finish()
	got := lines(&out)
	if len(got) != 2 || got[0] != "purge: 3 messages; 1/s; 5s elapsed" || got[1] != "purge: 6/6 messages (100%); 1/s; done in 5s" {
		t.Errorf("lines: %q", got)
	}
	var nilReporter *Reporter
	nilReporter.Update(1, "")
	nilReporter.Finish()
}

// On a terminal the bar is drawn and cleared at the end, so the summary that
// follows starts on a clean line.
func TestBarOnATerminal(t *testing.T) {
	t.Parallel()
	yes := true
	var out bytes.Buffer
	r := New(&out, Options{What: "enqueue", Unit: "tasks", Total: 10, Terminal: &yes})
	for i := 1; i <= 10; i++ {
		r.Update(i, "")
	}
	r.Finish()
	if !strings.Contains(out.String(), "enqueue") || !strings.Contains(out.String(), "/10, ") || !strings.HasSuffix(out.String(), "\r") {
		t.Errorf("bar output %q", out.String())
	}
	if IsTerminal(&out) {
		t.Error("a buffer is not a terminal")
	}
}
