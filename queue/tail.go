package queue

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/rs/zerolog"
)

// TailOptions says which events Tail hands over and when it stops.
type TailOptions struct {
	// Customer, when set, hands over only that customer's events; the
	// others are left for other consumers.
	Customer string
	// Max stops after this many events (0: until ctx ends).
	Max int
	// IdleExit stops once no event arrived for this long (0: never).
	IdleExit time.Duration
	// Ack deletes each event once fn returned; otherwise events are only
	// looked at: held invisible while Tail runs and handed back when it
	// returns, so another consumer of the queue still gets them.
	Ack bool
	// Log receives receive and ack failures, which Tail rides out.
	Log zerolog.Logger
}

// Tail hands fn each terminal event arriving on the consumer's queue, with
// its raw body, until ctx ends or o says to stop; it then hands back what
// it only looked at and closes the consumer. A message that is not an event
// is left alone. Receive failures are logged and retried (the consumer backs
// off), so Tail returns nil except when handing back fails.
func Tail(ctx context.Context, c *Consumer, o TailOptions, fn func(raw []byte, ev Event)) error {
	var held []*Lease
	defer func() {
		// Hand back what was only looked at, then flush acks.
		bg, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		for _, l := range held {
			_ = l.Release(bg)
		}
		_ = c.Close(bg)
	}()
	seen, last := 0, time.Now()
	for {
		if o.Max > 0 && seen >= o.Max {
			return nil
		}
		if o.IdleExit > 0 && time.Since(last) > o.IdleExit {
			return nil
		}
		leases, err := c.Receive(ctx, 10)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			if errors.Is(err, ErrClosed) {
				return nil
			}
			o.Log.Warn().Err(err).Msg("receive events")
			continue
		}
		for _, l := range leases {
			var ev Event
			if err := json.Unmarshal(l.Body, &ev); err != nil || (o.Customer != "" && ev.CustomerID != o.Customer) || (o.Max > 0 && seen >= o.Max) {
				held = append(held, l)
				continue
			}
			last = time.Now()
			seen++
			fn(l.Body, ev)
			if o.Ack {
				if err := l.Ack(ctx); err != nil {
					o.Log.Warn().Err(err).Str("event_id", ev.EventID).Msg("ack event")
				}
			} else {
				held = append(held, l)
			}
		}
	}
}
