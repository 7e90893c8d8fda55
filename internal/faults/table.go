package faults

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
)

// Summary is what the runs of one row add up to.
type Summary struct {
	Row    Row
	Runs   int
	Passed int
	// Unproven counts runs without a checked writer or probe.
	Unproven int
	// Acked and Lost add up the writers of the row's tests, each test's
	// once however many runs it made.
	Acked int
	Lost  int
	// TwoWritableMS is the longest of the runs' (ms).
	TwoWritableMS float64
	// Converged are the runs' times until converged again (ms), of the runs
	// that got there, ascending.
	Converged []float64
	// Seeds of the runs that failed (seeded rows), for a replay.
	FailedSeeds []int64
	// Errors are the first failures of failed runs, one per test.
	Errors []string
	// Missing are the row's tests that recorded no run of it.
	Missing []string
}

// OK reports whether the row is proven: at least one run, every run passed
// with a writer and a probe, nothing lost, never two writable nodes. A row
// not built yet is not OK, but is no failure of the suite (see Failed).
func (s Summary) OK() bool {
	return s.Row.NotBuilt == "" && s.Runs > 0 && len(s.Missing) == 0 && s.Passed == s.Runs && s.Unproven == 0 && s.Lost == 0 && s.TwoWritableMS == 0
}

// Failed reports whether the row fails the suite: it is built and not OK.
func (s Summary) Failed() bool { return s.Row.NotBuilt == "" && !s.OK() }

// Summarize adds the records up per row of the matrix, in its order.
func Summarize(recs []Record) []Summary {
	out := make([]Summary, len(Matrix))
	for i, r := range Matrix {
		out[i].Row = r
	}
	counted := map[[2]string]bool{} // row and top-level test whose writer is counted
	for _, rec := range recs {
		i := slices.IndexFunc(Matrix, func(r Row) bool { return r.ID == rec.Row })
		if i < 0 {
			continue
		}
		s := &out[i]
		s.Runs++
		if rec.Passed {
			s.Passed++
		} else {
			if rec.Seed != 0 {
				s.FailedSeeds = append(s.FailedSeeds, rec.Seed)
			}
			if msg := rec.Test + ": " + firstLine(rec.Error); rec.Error != "" && !slices.Contains(s.Errors, msg) {
				s.Errors = append(s.Errors, msg)
			}
		}
		if !rec.Writer || !rec.Probe {
			s.Unproven++
		}
		test, _, _ := strings.Cut(rec.Test, "/")
		if k := [2]string{rec.Row, test}; !counted[k] {
			counted[k] = true
			s.Acked += rec.Acked
			s.Lost += rec.Lost
		}
		s.TwoWritableMS = max(s.TwoWritableMS, rec.TwoWritableMS)
		if rec.ConvergedMS >= 0 {
			s.Converged = append(s.Converged, rec.ConvergedMS)
		}
	}
	for i := range out {
		slices.Sort(out[i].Converged)
		for _, test := range out[i].Row.Tests {
			if !counted[[2]string{out[i].Row.ID, test}] {
				out[i].Missing = append(out[i].Missing, test)
			}
		}
	}
	return out
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	if len(s) > 200 {
		s = s[:200] + "..."
	}
	return s
}

// Table renders the summaries as the one table of `make faults`: fault,
// runs, passed, acknowledged commits and how many were lost, the longest
// time two nodes accepted writes at once, and the time until converged
// again (median and longest); then the rows not built, and what failed.
func Table(sums []Summary) string {
	var b strings.Builder
	w := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "fault\truns\tpassed\tacknowledged\tlost\ttwo writable\tconverged again (median / max)\tresult")
	for _, s := range sums {
		if s.Row.NotBuilt != "" && s.Runs == 0 {
			fmt.Fprintf(w, "%s\t—\t—\t—\t—\t—\t—\tnot built\n", s.Row.Fault)
			continue
		}
		fmt.Fprintf(w, "%s\t%d\t%d\t%d\t%d\t%s\t%s\t%s\n", s.Row.Fault, s.Runs, s.Passed, s.Acked, s.Lost,
			Seconds(s.TwoWritableMS), converged(s.Converged), verdict(s))
	}
	_ = w.Flush()
	for _, s := range sums {
		switch {
		case s.Row.NotBuilt != "" && s.Runs == 0:
			fmt.Fprintf(&b, "\nnot built: %s: %s", s.Row.Fault, s.Row.NotBuilt)
		case s.Failed():
			fmt.Fprintf(&b, "\n%s: %s", verdict(s), s.Row.Fault)
			if s.Runs == 0 {
				fmt.Fprintf(&b, ": no run recorded; its tests: %s", strings.Join(s.Row.Tests, ", "))
			} else if len(s.Missing) > 0 {
				fmt.Fprintf(&b, "; no run recorded by %s", strings.Join(s.Missing, ", "))
			}
			if s.Unproven > 0 {
				fmt.Fprintf(&b, "; %d runs without a checked writer and probe", s.Unproven)
			}
			for _, e := range s.Errors {
				fmt.Fprintf(&b, "\n  %s", e)
			}
			if len(s.FailedSeeds) > 0 {
				seeds := make([]string, len(s.FailedSeeds))
				for i, x := range s.FailedSeeds {
					seeds[i] = strconv.FormatInt(x, 10)
				}
				fmt.Fprintf(&b, "\n  replay with %s=SEED, seeds: %s", SeedEnv, strings.Join(seeds, " "))
			}
		}
	}
	b.WriteString("\n")
	return b.String()
}

func verdict(s Summary) string {
	switch {
	case s.OK():
		return "ok"
	case s.Runs == 0:
		return "NOT RUN"
	case s.Passed < s.Runs || s.Lost > 0 || s.TwoWritableMS > 0:
		return "FAILED"
	}
	return "NOT PROVEN"
}

func converged(ms []float64) string {
	if len(ms) == 0 {
		return "—"
	}
	med := ms[len(ms)/2]
	if len(ms)%2 == 0 {
		med = (ms[len(ms)/2-1] + ms[len(ms)/2]) / 2
	}
	return Seconds(med) + " / " + Seconds(ms[len(ms)-1])
}

// Seconds prints milliseconds as seconds with a precision that fits: "0 s",
// "0.35 s", "12.3 s", "143 s".
func Seconds(ms float64) string {
	s := ms / 1000
	switch {
	case ms == 0:
		return "0 s"
	case s < 10:
		return strconv.FormatFloat(s, 'f', 2, 64) + " s"
	case s < 100:
		return strconv.FormatFloat(s, 'f', 1, 64) + " s"
	}
	return strconv.FormatFloat(s, 'f', 0, 64) + " s"
}

// Markdown renders the summaries as the README's table: the same columns
// as Table, with the row's expectation.
func Markdown(sums []Summary) string {
	var b strings.Builder
	b.WriteString("| fault | expected | runs | passed | acknowledged commits | lost | longest two writable | converged again (median / max) | result |\n")
	b.WriteString("|---|---|---|---|---|---|---|---|---|\n")
	for _, s := range sums {
		if s.Row.NotBuilt != "" && s.Runs == 0 {
			fmt.Fprintf(&b, "| %s | %s | not built: %s | | | | | | |\n", s.Row.Fault, s.Row.Expected, s.Row.NotBuilt)
			continue
		}
		fmt.Fprintf(&b, "| %s | %s | %d | %d | %d | %d | %s | %s | %s |\n", s.Row.Fault, s.Row.Expected, s.Runs, s.Passed, s.Acked, s.Lost,
			Seconds(s.TwoWritableMS), converged(s.Converged), verdict(s))
	}
	return b.String()
}
