package daemon

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/pacsd/pacsd/pkg/reconcile"
	"github.com/pacsd/pacsd/pkg/spec"
)

// lostRuntime is an engine on which the primary's container runs but whose
// stop fails: a fence is never confirmed, so a failover is refused.
type lostRuntime struct{ reconcile.Runtime }

func (lostRuntime) ContainerInspect(_ context.Context, name, _, _ string) (*reconcile.ContainerState, error) {
	return &reconcile.ContainerState{ID: "id-" + name, Name: name, Running: true, Addr: name + ":5432"}, nil
}
func (lostRuntime) WriteFiles(context.Context, string, []reconcile.FileWrite) error {
	return errors.New("the engine does not answer")
}
func (lostRuntime) ContainerStop(context.Context, string, time.Duration) error {
	return errors.New("the engine does not answer")
}

// deadDB refuses every connection: the primary does not answer.
type deadDB struct{}

func (deadDB) Connect(context.Context, string, string, spec.Secret, string) (reconcile.DBConn, error) {
	return nil, errors.New("connection refused")
}

// TestLostTimerRunsWhileLocked: a primary lost while a pass holds the
// cluster's lock (a restart, a base backup) has its lost time counted; once
// the lock is free and failover.after has passed, the very next check
// decides (here: a refusal, since the fence cannot be confirmed), instead of
// starting the timer only then.
func TestLostTimerRunsWhileLocked(t *testing.T) {
	f := mustFixture(t)
	c := f.d.file.Clusters[0]
	c.Failover.Automatic, c.Failover.After = true, spec.Duration{Duration: 300 * time.Millisecond}
	deps := reconcile.Deps{Runtimes: map[string]reconcile.Runtime{"": lostRuntime{}}, DB: deadDB{}, Store: f.recorded(t, c), CAs: &reconcile.MemoryStore{}}
	ws := &watchState{}
	ctx := context.Background()

	unlock, err := f.d.lock(ctx, c.Name) // a pass acts
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(500 * time.Millisecond)
	for time.Now().Before(deadline) {
		f.d.check(ctx, c, deps, ws)
		time.Sleep(20 * time.Millisecond)
	}
	refused := `pacsd_failovers_total{cluster="pacs",result="refused"} 1`
	if f.metric(refused) {
		t.Fatal("a failover was tried while a pass held the lock")
	}
	unlock() // the pass ends
	f.d.check(ctx, c, deps, ws)
	if !f.metric(refused) {
		t.Errorf("the first check after the pass let go of the lock tried no failover; want one: the primary was lost for longer than failover.after\nlog:\n%s", f.log)
	}
}

// refusingDB is a server that answers and refuses the login (a password
// changed by hand): the server is alive.
type refusingDB struct{}

func (refusingDB) Connect(context.Context, string, string, spec.Secret, string) (reconcile.DBConn, error) {
	return nil, fmt.Errorf("%w: FATAL: password authentication failed for user \"pacs\" (SQLSTATE 28P01)", reconcile.ErrServerRefused)
}

// TestRefusedLoginIsNotLost: a primary whose server refuses pacsd's login
// (its password changed by hand) is alive; it is never failed over (before,
// it was fenced after failover.after with nothing to promote).
func TestRefusedLoginIsNotLost(t *testing.T) {
	f := mustFixture(t)
	c := f.d.file.Clusters[0]
	c.Failover.Automatic, c.Failover.After = true, spec.Duration{Duration: 100 * time.Millisecond}
	deps := reconcile.Deps{Runtimes: map[string]reconcile.Runtime{"": lostRuntime{}}, DB: refusingDB{}, Store: f.recorded(t, c), CAs: &reconcile.MemoryStore{}}
	ws := &watchState{}
	deadline := time.Now().Add(500 * time.Millisecond)
	for time.Now().Before(deadline) {
		f.d.check(context.Background(), c, deps, ws)
		time.Sleep(20 * time.Millisecond)
	}
	if strings.Contains(f.log.String(), "primary lost") || f.metric(`pacsd_failovers_total{cluster="pacs",result="refused"} 1`) {
		t.Errorf("a primary that refuses the login was taken for lost:\n%s", f.log)
	}
}

// TestWatchdogCountsFromProgress: the service watchdog is fed while a pass
// runs far longer than its timeout as long as it makes progress (a base
// backup of hours), and no more once it has made none for the timeout;
// before, it counted from the pass's start and systemd killed pacsd in the
// middle of any long base backup.
func TestWatchdogCountsFromProgress(t *testing.T) {
	f := mustFixture(t)
	defer func(g time.Duration) { watchdogGrace = g }(watchdogGrace)
	watchdogGrace = 0
	f.d.o.PassTimeout = 200 * time.Millisecond
	f.d.looping.Store(true)
	pctx, cancel := reconcile.WithIdleTimeout(context.Background(), time.Hour)
	defer cancel()
	f.d.passCtx.Store(&pctx)
	for start := time.Now(); time.Since(start) < time.Second; time.Sleep(50 * time.Millisecond) {
		reconcile.Progressed(pctx)
		if err := f.d.alive(); err != nil {
			t.Fatalf("a pass that progresses, %s after it began: %v; want alive", time.Since(start).Round(time.Millisecond), err)
		}
	}
	time.Sleep(300 * time.Millisecond)
	if err := f.d.alive(); err == nil {
		t.Error("a pass with no progress for longer than its timeout is still counted alive")
	}
}

// recorded records c's primary as the acting one in the daemon's store and
// returns the store.
func (f *fixture) recorded(t *testing.T, c *spec.Cluster) reconcile.ClusterStore {
	t.Helper()
	st := f.d.snap.Load().deps.Store
	if err := st.Save(c.Name, reconcile.ClusterState{Acting: c.Primary, Epoch: 1}); err != nil {
		t.Fatal(err)
	}
	return st
}

// TestEventsOfTheActingPrimaryLeftToSupervisor: with automatic failover, an
// engine event that the acting primary went down starts no pass (the
// supervisor decides, and starts one after); every other event does as
// before.
func TestEventsOfTheActingPrimaryLeftToSupervisor(t *testing.T) {
	f := mustFixture(t)
	c := f.d.file.Clusters[0]
	primary, standby := c.Node(c.Primary).Container, ""
	for _, n := range c.Nodes {
		if n.Name != c.Primary {
			standby = n.Container
		}
	}
	ev := func(action, name string) Event { return Event{Type: "container", Action: action, Name: name} }
	if f.d.leftToSupervisor(c.Name, ev("die", primary)) {
		t.Error("without automatic failover, the primary's death was left to a supervisor that does not run")
	}
	c.Failover.Automatic = true
	if f.d.leftToSupervisor(c.Name, ev("die", primary)) {
		t.Error("without a record, the primary's death was left to the supervisor")
	}
	f.recorded(t, c)
	for _, tt := range []struct {
		ev   Event
		want bool
	}{
		{ev("die", primary), true},
		{ev("kill", primary), true},
		{ev("destroy", primary), true},
		{ev("start", primary), false},
		{ev("die", standby), false},
		{Event{Type: "network", Action: "disconnect", Name: primary}, false},
	} {
		if got := f.d.leftToSupervisor(c.Name, tt.ev); got != tt.want {
			t.Errorf("leftToSupervisor(%+v) = %v, want %v", tt.ev, got, tt.want)
		}
	}
}
