package reconcile

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os/exec"
	"path"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/pacsd/pacsd/pkg/spec"
)

// maintWorld is a converged cluster of testCluster (db1 the acting
// primary) over loudWorld, with the events recorded.
type maintWorld struct {
	*loudWorld
	d      Deps
	events []Event
	log    bytes.Buffer
}

func newMaintWorld(t *testing.T, extra string) *maintWorld {
	t.Helper()
	c := testCluster(t, extra)
	store := &MemoryStore{}
	if err := store.Save(c.Name, ClusterState{Acting: "db1", Epoch: 1}); err != nil {
		t.Fatal(err)
	}
	w := &maintWorld{loudWorld: newLoudWorld(t, c, store)}
	w.seedConverged("db1", 1)
	w.placeRecord(store)
	w.d = w.deps()
	w.d.Events = func(e Event) { w.events = append(w.events, e) }
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("log:\n%s", w.log.String())
		}
	})
	return w
}

func (w *maintWorld) logger() *slog.Logger { return slog.New(slog.NewTextHandler(&w.log, nil)) }

// event returns the last event of kind about node.
func (w *maintWorld) event(kind, node string) Event {
	for i := len(w.events) - 1; i >= 0; i-- {
		if e := w.events[i]; e.Kind == kind && e.Node == node {
			return e
		}
	}
	return Event{}
}

// stopsAndStarts picks the container stops and starts out of calls.
func stopsAndStarts(calls []string) []string {
	var out []string
	for _, c := range calls {
		if strings.HasPrefix(c, "ContainerStop ") || strings.HasPrefix(c, "ContainerStart ") {
			out = append(out, c)
		}
	}
	return out
}

func TestRestartNodeOverLoudWorld(t *testing.T) {
	t.Run("a standby", func(t *testing.T) {
		w := newMaintWorld(t, "")
		w.allow("ContainerStop", "ContainerStart")
		before, _ := w.store.Load(w.c.Name)
		done, err := RestartNode(context.Background(), w.c, w.d, "db2", RestartQuery{By: "test"}, w.logger())
		if err != nil {
			t.Fatalf("RestartNode: %v", err)
		}
		calls := w.take()
		if diff := cmp.Diff([]string{"ContainerStop id-pacs-db2", "ContainerStart id-pacs-db2"}, stopsAndStarts(calls)); diff != "" {
			t.Errorf("stops and starts (-want +got):\n%s", diff)
		}
		if done.WriteGap != 0 || done.SwitchedTo != "" {
			t.Errorf("a standby's restart: %+v", done)
		}
		after, _ := w.store.Load(w.c.Name)
		if after.Rounds != before.Rounds+1 || after.Acting != "db1" || after.Epoch != before.Epoch {
			t.Errorf("record after: %+v (before %+v); want one more round, nothing else changed", after, before)
		}
		if e := w.event("restart", "db2"); e.Result != "ok: restarted, streaming again" || !strings.Contains(e.Reason, "(test)") {
			t.Errorf("the restart's event: %+v", e)
		}
		checkConverged(t, w.loudWorld, w.d)
	})
	t.Run("the primary in place", func(t *testing.T) {
		w := newMaintWorld(t, "")
		w.allow("ContainerStop", "ContainerStart")
		done, err := RestartNode(context.Background(), w.c, w.d, "db1", RestartQuery{By: "test"}, w.logger())
		if err != nil {
			t.Fatalf("RestartNode: %v", err)
		}
		if diff := cmp.Diff([]string{"ContainerStop id-pacs-db1", "ContainerStart id-pacs-db1"}, stopsAndStarts(w.take())); diff != "" {
			t.Errorf("stops and starts (-want +got):\n%s", diff)
		}
		if done.WriteGap <= 0 {
			t.Errorf("no write gap measured: %+v", done)
		}
		if e := w.event("restart", "db1"); !strings.HasPrefix(e.Result, "ok: restarted in place, taking writes again; writes were refused for ") {
			t.Errorf("the restart's event: %+v", e)
		}
		if !w.data["db1"].up || w.data["db1"].recovery {
			t.Error("db1 does not take writes after its restart")
		}
		checkConverged(t, w.loudWorld, w.d)
	})
	t.Run("the primary comes back in recovery: the lock is let go at once", func(t *testing.T) {
		w := newMaintWorld(t, "")
		w.allow("ContainerStop", "ContainerStart")
		w.mu.Lock()
		w.data["db1"].files[SignalPath] = []byte{} // a fence placed it while it ran
		w.mu.Unlock()
		start := time.Now()
		_, err := RestartNode(context.Background(), w.c, w.d, "db1", RestartQuery{By: "test"}, w.logger())
		if err == nil || !strings.Contains(err.Error(), "it came back in recovery") {
			t.Fatalf("RestartNode: %v; want it to say the primary came back in recovery", err)
		}
		if took := time.Since(start); took > 10*time.Second {
			t.Errorf("RestartNode held the lock %s waiting for a primary in recovery", took)
		}
		if e := w.event("restart", "db1"); !strings.HasPrefix(e.Result, "failed: ") {
			t.Errorf("the restart's event: %+v", e)
		}
	})
	defer func(d time.Duration) { stopSettle = d }(stopSettle)
	stopSettle = 2 * time.Second
	t.Run("the stop call fails, the engine stops it after: started again once stopped", func(t *testing.T) {
		w := newMaintWorld(t, "")
		w.allow("ContainerStop", "ContainerStart")
		w.failOn("ContainerStop id-pacs-db1", errors.New("the engine timed out"))
		go func() { // the engine goes on with the stop the call gave up on
			time.Sleep(300 * time.Millisecond)
			w.mu.Lock()
			w.stop(w.cts["pacs-db1"])
			w.mu.Unlock()
		}()
		_, err := RestartNode(context.Background(), w.c, w.d, "db1", RestartQuery{By: "test"}, w.logger())
		if err == nil || !strings.Contains(err.Error(), "the engine timed out; it was started again") {
			t.Fatalf("RestartNode with a failing stop: %v", err)
		}
		time.Sleep(500 * time.Millisecond) // past the engine's late stop
		w.mu.Lock()
		running := w.cts["pacs-db1"].running
		w.mu.Unlock()
		if !running {
			t.Error("the node was left stopped: it was started before the engine finished the stop")
		}
	})
	t.Run("the stop fails: started again", func(t *testing.T) {
		w := newMaintWorld(t, "")
		w.allow("ContainerStop", "ContainerStart")
		w.failOn("ContainerStop id-pacs-db1", errors.New("the engine timed out"))
		_, err := RestartNode(context.Background(), w.c, w.d, "db1", RestartQuery{By: "test"}, w.logger())
		if err == nil || !strings.Contains(err.Error(), "the engine timed out; it was started again") {
			t.Fatalf("RestartNode with a failing stop: %v", err)
		}
		if diff := cmp.Diff([]string{"ContainerStop id-pacs-db1", "ContainerStart id-pacs-db1"}, stopsAndStarts(w.take())); diff != "" {
			t.Errorf("stops and starts (-want +got):\n%s", diff)
		}
	})
	t.Run("refused: changes nothing, says so in the history", func(t *testing.T) {
		w := newMaintWorld(t, "")
		w.mu.Lock()
		w.stop(w.cts["pacs-db3"])
		w.mu.Unlock()
		_, err := RestartNode(context.Background(), w.c, w.d, "db3", RestartQuery{By: "test"}, w.logger())
		var r *RefusedError
		if !errors.As(err, &r) || !strings.Contains(err.Error(), "its container is exited") {
			t.Fatalf("RestartNode of a stopped standby: %v; want a refusal", err)
		}
		if a := acts(w.take()); len(a) > 0 {
			t.Errorf("calls that change something: %q", a)
		}
		if e := w.event("restart", "db3"); !strings.HasPrefix(e.Result, "refused: ") {
			t.Errorf("the refusal's event: %+v", e)
		}
	})
}

// TestRestartAllWithSwitchover restarts every node of the cluster with
// switchover: the standbys first, one at a time, then the primary's role
// handed to a standby, the old primary back as a standby; never two
// writable servers (loudWorld checks), one switchover.
func TestRestartAllWithSwitchover(t *testing.T) {
	defer func(d time.Duration) { CatchUpTimeout = d }(CatchUpTimeout)
	CatchUpTimeout = 300 * time.Millisecond
	w := newMaintWorld(t, "")
	w.allow("ContainerStop", "ContainerStart", "sql.Checkpoint", "WriteFiles", "sql.Promote", "RunOnce", "RemoveOneOffs", "NetworkAliases", "sql.Reload", "sql.CreateSlot")
	log := w.logger()
	q := RestartQuery{Whole: true, Switchover: true, By: "test"}
	done, err := RestartAll(context.Background(), w.c, "db1", []string{"db1", "db2", "db3"}, q, func(ctx context.Context, node string, q RestartQuery) (RestartDone, error) {
		return RestartNode(ctx, w.c, w.d, node, q, log)
	})
	if err != nil {
		t.Fatalf("RestartAll: %v", err)
	}
	var order []string
	for _, r := range done {
		order = append(order, r.Node)
	}
	if diff := cmp.Diff([]string{"db2", "db3", "db1"}, order); diff != "" {
		t.Errorf("restart order (-want +got):\n%s", diff)
	}
	to := done[2].SwitchedTo
	if to != "db2" && to != "db3" {
		t.Fatalf("the primary was switched over to %q", to)
	}
	st, _ := w.store.Load(w.c.Name)
	if st.Acting != to || st.Epoch != 2 || st.Keep != "db1" {
		t.Errorf("record after: %+v; want %s acting at epoch 2, the file's db1 kept from switching back", st, to)
	}
	for _, n := range []string{"db1", "db2", "db3"} {
		if !strings.HasPrefix(w.event("restart", n).Result, "ok: ") {
			t.Errorf("the restart of %s: %+v", n, w.event("restart", n))
		}
	}
	if e := w.event("switchover", to); e.Result != "ok" {
		t.Errorf("the switchover's event: %+v", e)
	}
	w.c.Primary = to // what runs; the record keeps the file's db1 from switching back
	checkConverged(t, w.loudWorld, w.d)
}

// TestReinitOverLoudWorld rebuilds a standby: its old data moved aside and
// kept, a fresh base backup, streaming; a rebuild that fails half-way is
// finished by a second reinit or by Apply, the first copy kept.
func TestReinitOverLoudWorld(t *testing.T) {
	rebuild := []string{"ContainerStop", "ContainerRemove", "RunOnce", "RemoveOneOffs", "ContainerCreate", "ContainerStart", "WriteFiles", "sql.CreateSlot", "sql.Reload"}
	aside := func(w *maintWorld, node string) []string {
		var dirs []string
		for p := range w.data[node].files {
			if dir, rest, ok := strings.Cut(strings.TrimPrefix(p, AsidePrefix), "/"); strings.HasPrefix(p, AsidePrefix) && ok && rest == "PG_VERSION" {
				dirs = append(dirs, AsidePrefix+dir)
			}
		}
		slices.Sort(dirs)
		return dirs
	}
	t.Run("a streaming standby", func(t *testing.T) {
		w := newMaintWorld(t, "")
		w.allow(rebuild...)
		w.mu.Lock()
		w.data["db3"].files[BuildAttemptsPath] = []byte("2\n")
		w.mu.Unlock()
		done, err := Reinit(context.Background(), w.c, w.d, "db3", ReinitQuery{By: "test"}, w.logger())
		if err != nil {
			t.Fatalf("Reinit: %v", err)
		}
		kept := aside(w, "db3")
		if len(kept) != 1 || done.Aside != kept[0] {
			t.Fatalf("old data aside: %v, Reinit says %q", kept, done.Aside)
		}
		if !strings.Contains(done.Kept, "volume pacs-db3") || !strings.Contains(done.Remove, "rm 'pacsd-postgres:15' -rf -- '"+done.Aside+"'") {
			t.Errorf("where it is kept and how to remove it: %q, %q", done.Kept, done.Remove)
		}
		if _, ok := w.data["db3"].files[BuildAttemptsPath]; ok {
			t.Error("the count of unfinished builds was not reset")
		}
		if !w.streams("db3") {
			t.Error("db3 does not stream after its rebuild")
		}
		want := []string{"ContainerStop id-pacs-db3", "ContainerRemove id-pacs-db3", "RunOnce pacs-db3-move-aside", "record acting=db1 epoch=1 keep= rounds=1",
			"RunOnce pacs-db3-basebackup", "ContainerCreate pacs-db3 /run/pacsd/superuser.password", "ContainerStart id-pacs-db3", "record acting=db1 epoch=1 keep= rounds=2"}
		if diff := cmp.Diff(want, acts(w.take())); diff != "" {
			t.Errorf("what the rebuild did (-want +got):\n%s", diff)
		}
		if e := w.event("reinit", "db3"); !strings.HasPrefix(e.Result, "ok: rebuilt from a fresh base backup of db1") {
			t.Errorf("the reinit's event: %+v", e)
		}
		checkConverged(t, w.loudWorld, w.d)
	})
	for _, finish := range []string{"a second reinit", "apply"} {
		t.Run("the base backup fails, then "+finish, func(t *testing.T) {
			w := newMaintWorld(t, "")
			w.allow(rebuild...)
			w.failOn("RunOnce pacs-db3-basebackup", errors.New("the engine went away"))
			_, err := Reinit(context.Background(), w.c, w.d, "db3", ReinitQuery{By: "test"}, w.logger())
			if err == nil || !strings.Contains(err.Error(), "its old data is kept") {
				t.Fatalf("Reinit with a failing base backup: %v", err)
			}
			first := aside(w, "db3")
			if len(first) != 1 {
				t.Fatalf("old data aside after the failure: %v", first)
			}
			if ct := w.cts["pacs-db3"]; ct != nil && ct.running {
				t.Fatal("a container runs on the half-built data")
			}
			w.mu.Lock()
			delete(w.fail, "RunOnce pacs-db3-basebackup")
			w.mu.Unlock()
			time.Sleep(1100 * time.Millisecond) // a new name for a second move, if any
			if finish == "apply" {
				_, err = Apply(context.Background(), w.c, w.d, w.logger())
			} else {
				_, err = Reinit(context.Background(), w.c, w.d, "db3", ReinitQuery{By: "test"}, w.logger())
			}
			if err != nil {
				t.Fatalf("%s after the failure: %v", finish, err)
			}
			if got := aside(w, "db3"); !slices.Contains(got, first[0]) {
				t.Errorf("the first copy aside %s is gone: %v", first[0], got)
			}
			if !w.streams("db3") {
				t.Error("db3 does not stream")
			}
			checkConverged(t, w.loudWorld, w.d)
		})
	}
	t.Run("the acting primary is refused", func(t *testing.T) {
		w := newMaintWorld(t, "")
		_, err := Reinit(context.Background(), w.c, w.d, "db1", ReinitQuery{By: "test"}, w.logger())
		if err == nil || !strings.Contains(err.Error(), "it is the acting primary") || !strings.Contains(err.Error(), "'pacsd switchover db2'") {
			t.Fatalf("Reinit of the acting primary: %v", err)
		}
		if a := acts(w.take()); len(a) > 0 {
			t.Errorf("calls that change something: %q", a)
		}
		if e := w.event("reinit", "db1"); !strings.HasPrefix(e.Result, "refused: ") {
			t.Errorf("the refusal's event: %+v", e)
		}
	})
}

// TestApplyBusyCountsNoRound: a round whose first action finds another
// process's work on the node (its base backup) changed nothing and counts
// no round, so that the process doing the work does not observe and do
// it again.
func TestApplyBusyCountsNoRound(t *testing.T) {
	w := newMaintWorld(t, "")
	w.mu.Lock()
	delete(w.cts, "pacs-db3")
	w.data["db3"].files = map[string][]byte{}
	w.data["db3"].up = false
	w.mu.Unlock()
	unlock, err := w.store.Lock(context.Background(), workLockKey(w.c.Name, "db3"))
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	before, _ := w.store.Load(w.c.Name)
	_, err = Apply(context.Background(), w.c, w.d, w.logger())
	if !errors.Is(err, ErrNodeBusy) {
		t.Fatalf("Apply beside another process's base backup: %v; want ErrNodeBusy", err)
	}
	if after, _ := w.store.Load(w.c.Name); after.Rounds != before.Rounds {
		t.Errorf("rounds %d -> %d: a round that changed nothing was counted", before.Rounds, after.Rounds)
	}
	if a := acts(w.take()); len(a) > 0 {
		t.Errorf("calls that change something: %q", a)
	}
}

// TestAsideWordsQuotes: the removal command printed after a reinit means
// what it says whatever the data path holds: a space or a ";" in it
// (valid in a host directory) never turns "rm -rf" onto another path.
func TestAsideWordsQuotes(t *testing.T) {
	c := &spec.Cluster{Name: "pacs", Image: "pacsd-postgres:15"}
	for _, data := range []string{"/srv/pacs data/db2", "/srv/x;touch /tmp/pwned", "/srv/it's"} {
		n := &spec.Node{Name: "db2", Data: data, Host: "h1"}
		kept, remove := AsideWords(c, n, DataMount+"/data.aside-20261203T000000Z")
		want := path.Join(data, "data.aside-20261203T000000Z")
		out, err := exec.Command("sh", "-c", "set -- "+strings.TrimPrefix(remove, "rm -rf -- ")+`; printf '%s|%d' "$1" $#`).Output()
		if !strings.HasPrefix(remove, "rm -rf -- ") || err != nil || string(out) != want+"|1" {
			t.Errorf("data %q: %q names %q to the shell (%v); want %q alone", data, remove, out, err, want)
		}
		if !strings.Contains(kept, `on host "h1"`) || strings.Contains(remove, "h1") {
			t.Errorf("data %q: kept %q, remove %q: the host belongs to where it is kept, not to the command", data, kept, remove)
		}
	}
}

// TestSwitchNowRefusesAnotherPrimary: a restart --switchover looked at the
// cluster with db2 acting, let the lock go, and takes it again for the
// switchover: when another node acts by then (a failover in between), the
// switchover is refused and nothing is switched.
func TestSwitchNowRefusesAnotherPrimary(t *testing.T) {
	w := newMaintWorld(t, "")
	_, err := switchNow(context.Background(), w.c, "db2", "db3", w.d, "test", w.logger())
	var r *RefusedError
	if !errors.As(err, &r) || !strings.Contains(err.Error(), `"db1" acts as the primary now`) {
		t.Fatalf("switchNow from db2 while db1 acts: %v; want a refusal", err)
	}
	if a := acts(w.take()); len(a) > 0 {
		t.Errorf("calls that change something: %q", a)
	}
}
