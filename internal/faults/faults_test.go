package faults

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/pacsd/pacsd/internal/jsonl"
)

func TestMatrixRowsAreDistinctAndProven(t *testing.T) {
	seen := map[string]bool{}
	for _, r := range Matrix {
		if seen[r.ID] {
			t.Errorf("row %s twice", r.ID)
		}
		seen[r.ID] = true
		if r.Fault == "" || r.Injection == "" || r.Expected == "" {
			t.Errorf("row %s lacks the words of the design", r.ID)
		}
		if (len(r.Tests) == 0) == (r.NotBuilt == "") {
			t.Errorf("row %s: tests %v, not built %q: a row has tests or says why not", r.ID, r.Tests, r.NotBuilt)
		}
	}
}

func TestTestPattern(t *testing.T) {
	re := regexp.MustCompile(TestPattern())
	for _, name := range []string{"TestE2EFailover", "TestE2EDrift", "TestFaultCrashPoints"} {
		if !re.MatchString(name) {
			t.Errorf("pattern %s does not match %s", TestPattern(), name)
		}
	}
	for _, name := range []string{"TestE2EFailoverX", "XTestE2EDrift", "TestE2EApplyOneStandby"} {
		if re.MatchString(name) {
			t.Errorf("pattern %s matches %s", TestPattern(), name)
		}
	}
}

// records returns the records as the harness writes them.
func records(t *testing.T, recs ...Record) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "runs.jsonl")
	if err := jsonl.Append(path, recs...); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestReadRecords(t *testing.T) {
	in := []Record{
		{Row: PrimaryKilled, Test: "TestE2EFailover", Passed: true, Writer: true, Probe: true, Acked: 10, ConvergedMS: 1500},
		{Row: PacsdKilledAtRandom, Test: "TestFaultCrashPoints", Seed: 42, ConvergedMS: -1},
	}
	got, err := ReadRecords(strings.NewReader(records(t, in...) + "\n"))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(in, got); diff != "" {
		t.Errorf("records (-want +got):\n%s", diff)
	}
	for _, bad := range []string{"{\"row\":\"nope\"}\n", "not json\n"} {
		if _, err := ReadRecords(strings.NewReader(records(t, in[0]) + bad)); err == nil || !strings.Contains(err.Error(), "line 2") {
			t.Errorf("ReadRecords(%q): %v, want an error naming line 2", bad, err)
		}
	}
}

func TestSummarizeAndTable(t *testing.T) {
	ok := Record{Test: "TestE2EFailover", Passed: true, Writer: true, Probe: true, Acked: 100}
	other := Record{Test: "TestE2EThreeHosts/sub", Passed: true, Writer: true, Probe: true, Acked: 50}
	with := func(r Record, f func(*Record)) Record { f(&r); return r }
	recs := []Record{
		with(ok, func(r *Record) { r.Row, r.ConvergedMS = PrimaryKilled, 1000 }),
		with(ok, func(r *Record) { r.Row, r.ConvergedMS = PrimaryKilled, 3000 }),
		with(ok, func(r *Record) { r.Row, r.ConvergedMS = PrimaryKilled, 2000 }),
		with(other, func(r *Record) { r.Row, r.ConvergedMS = PrimaryKilled, 4000 }),
		// Lost a commit, in a passing test: fails the row.
		with(ok, func(r *Record) { r.Row, r.Lost, r.ConvergedMS = PrimaryFrozen, 2, 500 }),
		// Two writable nodes: fails the row.
		with(ok, func(r *Record) { r.Row, r.TwoWritableMS, r.ConvergedMS = PrimaryCutOff, 100, 500 }),
		// No probe: not proven.
		with(ok, func(r *Record) { r.Row, r.Probe, r.ConvergedMS = Switchover, false, 700 }),
		// One of the row's two tests recorded no run: not proven.
		with(ok, func(r *Record) { r.Row, r.Test, r.ConvergedMS = EngineRestarted, "TestE2EEngineRestart", 700 }),
		// A failed seeded run.
		with(ok, func(r *Record) {
			r.Row, r.Passed, r.Seed, r.ConvergedMS, r.Error = PacsdKilledAtRandom, false, 77, -1, "the test failed\nmore"
		}),
	}
	// A row not built (none is now): the clock's, for this test.
	i := slices.IndexFunc(Matrix, func(r Row) bool { return r.ID == ClockStepped })
	saved := Matrix[i]
	Matrix[i].NotBuilt, Matrix[i].Tests = "not built for this test", nil
	defer func() { Matrix[i] = saved }()
	sums := Summarize(recs)
	by := map[string]Summary{}
	for _, s := range sums {
		by[s.Row.ID] = s
	}
	// Three runs of test T, one of U: each test's writer counts once.
	if s := by[PrimaryKilled]; !s.OK() || s.Runs != 4 || s.Acked != 150 || converged(s.Converged) != "2.50 s / 4.00 s" {
		t.Errorf("primary killed: %+v", s)
	}
	for _, id := range []string{PrimaryFrozen, PrimaryCutOff, Switchover, PacsdKilledAtRandom, StandbyGone, EngineRestarted} {
		if s := by[id]; s.OK() || !s.Failed() {
			t.Errorf("%s: OK %v, Failed %v; want a failed row: %+v", id, s.OK(), s.Failed(), s)
		}
	}
	if s := by[ClockStepped]; s.OK() || s.Failed() {
		t.Errorf("a row not built is neither proven nor failed: %+v", s)
	}
	table := Table(sums)
	if !regexp.MustCompile(`primary killed \(automatic failover\)\s+4\s+4\s+150\s+0\s+0 s\s+2.50 s / 4.00 s\s+ok\n`).MatchString(table) {
		t.Errorf("table lacks the row of primary killed:\n%s", table)
	}
	for _, want := range []string{
		"FAILED", "NOT PROVEN", "NOT RUN", "not built",
		"replay with PACSD_FAULT_SEED=SEED, seeds: 77", "TestE2EFailover: the test failed\n",
		"NOT PROVEN: Docker engine restarted; no run recorded by TestE2EEngineRestartMidFailover",
		"no run recorded; its tests: TestE2EDrift, TestE2ERun",
	} {
		if !strings.Contains(table, want) {
			t.Errorf("table lacks %q:\n%s", want, table)
		}
	}
	md := Markdown(sums)
	if !strings.Contains(md, "| primary killed (automatic failover) | fence, promote") || !strings.Contains(md, "| 4 | 4 | 150 | 0 | 0 s | 2.50 s / 4.00 s |") {
		t.Errorf("markdown:\n%s", md)
	}
}

func TestSeconds(t *testing.T) {
	for ms, want := range map[float64]string{0: "0 s", 350: "0.35 s", 12345: "12.3 s", 143000: "143 s"} {
		if got := Seconds(ms); got != want {
			t.Errorf("Seconds(%v) = %q, want %q", ms, got, want)
		}
	}
}
