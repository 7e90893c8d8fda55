package state

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/pacsd/pacsd/pkg/reconcile"
)

// testEvent is the i-th event of cluster, i seconds after t0.
func testEvent(cluster string, t0 time.Time, i int) reconcile.Event {
	return reconcile.Event{
		At: t0.Add(time.Duration(i) * time.Second), Cluster: cluster, Node: "db1",
		Kind: "start-container", Target: "pacs-db1", Reason: fmt.Sprintf("event %d", i),
		Result: "ok", Duration: "1.2s", Checksum: "sha256:abc",
	}
}

func eventLines(t *testing.T, p string) int {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return bytes.Count(b, []byte{'\n'})
}

// TestEventsAppend: events round-trip oldest first, per cluster, in a file
// of mode 0600; since filters; a cluster without events has none.
func TestEventsAppend(t *testing.T) {
	s := &Store{Dir: filepath.Join(t.TempDir(), "state")}
	t0 := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	var want []reconcile.Event
	for i := range 5 {
		e := testEvent("pacs", t0, i)
		want = append(want, e)
		if err := s.AppendEvent(e); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.AppendEvent(testEvent("other", t0, 9)); err != nil {
		t.Fatal(err)
	}
	got, err := s.Events("pacs", time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("events (-want +got):\n%s", diff)
	}
	// At or after since.
	got, err = s.Events("pacs", t0.Add(3*time.Second))
	if err != nil || !cmp.Equal(got, want[3:]) {
		t.Fatalf("events since the fourth: %v, %v; want %v", got, err, want[3:])
	}
	if got, err := s.Events("pacs", t0.Add(time.Hour)); err != nil || len(got) != 0 {
		t.Fatalf("events since after the last: %v, %v; want none", got, err)
	}
	if got, err := s.Events("none", time.Time{}); err != nil || len(got) != 0 {
		t.Fatalf("events of a cluster without any: %v, %v; want none", got, err)
	}
	fi, err := os.Stat(filepath.Join(s.Dir, "events-pacs.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("events file mode %v, want 0600", fi.Mode().Perm())
	}
	// A file made with another mode gets 0600 at the next append.
	if err := os.Chmod(filepath.Join(s.Dir, "events-pacs.jsonl"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := s.AppendEvent(testEvent("pacs", t0, 5)); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(filepath.Join(s.Dir, "events-pacs.jsonl")); fi.Mode().Perm() != 0o600 {
		t.Errorf("events file mode after an append %v, want 0600", fi.Mode().Perm())
	}
}

// TestEventsBounded: the file is rewritten with the newest EventsKept
// events once it holds more than twice as many; Events returns the newest
// EventsKept at most.
func TestEventsBounded(t *testing.T) {
	s := &Store{Dir: t.TempDir()}
	p := filepath.Join(s.Dir, "events-pacs.jsonl")
	t0 := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	n := 2*reconcile.EventsKept + 300
	for i := range n {
		if err := s.AppendEvent(testEvent("pacs", t0, i)); err != nil {
			t.Fatal(err)
		}
		// Checked on growth, by a margin of at most one check's worth.
		if i%50 != 0 {
			continue
		}
		if l := eventLines(t, p); l > 2*reconcile.EventsKept+trimCheckEvery/100 {
			t.Fatalf("after %d appends the file holds %d lines, want at most about %d", i+1, l, 2*reconcile.EventsKept)
		}
	}
	if l := eventLines(t, p); l >= 2*reconcile.EventsKept || l < reconcile.EventsKept {
		t.Errorf("after %d appends the file holds %d lines, want between %d and %d", n, l, reconcile.EventsKept, 2*reconcile.EventsKept)
	}
	got, err := s.Events("pacs", time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != reconcile.EventsKept {
		t.Fatalf("Events returned %d events, want %d", len(got), reconcile.EventsKept)
	}
	if first, last := got[0].Reason, got[len(got)-1].Reason; first != fmt.Sprintf("event %d", n-reconcile.EventsKept) || last != fmt.Sprintf("event %d", n-1) {
		t.Errorf("Events returned %q to %q, want the newest %d", first, last, reconcile.EventsKept)
	}
	for i := 1; i < len(got); i++ {
		if got[i].At.Before(got[i-1].At) {
			t.Fatalf("event %d is older than the one before it", i)
		}
	}
	// No temporary file is left behind.
	if tmps, _ := filepath.Glob(filepath.Join(s.Dir, ".events-*")); len(tmps) != 0 {
		t.Errorf("temporary files left: %v", tmps)
	}
}

// TestEventsConcurrentAppends: appends of several goroutines (as of two
// processes) never mix their lines, across the rewrites too.
func TestEventsConcurrentAppends(t *testing.T) {
	s := &Store{Dir: t.TempDir()}
	t0 := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	var wg sync.WaitGroup
	const writers, each = 4, 300
	for w := range writers {
		wg.Go(func() {
			other := &Store{Dir: s.Dir}
			for i := range each {
				e := testEvent("pacs", t0, w*each+i)
				e.Reason = strings.Repeat("x", 40*w) // lines of different lengths
				if err := other.AppendEvent(e); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	b, err := os.ReadFile(filepath.Join(s.Dir, "events-pacs.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	for i, l := range strings.Split(strings.TrimSuffix(string(b), "\n"), "\n") {
		if !strings.HasPrefix(l, `{"at":`) || !strings.HasSuffix(l, "}") || strings.Count(l, `"at"`) != 1 {
			t.Fatalf("line %d is not one event: %q", i+1, l)
		}
	}
	got, err := s.Events("pacs", time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != reconcile.EventsKept {
		t.Errorf("Events returned %d events after %d appends, want %d", len(got), writers*each, reconcile.EventsKept)
	}
}

// TestEventsTornLine: a line cut short by a crash is skipped, not an error,
// and the next append does not end it.
func TestEventsTornLine(t *testing.T) {
	s := &Store{Dir: t.TempDir()}
	p := filepath.Join(s.Dir, "events-pacs.jsonl")
	t0 := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	e0, e1 := testEvent("pacs", t0, 0), testEvent("pacs", t0, 1)
	if err := s.AppendEvent(e0); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(`{"at":"2025-03-01T12:00:00.5Z","cluster":"pa`); err != nil {
		t.Fatal(err)
	}
	f.Close()
	got, err := s.Events("pacs", time.Time{})
	if err != nil || !cmp.Equal(got, []reconcile.Event{e0}) {
		t.Fatalf("events with a torn last line: %v, %v; want only the first", got, err)
	}
	if err := s.AppendEvent(e1); err != nil {
		t.Fatal(err)
	}
	got, err = s.Events("pacs", time.Time{})
	if err != nil || !cmp.Equal(got, []reconcile.Event{e0, e1}) {
		t.Fatalf("events appended after a torn line: %v, %v; want both", got, err)
	}
}

// TestEventsRefuseUnsafeCluster: a cluster name that could name a file
// elsewhere is refused, and nothing is written.
func TestEventsRefuseUnsafeCluster(t *testing.T) {
	s := &Store{Dir: t.TempDir()}
	for _, name := range []string{"", "../x", "a/b", "a b", "x\n"} {
		if err := s.AppendEvent(reconcile.Event{Cluster: name, Kind: "drift", Result: "ok"}); err == nil {
			t.Errorf("AppendEvent of cluster %q: no error", name)
		}
		if _, err := s.Events(name, time.Time{}); err == nil {
			t.Errorf("Events of cluster %q: no error", name)
		}
	}
	if entries, _ := os.ReadDir(s.Dir); len(entries) != 0 {
		t.Errorf("files written for unsafe names: %v", entries)
	}
}

// TestEventsRefuseSymlink: the events file is never written through a
// symbolic link.
func TestEventsRefuseSymlink(t *testing.T) {
	s := &Store{Dir: t.TempDir()}
	target := filepath.Join(t.TempDir(), "elsewhere")
	if err := os.Symlink(target, filepath.Join(s.Dir, "events-pacs.jsonl")); err != nil {
		t.Fatal(err)
	}
	if err := s.AppendEvent(reconcile.Event{Cluster: "pacs", Kind: "drift", Result: "ok"}); err == nil {
		t.Error("AppendEvent through a symbolic link: no error")
	}
	if _, err := os.Lstat(target); err == nil {
		t.Error("AppendEvent created the symbolic link's target")
	}
}
