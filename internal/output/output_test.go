package output

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/spf13/pflag"
	"go.yaml.in/yaml/v3"
)

type answer struct {
	Account string            `json:"account"`
	Count   int               `json:"count"`
	Note    string            `json:"note,omitempty"`
	Policy  string            `json:"policy"`
	Tags    map[string]string `json:"tags"`
	List    []string          `json:"list"`
}

var sample = answer{Account: "012345678901", Count: 3, Policy: "line one\nline two", Tags: map[string]string{"b": "2", "a": "true"}, List: []string{}}

func TestDocumentFormats(t *testing.T) {
	t.Parallel()
	var j bytes.Buffer
	if err := New(&j, JSON).Document(sample, nil); err != nil {
		t.Fatal(err)
	}
	var back answer
	if err := json.Unmarshal(j.Bytes(), &back); err != nil || back.Account != sample.Account || back.Policy != sample.Policy {
		t.Fatalf("json document %q: %v", j.String(), err)
	}
	if !strings.Contains(j.String(), "\n  \"account\"") {
		t.Errorf("json document is not indented:\n%s", j.String())
	}

	var y bytes.Buffer
	if err := New(&y, YAML).Document(sample, nil); err != nil {
		t.Fatal(err)
	}
	// The same fields under the json names, in the same order, and an
	// account id that stays a string.
	var m map[string]any
	if err := yaml.Unmarshal(y.Bytes(), &m); err != nil {
		t.Fatalf("yaml document does not parse: %v\n%s", err, y.String())
	}
	if m["account"] != "012345678901" || m["count"] != 3 || m["policy"] != sample.Policy || m["note"] != nil {
		t.Errorf("yaml document decodes to %#v:\n%s", m, y.String())
	}
	if tags, _ := m["tags"].(map[string]any); tags["a"] != "true" {
		t.Errorf("the string \"true\" lost its quotes: %#v\n%s", m["tags"], y.String())
	}
	if strings.HasPrefix(y.String(), "---") || strings.Contains(y.String(), "{") || strings.Index(y.String(), "account") > strings.Index(y.String(), "count") {
		t.Errorf("a single answer is one block document in field order:\n%s", y.String())
	}

	var tx bytes.Buffer
	if err := New(&tx, Text).Document(sample, func(w io.Writer) error { _, err := io.WriteString(w, "people\n"); return err }); err != nil || tx.String() != "people\n" {
		t.Errorf("text: %q %v", tx.String(), err)
	}
	if err := New(io.Discard, "terraform").Document(sample, nil); err == nil {
		t.Error("a command's own format must not be printed as something else")
	}
}

func TestItemStreams(t *testing.T) {
	t.Parallel()
	var j bytes.Buffer
	p := New(&j, JSON)
	for i := 0; i < 3; i++ {
		if err := p.Item(answer{Account: "a", Count: i, Policy: "x\ny"}, nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.Item(json.RawMessage("{\n  \"raw\": true\n}"), nil); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(j.String(), "\n"), "\n")
	if len(lines) != 4 {
		t.Fatalf("want 4 JSON lines:\n%s", j.String())
	}
	for i, l := range lines {
		if !json.Valid([]byte(l)) {
			t.Errorf("line %d is not one JSON document: %q", i, l)
		}
	}
	if lines[3] != `{"raw":true}` {
		t.Errorf("raw JSON line %q", lines[3])
	}

	var y bytes.Buffer
	p = New(&y, YAML)
	for i := 0; i < 3; i++ {
		if err := p.Item(answer{Account: "a", Count: i}, nil); err != nil {
			t.Fatal(err)
		}
	}
	dec := yaml.NewDecoder(&y)
	n := 0
	for {
		var a map[string]any
		err := dec.Decode(&a)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if a["count"] != n {
			t.Errorf("document %d: %v", n, a)
		}
		n++
	}
	if n != 3 || strings.Count(y.String(), "---\n") != 3 && y.Len() > 0 {
		t.Errorf("want 3 documents each after ---, got %d", n)
	}
}

func TestFlag(t *testing.T) {
	t.Parallel()
	f := NewFlag("terraform")
	fs := pflag.NewFlagSet("x", pflag.ContinueOnError)
	fs.SetOutput(io.Discard)
	f.Register(fs)
	if f.Format != Text {
		t.Fatalf("default %q", f.Format)
	}
	if err := fs.Parse([]string{"-o", "yaml"}); err != nil || f.Format != YAML {
		t.Fatalf("-o yaml: %v %q", err, f.Format)
	}
	if err := fs.Parse([]string{"--output=terraform"}); err != nil || f.Format != "terraform" {
		t.Fatalf("a command's own format: %v %q", err, f.Format)
	}
	err := fs.Parse([]string{"-o", "xml"})
	if err == nil || !strings.Contains(err.Error(), "text, json, yaml or terraform") {
		t.Errorf("-o xml: %v, want the choices named", err)
	}
	if u := fs.FlagUsages(); !strings.Contains(u, "-o, --output FORMAT") {
		t.Errorf("help: %s", u)
	}
	if got := strings.Join(NewFlag().Choices(), ","); got != "text,json,yaml" {
		t.Errorf("choices %s", got)
	}
}
