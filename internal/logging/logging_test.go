package logging

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/ferryworks/ferry/internal/testenv"
)

func TestFormat(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	// Off a terminal the configured format holds, explicit or not.
	for _, o := range []Options{
		{Format: "json", Interactive: true},
		{Format: "json", Interactive: false},
		{Format: "console", FormatExplicit: true, Interactive: false},
	} {
		if got := Format(&buf, o); got != o.Format {
			t.Errorf("%+v: %s", o, got)
		}
	}
	log := New(&buf, Options{Level: "warn", Format: "json", Interactive: true})
	log.Info().Msg("hidden")
	log.Warn().Str("k", "v").Msg("shown")
	var line map[string]any
	if err := json.Unmarshal(buf.Bytes(), &line); err != nil || line["message"] != "shown" || line["k"] != "v" {
		t.Errorf("json log at warn: %q (%v)", buf.String(), err)
	}
	buf.Reset()
	people := New(&buf, Options{Format: "console", FormatExplicit: true})
	people.Info().Msg("for people")
	if !strings.Contains(buf.String(), "INF for people") || strings.Contains(buf.String(), "{") {
		t.Errorf("console log: %q", buf.String())
	}
}

// On a terminal an interactive command logs for people unless the format
// was set explicitly; a worker keeps JSON.
func TestFormatOnATerminal(t *testing.T) {
	t.Parallel()
	tty, _ := testenv.PTY(t)
	if !isTerminal(tty) {
		t.Fatalf("%s is not a terminal", tty.Name())
	}
	cases := []struct {
		o    Options
		want string
	}{
		{Options{Format: "json", Interactive: true}, "console"},
		{Options{Format: "json", FormatExplicit: true, Interactive: true}, "json"},
		{Options{Format: "json", Interactive: false}, "json"},
	}
	for _, c := range cases {
		if got := Format(tty, c.o); got != c.want {
			t.Errorf("%+v on a terminal: %s, want %s", c.o, got, c.want)
		}
	}
}
