package worker

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
)

// QueueAttributesAPI is the one SQS call the queue gauges make;
// *sqs.Client satisfies it.
type QueueAttributesAPI interface {
	GetQueueAttributes(ctx context.Context, in *sqs.GetQueueAttributesInput, optFns ...func(*sqs.Options)) (*sqs.GetQueueAttributesOutput, error)
}

// WatchedQueue is one queue the gauges report, under a short stable label
// ("tasks", "dlq") rather than its URL, so dashboards and alerts read the
// same in every environment.
type WatchedQueue struct {
	Label string
	URL   string
}

// QueueGaugesOptions configures a QueueGauges poller.
type QueueGaugesOptions struct {
	SQS    QueueAttributesAPI
	Queues []WatchedQueue
	// Interval between polls; default 15 s. Every poll is one
	// GetQueueAttributes call per queue, so the cost is independent of
	// traffic.
	Interval time.Duration
	Logger   zerolog.Logger
	// Now is the clock (tests); default time.Now.
	Now func() time.Time
}

// QueueGauges polls GetQueueAttributes for each watched queue and exports
// ferry_queue_messages{queue,state} with state visible, in_flight and
// delayed. Its last successful poll is also the worker's evidence that SQS
// is reachable (see ReachableCheck). Every replica polls: the gauges are the
// same from each, so alerts should aggregate with max(), not sum().
type QueueGauges struct {
	o     QueueGaugesOptions
	gauge *prometheus.GaugeVec

	mu          sync.Mutex
	lastSuccess time.Time
	lastErr     error
}

// queueStates maps the gauge's state label to the SQS attribute it reports.
var queueStates = []struct {
	state string
	attr  types.QueueAttributeName
}{
	{"visible", types.QueueAttributeNameApproximateNumberOfMessages},
	{"in_flight", types.QueueAttributeNameApproximateNumberOfMessagesNotVisible},
	{"delayed", types.QueueAttributeNameApproximateNumberOfMessagesDelayed},
}

// NewQueueGauges creates the poller and registers ferry_queue_messages with
// reg (nil: not registered). It panics if the gauge is already registered
// with reg, as prometheus.MustRegister does. Nothing is polled until Run or
// Poll is called.
func NewQueueGauges(reg prometheus.Registerer, o QueueGaugesOptions) (*QueueGauges, error) {
	if o.SQS == nil || len(o.Queues) == 0 {
		return nil, errors.New("worker: queue gauges need an SQS client and at least one queue")
	}
	for _, q := range o.Queues {
		if q.Label == "" || q.URL == "" {
			return nil, fmt.Errorf("worker: watched queue %+v needs a label and a URL", q)
		}
	}
	if o.Interval <= 0 {
		o.Interval = 15 * time.Second
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	g := &QueueGauges{o: o, gauge: prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "ferry_queue_messages",
		Help: "Approximate messages in a queue by state (visible, in_flight, delayed), from SQS GetQueueAttributes.",
	}, []string{"queue", "state"})}
	if reg != nil {
		reg.MustRegister(g.gauge)
	}
	return g, nil
}

// Run polls at once and then every Interval until ctx ends. A failed poll
// keeps the previous values (a gauge that drops to zero on an SQS hiccup
// would page someone for nothing) and is logged; readiness notices through
// ReachableCheck.
func (g *QueueGauges) Run(ctx context.Context) {
	t := time.NewTicker(g.o.Interval)
	defer t.Stop()
	for {
		pctx, cancel := context.WithTimeout(ctx, g.o.Interval)
		if err := g.Poll(pctx); err != nil && ctx.Err() == nil {
			g.o.Logger.Warn().Err(err).Msg("queue gauges: poll failed")
		}
		cancel()
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Poll reads every watched queue's attributes once and updates the gauges.
// It counts as a success (for ReachableCheck) only when every queue
// answered.
func (g *QueueGauges) Poll(ctx context.Context) error {
	names := make([]types.QueueAttributeName, len(queueStates))
	for i, s := range queueStates {
		names[i] = s.attr
	}
	var errs []error
	for _, q := range g.o.Queues {
		out, err := g.o.SQS.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: aws.String(q.URL), AttributeNames: names})
		if err != nil {
			errs = append(errs, fmt.Errorf("queue %s: %w", q.Label, err))
			continue
		}
		for _, s := range queueStates {
			v, err := strconv.ParseFloat(out.Attributes[string(s.attr)], 64)
			if err != nil {
				// An endpoint that omits an attribute (an older emulator)
				// leaves that series unset rather than reporting a false 0.
				continue
			}
			g.gauge.WithLabelValues(q.Label, s.state).Set(v)
		}
	}
	err := errors.Join(errs...)
	g.mu.Lock()
	defer g.mu.Unlock()
	g.lastErr = err
	if err == nil {
		g.lastSuccess = g.o.Now()
	}
	return err
}

// LastSuccess is when every watched queue last answered; zero before the
// first successful poll.
func (g *QueueGauges) LastSuccess() time.Time {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.lastSuccess
}

// ErrSQSUnreachable is returned (wrapped) by ReachableCheck when SQS has not
// answered recently; /readyz then answers 503.
var ErrSQSUnreachable = errors.New("sqs not reached recently")

// ReachableCheck is a readiness check that passes while the last successful
// poll is at most maxAge old (default three intervals, so one slow or failed
// poll does not take the worker out of service). Before the first success
// it fails: a worker that never reached SQS is not ready.
func (g *QueueGauges) ReachableCheck(maxAge time.Duration) ReadyCheck {
	if maxAge <= 0 {
		maxAge = 3 * g.o.Interval
	}
	return ReadyCheck{Name: "sqs", Check: func(context.Context) error {
		g.mu.Lock()
		last, lastErr := g.lastSuccess, g.lastErr
		g.mu.Unlock()
		if last.IsZero() {
			if lastErr != nil {
				return fmt.Errorf("%w: never answered: %w", ErrSQSUnreachable, lastErr)
			}
			return fmt.Errorf("%w: not polled yet", ErrSQSUnreachable)
		}
		if age := g.o.Now().Sub(last); age > maxAge {
			if lastErr != nil {
				return fmt.Errorf("%w: last answer %s ago (limit %s): %w", ErrSQSUnreachable, age.Round(time.Second), maxAge, lastErr)
			}
			return fmt.Errorf("%w: last answer %s ago (limit %s)", ErrSQSUnreachable, age.Round(time.Second), maxAge)
		}
		return nil
	}}
}
