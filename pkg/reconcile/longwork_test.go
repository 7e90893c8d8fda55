package reconcile

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"
)

// longRuntime runs one-offs that print a changing progress line every
// 50 ms for run, or nothing at all when stall is set, until ctx is done.
// While one runs it asks the cluster's lock whether it is free.
type longRuntime struct {
	Runtime
	run   time.Duration
	stall bool
	// during is called while the one-off runs.
	during func()
}

func (f *longRuntime) RemoveOneOffs(context.Context, string, string) ([]string, error) {
	if f.during != nil && f.run == 0 && !f.stall {
		f.during() // TestBusyNodeLeftAlone: a removal it must not see
	}
	return nil, nil
}

func (f *longRuntime) RunOnce(ctx context.Context, o OneOff) (int, string, error) {
	if f.during != nil {
		f.during()
	}
	start := time.Now()
	for i := 0; ; i++ {
		if !f.stall && time.Since(start) > f.run {
			return 0, "", nil
		}
		if !f.stall {
			o.Progress(fmt.Sprintf("%d/4000000 kB (%d%%), 0/1 tablespace", i*1000, i/40))
		}
		select {
		case <-ctx.Done():
			return -1, "", ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func backupAction() Action {
	return Action{Kind: BaseBackup, Cluster: "pacs", Node: "db2", Target: "volume pacs-db2", Mount: Mount{Volume: "pacs-db2"},
		Backup: &BackupSpec{Host: "pacs-db1", Port: 5432, User: "replicator", Slot: "pacsd_pacs_db2",
			Passfile: FileWrite{Path: SecretsDir + "/pgpass", Content: []byte("x"), Mode: 0o600, Secret: true}}}
}

// TestLongWorkRunsWhileItProgresses: a base backup that takes longer than
// the pass's idle timeout but prints its progress is never cut (before, a
// pass was cut at a fixed time, its data moved aside and the backup started
// again, forever); one that stops moving is given up once the idle timeout
// passes, and the error says why.
func TestLongWorkRunsWhileItProgresses(t *testing.T) {
	c := testCluster(t, "")
	run := func(rt *longRuntime) error {
		ctx, cancel := WithIdleTimeout(context.Background(), 300*time.Millisecond)
		defer cancel()
		x := newExecutor(c, Deps{Runtimes: map[string]Runtime{"": rt}}, &Observed{State: ClusterState{Acting: "db1"}}, slog.New(slog.DiscardHandler))
		x.alive = func() { Progressed(ctx) }
		err := x.do(ctx, backupAction())
		if err != nil && context.Cause(ctx) != nil {
			err = fmt.Errorf("%w (%v)", err, context.Cause(ctx))
		}
		return err
	}
	if err := run(&longRuntime{run: 1500 * time.Millisecond}); err != nil {
		t.Errorf("a base backup that progresses for 1.5 s under an idle timeout of 300 ms: %v; want it to complete", err)
	}
	start := time.Now()
	err := run(&longRuntime{stall: true})
	if err == nil || !strings.Contains(err.Error(), "no progress for") {
		t.Errorf("a stalled base backup: %v; want it given up for lack of progress", err)
	}
	if took := time.Since(start); took > 3*time.Second {
		t.Errorf("a stalled base backup was given up after %s, want about 300 ms", took)
	}
}

// TestLongWorkYieldsTheLock: while a base backup runs, the cluster's lock is
// free (the failover supervisor can take it); afterwards the round holds it
// again, and when a failover changed the cluster's state meanwhile, the
// round ends as stale and observes again instead of going on.
func TestLongWorkYieldsTheLock(t *testing.T) {
	c := testCluster(t, "")
	store := &MemoryStore{}
	lk := store
	_ = store.Save("pacs", ClusterState{Acting: "db1", Epoch: 1})
	freeDuring, workHeld := false, false
	rt := &longRuntime{run: 100 * time.Millisecond}
	rt.during = func() {
		freeDuring = !lk.Held("pacs")
		workHeld = lk.Held(workLockKey("pacs", "db2"))
		// A failover happens meanwhile: db3 is the acting primary now.
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		unlock, err := lk.Lock(ctx, "pacs")
		if err != nil {
			return // the lock is held: freeDuring says so
		}
		_ = store.Save("pacs", ClusterState{Acting: "db3", Epoch: 2})
		unlock()
	}
	d := Deps{Runtimes: map[string]Runtime{"": rt}, Store: store}
	unlock, _ := lk.Lock(context.Background(), "pacs")
	held := &heldLock{unlock: unlock}
	obs := &Observed{State: ClusterState{Acting: "db1", Epoch: 1}}
	err := execute(context.Background(), c, d, obs, []Action{backupAction(), {Kind: StartContainer, Node: "db2", Target: "pacs-db2"}}, slog.New(slog.DiscardHandler), &Result{}, held)
	if !freeDuring {
		t.Error("the cluster's lock was held while the base backup ran; a failover would have waited for it")
	}
	if !workHeld {
		t.Error("the node's work lock was not held while the base backup ran without the cluster's lock")
	}
	if !errors.Is(err, errStale) {
		t.Errorf("execute after a failover during the base backup: %v; want the round stale (the start of db2 not attempted)", err)
	}
	if !lk.Held("pacs") || lk.Held(workLockKey("pacs", "db2")) {
		t.Errorf("after the base backup the round must hold the cluster's lock and not the node's: %v", "")
	}
	held.release()
	if lk.Held("pacs") {
		t.Error("the lock is still held after the round let go of it")
	}
}

// TestBusyNodeLeftAlone: a one-off of another pacsd process that runs long
// work on a node (it holds the node's work lock) is work in progress, not a
// leftover: starting the node's container is refused for now, and nothing
// is removed.
func TestBusyNodeLeftAlone(t *testing.T) {
	c := testCluster(t, "")
	lk := &MemoryStore{}
	other, _ := lk.Lock(context.Background(), workLockKey("pacs", "db2"))
	defer other()
	rt := &longRuntime{}
	removed := false
	rt.during = func() { removed = true }
	x := newExecutor(c, Deps{Runtimes: map[string]Runtime{"": rt}, Store: lk}, &Observed{State: ClusterState{Acting: "db1"}}, slog.New(slog.DiscardHandler))
	err := x.do(context.Background(), Action{Kind: StartContainer, Node: "db2", Target: "pacs-db2"})
	if !errors.Is(err, ErrNodeBusy) {
		t.Fatalf("starting db2 while another process builds its data: %v; want ErrNodeBusy", err)
	}
	if removed {
		t.Error("the other process's one-off was removed")
	}
}
