package awsclient

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	smithylog "github.com/aws/smithy-go/logging"
	"github.com/rs/zerolog"
)

// MinConns is the fewest idle connections per host a loaded configuration's
// HTTP client keeps.
const MinConns = 64

// LoadOptions are what Load needs besides the standard AWS_* variables.
type LoadOptions struct {
	// MaxConns is how many idle connections per host the HTTP client keeps
	// for the process's concurrent requests; at least MinConns.
	MaxConns int
	// Logger gets the SDK's own log lines (e.g. notes on response
	// checksums): its warnings as warnings, the rest at debug level,
	// instead of on stderr.
	Logger zerolog.Logger
}

// Load loads the SDK's configuration from the standard AWS_* variables with
// an HTTP client sized by o and guarded (Guard). Its errors name the
// variable to fix: an AWS_CA_BUNDLE that is not a readable PEM file, or no
// region.
func Load(ctx context.Context, o LoadOptions) (aws.Config, error) {
	conns := max(MinConns, o.MaxConns)
	hc := awshttp.NewBuildableClient().WithTransportOptions(func(t *http.Transport) {
		t.MaxIdleConns = conns
		t.MaxIdleConnsPerHost = conns
	})
	bundle := os.Getenv("AWS_CA_BUNDLE")
	if bundle != "" {
		if _, err := os.Stat(bundle); err != nil {
			var pe *fs.PathError
			if errors.As(err, &pe) {
				err = pe.Err
			}
			return aws.Config{}, fmt.Errorf("AWS_CA_BUNDLE=%s: %v: point it at a PEM file of CA certificates, or unset it", bundle, err)
		}
	}
	cfg, err := awsconfig.LoadDefaultConfig(ctx, awsconfig.WithHTTPClient(hc), awsconfig.WithLogger(sdkLogger{o.Logger}))
	if err != nil {
		if bundle != "" && strings.Contains(err.Error(), "CA bundle") {
			return aws.Config{}, fmt.Errorf("AWS_CA_BUNDLE=%s: %w: it must hold PEM-encoded CA certificates", bundle, err)
		}
		return aws.Config{}, fmt.Errorf("load AWS configuration (AWS_REGION, AWS_ACCESS_KEY_ID, …): %w", err)
	}
	if cfg.Region == "" {
		return aws.Config{}, errors.New("no AWS region: set AWS_REGION (e.g. us-east-1)")
	}
	Guard(&cfg)
	return cfg, nil
}

// sdkLogger sends the SDK's own log lines to the structured log.
type sdkLogger struct{ log zerolog.Logger }

func (l sdkLogger) Logf(classification smithylog.Classification, format string, v ...any) {
	if classification == smithylog.Warn {
		l.log.Warn().Msgf("aws sdk: "+format, v...)
		return
	}
	l.log.Debug().Msgf("aws sdk: "+format, v...)
}
