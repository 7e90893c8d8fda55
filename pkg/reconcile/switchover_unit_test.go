package reconcile

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// switchSteps picks out of calls the steps of a switchover from the old
// primary's checkpoint to the target's promotion: the checkpoint, stops and
// starts, reads of the old primary's control file, the target's replay
// (sql.State of target, once per run), the record's changes, writes and the
// promotion.
func switchSteps(calls []string, from, to string) []string {
	start := slices.Index(calls, "sql.Checkpoint "+from)
	if start < 0 {
		return nil
	}
	var out []string
	for _, c := range calls[start:] {
		method, _, _ := strings.Cut(c, " ")
		switch {
		case method == "sql.State" && c != "sql.State "+to:
			continue
		case method == "sql.Checkpoint", method == "ContainerStop", method == "ContainerStart", method == "ReadFiles",
			method == "sql.State", method == "record", method == "WriteFiles", method == "sql.Promote":
		default:
			continue
		}
		if len(out) > 0 && out[len(out)-1] == c {
			continue
		}
		out = append(out, c)
		if method == "sql.Promote" {
			break
		}
	}
	return out
}

// TestSwitchoverToOverLoudWorld runs SwitchoverTo over a world that fails
// the test on any call it does not allow.
func TestSwitchoverToOverLoudWorld(t *testing.T) {
	errDisk := errors.New("write state/cluster-pacs.json: no space left on device")
	// What the Apply after a switchover does: rewind the old primary and
	// the other standby, give the aliases to their new owners, write the
	// new primary's pacsd.conf, create its slots.
	converge := []string{"RunOnce", "RemoveOneOffs", "ContainerStart", "NetworkAliases", "sql.Reload", "sql.CreateSlot"}
	tests := []struct {
		name    string
		to      string
		drift   func(w *loudWorld)
		saveErr error
		allow   []string
		// steps are the switchover's steps (see switchSteps).
		steps   []string
		err     []string
		after   ClusterState // the record after it, Rounds aside
		primary string       // the one writable server after it
		// noCalls: not even an observation.
		noCalls bool
	}{
		{
			name:  "checkpoint, stop, catch up, record, fence, promote; then the rest converges",
			to:    "db2",
			allow: append([]string{"sql.Checkpoint", "ContainerStop", "WriteFiles", "sql.Promote"}, converge...),
			steps: []string{
				"sql.Checkpoint db1",
				"ContainerStop id-pacs-db1",
				"ReadFiles id-pacs-db1",
				"sql.State db2",
				"record acting=db2 epoch=2 keep=db1 rounds=0",
				"WriteFiles id-pacs-db1 standby.signal",
				"sql.Promote db2",
			},
			after:   ClusterState{Acting: "db2", Epoch: 2, Keep: "db1"},
			primary: "db2",
		},
		{
			name:    "to the acting primary: nothing to switch",
			to:      "db1",
			after:   ClusterState{Acting: "db1", Epoch: 1},
			primary: "db1",
		},
		{
			name:    "a target that does not stream is refused before anything stops",
			to:      "db2",
			drift:   func(w *loudWorld) { w.data["db2"].lagging = true },
			err:     []string{`cluster "pacs", node "db2": Switchover Not Possible`, `it is not a standby streaming from "db1"`},
			after:   ClusterState{Acting: "db1", Epoch: 1},
			primary: "db1",
		},
		{
			name:    "the record cannot be written: the old primary is started again, nothing is promoted",
			to:      "db2",
			saveErr: errDisk,
			allow:   []string{"sql.Checkpoint", "ContainerStop", "ContainerStart"},
			steps:   []string{"sql.Checkpoint db1", "ContainerStop id-pacs-db1", "ReadFiles id-pacs-db1", "sql.State db2", "ContainerStart id-pacs-db1"},
			err: []string{`cluster "pacs", node "db2": while switching over to "db2"`, "no space left on device",
				`the old primary "db1" was started again and is still the primary`},
			after:   ClusterState{Acting: "db1", Epoch: 1},
			primary: "db1",
		},
		{
			name:  "a target that stops replaying: the old primary is started again, nothing is recorded",
			to:    "db2",
			drift: func(w *loudWorld) { w.data["db2"].stuck = true },
			allow: []string{"sql.Checkpoint", "ContainerStop", "ContainerStart"},
			steps: []string{"sql.Checkpoint db1", "ContainerStop id-pacs-db1", "ReadFiles id-pacs-db1", "sql.State db2", "ContainerStart id-pacs-db1"},
			err: []string{`the target "db2" did not replay the old primary's shutdown checkpoint 0/3000000`,
				`the old primary "db1" was started again and is still the primary`},
			after:   ClusterState{Acting: "db1", Epoch: 1},
			primary: "db1",
		},
		{
			name:    "a node the file does not declare",
			to:      "db9",
			err:     []string{`cluster "pacs" has no node "db9"`},
			after:   ClusterState{Acting: "db1", Epoch: 1},
			primary: "db1",
			noCalls: true,
		},
	}
	defer func(d time.Duration) { CatchUpTimeout = d }(CatchUpTimeout)
	CatchUpTimeout = 300 * time.Millisecond
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := testCluster(t, "")
			store := &MemoryStore{}
			if err := store.Save(c.Name, ClusterState{Acting: "db1", Epoch: 1}); err != nil {
				t.Fatal(err)
			}
			w := newLoudWorld(t, c, store)
			w.seedConverged("db1", 1)
			w.placeRecord(store)
			if tt.drift != nil {
				w.mu.Lock()
				tt.drift(w)
				w.mu.Unlock()
			}
			w.allow(tt.allow...)
			store.SaveErr = tt.saveErr
			d := w.deps()
			var log bytes.Buffer
			_, err := SwitchoverTo(context.Background(), c, tt.to, d, slog.New(slog.NewTextHandler(&log, nil)))
			w.flush()
			calls := w.take()
			if diff := cmp.Diff(tt.steps, switchSteps(calls, "db1", tt.to)); diff != "" {
				t.Errorf("the switchover's steps (-want +got):\n%s", diff)
			}
			if tt.noCalls && len(calls) > 0 {
				t.Errorf("calls: %q; want none", calls)
			}
			if tt.steps == nil && len(acts(calls)) > 0 {
				t.Errorf("calls that change something: %q; want none", acts(calls))
			}
			switch {
			case len(tt.err) == 0 && err != nil:
				t.Errorf("SwitchoverTo: %v; want it done", err)
			case len(tt.err) > 0 && err == nil:
				t.Errorf("SwitchoverTo succeeded; want an error with %q", tt.err)
			}
			for _, s := range tt.err {
				if err != nil && !strings.Contains(err.Error(), s) {
					t.Errorf("SwitchoverTo's error:\n%v\nwant it to say %q", err, s)
				}
			}
			got, _ := store.Load(c.Name)
			got.Rounds = 0
			if tt.after.Placed == nil {
				tt.after.Placed = w.placed()
			}
			if !got.Same(tt.after) {
				t.Errorf("the record after the switchover: %+v, want %+v", got, tt.after)
			}
			var writable []string
			for _, n := range c.Nodes {
				if s := w.data[n.Name]; s.up && !s.recovery {
					writable = append(writable, n.Name)
				}
			}
			if !slices.Equal(writable, []string{tt.primary}) {
				t.Errorf("writable servers after the switchover: %v, want %s", writable, tt.primary)
			}
			if store.SaveErr == nil && len(tt.err) == 0 && !t.Failed() {
				checkConverged(t, w, d)
			}
			if t.Failed() {
				t.Logf("log:\n%s", log.String())
			}
		})
	}
}
