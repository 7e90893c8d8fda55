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
	for time.Since(start) < time.Second {
		Progressed(ctx)
		if ctx.Err() != nil {
			t.Fatalf("cancelled after %s although progress was reported every 50 ms", time.Since(start))
		}
		time.Sleep(50 * time.Millisecond)
	}
	stalled := time.Now()
	<-ctx.Done()
	if took := time.Since(stalled); took < 200*time.Millisecond || took > 2*time.Second {
		t.Errorf("cancelled %s after progress stopped, want about 300ms", took)
	}
	if cause := context.Cause(ctx); !errors.Is(cause, context.DeadlineExceeded) || !strings.Contains(cause.Error(), "no progress for") {
		t.Errorf("cause %v, want no progress and a deadline", cause)
	}
}
