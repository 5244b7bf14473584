package worker

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/ferryworks/ferry/queue"
)

// Receiver is where the pool gets deliveries; *queue.Consumer is the
// production one.
type Receiver interface {
	Receive(ctx context.Context, max int) ([]*queue.Lease, error)
	Close(ctx context.Context) error
}

// TaskHandler handles one delivery and settles its lease; *Handler is the
// production one.
type TaskHandler interface {
	Handle(ctx context.Context, l *queue.Lease) Report
}

// PoolOptions configures a Pool.
type PoolOptions struct {
	Receiver Receiver
	Handler  TaskHandler
	// Slots is how many deliveries run at once (FERRY_CONCURRENCY). The pool
	// receives only as many messages as it has free slots, so nothing waits
	// invisible in a local buffer.
	Slots int
	// Pollers is how many goroutines long-poll at once; default one per 10
	// slots (a receive returns at most 10 messages), at least 1.
	Pollers int
	// ShutdownTimeout is how long in-flight deliveries may run after
	// shutdown starts before they are interrupted and handed back (on
	// standard queues without spending a receive).
	ShutdownTimeout time.Duration
	Logger          zerolog.Logger
	Metrics         *Metrics
}

// Pool runs deliveries in bounded slots and drains them on shutdown.
type Pool struct {
	o        PoolOptions
	seq      *queue.Sequencer
	slots    chan struct{}
	wg       sync.WaitGroup // deliveries holding a slot
	acks     sync.WaitGroup // finished deliveries waiting for their ack
	draining chan struct{}
	drainOne sync.Once
}

// NewPool returns a Pool.
func NewPool(o PoolOptions) (*Pool, error) {
	if o.Receiver == nil || o.Handler == nil {
		return nil, errors.New("worker: pool needs a Receiver and a Handler")
	}
	if o.Slots <= 0 {
		return nil, fmt.Errorf("worker: pool needs at least one slot, got %d", o.Slots)
	}
	if o.Pollers <= 0 {
		o.Pollers = max(1, (o.Slots+9)/10)
	}
	if o.ShutdownTimeout <= 0 {
		o.ShutdownTimeout = 30 * time.Second
	}
	return &Pool{o: o, seq: queue.NewSequencer(), slots: make(chan struct{}, o.Slots), draining: make(chan struct{})}, nil
}

// Draining is closed the moment shutdown starts (readiness turns false).
func (p *Pool) Draining() <-chan struct{} { return p.draining }

// Run receives and handles deliveries until ctx ends, then shuts down
// gracefully: it stops receiving, lets in-flight deliveries finish within
// ShutdownTimeout, interrupts the rest (their handlers hand the messages back
// for other workers at once), flushes pending acks and returns nil. Ending
// hard (a second signal) is the caller's: cancel the context given to
// RunUntil instead.
func (p *Pool) Run(ctx context.Context) error {
	return p.RunUntil(ctx, context.Background())
}

// RunUntil is Run with a hard-stop context: when hard ends, in-flight
// deliveries are interrupted at once instead of after ShutdownTimeout.
func (p *Pool) RunUntil(ctx, hard context.Context) error {
	p.o.Metrics.setSlots(p.o.Slots)
	work, stopWork := context.WithCancel(hard)
	defer stopWork()

	var pollers sync.WaitGroup
	for range p.o.Pollers {
		pollers.Add(1)
		go func() {
			defer pollers.Done()
			p.poll(ctx, work)
		}()
	}
	<-ctx.Done()
	p.drainOne.Do(func() { close(p.draining) })
	pollers.Wait()

	done := make(chan struct{})
	go func() { p.wg.Wait(); close(done) }()
	timer := time.NewTimer(p.o.ShutdownTimeout)
	defer timer.Stop()
	select {
	case <-done:
	case <-timer.C:
		p.o.Logger.Warn().Dur("shutdown_timeout", p.o.ShutdownTimeout).Msg("in-flight tasks outlived the shutdown timeout; releasing them")
		stopWork()
		<-done
	case <-work.Done():
		<-done
	}
	flush, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := p.o.Receiver.Close(flush)
	p.acks.Wait() // answered by the flush
	if err != nil {
		return fmt.Errorf("worker: flush on shutdown: %w", err)
	}
	return nil
}

// release gives back the slot of a delivery whose work is over.
func (p *Pool) release() {
	p.o.Metrics.inflightAdd(-1)
	<-p.slots
	p.wg.Done()
}

// poll takes a free slot (and any others free at that moment, up to a
// receive's 10), receives that many messages at most, and starts one
// goroutine per delivery.
func (p *Pool) poll(ctx, work context.Context) {
	for {
		select {
		case p.slots <- struct{}{}:
		case <-ctx.Done():
			return
		}
		n := 1
	more:
		for n < 10 {
			select {
			case p.slots <- struct{}{}:
				n++
			default:
				break more
			}
		}
		leases, err := p.o.Receiver.Receive(ctx, n)
		for range n - len(leases) {
			<-p.slots
		}
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, queue.ErrClosed) {
				return
			}
			p.o.Logger.Warn().Err(err).Msg("receive failed") // Receive already backed off
			continue
		}
		for _, l := range leases {
			p.wg.Add(1)
			p.o.Metrics.inflightAdd(1)
			go p.run(work, l)
		}
	}
}

func (p *Pool) run(work context.Context, l *queue.Lease) {
	start := time.Now()
	var rep Report
	err := p.seq.Run(work, l, func(ctx context.Context) error {
		rep = p.o.Handler.Handle(ctx, l)
		return nil
	})
	if rep.Acked != nil {
		// The task's work is over: its slot takes the next delivery while
		// the ack waits for a batch call. Shutdown waits for such acks
		// after the consumer flushed them.
		p.acks.Add(1)
		defer p.acks.Done()
		p.release()
		rep.Wait()
	} else {
		defer p.release()
	}
	if err != nil {
		// Waiting behind an earlier message of its FIFO group that did not
		// complete (or interrupted while waiting): hand it back.
		rep.Outcome = OutcomeReleased
		if errors.Is(err, context.Canceled) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			_ = l.Release(ctx)
			cancel()
		}
	}
	d := time.Since(start)
	p.o.Metrics.done(rep.Outcome, d)
	ev := p.o.Logger.Info()
	if rep.Err != nil && rep.Outcome != OutcomeRejected {
		ev = p.o.Logger.Warn().Err(rep.Err)
	} else if rep.Err != nil {
		ev = ev.Str("reason", rep.Err.Error())
	}
	ev.Str("outcome", string(rep.Outcome)).Str("task_id", rep.TaskID).Str("customer_id", rep.CustomerID).
		Str("message_id", l.MessageID).Int("receive_count", l.ReceiveCount).Str("event_id", rep.EventID).
		Int64("bytes", rep.Bytes).Dur("duration", d).Msg("task")
}
