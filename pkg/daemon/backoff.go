package daemon

import "time"

// Backoff of a cluster whose pass failed: the n-th consecutive failure
// waits MinBackoff·2^(n-1), at most MaxBackoff.
const (
	MinBackoff = time.Second
	MaxBackoff = 2 * time.Minute
)

// Backoff of the engine's event stream when it breaks: re-subscribe after
// 1s, doubling to 30s; a stream that lasted a minute starts over at 1s.
const (
	minEventsBackoff = time.Second
	maxEventsBackoff = 30 * time.Second
)

// backoffDelay is the wait after the n-th consecutive failure (n >= 1):
// lo, 2·lo, 4·lo, ... capped at hi.
func backoffDelay(n int, lo, hi time.Duration) time.Duration {
	d := lo
	for i := 1; i < n && d < hi; i++ {
		d *= 2
	}
	return min(d, hi)
}
