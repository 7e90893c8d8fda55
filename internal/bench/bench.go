// Package bench runs pacsd's measurements: each scenario alternates pacsd and
// its baseline over several runs, side by side in one process, and prints
// medians, min/max and the ratio. Measurements are not tests: they assert no
// timing; they run with PACSD_BENCH=1 (make bench) and skip otherwise.
package bench

import (
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

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

// Compare runs pacsd and baseline alternately runs times each (baseline
// first in odd rounds, pacsd first in even ones, so neither always runs on a
// warmer machine) and prints a table with medians, min/max and the ratio of
// the medians (pacsd / baseline).
func Compare(t *testing.T, scenario string, runs int, pacsd, baseline func(t *testing.T) time.Duration) (p, b Sample) {
	t.Helper()
	for i := 0; i < runs; i++ {
		first, second := baseline, pacsd
		if i%2 == 1 {
			first, second = pacsd, baseline
		}
		d1, d2 := first(t), second(t)
		if i%2 == 1 {
			d1, d2 = d2, d1
		}
		b, p = append(b, d1), append(p, d2)
		t.Logf("%s run %d: baseline %.2fs, pacsd %.2fs", scenario, i+1, d1.Seconds(), d2.Seconds())
	}
	Report(t, scenario, map[string]Sample{"pacsd": p, "baseline": b}, "pacsd", "baseline")
	return p, b
}

// Report prints a table of samples and the ratio of the medians of num to den.
func Report(t *testing.T, scenario string, samples map[string]Sample, num, den string) {
	t.Helper()
	var out strings.Builder
	fmt.Fprintf(&out, "\n== %s\n%-10s %5s %10s %10s %10s\n", scenario, "side", "runs", "median", "min", "max")
	for _, side := range []string{num, den} {
		s := samples[side]
		fmt.Fprintf(&out, "%-10s %5d %9.3fs %9.3fs %9.3fs\n", side, len(s), s.Median().Seconds(), slices.Min(s).Seconds(), slices.Max(s).Seconds())
	}
	if m := samples[den].Median(); m > 0 {
		fmt.Fprintf(&out, "ratio %s/%s (medians): %.2f\n", num, den, float64(samples[num].Median())/float64(m))
	}
	t.Log(out.String())
	fmt.Print(out.String())
}
