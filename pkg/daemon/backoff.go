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

// armRetry pokes the trigger at t, unless an earlier retry is armed.
func (d *Daemon) armRetry(t time.Time) {
	next := t
	d.mu.Lock()
	for _, st := range d.st.Clusters {
		if st.RetryAt != nil && st.RetryAt.After(time.Now()) && st.RetryAt.Before(next) {
			next = *st.RetryAt
		}
	}
	d.mu.Unlock()
	if d.retry != nil {
		d.retry.Reset(time.Until(next))
	}
}

func (d *Daemon) retryAt(cluster string) time.Time {
	d.mu.Lock()
	defer d.mu.Unlock()
	if st := d.st.Clusters[cluster]; st != nil && st.RetryAt != nil {
		return *st.RetryAt
	}
	return time.Time{}
}

func (d *Daemon) failures(cluster string) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	if st := d.st.Clusters[cluster]; st != nil {
		return st.Failures
	}
	return 0
}

// resetBackoff lets every cluster's next pass run at once.
func (d *Daemon) resetBackoff() {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, st := range d.st.Clusters {
		st.Failures, st.RetryAt = 0, nil
	}
}

// retryNow lets cluster's next pass run at once; the count of failures is
// kept, so that a pass that fails again backs off longer.
func (d *Daemon) retryNow(cluster string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if st := d.st.Clusters[cluster]; st != nil {
		st.RetryAt = nil
	}
}
