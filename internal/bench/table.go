package bench

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/pacsd/pacsd/internal/jsonl"
)

// Results is the file `make bench` writes to bench/results/<date>.json: the
// rows of one run and where they were measured.
type Results struct {
	Date    string  `json:"date"`
	Commit  string  `json:"commit,omitempty"`
	Machine Machine `json:"machine"`
	// Runs is PACSD_BENCH_RUNS, or 0 when each scenario used its default.
	Runs int    `json:"runs"`
	Note string `json:"note,omitempty"`
	Rows []Row  `json:"rows"`
}

// Machine describes where a run took place.
type Machine struct {
	CPUs   int    `json:"cpus"`
	Kernel string `json:"kernel,omitempty"`
	Go     string `json:"go"`
	Docker string `json:"docker,omitempty"`
}

// ReadRows reads the rows Record appended, one JSON object a line. A line
// that is not a row is an error naming its number: the file is written by
// Record alone.
func ReadRows(r io.Reader) ([]Row, error) {
	return jsonl.Read(r, "row", func(row Row) error {
		if row.ID == "" {
			return errors.New("a row without an id")
		}
		return nil
	})
}

// Table renders the rows as the one table printed at the end of `make
// bench`: id, baseline and pacsd medians, ratio, target, whether it is met,
// and min/max of both sides, then each row's scenario in words.
func Table(rows []Row) string {
	var b strings.Builder
	w := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "scenario\tbaseline\tpacsd\tratio\ttarget\tresult\tpacsd min/max\tbaseline min/max")
	for _, r := range rows {
		base, baseRange, ratio := "—", "—", "—"
		if r.Baseline != nil {
			base = Format(r.Baseline.Median, r.Unit)
			baseRange = minMax(*r.Baseline, r.Unit)
		}
		if r.Ratio != nil {
			ratio = fmt.Sprintf("%.2f", *r.Ratio)
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.ID, base, Format(r.Pacsd.Median, r.Unit), ratio,
			r.Target.String(r.Unit), verdict(r), minMax(r.Pacsd, r.Unit), baseRange)
	}
	_ = w.Flush()
	b.WriteString("\n")
	for _, r := range rows {
		fmt.Fprintf(&b, "%s: %s (%d runs)", r.ID, r.Scenario, len(r.Pacsd.Values))
		if r.Baseline != nil {
			fmt.Fprintf(&b, "; baseline: %s", r.Baseline.What)
		}
		if r.Note != "" {
			fmt.Fprintf(&b, "; %s", r.Note)
		}
		b.WriteString("\n")
	}
	return b.String()
}

func minMax(s Side, unit string) string {
	return Format(s.Min, "") + "/" + Format(s.Max, unit)
}
