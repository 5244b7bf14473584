package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"golang.org/x/term"

	"github.com/ferryworks/ferry/deadletter"
)

// progress draws a one-line progress bar on stderr when it is a terminal;
// anywhere else it draws nothing, so logs and pipes stay clean.
type progress struct {
	w     io.Writer
	total int
	last  time.Time
	on    bool
}

// newProgress starts a bar whose total is the number of messages in the
// queue at url, counted only when the bar is drawn.
func (a *app) newProgress(ctx context.Context, api deadletter.QueueAPI, url string) *progress {
	p := &progress{w: a.stderr}
	f, ok := a.stderr.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return p
	}
	p.on = true
	p.total, _ = deadletter.Count(ctx, api, url)
	return p
}

func (p *progress) update(s deadletter.Summary) {
	if !p.on || time.Since(p.last) < 100*time.Millisecond {
		return
	}
	p.last = time.Now()
	done := len(s.Moved) + len(s.Failed) + s.Skipped
	const width = 30
	fill := 0
	if p.total > 0 {
		fill = min(width, done*width/p.total)
	}
	fmt.Fprintf(p.w, "\r[%s%s] %d/%d  moved %d  failed %d ", strings.Repeat("#", fill), strings.Repeat(".", width-fill),
		done, p.total, len(s.Moved), len(s.Failed))
}

func (p *progress) done() {
	if p.on {
		fmt.Fprint(p.w, "\r\033[K")
	}
}
