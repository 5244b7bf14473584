package testenv

import (
	"sync"
	"time"
)

// Clock is a settable clock for a component's Now option. A Clock from
// FixedClock stands still except for Advance; the zero Clock follows the
// real time, shifted by whatever Advance added (for code that also compares
// against time.Now, such as a SigV4 signature's date). Safe for concurrent
// use.
type Clock struct {
	mu    sync.Mutex
	fixed time.Time // zero: follow the real time
	off   time.Duration
}

// FixedClock returns a clock that reads at until advanced.
func FixedClock(at time.Time) *Clock { return &Clock{fixed: at} }

// Now is the clock's current time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.fixed.IsZero() {
		return time.Now().Add(c.off)
	}
	return c.fixed.Add(c.off)
}

// Advance moves the clock d forward (backward when negative).
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.off += d
	c.mu.Unlock()
}
