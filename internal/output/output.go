// Package output is how every ferry command writes its answer: the -o flag
// (text, json, yaml, and any format a command adds) and a Printer that writes
// either one document (a single answer) or a stream of documents (one per
// task, event or dead letter), so scripts get the same shapes from every
// command:
//
//   - json: a single answer is one indented JSON document; a stream is JSON
//     lines, one compact object per line, written as each element is known.
//   - yaml: a single answer is one YAML document; a stream is YAML documents,
//     each introduced by "---".
//   - text: whatever the command's text renderer writes, for people.
//
// YAML is derived from the JSON encoding, so both carry the same field names
// (the json tags) in the same order.
package output

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/pflag"
	"go.yaml.in/yaml/v3"
)

// Format is an output format, the value of -o.
type Format string

// The formats every command offers.
const (
	Text Format = "text"
	JSON Format = "json"
	YAML Format = "yaml"
)

// Flag is the value of a command's -o/--output flag: one of text, json, yaml
// and the formats the command adds. A value outside them fails while flags
// are parsed, so the mistake is reported as a usage error before the command
// does anything.
type Flag struct {
	Format  Format
	allowed []Format
}

// NewFlag returns a Flag defaulting to text that accepts text, json, yaml
// and extra.
func NewFlag(extra ...Format) *Flag {
	return &Flag{Format: Text, allowed: append([]Format{Text, JSON, YAML}, extra...)}
}

// Register adds -o/--output to fs.
func (f *Flag) Register(fs *pflag.FlagSet) {
	fs.VarP(f, "output", "o", "output format: "+f.choices())
}

// Set accepts one of the allowed formats.
func (f *Flag) Set(s string) error {
	for _, a := range f.allowed {
		if Format(s) == a {
			f.Format = a
			return nil
		}
	}
	return fmt.Errorf("%q is not a format: want %s", s, f.choices())
}

// String is the chosen format.
func (f *Flag) String() string { return string(f.Format) }

// Type is the flag's placeholder in help (-o FORMAT).
func (f *Flag) Type() string { return "FORMAT" }

// Choices lists the allowed formats, for shell completion.
func (f *Flag) Choices() []string {
	out := make([]string, len(f.allowed))
	for i, a := range f.allowed {
		out[i] = string(a)
	}
	return out
}

func (f *Flag) choices() string {
	c := f.Choices()
	if len(c) == 1 {
		return c[0]
	}
	return strings.Join(c[:len(c)-1], ", ") + " or " + c[len(c)-1]
}

// Printer writes a command's answer to W in Format.
type Printer struct {
	W      io.Writer
	Format Format
}

// New returns a Printer writing format to w.
func New(w io.Writer, format Format) *Printer { return &Printer{W: w, Format: format} }

// Document writes v as the command's one answer: an indented JSON document,
// a YAML document, or text (nil text writes nothing). A Format other than
// text, json and yaml is the command's to write; here it is an error.
func (p *Printer) Document(v any, text func(io.Writer) error) error {
	return p.write(v, text, false)
}

// Item writes v as one element of a stream: a JSON line, a "---"-introduced
// YAML document, or text. Each element is written at once, so a reader of a
// pipe sees it as soon as the command knows it. A json.RawMessage is
// written as the JSON it holds, compacted.
func (p *Printer) Item(v any, text func(io.Writer) error) error {
	return p.write(v, text, true)
}

// write is Document, or Item when stream is true.
func (p *Printer) write(v any, text func(io.Writer) error, stream bool) error {
	switch p.Format {
	case JSON:
		if !stream {
			enc := json.NewEncoder(p.W)
			enc.SetIndent("", "  ")
			return enc.Encode(v)
		}
		b, err := json.Marshal(v)
		if err != nil {
			return err
		}
		_, err = p.W.Write(append(b, '\n'))
		return err
	case YAML:
		return writeYAML(p.W, v, stream)
	case Text:
		if text == nil {
			return nil
		}
		return text(p.W)
	}
	return fmt.Errorf("output: format %q is not printed here", p.Format)
}

// writeYAML encodes v through its JSON form, so YAML has the JSON's field
// names, omissions and order.
func writeYAML(w io.Writer, v any, stream bool) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil {
		return fmt.Errorf("output: yaml from json: %w", err)
	}
	plain(&doc)
	var buf bytes.Buffer
	if stream {
		buf.WriteString("---\n")
	}
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(&doc); err != nil {
		return err
	}
	if err := enc.Close(); err != nil {
		return err
	}
	_, err = w.Write(buf.Bytes())
	return err
}

// plain drops the styles decoding JSON leaves on every node (flow mappings,
// double-quoted strings), so the YAML reads as block YAML; the encoder still
// quotes a string wherever it would otherwise read as another type.
func plain(n *yaml.Node) {
	n.Style = 0
	for _, c := range n.Content {
		plain(c)
	}
}
