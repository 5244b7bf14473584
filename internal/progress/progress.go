// Package progress shows how far a long CLI operation (a replay, a purge, a
// large enqueue) has come, on stderr: a bar redrawn in place when stderr is a
// terminal, and otherwise a plain line every few seconds, so that a log, a
// pipe or `kubectl exec` without -t still shows that the operation moves.
// Nothing it writes goes to stdout, which stays the command's answer.
package progress

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"
)

// DefaultInterval is how often a line is written when stderr is not a
// terminal.
const DefaultInterval = 5 * time.Second

// Options describe one operation.
type Options struct {
	// What names the operation at the start of every line ("replay").
	What string
	// Unit names what is counted ("messages").
	Unit string
	// Total is how many units the operation expects; 0 when unknown.
	Total int
	// Interval is how often a line is written off a terminal; 0 means
	// DefaultInterval.
	Interval time.Duration
	// Terminal forces the bar (true) or the lines (false); nil decides by
	// whether W is a terminal.
	Terminal *bool
	// Now is the clock (time.Now when nil).
	Now func() time.Time
}

// Reporter reports one operation's progress. Its methods may be called from
// any goroutine; a nil *Reporter reports nothing.
type Reporter struct {
	mu       sync.Mutex
	w        io.Writer
	o        Options
	bar      *progressbar.ProgressBar
	start    time.Time
	lastLine time.Time
	done     int
	detail   string
	finished bool
}

// New starts reporting on w (stderr).
func New(w io.Writer, o Options) *Reporter {
	if o.Interval <= 0 {
		o.Interval = DefaultInterval
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	r := &Reporter{w: w, o: o, start: o.Now()}
	r.lastLine = r.start
	tty := IsTerminal(w)
	if o.Terminal != nil {
		tty = *o.Terminal
	}
	if tty {
		max := o.Total
		if max <= 0 {
			max = -1 // a spinner
		}
		r.bar = progressbar.NewOptions(max,
			progressbar.OptionSetWriter(w),
			progressbar.OptionSetDescription(o.What),
			progressbar.OptionShowCount(),
			progressbar.OptionSetItsString(o.Unit),
			progressbar.OptionShowIts(),
			progressbar.OptionSetWidth(30),
			progressbar.OptionThrottle(100*time.Millisecond),
			progressbar.OptionClearOnFinish(),
		)
	}
	return r
}

// IsTerminal says whether w is a terminal (a bar can be redrawn in place).
func IsTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// SetTotal changes the expected total, e.g. once it is known.
func (r *Reporter) SetTotal(total int) {
	if r == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.o.Total = total
	if r.bar != nil && total > 0 {
		r.bar.ChangeMax(total)
	}
}

// Update records that done units are finished; detail says more ("moved
// 118, failed 2"). Off a terminal a line is written at most once per
// Interval.
func (r *Reporter) Update(done int, detail string) {
	if r == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.finished {
		return
	}
	r.done, r.detail = done, detail
	if r.bar != nil {
		if detail != "" {
			r.bar.Describe(r.o.What + " (" + detail + ")")
		}
		_ = r.bar.Set(done)
		return
	}
	if now := r.o.Now(); now.Sub(r.lastLine) >= r.o.Interval {
		r.lastLine = now
		r.line(now, "")
	}
}

// Finish ends the report: the bar is cleared (the command's summary
// follows), off a terminal a last line says where the operation ended.
func (r *Reporter) Finish() {
	if r == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.finished {
		return
	}
	r.finished = true
	if r.bar != nil {
		_ = r.bar.Finish()
		return
	}
	r.line(r.o.Now(), "done")
}

// line writes "what: done/total unit (p%), detail; rate, elapsed".
func (r *Reporter) line(now time.Time, state string) {
	elapsed := now.Sub(r.start)
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %d", r.o.What, r.done)
	if r.o.Total > 0 {
		fmt.Fprintf(&b, "/%d", r.o.Total)
	}
	if r.o.Unit != "" {
		b.WriteString(" " + r.o.Unit)
	}
	if r.o.Total > 0 {
		fmt.Fprintf(&b, " (%d%%)", min(100, r.done*100/r.o.Total))
	}
	if r.detail != "" {
		b.WriteString(", " + r.detail)
	}
	if secs := elapsed.Seconds(); secs >= 1 {
		fmt.Fprintf(&b, "; %.0f/s", float64(r.done)/secs)
	}
	if state != "" {
		fmt.Fprintf(&b, "; %s in %s", state, elapsed.Round(100*time.Millisecond))
	} else {
		fmt.Fprintf(&b, "; %s elapsed", elapsed.Round(time.Second))
	}
	b.WriteString("\n")
	_, _ = io.WriteString(r.w, b.String())
}
