// Package bench runs pacsd's measurements: each scenario alternates pacsd and
// its baseline over several runs, side by side in one process, and records
// one row of the table `make bench` prints at the end (scenario, baseline,
// pacsd, ratio, target, min/max) and writes to bench/results/<date>.json.
// Measurements are not tests: they assert no timing; they run with
// PACSD_BENCH=1 (make bench) and skip otherwise.
package bench

import (
	"fmt"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pacsd/pacsd/internal/jsonl"
)

// RowsEnv names the file each recorded row is appended to as one line of
// JSON; `make bench` sets it and makes the table from it (cmd benchtable).
const RowsEnv = "PACSD_BENCH_ROWS"

// Require skips the calling test unless PACSD_BENCH=1.
func Require(t *testing.T) {
	t.Helper()
	if os.Getenv("PACSD_BENCH") != "1" {
		t.Skip("measurement: run 'make bench' (PACSD_BENCH=1) to run it")
	}
}

// Runs returns the number of repetitions: PACSD_BENCH_RUNS, else def.
func Runs(def int) int {
	if n, err := strconv.Atoi(os.Getenv("PACSD_BENCH_RUNS")); err == nil && n > 0 {
		return n
	}
	return def
}

// Sample is the durations of one side of a scenario.
type Sample []time.Duration

// Median returns the median duration.
func (s Sample) Median() time.Duration {
	c := slices.Clone(s)
	slices.Sort(c)
	if len(c) == 0 {
		return 0
	}
	if len(c)%2 == 1 {
		return c[len(c)/2]
	}
	return (c[len(c)/2-1] + c[len(c)/2]) / 2
}

// Seconds returns the durations in seconds.
func (s Sample) Seconds() []float64 { return s.in(time.Second) }

// Millis returns the durations in milliseconds.
func (s Sample) Millis() []float64 { return s.in(time.Millisecond) }

func (s Sample) in(unit time.Duration) []float64 {
	v := make([]float64, len(s))
	for i, d := range s {
		v[i] = float64(d) / float64(unit)
	}
	return v
}

// Compare runs pacsd and baseline alternately runs times each (baseline
// first in odd rounds, pacsd first in even ones, so neither always runs on a
// warmer machine), logs each round and returns both samples. A run that
// fails the test (in a subtest of its own too) ends the scenario: no sample
// of a failed run is ever returned.
func Compare(t *testing.T, scenario string, runs int, pacsd, baseline func(t *testing.T) time.Duration) (p, b Sample) {
	t.Helper()
	for i := 0; i < runs; i++ {
		first, second := baseline, pacsd
		if i%2 == 1 {
			first, second = pacsd, baseline
		}
		d1 := first(t)
		if t.Failed() {
			t.Fatalf("%s: run %d failed; the scenario records no row", scenario, i+1)
		}
		d2 := second(t)
		if t.Failed() {
			t.Fatalf("%s: run %d failed; the scenario records no row", scenario, i+1)
		}
		if i%2 == 1 {
			d1, d2 = d2, d1
		}
		b, p = append(b, d1), append(p, d2)
		t.Logf("%s run %d: baseline %.2fs, pacsd %.2fs", scenario, i+1, d1.Seconds(), d2.Seconds())
	}
	return p, b
}

// Side is one side of a row: what was measured and the value of each run.
type Side struct {
	What   string    `json:"what"`
	Values []float64 `json:"values"`
	Median float64   `json:"median"`
	Min    float64   `json:"min"`
	Max    float64   `json:"max"`
}

// NewSide returns the side with its median, min and max filled in.
func NewSide(what string, values []float64) Side {
	s := Side{What: what, Values: values}
	if len(values) == 0 {
		return s
	}
	c := slices.Clone(values)
	slices.Sort(c)
	s.Min, s.Max = c[0], c[len(c)-1]
	if len(c)%2 == 1 {
		s.Median = c[len(c)/2]
	} else {
		s.Median = (c[len(c)/2-1] + c[len(c)/2]) / 2
	}
	return s
}

// Target is a row's goal: the median of pacsd (Of "pacsd") or the ratio of
// the medians (Of "ratio") compared with Value by Op ("<", "<=", ">=").
// The zero Target sets no goal.
type Target struct {
	Of    string  `json:"of,omitempty"`
	Op    string  `json:"op,omitempty"`
	Value float64 `json:"value,omitempty"`
}

// Ratio and Max are the usual targets.
func Ratio(op string, v float64) Target { return Target{Of: "ratio", Op: op, Value: v} }

// Max is a target on pacsd's median alone.
func Max(op string, v float64) Target { return Target{Of: "pacsd", Op: op, Value: v} }

// String says the target in the table's words, e.g. "ratio <= 0.8" or
// "pacsd < 0.5 s".
func (g Target) String(unit string) string {
	if g.Of == "" {
		return "—"
	}
	v := strconv.FormatFloat(g.Value, 'f', -1, 64)
	if g.Of == "pacsd" && unit != "" {
		v += " " + unit
	}
	return g.Of + " " + g.Op + " " + v
}

// met reports whether x meets the target; false for an unknown operator.
func (g Target) met(x float64) bool {
	switch g.Op {
	case "<":
		return x < g.Value
	case "<=":
		return x <= g.Value
	case ">=":
		return x >= g.Value
	case ">":
		return x > g.Value
	}
	return false
}

// Row is one line of the table: a scenario, pacsd's side, its baseline (nil
// when the target is a constant), the ratio of the medians (pacsd /
// baseline; for a throughput, more is better), and the target.
type Row struct {
	ID       string   `json:"id"`
	Scenario string   `json:"scenario"`
	Unit     string   `json:"unit"`
	Pacsd    Side     `json:"pacsd"`
	Baseline *Side    `json:"baseline,omitempty"`
	Ratio    *float64 `json:"ratio,omitempty"`
	Target   Target   `json:"target"`
	// Met is whether the target is met; true when there is none.
	Met  bool   `json:"met"`
	Note string `json:"note,omitempty"`
}

// NewRow returns the row with its ratio and verdict computed.
func NewRow(id, scenario, unit string, pacsd Side, baseline *Side, target Target) Row {
	r := Row{ID: id, Scenario: scenario, Unit: unit, Pacsd: pacsd, Baseline: baseline, Target: target}
	if baseline != nil && baseline.Median != 0 {
		x := pacsd.Median / baseline.Median
		r.Ratio = &x
	}
	switch target.Of {
	case "":
		r.Met = true
	case "pacsd":
		r.Met = target.met(pacsd.Median)
	case "ratio":
		r.Met = r.Ratio != nil && target.met(*r.Ratio)
	}
	return r
}

// Record prints the row as a block of its own (on standard output, which
// go test -v shows as it comes) and appends it as one line of
// JSON to the file named by PACSD_BENCH_ROWS, when set, for the table at the
// end of `make bench`.
func Record(t *testing.T, r Row) {
	t.Helper()
	fmt.Print(Block(r))
	path := os.Getenv(RowsEnv)
	if path == "" {
		return
	}
	if err := jsonl.Append(path, r); err != nil {
		t.Fatalf("while recording row %s in %s (%s): %v", r.ID, path, RowsEnv, err)
	}
}

// Block renders one row as the lines printed right after its scenario ran.
func Block(r Row) string {
	var b strings.Builder
	fmt.Fprintf(&b, "\n== %s [%s]\n%-9s %5s %10s %10s %10s  %s\n", r.Scenario, r.ID, "side", "runs", "median", "min", "max", "what")
	side := func(name string, s Side) {
		fmt.Fprintf(&b, "%-9s %5d %10s %10s %10s  %s\n", name, len(s.Values), Format(s.Median, r.Unit), Format(s.Min, r.Unit), Format(s.Max, r.Unit), s.What)
	}
	side("pacsd", r.Pacsd)
	if r.Baseline != nil {
		side("baseline", *r.Baseline)
	}
	if r.Ratio != nil {
		fmt.Fprintf(&b, "ratio pacsd/baseline (medians): %.2f\n", *r.Ratio)
	}
	fmt.Fprintf(&b, "target: %s: %s\n", r.Target.String(r.Unit), verdict(r))
	if r.Note != "" {
		fmt.Fprintf(&b, "note: %s\n", r.Note)
	}
	return b.String()
}

func verdict(r Row) string {
	switch {
	case r.Target.Of == "":
		return "—"
	case r.Met:
		return "met"
	}
	return "MISSED"
}

// Format prints a value with its unit and three significant digits or
// more (1.23 s, 12.3 ms, 123 MB/s).
func Format(v float64, unit string) string {
	var s string
	switch a := math.Abs(v); {
	case a == 0:
		s = "0"
	case a < 10:
		s = strconv.FormatFloat(v, 'f', 2, 64)
	case a < 100:
		s = strconv.FormatFloat(v, 'f', 1, 64)
	default:
		s = strconv.FormatFloat(v, 'f', 0, 64)
	}
	if unit == "" || unit == "%" {
		return s + unit
	}
	return s + " " + unit
}
