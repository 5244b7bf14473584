package queue

import (
	"math"
	"testing"
	"time"
)

func TestBackoffCeiling(t *testing.T) {
	t.Parallel()
	cases := []struct {
		base, max time.Duration
		n         int
		want      time.Duration
	}{
		{5 * time.Second, 15 * time.Minute, 1, 5 * time.Second},
		{5 * time.Second, 15 * time.Minute, 0, 5 * time.Second},
		{5 * time.Second, 15 * time.Minute, 2, 10 * time.Second},
		{5 * time.Second, 15 * time.Minute, 5, 80 * time.Second},
		{5 * time.Second, 15 * time.Minute, 8, 640 * time.Second},
		{5 * time.Second, 15 * time.Minute, 9, 15 * time.Minute},
		{5 * time.Second, 15 * time.Minute, 1000, 15 * time.Minute},
		{5 * time.Second, 15 * time.Minute, math.MaxInt, 15 * time.Minute},
		{time.Hour, 48 * time.Hour, 10, MaxVisibility}, // SQS's own cap wins
		{time.Second, 0, 100, MaxVisibility},
		{0, time.Minute, 3, 0},
	}
	for _, tc := range cases {
		if got := backoffCeiling(tc.base, tc.max, tc.n); got != tc.want {
			t.Errorf("backoffCeiling(%s, %s, %d) = %s, want %s", tc.base, tc.max, tc.n, got, tc.want)
		}
	}
}

// TestRetryDelayFullJitter checks the bounds of full jitter and that the
// draws actually spread over the range rather than sitting at one end.
func TestRetryDelayFullJitter(t *testing.T) {
	t.Parallel()
	base, max := 5*time.Second, 15*time.Minute
	for n := 1; n <= 12; n++ {
		ceil := backoffCeiling(base, max, n)
		var lowHalf, highHalf int
		for range 2000 {
			d := RetryDelay(base, max, n)
			if d < 0 || d > ceil || d > max {
				t.Fatalf("RetryDelay(n=%d) = %s outside [0, %s]", n, d, ceil)
			}
			if d < ceil/2 {
				lowHalf++
			} else {
				highHalf++
			}
		}
		// With 2000 uniform draws either half holding under 30% has
		// probability far below 1e-9.
		if lowHalf < 600 || highHalf < 600 {
			t.Errorf("n=%d: draws not spread: %d below half, %d above", n, lowHalf, highHalf)
		}
	}
}

func TestJitterEnds(t *testing.T) {
	t.Parallel()
	if got := jitter(10, func(n int64) int64 { return 0 }); got != 0 {
		t.Errorf("jitter low end = %d", got)
	}
	if got := jitter(10, func(n int64) int64 { return n - 1 }); got != 10 {
		t.Errorf("jitter high end = %d, want the ceiling itself", got)
	}
	if got := jitter(0, func(n int64) int64 { panic("must not draw") }); got != 0 {
		t.Errorf("jitter(0) = %d", got)
	}
}
