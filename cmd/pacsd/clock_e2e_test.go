package main

import (
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pacsd/pacsd/internal/e2e"
	"github.com/pacsd/pacsd/internal/faults"
)

// TestFaultClockStep steps the machine's clock forward and back while a
// failover is under way: the primary is killed, then the clock is stepped 3
// minutes forward, 6 back and 3 forward again (each 1 s apart, the clock as
// it was at the end). Timers on the wall clock would fail over at once, or
// minutes late, or refuse for a last sight of the primary that looks old:
// the failover must come as without the steps, once, with nothing
// acknowledged lost and never two writable nodes, and the old primary must
// rejoin. The steps stay within the 5 minutes certificates are backdated.
// It changes the clock of the whole machine, so only `make faults` runs it
// (PACSD_FAULTS=1), with nothing else beside it.
func TestFaultClockStep(t *testing.T) {
	if os.Getenv(faults.LongEnv) != "1" {
		t.Skipf("steps the machine's clock: 'make faults' (%s=1) runs it", faults.LongEnv)
	}
	b := newFailoverBed(t, true)
	e := b.tp.e
	ctx := e.Ctx(10 * time.Minute)
	var stepped time.Duration
	step := func(d time.Duration) {
		t.Helper()
		tv := syscall.NsecToTimeval(time.Now().Add(d).UnixNano())
		if err := syscall.Settimeofday(&tv); err != nil {
			t.Fatalf("stepping the clock by %s: %v (the test needs root)", d, err)
		}
		stepped += d
		t.Logf("clock stepped by %s: %s", d, time.Now().UTC().Format(time.RFC3339))
	}
	t.Cleanup(func() {
		if stepped != 0 {
			step(-stepped)
		}
	})

	run := e2e.Fault(t, "the clock stepped forward and back during a failover", faults.ClockStepped)
	mark := len(b.r.log.String())
	start := time.Now()
	if err := e.Docker.ContainerKill(ctx, b.tp.container("db1"), "KILL"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	step(3 * time.Minute)
	time.Sleep(time.Second)
	step(-6 * time.Minute)
	time.Sleep(time.Second)
	step(3 * time.Minute)
	now := b.failedOver(t, "db1", start)
	if took := time.Since(start); took > time.Minute {
		t.Errorf("the failover took %s across the clock's steps; without them it takes well under a minute", took.Round(time.Millisecond))
	}
	if n := strings.Count(b.r.log.String()[mark:], `"msg":"failover: standby promoted"`); n != 1 {
		t.Errorf("%d promotions across the clock's steps, want 1", n)
	}
	b.rejoined(t, now)
	run.Converged()
	b.finish(t, now)
}
