package bench

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestMedian(t *testing.T) {
	for _, tc := range []struct {
		in   Sample
		want time.Duration
	}{
		{Sample{3, 1, 2}, 2},
		{Sample{4, 1, 3, 2}, 2},
		{Sample{5}, 5},
		{nil, 0},
	} {
		if got := tc.in.Median(); got != tc.want {
			t.Errorf("Median(%v) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

func TestSampleUnits(t *testing.T) {
	s := Sample{1500 * time.Millisecond, 250 * time.Microsecond}
	if diff := cmp.Diff([]float64{1.5, 0.00025}, s.Seconds()); diff != "" {
		t.Errorf("Seconds() (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]float64{1500, 0.25}, s.Millis()); diff != "" {
		t.Errorf("Millis() (-want +got):\n%s", diff)
	}
}

func TestNewSide(t *testing.T) {
	for _, tc := range []struct {
		in   []float64
		want Side
	}{
		{[]float64{3, 1, 2}, Side{What: "x", Values: []float64{3, 1, 2}, Median: 2, Min: 1, Max: 3}},
		{[]float64{4, 1, 3, 2}, Side{What: "x", Values: []float64{4, 1, 3, 2}, Median: 2.5, Min: 1, Max: 4}},
		{nil, Side{What: "x"}},
	} {
		if diff := cmp.Diff(tc.want, NewSide("x", tc.in)); diff != "" {
			t.Errorf("NewSide(%v) (-want +got):\n%s", tc.in, diff)
		}
	}
}

func TestNewRow(t *testing.T) {
	p := NewSide("pacsd", []float64{8})
	b := NewSide("by hand", []float64{10})
	ratio := func(r Row) string {
		if r.Ratio == nil {
			return "none"
		}
		return Format(*r.Ratio, "")
	}
	for _, tc := range []struct {
		name      string
		base      *Side
		target    Target
		wantRatio string
		wantMet   bool
	}{
		{"ratio met", &b, Ratio("<=", 0.8), "0.80", true},
		{"ratio missed", &b, Ratio("<=", 0.79), "0.80", false},
		{"throughput met", &b, Ratio(">=", 0.8), "0.80", true},
		{"throughput missed", &b, Ratio(">=", 0.9), "0.80", false},
		{"constant met", nil, Max("<", 9), "none", true},
		{"constant missed", nil, Max("<", 8), "none", false},
		{"ratio without baseline", nil, Ratio("<=", 2), "none", false},
		{"no target", nil, Target{}, "none", true},
		{"unknown operator", &b, Ratio("~", 1), "0.80", false},
	} {
		r := NewRow("id", "scenario", "s", p, tc.base, tc.target)
		if got := ratio(r); got != tc.wantRatio || r.Met != tc.wantMet {
			t.Errorf("%s: ratio %s met %v, want ratio %s met %v", tc.name, got, r.Met, tc.wantRatio, tc.wantMet)
		}
	}
}

func TestTargetString(t *testing.T) {
	for _, tc := range []struct {
		g    Target
		unit string
		want string
	}{
		{Ratio("<=", 0.8), "s", "ratio <= 0.8"},
		{Max("<", 0.5), "s", "pacsd < 0.5 s"},
		{Max("<", 30), "MB", "pacsd < 30 MB"},
		{Target{}, "s", "—"},
	} {
		if got := tc.g.String(tc.unit); got != tc.want {
			t.Errorf("%+v.String(%q) = %q, want %q", tc.g, tc.unit, got, tc.want)
		}
	}
}

func TestFormat(t *testing.T) {
	for _, tc := range []struct {
		v    float64
		unit string
		want string
	}{
		{1.234, "s", "1.23 s"},
		{12.34, "ms", "12.3 ms"},
		{123.4, "MB/s", "123 MB/s"},
		{0.33, "%", "0.33%"},
		{0, "s", "0 s"},
		{2, "", "2.00"},
	} {
		if got := Format(tc.v, tc.unit); got != tc.want {
			t.Errorf("Format(%v, %q) = %q, want %q", tc.v, tc.unit, got, tc.want)
		}
	}
}

func testRows() []Row {
	b := NewSide("the seed's procedure by hand", []float64{6, 7, 8})
	r1 := NewRow("converge", "apply from nothing", "s", NewSide("pacsd apply", []float64{7, 8, 9}), &b, Ratio("<=", 0.8))
	r2 := NewRow("reload", "saved edit until SHOW", "s", NewSide("pacsd run", []float64{0.3, 0.35, 0.4}), nil, Max("<", 0.5))
	r2.Note = "one cluster"
	return []Row{r1, r2}
}

func TestBlock(t *testing.T) {
	rows := testRows()
	got := Block(rows[0])
	for _, want := range []string{
		"== apply from nothing [converge]",
		"pacsd         3     8.00 s     7.00 s     9.00 s  pacsd apply",
		"baseline      3     7.00 s     6.00 s     8.00 s  the seed's procedure by hand",
		"ratio pacsd/baseline (medians): 1.14",
		"target: ratio <= 0.8: MISSED",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("Block does not hold %q:\n%s", want, got)
		}
	}
	if got := Block(rows[1]); !strings.Contains(got, "target: pacsd < 0.5 s: met") || strings.Contains(got, "baseline") || !strings.Contains(got, "note: one cluster") {
		t.Errorf("Block of a constant target:\n%s", got)
	}
}

func TestTable(t *testing.T) {
	got := Table(testRows())
	lines := strings.Split(got, "\n")
	want := []string{
		"scenario  baseline  pacsd   ratio  target  result  pacsd min/max  baseline min/max",
		"converge  7.00 s    8.00 s  1.14   ratio <= 0.8   MISSED  7.00/9.00 s    6.00/8.00 s",
		"reload    —         0.35 s  —      pacsd < 0.5 s  met     0.30/0.40 s    —",
		"",
		"converge: apply from nothing (3 runs); baseline: the seed's procedure by hand",
		"reload: saved edit until SHOW (3 runs); one cluster",
	}
	// Columns are aligned with blanks; compare the words of each line.
	for i := range want {
		if words(lineAt(lines, i)) != words(want[i]) {
			t.Errorf("Table line %d = %q, want %q\n%s", i, lineAt(lines, i), want[i], got)
		}
	}
}

func words(s string) string { return strings.Join(strings.Fields(s), " ") }

func lineAt(lines []string, i int) string {
	if i < len(lines) {
		return lines[i]
	}
	return "<none>"
}

func TestRecordAndReadRows(t *testing.T) {
	path := filepath.Join(t.TempDir(), "rows.jsonl")
	t.Setenv(RowsEnv, path)
	want := testRows()
	for _, r := range want {
		Record(t, r)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	got, err := ReadRows(f)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("rows read back (-want +got):\n%s", diff)
	}
}

func TestReadRowsRefusesOtherLines(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"{\"id\":\"a\"}\nnot json\n", "line 2 is not a row"},
		{"{\"scenario\":\"x\"}\n", "line 1 is a row without an id"},
	} {
		_, err := ReadRows(strings.NewReader(tc.in))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ReadRows(%q) = %v, want an error holding %q", tc.in, err, tc.want)
		}
	}
}

func TestCompareAlternates(t *testing.T) {
	var order []string
	side := func(name string, d time.Duration) func(*testing.T) time.Duration {
		return func(*testing.T) time.Duration { order = append(order, name); return d }
	}
	p, b := Compare(t, "s", 3, side("pacsd", 2), side("base", 5))
	if diff := cmp.Diff([]string{"base", "pacsd", "pacsd", "base", "base", "pacsd"}, order); diff != "" {
		t.Errorf("order (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(Sample{2, 2, 2}, p); diff != "" {
		t.Errorf("pacsd sample (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(Sample{5, 5, 5}, b); diff != "" {
		t.Errorf("baseline sample (-want +got):\n%s", diff)
	}
}

// TestCompareStopsAtAFailedRun runs itself as a separate test process in
// which a baseline run fails in a subtest, as the scenarios' runs do: Compare
// must fail the test at once, running nothing more and returning nothing.
func TestCompareStopsAtAFailedRun(t *testing.T) {
	if os.Getenv("BENCH_COMPARE_FAILING_RUN") == "1" {
		calls := 0
		defer func() { fmt.Printf("calls=%d\n", calls) }()
		pacsd := func(*testing.T) time.Duration { calls++; return 1 }
		broken := func(t *testing.T) time.Duration {
			calls++
			t.Run("by-hand", func(t *testing.T) { t.Error("the engine went away") })
			return 0
		}
		Compare(t, "s", 3, pacsd, broken)
		fmt.Println("Compare returned")
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestCompareStopsAtAFailedRun$", "-test.v")
	cmd.Env = append(os.Environ(), "BENCH_COMPARE_FAILING_RUN=1")
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatalf("a failed run did not fail the test:\n%s", out)
	}
	for _, want := range []string{"s: run 1 failed; the scenario records no row", "calls=1"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(string(out), "Compare returned") {
		t.Errorf("Compare returned after a failed run:\n%s", out)
	}
}
