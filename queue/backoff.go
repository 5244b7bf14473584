package queue

import (
	"math/rand/v2"
	"time"
)

// MaxVisibility is SQS's largest visibility timeout (12 hours).
const MaxVisibility = 12 * time.Hour

// RetryDelay returns an exponential backoff with full jitter for the n-th
// attempt (n ≥ 1): a uniformly random duration in [0, min(max, base·2^(n-1))],
// never above max nor above SQS's 12 h visibility limit. Full jitter spreads
// retries of messages that failed together, so they do not come back as a
// herd.
func RetryDelay(base, max time.Duration, n int) time.Duration {
	return jitter(backoffCeiling(base, max, n), rand.Int64N)
}

// backoffCeiling is min(max, base·2^(n-1), 12h) without overflowing.
func backoffCeiling(base, max time.Duration, n int) time.Duration {
	if max <= 0 || max > MaxVisibility {
		max = MaxVisibility
	}
	if base <= 0 {
		return 0
	}
	if n < 1 {
		n = 1
	}
	d := base
	for i := 1; i < n; i++ {
		if d >= max/2 {
			return max
		}
		d *= 2
	}
	if d > max {
		return max
	}
	return d
}

func jitter(ceiling time.Duration, randN func(int64) int64) time.Duration {
	if ceiling <= 0 {
		return 0
	}
	return time.Duration(randN(int64(ceiling) + 1))
}
