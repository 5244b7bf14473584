package fetcher

import (
	"bytes"
	"errors"
	"io"
	"testing"
)

func TestSourceReaderLimit(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		size    int
		limit   int64
		wantErr error
	}{
		{"under", 10, 11, nil},
		{"exact", 11, 11, nil},
		{"over by one", 12, 11, errTooLarge},
		{"far over", 1 << 20, 100, errTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := &sourceReader{r: bytes.NewReader(make([]byte, tt.size)), limit: tt.limit}
			n, err := io.Copy(io.Discard, r)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if tt.wantErr != nil && n > tt.limit+32<<10 {
				t.Fatalf("read %d bytes past a limit of %d", n, tt.limit)
			}
		})
	}
}

type failingReader struct{}

func (failingReader) Read([]byte) (int, error) { return 0, errors.New("connection reset") }

func TestSourceReaderMarksReadErrors(t *testing.T) {
	t.Parallel()
	_, err := (&sourceReader{r: failingReader{}, limit: 10}).Read(make([]byte, 4))
	var sre *sourceReadError
	if !errors.As(err, &sre) {
		t.Fatalf("err = %v, want *sourceReadError", err)
	}
}

func TestNewValidates(t *testing.T) {
	t.Parallel()
	base := func() Options {
		return Options{S3: httpsCopier(t, nil, 0).s3, Integrations: noIntegrations{}, Bucket: "ferry-internal"}
	}
	tests := []struct {
		name   string
		mutate func(*Options)
	}{
		{"no S3", func(o *Options) { o.S3 = nil }},
		{"no registry", func(o *Options) { o.Integrations = nil }},
		{"no bucket", func(o *Options) { o.Bucket = "" }},
		{"small parts", func(o *Options) { o.PartSize = 1 << 20 }},
		{"bad policy", func(o *Options) { o.CrossAccount = "open" }},
	}
	for _, tt := range tests {
		o := base()
		tt.mutate(&o)
		if _, err := New(o); err == nil {
			t.Errorf("%s: New accepted %+v", tt.name, o)
		}
	}
	if _, err := New(base()); err != nil {
		t.Fatal(err)
	}
}
