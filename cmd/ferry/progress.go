package main

import "github.com/ferryworks/ferry/internal/progress"

// progress starts a progress report on stderr at FERRY_PROGRESS_INTERVAL.
func (a *app) progress(o progress.Options) *progress.Reporter {
	o.Interval = a.cfg.ProgressInterval
	return progress.New(a.stderr, o)
}
