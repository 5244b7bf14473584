package worker

import (
	"context"
	"errors"
	"fmt"

	"github.com/rs/zerolog"

	"github.com/ferryworks/ferry/queue"
	"github.com/ferryworks/ferry/taskstate"
)

// Destination is one place terminal events go: the events queue or an SNS
// topic.
type Destination struct {
	// Name identifies the destination in the task state ("queue", "topic");
	// keep it stable across releases.
	Name      string
	Publisher Publisher
}

// Fanout publishes each event to every destination, exactly once per
// destination: the event is stored in the task state before the first
// publication, each destination that takes it is recorded, and a retry
// after a partial failure (the topic took it, the queue did not) sends the
// stored event, the same id and body, only to the destinations still
// missing it. Without Redis it publishes everywhere and an identical event
// may repeat, which consumers deduplicate by event id.
type Fanout struct {
	Destinations []Destination
	State        *taskstate.State
	Logger       zerolog.Logger
}

// Publish implements Publisher. It returns an error naming each
// destination that did not take the event; the caller retries the task.
func (f *Fanout) Publish(ctx context.Context, e queue.Event) error {
	ev, done, err := f.State.Publication(ctx, e)
	if err != nil {
		f.Logger.Warn().Err(err).Str("task_id", e.TaskID).Str("event_id", e.EventID).
			Msg("publication state unavailable; publishing to every destination")
		ev, done = e, nil
	}
	var errs []error
	for _, d := range f.Destinations {
		if done[d.Name] {
			continue
		}
		if err := d.Publisher.Publish(ctx, ev); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", d.Name, err))
			continue
		}
		if err := f.State.Published(ctx, ev, d.Name); err != nil {
			f.Logger.Warn().Err(err).Str("task_id", ev.TaskID).Str("event_id", ev.EventID).Str("destination", d.Name).
				Msg("publication not recorded; a retry may send this event there again")
		}
	}
	return errors.Join(errs...)
}
