package reconcile

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

// TestWithIdleTimeout: work that reports progress runs past the idle
// timeout as long as it does; work that stops reporting is cancelled once
// idle has passed without progress, and the cause says so.
func TestWithIdleTimeout(t *testing.T) {
	ctx, cancel := WithIdleTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	var last time.Time
	for time.Since(start) < time.Second {
		Progressed(ctx)
		last = time.Now()
		if ctx.Err() != nil {
			t.Fatalf("cancelled after %s although progress was reported every 50 ms", time.Since(start))
		}
		time.Sleep(50 * time.Millisecond)
	}
	<-ctx.Done()
	// From the last progress reported (the loop's sleep, longer on a
	// loaded machine, counts too).
	if took := time.Since(last); took < 280*time.Millisecond || took > 2*time.Second {
		t.Errorf("cancelled %s after progress stopped, want about 300ms", took)
	}
	if cause := context.Cause(ctx); !errors.Is(cause, context.DeadlineExceeded) || !strings.Contains(cause.Error(), "no progress for") {
		t.Errorf("cause %v, want no progress and a deadline", cause)
	}
}

// TestProgressIsMonotonic: the idle timeout and LastProgress measure time on
// the monotonic clock, so that a step of the machine's clock (forward: work
// that moves would be cancelled and the service watchdog would stop being
// fed; back: work that hangs would be kept) changes nothing. A time with a
// monotonic reading prints it as "m=".
func TestProgressIsMonotonic(t *testing.T) {
	ctx, cancel := WithIdleTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, when := range []string{"before any progress", "after progress"} {
		last := LastProgress(ctx)
		if !strings.Contains(last.String(), " m=") {
			t.Errorf("LastProgress %s is %s: a wall clock time, moved by a step of the clock", when, last)
		}
		if d := time.Since(last); d < 0 || d > time.Second {
			t.Errorf("LastProgress %s was %s ago", when, d)
		}
		Progressed(ctx)
	}
}
