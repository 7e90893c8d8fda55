package reconcile

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"
)

// WithIdleTimeout returns a context that is cancelled when no progress has
// been reported for idle: long work (a base backup, a rewind, a catch-up)
// runs as long as it makes progress, and work that hangs is still given up.
// Apply reports progress when an action ends and when a one-off's output
// changes (pg_basebackup and pg_rewind print the bytes they have copied);
// context.Cause of the cancelled context says how long nothing moved.
func WithIdleTimeout(parent context.Context, idle time.Duration) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancelCause(parent)
	w := &watchdog{start: time.Now()}
	ctx = context.WithValue(ctx, watchdogKey{}, w)
	go func() {
		tick := time.NewTicker(min(idle/10, time.Second))
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
				if since := time.Since(w.at()); since > idle {
					cancel(fmt.Errorf("no progress for %s: %w", since.Round(time.Second), context.DeadlineExceeded))
					return
				}
			}
		}
	}()
	return ctx, func() { cancel(context.Canceled) }
}

type watchdogKey struct{}

// watchdog keeps when work last moved as an offset from start on the
// monotonic clock, so that a step of the machine's clock neither cancels
// work that moves nor keeps work that hangs.
type watchdog struct {
	start time.Time
	last  atomic.Int64 // time.Since(start) at the last progress, in ns
}

// at returns when work last moved, with its monotonic clock reading.
func (w *watchdog) at() time.Time { return w.start.Add(time.Duration(w.last.Load())) }

// Progressed tells ctx's idle timeout (see WithIdleTimeout), if any, that
// work moved. Apply calls it; long work outside Apply may too.
func Progressed(ctx context.Context) {
	if w, ok := ctx.Value(watchdogKey{}).(*watchdog); ok {
		w.last.Store(int64(time.Since(w.start)))
	}
}

// LastProgress returns when work under ctx last reported progress, or when
// its idle timeout began (see WithIdleTimeout); the zero time when ctx has
// none. The time carries its monotonic clock reading: time.Since of it is
// not moved by a step of the machine's clock. A service watchdog reads it:
// a pass that makes progress is alive however long it runs.
func LastProgress(ctx context.Context) time.Time {
	if w, ok := ctx.Value(watchdogKey{}).(*watchdog); ok {
		return w.at()
	}
	return time.Time{}
}
