package e2e

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/pacsd/pacsd/internal/faults"
)

// namedTB is a test of a given name that has failed or not.
type namedTB struct {
	testing.TB
	name   string
	failed bool
}

func (n namedTB) Name() string { return n.name }
func (n namedTB) Failed() bool { return n.failed }

func TestTwoWritable(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	runs := []*FaultRun{{start: at(1000)}, {start: at(5000)}}
	ticks := []time.Time{
		at(500),                      // before every run: the first run's
		at(5100), at(5200), at(5300), // one stretch of three ticks in the second run
		at(9000), // another, shorter
		at(1200), // out of order: the first run's, alone
	}
	got := twoWritable(runs, ticks)
	want := []time.Duration{ProbeInterval, 200*time.Millisecond + ProbeInterval}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("twoWritable (-want +got):\n%s", diff)
	}
	if got := twoWritable(runs, nil); got[0] != 0 || got[1] != 0 {
		t.Errorf("no overlap: %v", got)
	}
}

func TestFaultRecords(t *testing.T) {
	path := filepath.Join(t.TempDir(), "runs.jsonl")
	t.Setenv(faults.ReportEnv, path)
	top := namedTB{TB: t, name: "TestE2EDrift"}
	sub := namedTB{TB: t, name: "TestE2EDrift/pg_hba", failed: true}
	now := time.Now()
	b := &faultBook{
		runs: []*FaultRun{
			{t: top, rows: []string{faults.StandbyGone}, what: "standby killed", start: now, converged: 1500 * time.Millisecond},
			{t: sub, rows: []string{faults.ConfigEdited, faults.RoleChanged}, what: "pg_hba.conf edited", seed: 9, start: now.Add(time.Second), converged: -1},
		},
		writer: true, acked: 50, probe: true, ticks: 20,
	}
	if err := b.flush(top); err != nil {
		t.Fatal(err)
	}
	got := readRecords(t, path)
	want := []faults.Record{
		{Row: faults.StandbyGone, Test: "TestE2EDrift", What: "standby killed", Passed: true, Writer: true, Acked: 50, Probe: true, ProbeTicks: 20, ConvergedMS: 1500},
		{Row: faults.ConfigEdited, Test: "TestE2EDrift/pg_hba", Seed: 9, What: "pg_hba.conf edited", Writer: true, Acked: 50, Probe: true, ProbeTicks: 20, ConvergedMS: -1,
			Error: "the test failed; its log says why"},
		{Row: faults.RoleChanged, Test: "TestE2EDrift/pg_hba", Seed: 9, What: "pg_hba.conf edited", Writer: true, Acked: 50, Probe: true, ProbeTicks: 20, ConvergedMS: -1,
			Error: "the test failed; its log says why"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("records (-want +got):\n%s", diff)
	}

	// A loss fails every run of the test; two writable nodes fail the run
	// they came in.
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	b.runs[1].t = namedTB{TB: t, name: "TestE2EDrift/pg_hba"}
	b.lost, b.errs = 2, []string{"2 of 50 acknowledged commits missing on db1"}
	b.overlap = []time.Time{now.Add(2 * time.Second)}
	if err := b.flush(top); err != nil {
		t.Fatal(err)
	}
	got = readRecords(t, path)
	if len(got) != 3 || got[0].Passed || got[1].Passed || got[0].TwoWritableMS != 0 || got[1].TwoWritableMS != ms(ProbeInterval) || got[0].Lost != 2 {
		t.Errorf("records after a loss and an overlap: %+v", got)
	}

	// A test of the matrix that failed before its first fault: a failed run
	// of each of its rows.
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if err := (&faultBook{}).flush(namedTB{TB: t, name: "TestE2ERun", failed: true}); err != nil {
		t.Fatal(err)
	}
	var rows []string
	for _, r := range readRecords(t, path) {
		if r.Passed {
			t.Errorf("run of a test that failed before its fault passed: %+v", r)
		}
		rows = append(rows, r.Row)
	}
	if diff := cmp.Diff([]string{faults.StandbyGone, faults.TwoPacsd, faults.InvalidFile}, rows); diff != "" {
		t.Errorf("rows of a test that failed before its fault (-want +got):\n%s", diff)
	}
}

func readRecords(t *testing.T, path string) []faults.Record {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	recs, err := faults.ReadRecords(f)
	if err != nil {
		t.Fatal(err)
	}
	return recs
}
