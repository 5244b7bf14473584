// Package logging builds the structured logger of a ferry command
// (zerolog). A worker logs JSON for the log pipeline; a command a person runs
// at a terminal logs in zerolog's console format unless FERRY_LOG_FORMAT
// says otherwise, so warnings read as sentences rather than as JSON.
package logging

import (
	"io"
	"os"
	"strings"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/term"
)

// Options say how a command logs.
type Options struct {
	// Level is debug, info, warn or error (info when empty or unknown).
	Level string
	// Format is json or console.
	Format string
	// FormatExplicit says Format was set (environment or flag), not a
	// default; an explicit format is always followed.
	FormatExplicit bool
	// Interactive is true for commands people run (all but `ferry work`):
	// with no explicit format they log in console format when w is a
	// terminal.
	Interactive bool
}

// New returns the logger writing to w (stderr).
func New(w io.Writer, o Options) zerolog.Logger {
	lvl, err := zerolog.ParseLevel(strings.ToLower(o.Level))
	if err != nil || o.Level == "" {
		lvl = zerolog.InfoLevel
	}
	if Format(w, o) == "console" {
		w = zerolog.ConsoleWriter{Out: w, TimeFormat: time.TimeOnly, NoColor: !isTerminal(w)}
	}
	return zerolog.New(w).Level(lvl).With().Timestamp().Logger()
}

// Format is the format New uses for w: the explicit one, else console for
// an interactive command whose w is a terminal, else the configured one.
func Format(w io.Writer, o Options) string {
	if !o.FormatExplicit && o.Interactive && isTerminal(w) {
		return "console"
	}
	return o.Format
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}
