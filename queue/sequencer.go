package queue

import (
	"context"
	"errors"
)

// Sequencer runs the leases of one FIFO message group strictly in receipt
// order, one at a time, while different groups (and leases without a group)
// run in parallel. The order is the order in which one Consumer received the
// leases; SQS FIFO never has the same group in flight in two receives, and
// one receive returns a group's messages in order, so this is the group's
// order.
//
// A lease waits until the previous lease of its group has finished (its Run
// returned, or it was settled). If that lease was not acknowledged (it was
// released, retried, lost or left unsettled), the waiting lease is released
// instead of run and Run returns ErrGroupHalted: running it would overtake
// the earlier message when that is redelivered.
//
// The zero value is not usable; use NewSequencer. It is safe for concurrent
// use.
type Sequencer struct{}

// NewSequencer returns a Sequencer.
func NewSequencer() *Sequencer { return &Sequencer{} }

// Run calls fn for l once every earlier lease of l's group has finished,
// from the calling goroutine, and returns fn's error. fn should settle l
// (usually Ack); a lease left unsettled when fn returns halts its group
// (the following leases are released). If ctx ends while waiting, Run
// returns ctx's error without running fn or settling l.
func (s *Sequencer) Run(ctx context.Context, l *Lease, fn func(context.Context) error) error {
	l.c.mu.Lock()
	prev := l.prev
	l.c.mu.Unlock()
	if prev != nil {
		select {
		case <-prev.turn:
		case <-ctx.Done():
			return ctx.Err()
		}
		if !prev.acked() {
			if err := l.Release(ctx); err != nil && !errors.Is(err, ErrSettled) && !errors.Is(err, ErrLeaseLost) {
				l.endTurn()
				return errors.Join(ErrGroupHalted, err)
			}
			return ErrGroupHalted
		}
	}
	defer func() {
		// A settle still in flight (AckAsync) ends the turn when it is
		// answered, so the next lease sees whether this one was acked.
		if !l.settling() {
			l.endTurn()
		}
	}()
	return fn(ctx)
}
