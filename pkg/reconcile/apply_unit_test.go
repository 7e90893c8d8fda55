package reconcile

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/pacsd/pacsd/pkg/pgconf"
)

// flush shows a change of the store's record that no call saw yet.
func (w *loudWorld) flush() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if st, err := w.store.Load(w.c.Name); err == nil && !st.Same(w.last) {
		w.calls = append(w.calls, recordEntry(st, w.last))
		w.last = st
	}
}

// checkConverged observes w again, with nothing but reads allowed, and
// fails the test when the plan still holds an action or a problem.
func checkConverged(t *testing.T, w *loudWorld, d Deps) {
	t.Helper()
	w.only()
	obs, err := Observe(context.Background(), w.c, d)
	if err != nil {
		t.Fatalf("observing the converged cluster: %v", err)
	}
	actions, problems := Plan(w.c, obs, d.Matches)
	for _, p := range problems {
		if !p.Warning {
			t.Errorf("problem after Apply: %v", p)
		}
	}
	for _, a := range actions {
		t.Errorf("action left after Apply: %s", a)
	}
}

// errEngine is an error of the engine that a test scripts.
var errEngine = errors.New("driver failed programming external connectivity on endpoint pacs-db2: port is already allocated")

// TestApplyOverLoudWorld runs Apply over a world that fails the test on any
// call it does not allow, and checks, in order, every call that changes
// something and every change of the record.
func TestApplyOverLoudWorld(t *testing.T) {
	rec := func(acting string, epoch int64) *ClusterState { return &ClusterState{Acting: acting, Epoch: epoch} }
	tests := []struct {
		name string
		// extra is HCL added to the cluster that Apply converges to (the
		// world is built from the cluster without it).
		extra string
		// seed is the acting primary of the converged world to start
		// from, on timeline tl (default 1); "": nothing at all.
		seed   string
		tl     uint32
		record *ClusterState // nil: no record
		drift  func(w *loudWorld)
		allow  []string         // methods beyond the observation's
		failOn map[string]error // calls made to fail
		want   []string         // the calls that change something, and the record's changes
		err    []string         // substrings of Apply's error; none: it converges
		rounds int              // Result.Rounds
		saves  int              // saves of the record
		after  *ClusterState    // the record after Apply (default: as before, Rounds aside)
		check  func(t *testing.T, w *loudWorld, calls []string)
	}{
		{
			name:  "from nothing to converged",
			allow: []string{"NetworkCreate", "ImagePull", "ContainerCreate", "ContainerStart", "RemoveOneOffs", "sql.CreateSlot", "sql.SetRole", "RunOnce"},
			want: []string{
				"record acting=db1 epoch=0 keep= rounds=0",
				"NetworkCreate pacs",
				"ImagePull pacsd-postgres:15",
				"ContainerCreate pacs-db1 /run/pacsd/superuser.password,/run/pacsd/init/pg_hba.conf,/run/pacsd/init/pacsd.conf,/run/pacsd/init/pacsd.pgpass,/docker-entrypoint-initdb.d/00-pacsd.sh,/run/pacsd/init/server.key,/run/pacsd/init/server.crt,/run/pacsd/init/pacsd-ca.crt",
				"ContainerStart id-pacs-db1",
				"sql.CreateSlot db1 pacsd_pacs_db2",
				"sql.CreateSlot db1 pacsd_pacs_db3",
				"sql.SetRole db1 pacs",
				"sql.SetRole db1 replicator",
				"sql.SetRole db1 viewer",
				"RunOnce pacs-db2-basebackup",
				"RunOnce pacs-db3-basebackup",
				"ContainerCreate pacs-db2 /run/pacsd/superuser.password",
				"ContainerStart id-pacs-db2",
				"ContainerCreate pacs-db3 /run/pacsd/superuser.password",
				"ContainerStart id-pacs-db3",
				"record acting=db1 epoch=0 keep= rounds=1",
				"record acting=db1 epoch=0 keep= rounds=1 placed=db1,db2,db3", // where the new containers run
			},
			rounds: 1, saves: 3, after: &ClusterState{Acting: "db1", Rounds: 1},
		},
		{
			name: "a converged cluster: nothing is written", seed: "db1", record: rec("db1", 1),
		},
		{
			name: "a drifted pg_hba.conf is rewritten and reloaded", seed: "db1", record: rec("db1", 1),
			drift: func(w *loudWorld) {
				w.data["db2"].files[HBAPath] = append(w.data["db2"].files[HBAPath], "host all all 0.0.0.0/0 trust\n"...)
			},
			allow:  []string{"WriteFiles", "sql.Reload"},
			want:   []string{"WriteFiles id-pacs-db2 pg_hba.conf", "sql.Reload db2", "record acting=db1 epoch=1 keep= rounds=1"},
			rounds: 1, saves: 1,
			check: func(t *testing.T, w *loudWorld, _ []string) {
				if got, want := string(w.data["db2"].files[HBAPath]), string(NodeFiles(w.c, "db2", "db1")[HBAPath]); got != want {
					t.Errorf("db2's pg_hba.conf after Apply:\n%s\nwant:\n%s", got, want)
				}
			},
		},
		{
			name: "drifted files of two nodes are written side by side, then reloaded", seed: "db1", record: rec("db1", 1),
			drift: func(w *loudWorld) {
				w.data["db2"].files[HBAPath] = append(w.data["db2"].files[HBAPath], "host all all 0.0.0.0/0 trust\n"...)
				w.data["db3"].files[ParamsPath] = append(w.data["db3"].files[ParamsPath], "work_mem = '1GB'\n"...)
			},
			allow: []string{"WriteFiles", "sql.Reload"},
			want: []string{"WriteFiles id-pacs-db2 pg_hba.conf", "WriteFiles id-pacs-db3 pacsd.conf",
				"sql.Reload db2", "sql.Reload db3", "record acting=db1 epoch=1 keep= rounds=1"},
			rounds: 1, saves: 1,
		},
		{
			name: "a setting that takes effect at start restarts the standbys, then the primary", seed: "db1", record: rec("db1", 1),
			extra: `settings = { shared_buffers = "256MB", work_mem = "8MB" }`,
			allow: []string{"WriteFiles", "ContainerStop", "ContainerStart"},
			want: []string{"WriteFiles id-pacs-db1 pacsd.conf", "WriteFiles id-pacs-db2 pacsd.conf", "WriteFiles id-pacs-db3 pacsd.conf",
				"ContainerStop id-pacs-db2", "ContainerStart id-pacs-db2", "ContainerStop id-pacs-db3", "ContainerStart id-pacs-db3",
				"ContainerStop id-pacs-db1", "ContainerStart id-pacs-db1", "record acting=db1 epoch=1 keep= rounds=1"},
			rounds: 1, saves: 1,
		},
		{
			name: "an ALTER SYSTEM override is reset and reloaded", seed: "db1", record: rec("db1", 1),
			drift: func(w *loudWorld) {
				w.data["db1"].settings["work_mem"] = Setting{Value: "1GB", Context: "user", SourceFile: PGDATA + "/postgresql.auto.conf"}
			},
			allow:  []string{"sql.ResetSetting", "sql.Reload"},
			want:   []string{"sql.ResetSetting db1 work_mem", "sql.Reload db1", "record acting=db1 epoch=1 keep= rounds=1"},
			rounds: 1, saves: 1,
		},
		{
			name: "a stopped standby is started", seed: "db1", record: rec("db1", 1),
			drift:  func(w *loudWorld) { w.stop(w.cts["pacs-db3"]) },
			allow:  []string{"ContainerStart", "RemoveOneOffs"},
			want:   []string{"ContainerStart id-pacs-db3", "record acting=db1 epoch=1 keep= rounds=1"},
			rounds: 1, saves: 1,
		},
		{
			name: "a removed standby is created again on its data, with pacsd's files", seed: "db1", record: rec("db1", 1),
			drift: func(w *loudWorld) {
				w.stop(w.cts["pacs-db2"])
				delete(w.cts, "pacs-db2")
			},
			allow: []string{"ContainerCreate", "ContainerStart", "RemoveOneOffs"},
			want: []string{"ContainerCreate pacs-db2 /run/pacsd/superuser.password,pg_hba.conf,pacsd.conf,pacsd.pgpass,standby.signal,server.key,server.crt,pacsd-ca.crt",
				"ContainerStart id-pacs-db2", "record acting=db1 epoch=1 keep= rounds=1"},
			rounds: 1, saves: 1,
		},
		{
			name: "a container made for another configuration is re-created", seed: "db1", record: rec("db1", 1),
			drift: func(w *loudWorld) { w.cts["pacs-db3"].labels[LabelConfig] = "0123456789abcdef" },
			allow: []string{"ContainerStop", "ContainerRemove", "ContainerCreate", "ContainerStart", "RemoveOneOffs"},
			want: []string{"ContainerStop id-pacs-db3", "ContainerRemove id-pacs-db3", "ContainerCreate pacs-db3 /run/pacsd/superuser.password",
				"ContainerStart id-pacs-db3", "record acting=db1 epoch=1 keep= rounds=1"},
			rounds: 1, saves: 1,
		},
		{
			name: "a partial base backup is moved aside and built again", seed: "db1", record: rec("db1", 1),
			drift: func(w *loudWorld) {
				w.stop(w.cts["pacs-db3"])
				delete(w.cts, "pacs-db3")
				w.data["db3"].files[BuildingMarker] = []byte{}
			},
			allow: []string{"RunOnce", "ContainerCreate", "ContainerStart", "RemoveOneOffs"},
			want: []string{"RunOnce pacs-db3-move-aside", "RunOnce pacs-db3-basebackup", "ContainerCreate pacs-db3 /run/pacsd/superuser.password",
				"ContainerStart id-pacs-db3", "record acting=db1 epoch=1 keep= rounds=1"},
			rounds: 1, saves: 1,
		},
		{
			name: "a second writable node is fenced first and rejoins by a rewind", seed: "db1", record: rec("db1", 1),
			drift: func(w *loudWorld) {
				d := w.data["db3"]
				delete(d.files, SignalPath)
				d.recovery, d.upstream = false, ""
			},
			allow: []string{"WriteFiles", "ContainerStop", "sql.Checkpoint", "RunOnce", "RemoveOneOffs", "ContainerStart"},
			want: []string{"WriteFiles id-pacs-db3 standby.signal", "ContainerStop id-pacs-db3", "sql.Checkpoint db1",
				"RunOnce pacs-db3-rewind", "ContainerStart id-pacs-db3", "record acting=db1 epoch=1 keep= rounds=1"},
			rounds: 1, saves: 1,
		},
		{
			name: "a superuser password changed by hand is reset over the container's socket", seed: "db1", record: rec("db1", 1),
			drift: func(w *loudWorld) {
				r := w.roles["pacs"]
				r.Verifier = loudVerifier("changed by hand")
				w.roles["pacs"] = r
			},
			allow: []string{"WriteFiles", "Exec", "sql.CreateSlot", "sql.SetRole"},
			want: []string{"WriteFiles id-pacs-db1 /run/pacsd/set-role.sql",
				"Exec id-pacs-db1 postgres psql -XAtq -v ON_ERROR_STOP=1 -v VERBOSITY=terse -U pacs -d pacsdb -f /run/pacsd/set-role.sql",
				"Exec id-pacs-db1 postgres rm -f /run/pacsd/set-role.sql",
				"sql.CreateSlot db1 pacsd_pacs_db2", "sql.CreateSlot db1 pacsd_pacs_db3",
				"sql.SetRole db1 replicator", "sql.SetRole db1 viewer", "record acting=db1 epoch=1 keep= rounds=1"},
			rounds: 1, saves: 1,
			check: func(t *testing.T, w *loudWorld, calls []string) {
				for _, c := range calls {
					if strings.Contains(c, "SCRAM") || strings.Contains(c, "pacs-secret") {
						t.Errorf("a call carries the password or its verifier on its command line: %s", c)
					}
				}
				if _, left := w.cts["pacs-db1"].files[roleScriptPath]; left {
					t.Errorf("the script that sets the password was left in the container")
				}
			},
		},
		{
			name: "a plan with a problem acts on nothing, not even on what it could repair", seed: "db1", record: rec("db1", 1),
			drift: func(w *loudWorld) {
				w.cts["pacs-db3"].labels[LabelCluster] = "someone-else"
				w.stop(w.cts["pacs-db2"])
			},
			err: []string{`cluster "pacs", node "db3": Container Not Owned`},
		},
		{
			name: "two writable nodes and no record: nothing acts, nothing is recorded", seed: "db1",
			drift: func(w *loudWorld) {
				d := w.data["db3"]
				delete(d.files, SignalPath)
				d.recovery, d.upstream = false, ""
			},
			err: []string{"Acting Primary Unknown", `nodes "db1", "db3" all accept writes`},
		},
		{
			name: "a failing start stops the round; the error names node and step", seed: "db1", record: rec("db1", 1),
			drift: func(w *loudWorld) {
				w.stop(w.cts["pacs-db2"])
				w.stop(w.cts["pacs-db3"])
			},
			allow:  []string{"ContainerStart", "RemoveOneOffs"},
			failOn: map[string]error{"ContainerStart id-pacs-db2": errEngine},
			want:   []string{"ContainerStart id-pacs-db2", "record acting=db1 epoch=1 keep= rounds=1"},
			err:    []string{`cluster "pacs", node "db2": while start-container pacs-db2: ` + errEngine.Error()},
			rounds: 1, saves: 1,
		},
		{
			name: "a failing SQL action stops the round; the error names node and step", seed: "db1", record: rec("db1", 1),
			drift: func(w *loudWorld) {
				delete(w.data["db1"].slots, pgconf.SlotName("pacs", "db2"))
				delete(w.data["db1"].slots, pgconf.SlotName("pacs", "db3"))
			},
			allow:  []string{"sql.CreateSlot"},
			failOn: map[string]error{"sql.CreateSlot db1 pacsd_pacs_db2": errors.New("ERROR: all replication slots are in use (SQLSTATE 53400)")},
			want:   []string{"sql.CreateSlot db1 pacsd_pacs_db2", "record acting=db1 epoch=1 keep= rounds=1"},
			err:    []string{`cluster "pacs", node "db1": while create-slot pacsd_pacs_db2: ERROR: all replication slots are in use`},
			rounds: 1, saves: 1,
		},
		{
			name: "no record: it is rebuilt from the nodes and saved once", seed: "db2", tl: 2,
			want:  []string{"record acting=db2 epoch=1 keep=db1 rounds=0 placed=db1,db2,db3"},
			saves: 1, after: &ClusterState{Acting: "db2", Epoch: 1, Keep: "db1"},
		},
		{
			// A stopped standby's control file may name an older timeline
			// than its data is on (its last restartpoint): without a record,
			// nothing acts until it runs and reports its own.
			name: "no record and a stopped standby: nothing acts, nothing is recorded", seed: "db1",
			drift: func(w *loudWorld) { w.stop(w.cts["pacs-db2"]) },
			err:   []string{"Acting Primary Unknown", `the timeline of "db2" is not certain`, `start "db2" by hand`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			base := testCluster(t, "")
			store := &MemoryStore{}
			if tt.record != nil {
				if err := store.Save(base.Name, *tt.record); err != nil {
					t.Fatal(err)
				}
			}
			saves := store.Saves
			w := newLoudWorld(t, base, store)
			if tt.seed != "" {
				w.seedConverged(tt.seed, max(tt.tl, 1))
				w.placeRecord(store)
				saves = store.Saves
			}
			if tt.drift != nil {
				w.mu.Lock()
				tt.drift(w)
				w.mu.Unlock()
			}
			w.allow(tt.allow...)
			for call, err := range tt.failOn {
				w.failOn(call, err)
			}
			c := base
			if tt.extra != "" {
				c = testCluster(t, tt.extra)
				w.c = c
			}
			d := w.deps()
			var log bytes.Buffer
			res, err := Apply(context.Background(), c, d, slog.New(slog.NewTextHandler(&log, nil)))
			w.flush()
			calls := w.take()
			if diff := cmp.Diff(tt.want, acts(calls)); diff != "" {
				t.Errorf("calls that change something (-want +got):\n%s", diff)
			}
			switch {
			case len(tt.err) == 0 && err != nil:
				t.Errorf("Apply: %v; want it to converge\nlog:\n%s", err, log.String())
			case len(tt.err) > 0 && err == nil:
				t.Errorf("Apply converged; want an error with %q", tt.err)
			}
			for _, s := range tt.err {
				if err != nil && !strings.Contains(err.Error(), s) {
					t.Errorf("Apply's error:\n%v\nwant it to say %q", err, s)
				}
			}
			if res.Rounds != tt.rounds {
				t.Errorf("Apply took %d rounds that acted, want %d", res.Rounds, tt.rounds)
			}
			if got := store.Saves - saves; got != tt.saves {
				t.Errorf("the record was saved %d times, want %d", got, tt.saves)
			}
			want := ClusterState{}
			if tt.record != nil {
				want = *tt.record
				want.Rounds = uint64(tt.rounds)
			}
			if tt.after != nil {
				want = *tt.after
			}
			if want.Acting != "" && want.Placed == nil {
				want.Placed = w.placed()
			}
			if got, _ := store.Load(c.Name); !got.Same(want) {
				t.Errorf("the record after Apply: %+v, want %+v", got, want)
			}
			if tt.check != nil {
				tt.check(t, w, calls)
			}
			if len(tt.err) == 0 && !t.Failed() {
				checkConverged(t, w, d)
			}
			if t.Failed() {
				t.Logf("log:\n%s", log.String())
			}
		})
	}
}

// TestApplyStaleRoundObservesAgain: when the record changes between a
// round's observation and its actions (another pacsd process, a failover
// or a switchover acted), the round acts on nothing and observes again.
func TestApplyStaleRoundObservesAgain(t *testing.T) {
	c := testCluster(t, "")
	store := &MemoryStore{}
	if err := store.Save(c.Name, ClusterState{Acting: "db1", Epoch: 1}); err != nil {
		t.Fatal(err)
	}
	w := newLoudWorld(t, c, store)
	w.seedConverged("db1", 1)
	w.mu.Lock()
	w.stop(w.cts["pacs-db3"])
	w.mu.Unlock()
	w.allow("ContainerStart", "RemoveOneOffs")
	var once sync.Once
	w.onCall = func(call string) {
		if strings.HasPrefix(call, "ImageInspect ") {
			// Observe has read the record; another process acts now.
			once.Do(func() { _ = store.Save(c.Name, ClusterState{Acting: "db1", Epoch: 2}) })
		}
	}
	var log bytes.Buffer
	res, err := Apply(context.Background(), c, w.deps(), slog.New(slog.NewTextHandler(&log, nil)))
	if err != nil {
		t.Fatalf("Apply: %v\nlog:\n%s", err, log.String())
	}
	w.flush()
	var got []string
	for _, call := range w.take() {
		if strings.HasPrefix(call, "ImageInspect ") || strings.HasPrefix(call, "record ") || strings.HasPrefix(call, "ContainerStart ") {
			got = append(got, call)
		}
	}
	want := []string{
		"ImageInspect pacsd-postgres:15", // the first observation: stale at once
		"record acting=db1 epoch=2 keep= rounds=0",
		"ImageInspect pacsd-postgres:15",                              // observed again, then acted
		"record acting=db1 epoch=2 keep= rounds=0 placed=db1,db2,db3", // where the nodes run, first seen
		"ContainerStart id-pacs-db3",
		"record acting=db1 epoch=2 keep= rounds=1",
		"ImageInspect pacsd-postgres:15", // converged
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("observations, actions and record changes (-want +got):\n%s\nlog:\n%s", diff, log.String())
	}
	if res.Rounds != 1 {
		t.Errorf("Apply took %d rounds that acted, want 1", res.Rounds)
	}
	if !strings.Contains(log.String(), "observing again") {
		t.Errorf("the stale round was not logged:\n%s", log.String())
	}
}
