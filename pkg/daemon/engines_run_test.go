package daemon

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/pacsd/pacsd/pkg/reconcile"
	"github.com/pacsd/pacsd/pkg/spec"
)

// enginesRunTopology is hostsTopology with a resync that does not come
// while a test runs: any pass but the first is started by something else.
const enginesRunTopology = hostsTopology + `
daemon {
  resync = "1h"
}
`

// run runs the daemon until the test ends.
func (f *fixture) run(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.d.Run(ctx, nil) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
}

// engineReachable reports whether the status says the engine of host
// answered its last check, and whether it has been checked at all.
func (f *fixture) engineReachable(host string) (reachable, checked bool) {
	es, ok := f.d.Status().Engines[host]
	return es.Reachable, ok
}

// TestEngineAnswersAgainStartsPass: while an engine on which a node runs
// does not answer, it is checked every engineCheckEveryDown and no pass
// runs; when it answers again, a pass starts within about that interval,
// without waiting for the resync (an hour here).
func TestEngineAnswersAgainStartsPass(t *testing.T) {
	f, err := newFixture(t, enginesRunTopology)
	if err != nil {
		t.Fatalf("New: %v\nlog:\n%s", err, f.log)
	}
	w := newCheckWorld(t, "pacs", f.d.snap.Load().deps.Store) // allows no call but Ping
	a := newPingEngine(w)
	a.set(func(e *pingEngine) { e.err = errUnreachable })
	f.setRuntimes(map[string]reconcile.Runtime{"a": a})
	f.run(t)

	waitFor(t, "the first pass and a check that finds a silent", func() bool {
		reachable, checked := f.engineReachable("a")
		return f.d.passed() && checked && !reachable
	})
	if n := len(f.takeApplied()); n != 1 {
		t.Fatalf("%d passes before a was found silent, want the first one only", n)
	}
	// A second check of the silent engine comes within engineCheckEveryDown,
	// and starts no pass.
	pings, since := a.count(), time.Now()
	waitFor(t, "a second check of a", func() bool { return a.count() > pings })
	if took := time.Since(since); took > engineCheckEveryDown+time.Second {
		t.Errorf("a silent engine was checked again after %s, want within %s", took, engineCheckEveryDown)
	}
	time.Sleep(100 * time.Millisecond) // the check records, and would poke
	if a := f.takeApplied(); len(a) != 0 {
		t.Errorf("passes ran while a stays silent and nothing changed: %v", a)
	}

	a.set(func(e *pingEngine) { e.err = nil })
	back := time.Now()
	waitFor(t, "a pass after a answers again", func() bool { return len(f.takeApplied()) > 0 })
	took := time.Since(back)
	if took > engineCheckEveryDown+time.Second {
		t.Errorf("a pass came %s after a answered again, want within about %s", took, engineCheckEveryDown)
	}
	t.Logf("a pass came %s after the engine answered again", took.Round(time.Millisecond))
	if reachable, _ := f.engineReachable("a"); !reachable {
		t.Error("a pass ran after a answered again, but the status does not say a answers")
	}
	if !strings.Contains(f.log.String(), `msg="Docker engine answers again; observing its nodes at once" host=a`) {
		t.Errorf("a answering again was not logged:\n%s", f.log)
	}
	if calls := w.take(); len(calls) != 0 {
		t.Errorf("the engines' check called the engine for more than Ping: %q", calls)
	}
}

// TestEngineCheckedDuringLongPass: a pass held by long work (a base
// backup) does not hold the engines' check: an engine that answers again
// meanwhile is reported so at once, and the pass it asks for runs as soon
// as the long one ends.
func TestEngineCheckedDuringLongPass(t *testing.T) {
	f, err := newFixture(t, enginesRunTopology)
	if err != nil {
		t.Fatalf("New: %v\nlog:\n%s", err, f.log)
	}
	w := newCheckWorld(t, "pacs", f.d.snap.Load().deps.Store)
	a := newPingEngine(w)
	a.set(func(e *pingEngine) { e.err = errUnreachable })
	f.setRuntimes(map[string]reconcile.Runtime{"a": a})
	started, release := make(chan struct{}, 10), make(chan struct{})
	f.setApply(func(*spec.Cluster) (reconcile.Result, error) {
		started <- struct{}{}
		<-release
		return reconcile.Result{}, nil
	})
	f.run(t)
	defer close(release) // lets a pass still held go when the test fails

	<-started // the first pass runs, and is held
	waitFor(t, "a check that finds a silent during the pass", func() bool {
		reachable, checked := f.engineReachable("a")
		return checked && !reachable
	})
	a.set(func(e *pingEngine) { e.err = nil })
	back := time.Now()
	waitFor(t, "a check that finds a answering during the pass", func() bool {
		reachable, _ := f.engineReachable("a")
		return reachable
	})
	if took := time.Since(back); took > engineCheckEveryDown+time.Second {
		t.Errorf("the status said a answers %s after it did, want within about %s", took, engineCheckEveryDown)
	}
	if f.d.passed() {
		t.Fatal("the first pass ended before the check found a answering: the test proves nothing")
	}
	if !f.metric(`pacsd_engine_up{host="a"} 1`) {
		t.Error(`/metrics has no line pacsd_engine_up{host="a"} 1 while a pass is held`)
	}

	release <- struct{}{} // the held pass ends
	select {
	case <-started: // the pass a asked for
		release <- struct{}{}
	case <-time.After(time.Second):
		t.Fatal("no pass followed the held one, though a answered again meanwhile")
	}
}
