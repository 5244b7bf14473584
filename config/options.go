package config

import (
	"fmt"
	"io"
	"strings"
)

// Option is one setting as `ferry options` lists it: the variable, its flag,
// default and meaning, and the commands that read it.
type Option struct {
	Var
	ReadBy []string `json:"read_by"`
}

// Options lists every setting in a stable order; readBy gives, per group,
// the commands that declared it (the CLI knows its commands, config its
// settings).
func Options(readBy map[Group][]string) []Option {
	out := make([]Option, 0, len(settings))
	for _, s := range settings {
		cmds := readBy[s.Group]
		if cmds == nil {
			cmds = []string{}
		}
		out = append(out, Option{Var: s.Var, ReadBy: cmds})
	}
	return out
}

// WriteOptions writes opts for people, one block per setting:
//
//	FERRY_QUEUE_URL, --queue-url URL
//	    tasks queue URL
//	    read by: work, enqueue, dlq replay
func WriteOptions(w io.Writer, opts []Option) error {
	var b strings.Builder
	b.WriteString("Every setting is an environment variable; a command that reads a FERRY_* setting also\n" +
		"takes it as the flag shown, which wins over the environment. `ferry COMMAND --help` lists\n" +
		"the settings that command reads.\n")
	for _, o := range opts {
		b.WriteString("\n")
		b.WriteString(o.Name)
		if o.Flag != "" {
			fmt.Fprintf(&b, ", --%s", o.Flag)
			if o.Arg != "" {
				b.WriteString(" " + o.Arg)
			}
		}
		fmt.Fprintf(&b, "\n    %s\n", o.Usage)
		if o.Default != "" {
			fmt.Fprintf(&b, "    default: %s\n", o.Default)
		}
		if o.Flag == "" {
			b.WriteString("    no flag: the AWS SDK reads it from the environment\n")
		}
		if len(o.ReadBy) > 0 {
			fmt.Fprintf(&b, "    read by: %s\n", strings.Join(o.ReadBy, ", "))
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}
