// Package awsclient builds the HTTP client every ferry AWS SDK client uses.
//
// It exists for one defect in how the SDK and net/http meet. The SDK
// (smithy-go) wraps a request body in a "safe" reader and closes it as soon
// as the HTTP client returns a response. net/http writes the body on its
// own goroutine and, after the last byte, copies the body once more to
// check that nothing is left over. When the reader also implements
// io.WriterTo (every in-memory body: SQS, STS, small S3 PUTs), that second
// copy calls WriteTo, and once the SDK has closed the reader WriteTo
// answers io.EOF. net/http takes that for a write error and closes the
// connection — while the response body is still being read on it. The SDK
// then sees "use of closed network connection" after a 200 and retries: a
// SendMessage the server already accepted is sent again (a duplicate task,
// event or dead letter) and every other call pays a second round trip.
// It happens when the response is faster than the writer goroutine is
// scheduled, i.e. under CPU pressure.
//
// The fix is local: the body handed to net/http maps that io.EOF from
// WriteTo to a clean end of body, which is what it is.
package awsclient

import (
	"errors"
	"io"
	"net/http"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
)

// New returns the SDK's buildable HTTP client with the transport options
// applied, wrapped so request bodies closed by the SDK after the response
// do not tear down the connection. For an aws.Config built by hand; a
// config from config.LoadDefaultConfig is guarded with Guard instead.
func New(opts ...func(*http.Transport)) aws.HTTPClient {
	return Wrap(awshttp.NewBuildableClient().WithTransportOptions(opts...))
}

// Guard wraps the HTTP client of a loaded configuration. It must run after
// config.LoadDefaultConfig: the loader applies AWS_CA_BUNDLE only to the
// SDK's own *BuildableClient and refuses any other client type.
func Guard(cfg *aws.Config) {
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = awshttp.NewBuildableClient()
	}
	cfg.HTTPClient = Wrap(cfg.HTTPClient)
}

// Wrap guards the request bodies sent through next.
func Wrap(next aws.HTTPClient) aws.HTTPClient {
	if c, ok := next.(client); ok {
		return c
	}
	return client{next: next}
}

type client struct{ next aws.HTTPClient }

func (c client) Do(r *http.Request) (*http.Response, error) {
	if r.Body != nil && r.Body != http.NoBody {
		if _, ok := r.Body.(io.WriterTo); ok {
			r.Body = writerToBody{r.Body}
		}
	}
	return c.next.Do(r)
}

// writerToBody keeps WriteTo (one write of an in-memory body instead of
// 32 KiB chunks) but treats io.EOF from it as the end of the body: a
// WriterTo reports no error at its end, so io.EOF only comes from a reader
// the SDK closed after the whole body was sent.
type writerToBody struct{ rc io.ReadCloser }

func (b writerToBody) Read(p []byte) (int, error) { return b.rc.Read(p) }
func (b writerToBody) Close() error               { return b.rc.Close() }

func (b writerToBody) WriteTo(w io.Writer) (int64, error) {
	n, err := b.rc.(io.WriterTo).WriteTo(w)
	if errors.Is(err, io.EOF) {
		err = nil
	}
	return n, err
}
