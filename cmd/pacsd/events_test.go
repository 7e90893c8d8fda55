package main

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/pacsd/pacsd/pkg/reconcile"
	"github.com/pacsd/pacsd/pkg/state"
)

// eventsFile writes a topology file with the clusters east and west whose
// daemon block names a state directory, and returns the file's path and the
// store of that directory.
func eventsFile(t *testing.T) (string, *state.Store) {
	t.Helper()
	stateDir := filepath.Join(t.TempDir(), "state")
	body := conninfoCluster("east", "pacs", "pacsdb", "db1", `
  node "db1" {}
  node "db2" {}
`) + conninfoCluster("west", "pacs", "pacsdb", "db1", `
  node "db1" {}
`) + `
daemon {
  state_dir = "` + stateDir + `"
}
`
	return conninfoFile(t, body), &state.Store{Dir: stateDir}
}

// appendEvents appends evs through the store, as the daemon does.
func appendEvents(t *testing.T, s *state.Store, evs ...reconcile.Event) {
	t.Helper()
	for _, e := range evs {
		if err := s.AppendEvent(e); err != nil {
			t.Fatal(err)
		}
	}
}

func runEventsOK(t *testing.T, args ...string) string {
	t.Helper()
	code, stdout, stderr := runCLI(t, nil, append([]string{"events"}, args...)...)
	if code != exitOK || stderr != "" {
		t.Fatalf("pacsd events %q: exit %d, want 0\nstdout:\n%s\nstderr:\n%s", args, code, stdout, stderr)
	}
	return stdout
}

// TestEventsCommand: the table lists the events of one cluster or of every
// cluster, oldest first, one line each; --json round-trips; --since
// filters by duration and by time.
func TestEventsCommand(t *testing.T) {
	path, store := eventsFile(t)
	if got := runEventsOK(t, "-f", path); got != "no events\n" {
		t.Fatalf("pacsd events without any: %q, want \"no events\"", got)
	}
	if got := runEventsOK(t, "-f", path, "--json"); strings.TrimSpace(got) != "[]" {
		t.Fatalf("pacsd events --json without any: %q, want []", got)
	}
	now := time.Now().UTC().Truncate(time.Second)
	old := reconcile.Event{At: now.Add(-3 * time.Hour), Cluster: "east", Node: "db2", Kind: "base-backup", Target: "east-db2",
		Reason: "the standby has no data\tyet", Result: "ok", Duration: "42s", Checksum: "sha256:1"}
	refused := reconcile.Event{At: now.Add(-30 * time.Minute), Cluster: "east", Node: "db2", Kind: "failover-refused",
		Reason: "db2 is 2 GB behind (max_lag 16 MB)", Result: "refused", Checksum: "sha256:1"}
	drift := reconcile.Event{At: now.Add(-10 * time.Minute), Cluster: "west", Kind: "drift",
		Reason: "pacsd.conf differs\non node db1", Result: "ok", Checksum: "sha256:2"}
	appendEvents(t, store, old, refused, drift)

	out := runEventsOK(t, "-f", path)
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) != 4 {
		t.Fatalf("pacsd events: want a header and 3 rows:\n%s", out)
	}
	for i, want := range [][]string{
		{"TIME", "CLUSTER", "NODE", "KIND", "RESULT", "DURATION", "REASON"},
		{old.At.Local().Format(time.RFC3339), "east", "db2", "base-backup", "ok", "42s", "the standby has no data yet"},
		{refused.At.Local().Format(time.RFC3339), "east", "db2", "failover-refused", "refused", "-", "db2 is 2 GB behind (max_lag 16 MB)"},
		{drift.At.Local().Format(time.RFC3339), "west", "-", "drift", "ok", "-", "pacsd.conf differs on node db1"},
	} {
		if !strings.HasPrefix(lines[i], want[0]) || !strings.HasSuffix(lines[i], want[len(want)-1]) {
			t.Errorf("line %d: %q, want %q", i, lines[i], strings.Join(want, "  "))
		}
		if got := strings.Fields(lines[i]); !strings.HasPrefix(strings.Join(got, " "), strings.Join(want[:6], " ")) {
			t.Errorf("line %d: fields %q, want %q", i, got, want)
		}
	}
	// The columns line up (tabwriter, whatever the widths).
	col := strings.Index(lines[0], "KIND")
	for i, l := range lines[1:] {
		if k := []string{"base-backup", "failover-refused", "drift"}[i]; strings.Index(l, k) != col {
			t.Errorf("KIND of row %d starts at %d, want %d:\n%s", i+1, strings.Index(l, k), col, out)
		}
	}

	// One cluster, named before or after the flags.
	for _, args := range [][]string{{"east", "-f", path}, {"-f", path, "east"}} {
		if got := runEventsOK(t, args...); strings.Contains(got, "west") || strings.Count(got, "\n") != 3 {
			t.Errorf("pacsd events %q: want east's 2 events only:\n%s", args, got)
		}
	}

	// --json round-trips the events.
	var got []reconcile.Event
	if err := json.Unmarshal([]byte(runEventsOK(t, "-f", path, "--json")), &got); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]reconcile.Event{old, refused, drift}, got); diff != "" {
		t.Errorf("pacsd events --json (-want +got):\n%s", diff)
	}

	// --since: a duration, or a time.
	for _, tc := range []struct {
		args []string
		want []reconcile.Event
	}{
		{[]string{"--since", "1h"}, []reconcile.Event{refused, drift}},
		{[]string{"--since", "15m", "west"}, []reconcile.Event{drift}},
		{[]string{"east", "--since", "15m"}, nil},
		{[]string{"--since", refused.At.Format(time.RFC3339)}, []reconcile.Event{refused, drift}},
		{[]string{"--since", refused.At.In(time.FixedZone("", 2*3600)).Format(time.RFC3339)}, []reconcile.Event{refused, drift}},
		{[]string{"--since", now.Add(time.Hour).Format(time.RFC3339)}, nil},
	} {
		var got []reconcile.Event
		if err := json.Unmarshal([]byte(runEventsOK(t, append([]string{"-f", path, "--json"}, tc.args...)...)), &got); err != nil {
			t.Fatal(err)
		}
		if !cmp.Equal(tc.want, got, cmpopts.EquateEmpty()) {
			t.Errorf("pacsd events %q: %v, want %v", tc.args, got, tc.want)
		}
	}
	if got := runEventsOK(t, "-f", path, "east", "--since", "15m"); got != "no events\n" {
		t.Errorf("pacsd events east --since 15m: %q, want \"no events\"", got)
	}
}

// TestEventsCommandUsage: a bad --since, an unknown cluster and a second
// cluster are usage errors (exit 2) that say what is accepted; an invalid
// file is exit 1.
func TestEventsCommandUsage(t *testing.T) {
	path, _ := eventsFile(t)
	for _, tc := range []struct {
		args []string
		code int
		want []string
	}{
		{[]string{"--since", "yesterday"}, exitUsage, []string{`--since "yesterday"`, "duration such as 1h", "RFC 3339"}},
		{[]string{"--since", "2025-03-01"}, exitUsage, []string{"RFC 3339"}},
		{[]string{"--since", "-1h"}, exitUsage, []string{"positive duration"}},
		{[]string{"north"}, exitUsage, []string{`no cluster "north"`, `"east", "west"`}},
		{[]string{"east", "west"}, exitUsage, []string{`unexpected argument "west"`, "Usage: pacsd events"}},
		{[]string{"--bogus"}, exitUsage, []string{"Usage: pacsd events"}},
	} {
		code, stdout, stderr := runCLI(t, nil, append([]string{"events", "-f", path}, tc.args...)...)
		if code != tc.code || stdout != "" {
			t.Errorf("pacsd events %q: exit %d, want %d; stdout:\n%s", tc.args, code, tc.code, stdout)
		}
		for _, w := range tc.want {
			if !strings.Contains(stderr, w) {
				t.Errorf("pacsd events %q: stderr lacks %q:\n%s", tc.args, w, stderr)
			}
		}
	}
	code, stdout, stderr := runCLI(t, nil, "events", "-f", filepath.Join(t.TempDir(), "missing.hcl"))
	if code != exitProblem || stdout != "" || !strings.Contains(stderr, "missing.hcl") {
		t.Errorf("pacsd events on a missing file: exit %d, want 1\n%s%s", code, stdout, stderr)
	}
	code, stdout, stderr = runCLI(t, nil, "events", "-h")
	if code != exitOK || !strings.Contains(stdout, "--since") || !strings.Contains(stdout, "oldest first") || stderr != "" {
		t.Errorf("pacsd events -h: exit %d\n%s%s", code, stdout, stderr)
	}
}
