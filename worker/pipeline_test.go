package worker_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/rs/zerolog"

	"github.com/ferryworks/ferry/admission"
	"github.com/ferryworks/ferry/credcache"
	"github.com/ferryworks/ferry/fetcher"
	"github.com/ferryworks/ferry/internal/demo"
	"github.com/ferryworks/ferry/internal/testenv"
	"github.com/ferryworks/ferry/queue"
	"github.com/ferryworks/ferry/task"
	"github.com/ferryworks/ferry/taskstate"
	"github.com/ferryworks/ferry/worker"
)

// fleet is one worker process's pipeline, wired as `ferry work` wires it,
// against a test's demo world.
type fleet struct {
	w        *testenv.World
	s3       *s3.Client
	sqs      *sqs.Client
	state    *taskstate.State
	queueURL string
	dlqURL   string
	events   string
}

type fleetOptions struct {
	queueURL   string
	slots      int
	visibility time.Duration
	shutdown   time.Duration
	retryBase  time.Duration
	wrap       func(worker.TaskHandler) worker.TaskHandler
	publish    func(queue.Event) // sees each event as it is published
	quietLog   bool              // log nothing (benchmarks)
	custCap    int               // CustomerMaxInflight
	fleetCap   int               // FleetCap's Max, on the world's Redis
	copier     func(worker.Copier) worker.Copier
	ackWindow  time.Duration // the consumer's AckBatchWindow
}

func newFleet(t testing.TB, w *testenv.World) *fleet {
	t.Helper()
	return &fleet{
		w:        w,
		s3:       s3.NewFromConfig(w.FleetConfig, func(o *s3.Options) { o.UsePathStyle = true }),
		sqs:      sqs.NewFromConfig(w.FleetConfig),
		state:    &taskstate.State{Redis: w.Redis, Prefix: w.Prefix},
		queueURL: w.Manifest.Queues.Tasks,
		dlqURL:   w.Manifest.Queues.DLQ,
		events:   w.Manifest.Queues.Events,
	}
}

// start runs a worker until the returned stop is called (graceful) and
// returns a channel closed when it has exited.
func (f *fleet) start(t testing.TB, o fleetOptions) (stop func(), done <-chan error) {
	t.Helper()
	if o.queueURL == "" {
		o.queueURL = f.queueURL
	}
	if o.slots == 0 {
		o.slots = 4
	}
	if o.visibility == 0 {
		o.visibility = 10 * time.Second
	}
	if o.retryBase == 0 {
		o.retryBase = time.Second
	}
	log := zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel)
	if o.quietLog {
		log = zerolog.Nop()
	}
	credOpts := credcache.Options{Redis: f.w.Redis, Prefix: f.w.Prefix, Keys: demo.DevCacheKeys(),
		STS: f.w.Stack.STSClient(f.w.Fleet, demo.DefaultRegion), Logger: log}
	reg, err := credcache.NewRegistry(credOpts)
	if err != nil {
		t.Fatal(err)
	}
	cache, err := credcache.New(credOpts)
	if err != nil {
		t.Fatal(err)
	}
	reg.AttachCache(cache)
	copier, err := fetcher.New(fetcher.Options{S3: f.s3, Integrations: reg, Credentials: cache, Redis: f.w.Redis,
		RedisPrefix: f.w.Prefix, Bucket: f.w.Manifest.InternalBucket, PartSize: 5 << 20,
		StreamPutMax: fetcher.DefaultStreamPutMax, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	consumer, err := queue.NewConsumer(f.sqs, queue.ConsumerOptions{QueueURL: o.queueURL, WaitTime: time.Second,
		VisibilityTimeout: o.visibility, RetryBase: o.retryBase, RetryMax: 2 * o.retryBase, AckBatchWindow: o.ackWindow, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	var pub worker.Publisher = queue.NewPublisher(f.sqs, f.events)
	if o.publish != nil {
		pub = publisherFunc(func(ctx context.Context, e queue.Event) error {
			o.publish(e)
			return queue.NewPublisher(f.sqs, f.events).Publish(ctx, e)
		})
	}
	var cp worker.Copier = copier
	if o.copier != nil {
		cp = o.copier(copier)
	}
	fc, err := admission.New(admission.Options{Redis: f.w.Redis, Prefix: f.w.Prefix, Max: o.fleetCap, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	h, err := worker.NewHandler(worker.HandlerOptions{Copier: cp, Publisher: pub,
		DeadLetters: queue.NewDeadLetter(f.sqs), DLQURL: f.dlqURL, State: f.state, Integrations: reg, BusyDelay: time.Second, Logger: log,
		CustomerMaxInflight: o.custCap, FleetCap: fc, DeferDelay: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	var th worker.TaskHandler = h
	if o.wrap != nil {
		th = o.wrap(h)
	}
	pool, err := worker.NewPool(worker.PoolOptions{Receiver: consumer, Handler: th, Slots: o.slots,
		ShutdownTimeout: o.shutdown, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ch := make(chan error, 1)
	go func() { ch <- pool.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-ch:
				if err != nil {
					t.Errorf("pool.Run: %v", err)
				}
				close(ch)
			case <-time.After(time.Minute):
				t.Error("pool did not stop within a minute")
			}
		})
	}
	t.Cleanup(stop)
	return stop, ch
}

func (f *fleet) enqueue(t testing.TB, tasks ...task.Task) {
	t.Helper()
	p := queue.NewProducer(f.sqs, f.queueURL, task.Limits{})
	if err := queue.SendErrors(p.Send(context.Background(), tasks)); err != nil {
		t.Fatalf("enqueue: %v", err)
	}
}

func (f *fleet) sendRaw(t testing.TB, queueURL, body string) {
	t.Helper()
	if _, err := f.sqs.SendMessage(context.Background(), &sqs.SendMessageInput{QueueUrl: aws.String(queueURL), MessageBody: aws.String(body)}); err != nil {
		t.Fatal(err)
	}
}

// collect consumes events until n have arrived (failing after timeout),
// then keeps listening for quiet so that any extra event is caught too.
func (f *fleet) collect(t testing.TB, n int, timeout, quiet time.Duration) []queue.Event {
	t.Helper()
	return testenv.CollectEvents[queue.Event](t, f.sqs, f.events, n, timeout, quiet)
}

func byTask(evs []queue.Event) map[string][]queue.Event {
	m := map[string][]queue.Event{}
	for _, e := range evs {
		m[e.TaskID] = append(m[e.TaskID], e)
	}
	return m
}

// storedSHA256 reads a stored object back and hashes it.
func (f *fleet) storedSHA256(t testing.TB, stored string) string {
	t.Helper()
	u, err := url.Parse(stored)
	if err != nil || u.Scheme != "s3" {
		t.Fatalf("stored %q is not an s3 URI", stored)
	}
	out, err := f.s3.GetObject(context.Background(), &s3.GetObjectInput{Bucket: aws.String(u.Host), Key: aws.String(strings.TrimPrefix(u.Path, "/"))})
	if err != nil {
		t.Fatalf("read back %s: %v", stored, err)
	}
	defer out.Body.Close()
	h := sha256.New()
	if _, err := io.Copy(h, out.Body); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

func (f *fleet) queueDepth(t testing.TB, queueURL string) (visible, inflight int) {
	t.Helper()
	out, err := f.sqs.GetQueueAttributes(context.Background(), &sqs.GetQueueAttributesInput{QueueUrl: aws.String(queueURL),
		AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameApproximateNumberOfMessages, sqstypes.QueueAttributeNameApproximateNumberOfMessagesNotVisible}})
	if err != nil {
		t.Fatal(err)
	}
	fmt.Sscan(out.Attributes[string(sqstypes.QueueAttributeNameApproximateNumberOfMessages)], &visible)
	fmt.Sscan(out.Attributes[string(sqstypes.QueueAttributeNameApproximateNumberOfMessagesNotVisible)], &inflight)
	return visible, inflight
}

func newTask(id, customer string, uris ...string) task.Task {
	t := task.Task{Version: 1, TaskID: id, CustomerID: customer}
	for _, u := range uris {
		t.Attachments = append(t.Attachments, task.Attachment{URI: u})
	}
	return t
}

func s3uri(c demo.ManifestCustomer, key string) string { return "s3://" + c.Bucket + "/" + key }

type publisherFunc func(ctx context.Context, e queue.Event) error

func (f publisherFunc) Publish(ctx context.Context, e queue.Event) error { return f(ctx, e) }
