package awsclient

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
)

// sendMessageHandler answers SendMessage like SQS, sending the response
// body bodyDelay after the headers, and counts the requests it accepted.
func sendMessageHandler(accepted *atomic.Int32, bodyDelay time.Duration) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var in struct{ MessageBody string }
		if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		n := accepted.Add(1)
		sum := md5.Sum([]byte(in.MessageBody))
		body := `{"MessageId":"m-` + strconv.Itoa(int(n)) + `","MD5OfMessageBody":"` + hex.EncodeToString(sum[:]) + `"}`
		w.Header().Set("Content-Type", "application/x-amz-json-1.0")
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		w.WriteHeader(http.StatusOK)
		w.(http.Flusher).Flush()
		time.Sleep(bodyDelay)
		_, _ = io.WriteString(w, body)
	})
}

// sendMessageServer sends the response body late, so the client reads it
// after the SDK has already closed the request body.
func sendMessageServer(t *testing.T, accepted *atomic.Int32) *httptest.Server {
	srv := httptest.NewServer(sendMessageHandler(accepted, 300*time.Millisecond))
	t.Cleanup(srv.Close)
	return srv
}

// slowWriterConn holds the request body's write until the SDK's HTTP call
// has returned (and so closed the request body), reproducing a writer
// goroutine that is scheduled late under CPU pressure.
type slowWriterConn struct {
	net.Conn
	marker   string
	returned <-chan struct{}
}

func (c *slowWriterConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	if strings.Contains(string(p), c.marker) {
		select {
		case <-c.returned:
		case <-time.After(5 * time.Second):
		}
		time.Sleep(50 * time.Millisecond)
	}
	return n, err
}

// signalClient tells the connection when Do has returned to the SDK.
type signalClient struct {
	next aws.HTTPClient
	once *sync.Once
	done chan struct{}
}

func (c signalClient) Do(r *http.Request) (*http.Response, error) {
	resp, err := c.next.Do(r)
	c.once.Do(func() { close(c.done) })
	return resp, err
}

// send makes one SendMessage through an SQS client whose HTTP stack is
// guard(plain client with the slow writer), and reports how many requests
// the server accepted.
func send(t *testing.T, guard func(aws.HTTPClient) aws.HTTPClient) (int32, error) {
	var accepted atomic.Int32
	srv := sendMessageServer(t, &accepted)
	const marker = "exactly-once-body"
	done := make(chan struct{})
	tr := &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return &slowWriterConn{Conn: c, marker: marker, returned: done}, nil
	}}
	t.Cleanup(tr.CloseIdleConnections)
	hc := signalClient{next: guard(&http.Client{Transport: tr}), once: &sync.Once{}, done: done}
	client := sqs.New(sqs.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(srv.URL),
		Credentials:  credentials.NewStaticCredentialsProvider("AKIDEXAMPLE", "secret", ""),
		HTTPClient:   hc,
	})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	_, err := client.SendMessage(ctx, &sqs.SendMessageInput{
		QueueUrl: aws.String(srv.URL + "/000000000000/tasks"), MessageBody: aws.String(marker)})
	return accepted.Load(), err
}

// The SDK closes the request body as soon as the response headers arrive;
// if net/http has not finished its end-of-body check by then, an unguarded
// client loses the connection under the response and the SDK sends the
// accepted SendMessage a second time. Through the guard it is sent once.
func TestSendMessageIsSentOnce(t *testing.T) {
	t.Parallel()
	n, err := send(t, Wrap)
	if err != nil {
		t.Fatalf("SendMessage through the guarded client: %v", err)
	}
	if n != 1 {
		t.Fatalf("server accepted %d SendMessage requests, want 1", n)
	}
}

// The same call without the guard shows the defect the guard exists for:
// every attempt is accepted by the server and then lost on the client, so
// the message is sent once per attempt and the call still fails. If this
// starts sending once, net/http or the SDK fixed it and the guard can go.
func TestUnguardedClientResendsAcceptedCall(t *testing.T) {
	t.Parallel()
	n, err := send(t, func(c aws.HTTPClient) aws.HTTPClient { return c })
	if n < 2 {
		t.Fatalf("server accepted %d SendMessage requests without the guard (err %v); expected the duplicates this package guards against", n, err)
	}
	if err == nil || !strings.Contains(err.Error(), "use of closed network connection") {
		t.Fatalf("unguarded SendMessage error = %v, want the closed-connection failure", err)
	}
}

// Guard runs after config.LoadDefaultConfig because the loader applies a
// custom CA bundle (AWS_CA_BUNDLE) only to the SDK's own client type: it
// refuses a wrapped client, and the guarded config still trusts the bundle.
func TestGuardAfterLoadKeepsCABundle(t *testing.T) {
	var accepted atomic.Int32
	srv := httptest.NewTLSServer(sendMessageHandler(&accepted, 0))
	t.Cleanup(srv.Close)
	bundle := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	t.Setenv("AWS_CA_BUNDLE", "")
	load := func(hc aws.HTTPClient) (aws.Config, error) {
		return config.LoadDefaultConfig(context.Background(),
			config.WithHTTPClient(hc), config.WithCustomCABundle(bytes.NewReader(bundle)),
			config.WithRegion("us-east-1"), config.WithSharedConfigFiles(nil), config.WithSharedCredentialsFiles(nil),
			config.WithCredentialsProvider(credentials.NewStaticCredentialsProvider("AKIDEXAMPLE", "secret", "")))
	}
	if _, err := load(Wrap(awshttp.NewBuildableClient())); err == nil {
		t.Fatal("the loader accepted a wrapped client with a CA bundle; Guard's ordering rule may be obsolete")
	}
	cfg, err := load(awshttp.NewBuildableClient())
	if err != nil {
		t.Fatal(err)
	}
	Guard(&cfg)
	if _, ok := cfg.HTTPClient.(client); !ok {
		t.Fatalf("HTTPClient is %T after Guard, want the guarded client", cfg.HTTPClient)
	}
	cfg.BaseEndpoint = aws.String(srv.URL)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := sqs.NewFromConfig(cfg).SendMessage(ctx, &sqs.SendMessageInput{
		QueueUrl: aws.String(srv.URL + "/000000000000/tasks"), MessageBody: aws.String("over tls")}); err != nil {
		t.Fatalf("SendMessage to a server trusted only through the bundle: %v", err)
	}
	if n := accepted.Load(); n != 1 {
		t.Errorf("server accepted %d requests, want 1", n)
	}
}
