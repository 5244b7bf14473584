package awsclient

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	smithylog "github.com/aws/smithy-go/logging"
	"github.com/rs/zerolog"
)

// isolate points the SDK at no shared config files and the given region.
func isolate(t *testing.T, region string) {
	dir := t.TempDir()
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(dir, "config"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(dir, "credentials"))
	t.Setenv("AWS_PROFILE", "")
	t.Setenv("AWS_CA_BUNDLE", "")
	t.Setenv("AWS_DEFAULT_REGION", "")
	t.Setenv("AWS_REGION", region)
}

func TestLoad(t *testing.T) {
	ctx := context.Background()
	isolate(t, "eu-west-1")
	for _, tc := range []struct{ ask, want int }{{0, MinConns}, {10, MinConns}, {200, 200}} {
		cfg, err := Load(ctx, LoadOptions{MaxConns: tc.ask})
		if err != nil {
			t.Fatal(err)
		}
		if cfg.Region != "eu-west-1" {
			t.Errorf("region %q, want eu-west-1", cfg.Region)
		}
		guarded, ok := cfg.HTTPClient.(client)
		if !ok {
			t.Fatalf("HTTP client %T is not guarded", cfg.HTTPClient)
		}
		tr := guarded.next.(*awshttp.BuildableClient).GetTransport()
		if tr.MaxIdleConnsPerHost != tc.want || tr.MaxIdleConns != tc.want {
			t.Errorf("MaxConns %d: %d idle connections per host, %d in all; want %d", tc.ask, tr.MaxIdleConnsPerHost, tr.MaxIdleConns, tc.want)
		}
	}
}

func TestLoadSaysWhatToFix(t *testing.T) {
	ctx := context.Background()
	isolate(t, "")
	if _, err := Load(ctx, LoadOptions{}); err == nil || err.Error() != "no AWS region: set AWS_REGION (e.g. us-east-1)" {
		t.Errorf("no region: err = %v", err)
	}

	t.Setenv("AWS_REGION", "us-east-1")
	missing := filepath.Join(t.TempDir(), "ca.pem")
	t.Setenv("AWS_CA_BUNDLE", missing)
	want := "AWS_CA_BUNDLE=" + missing + ": no such file or directory: point it at a PEM file of CA certificates, or unset it"
	if _, err := Load(ctx, LoadOptions{}); err == nil || err.Error() != want {
		t.Errorf("missing CA bundle: err = %v, want %q", err, want)
	}

	notPEM := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(notPEM, []byte("not a certificate\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("AWS_CA_BUNDLE", notPEM)
	if _, err := Load(ctx, LoadOptions{}); err == nil || !strings.HasPrefix(err.Error(), "AWS_CA_BUNDLE="+notPEM+": ") ||
		!strings.HasSuffix(err.Error(), ": it must hold PEM-encoded CA certificates") {
		t.Errorf("a CA bundle that is not PEM: err = %v", err)
	}
}

func TestSDKLogLevels(t *testing.T) {
	t.Parallel()
	var b bytes.Buffer
	l := sdkLogger{zerolog.New(&b).Level(zerolog.DebugLevel)}
	l.Logf(smithylog.Warn, "retry %d", 2)
	l.Logf(smithylog.Debug, "checksum %s", "skipped")
	want := `{"level":"warn","message":"aws sdk: retry 2"}` + "\n" + `{"level":"debug","message":"aws sdk: checksum skipped"}` + "\n"
	if b.String() != want {
		t.Errorf("logged\n%s\nwant\n%s", b.String(), want)
	}
}
