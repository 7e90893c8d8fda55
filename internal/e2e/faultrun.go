package e2e

import (
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pacsd/pacsd/internal/faults"
	"github.com/pacsd/pacsd/internal/jsonl"
)

// A test that proves a row of the fault matrix (internal/faults) marks each
// injection with Fault and the moment the cluster is as the row expects
// again with Converged. The checks of its writer (CheckNoLoss) and its probe
// (Check) are noted for the test as they run; when the test ends, each of
// its runs is appended as one line of JSON to the file PACSD_FAULTS_REPORT
// names (when set) for the table of `make faults`.

// FaultRun is one injection of a fault of the matrix in a test.
type FaultRun struct {
	t     testing.TB
	rows  []string
	what  string
	seed  int64
	start time.Time

	mu        sync.Mutex
	converged time.Duration // -1 until Converged
}

// faultBook is what a top-level test noted: its runs and the checks of its
// writers and probes.
type faultBook struct {
	runs    []*FaultRun
	writer  bool // a writer's commits were checked against a node
	acked   int
	lost    int
	probe   bool // a probe's report was checked
	ticks   int
	overlap []time.Time // ticks at which two or more nodes accepted writes
	errs    []string
}

var (
	booksMu sync.Mutex
	books   = map[string]*faultBook{}
)

// topName is the name of the top-level test of t.
func topName(t testing.TB) string {
	name, _, _ := strings.Cut(t.Name(), "/")
	return name
}

// openFaultBook starts the book of the top-level test t and writes its runs
// when t ends; Require calls it.
func openFaultBook(t testing.TB) {
	if strings.Contains(t.Name(), "/") {
		return
	}
	booksMu.Lock()
	books[t.Name()] = &faultBook{}
	booksMu.Unlock()
	t.Cleanup(func() {
		booksMu.Lock()
		b := books[t.Name()]
		delete(books, t.Name())
		booksMu.Unlock()
		if err := b.flush(t); err != nil {
			t.Errorf("while recording the fault runs of %s: %v", t.Name(), err)
		}
	})
}

// noteFault hands the book of t's top-level test to f, when there is one.
func noteFault(t testing.TB, f func(*faultBook)) {
	booksMu.Lock()
	defer booksMu.Unlock()
	if b := books[topName(t)]; b != nil {
		f(b)
	}
}

// Fault starts a run of the matrix's rows (faults.PrimaryKilled, ...) now:
// call it right before the fault is injected. what says in a few words
// what is injected. The run passes when t (the test, or the subtest that
// runs it) passes and the test's writer and probe, checked by the test,
// found nothing lost and never two writable nodes.
func Fault(t testing.TB, what string, rows ...string) *FaultRun {
	t.Helper()
	for _, id := range rows {
		if _, ok := faults.RowOf(id); !ok {
			t.Fatalf("fault run %q: %q is no row of the fault matrix (internal/faults)", what, id)
		}
	}
	r := &FaultRun{t: t, rows: rows, what: what, start: time.Now(), converged: -1}
	found := false
	noteFault(t, func(b *faultBook) {
		b.runs = append(b.runs, r)
		found = true
	})
	if !found {
		t.Fatalf("fault run %q: the top-level test %s did not call e2e.Require", what, topName(t))
	}
	return r
}

// Seeded records the seed the run was made with, for a replay.
func (r *FaultRun) Seeded(seed int64) *FaultRun {
	r.seed = seed
	return r
}

// Converged marks the moment the cluster is as the row expects again
// (converged, or the refusal reported); only the first call counts. It
// returns the time since the run started.
func (r *FaultRun) Converged() time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.converged < 0 {
		r.converged = time.Since(r.start)
	}
	return r.converged
}

// noteWriter notes a check of a writer's acknowledged commits.
func noteWriter(t testing.TB, acked, lost int, node string) {
	noteFault(t, func(b *faultBook) {
		b.writer = true
		b.acked += acked
		b.lost += lost
		if lost > 0 {
			b.errs = append(b.errs, fmt.Sprintf("%d of %d acknowledged commits missing on %s", lost, acked, node))
		}
	})
}

// noteProbe notes a check of a probe's report.
func noteProbe(t testing.TB, r ProbeReport) {
	noteFault(t, func(b *faultBook) {
		b.probe = true
		b.ticks += r.Ticks
		for _, k := range r.Overlaps {
			b.overlap = append(b.overlap, k.At)
		}
		if len(r.Overlaps) > 0 {
			b.errs = append(b.errs, fmt.Sprintf("two or more nodes accepted writes at %d ticks", len(r.Overlaps)))
		}
	})
}

// twoWritable returns, per run, the longest time two or more nodes
// accepted writes at once: ticks in a row (no more than two intervals
// apart) make one stretch, from its first tick to one interval after its
// last; a stretch counts for the last run started before it (the first run
// when it came before every run).
func twoWritable(runs []*FaultRun, ticks []time.Time) []time.Duration {
	out := make([]time.Duration, len(runs))
	if len(runs) == 0 {
		return out
	}
	ticks = slices.Clone(ticks)
	slices.SortFunc(ticks, func(a, b time.Time) int { return a.Compare(b) })
	owner := func(at time.Time) int {
		k := 0
		for i, r := range runs {
			if !r.start.After(at) && !r.start.Before(runs[k].start) {
				k = i
			}
		}
		return k
	}
	for i := 0; i < len(ticks); {
		j := i
		for j+1 < len(ticks) && ticks[j+1].Sub(ticks[j]) <= 2*ProbeInterval {
			j++
		}
		k := owner(ticks[i])
		out[k] = max(out[k], ticks[j].Sub(ticks[i])+ProbeInterval)
		i = j + 1
	}
	return out
}

// records returns the book's runs as records of t, which ended.
func (b *faultBook) records(t testing.TB) []faults.Record {
	var recs []faults.Record
	stretch := twoWritable(b.runs, b.overlap)
	for i, r := range b.runs {
		r.mu.Lock()
		conv := r.converged
		r.mu.Unlock()
		rec := faults.Record{
			Test: r.t.Name(), Seed: r.seed, What: r.what, Passed: !r.t.Failed(),
			Writer: b.writer, Acked: b.acked, Lost: b.lost,
			Probe: b.probe, ProbeTicks: b.ticks, TwoWritableMS: ms(stretch[i]), ConvergedMS: -1,
		}
		if conv >= 0 {
			rec.ConvergedMS = ms(conv)
		}
		if rec.Lost > 0 || stretch[i] > 0 {
			rec.Passed = false
		}
		if !rec.Passed {
			rec.Error = strings.Join(append(slices.Clone(b.errs), "the test failed; its log says why"), "; ")
		}
		for _, id := range r.rows {
			rec.Row = id
			recs = append(recs, rec)
		}
	}
	if len(b.runs) == 0 && t.Failed() {
		// It failed before its first injection: a failed run of each row
		// it proves.
		for _, row := range faults.Matrix {
			if slices.Contains(row.Tests, t.Name()) {
				recs = append(recs, faults.Record{Row: row.ID, Test: t.Name(), What: "failed before the fault was injected", ConvergedMS: -1,
					Error: "the test failed before its first fault; its log says why"})
			}
		}
	}
	return recs
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// flush appends the book's records to the file named by
// PACSD_FAULTS_REPORT, when set.
func (b *faultBook) flush(t testing.TB) error {
	path := os.Getenv(faults.ReportEnv)
	if path == "" || b == nil {
		return nil
	}
	recs := b.records(t)
	if len(recs) == 0 {
		return nil
	}
	if err := jsonl.Append(path, recs...); err != nil {
		return fmt.Errorf("%w (%s)", err, faults.ReportEnv)
	}
	return nil
}
