// Command faulttable prints the one table at the end of `make faults` from
// the runs the end-to-end tests recorded (internal/e2e.Fault, one JSON object
// a line in PACSD_FAULTS_REPORT), and exits 1 when a row of the matrix that
// is built has no run, a failed run, a run without a checked writer and
// probe, a lost acknowledged commit or a moment with two writable nodes.
//
//	go run ./internal/faults/faulttable -records FILE [-log FILE] [-markdown]
//	go run ./internal/faults/faulttable -pattern
//
// -log names the output of go test -v: every run of a test that failed
// there (a check at its end, after its runs were recorded) counts as
// failed.
//
// -pattern prints the go test -run pattern of every test that proves a row,
// for the Makefile.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/pacsd/pacsd/internal/faults"
)

func main() {
	code, err := run(os.Args[1:], os.Stdout)
	if err != nil {
		fmt.Fprintf(os.Stderr, "faulttable: %v\n", err)
	}
	os.Exit(code)
}

func run(args []string, stdout io.Writer) (int, error) {
	fs := flag.NewFlagSet("faulttable", flag.ContinueOnError)
	path := fs.String("records", "", "file of runs recorded by the tests ("+faults.ReportEnv+")")
	pattern := fs.Bool("pattern", false, "print the -run pattern of the matrix's tests and exit")
	markdown := fs.Bool("markdown", false, "print the table as Markdown (for the README) after the text table")
	logPath := fs.String("log", "", "output of go test -v: the runs of a test that failed there count as failed")
	if err := fs.Parse(args); err != nil {
		return 2, err
	}
	if *pattern {
		fmt.Fprintln(stdout, faults.TestPattern())
		return 0, nil
	}
	if *path == "" {
		return 2, fmt.Errorf("-records is required: the file %s named while the tests ran", faults.ReportEnv)
	}
	f, err := os.Open(*path)
	if err != nil {
		return 1, fmt.Errorf("while opening the recorded runs: %w; run the tests with %s set first", err, faults.ReportEnv)
	}
	defer f.Close()
	recs, err := faults.ReadRecords(f)
	if err != nil {
		return 1, fmt.Errorf("%s: %w", *path, err)
	}
	if *logPath != "" {
		failed, err := failedTests(*logPath)
		if err != nil {
			return 1, err
		}
		for i := range recs {
			test, _, _ := strings.Cut(recs[i].Test, "/")
			if failed[test] && recs[i].Passed {
				recs[i].Passed = false
				recs[i].Error = "the test failed after this run was recorded; its log says why"
			}
		}
	}
	sums := faults.Summarize(recs)
	ok, failed, gaps := 0, 0, 0
	for _, s := range sums {
		switch {
		case s.OK():
			ok++
		case s.Failed():
			failed++
		default:
			gaps++
		}
	}
	fmt.Fprintf(stdout, "\n== make faults: %d of %d rows proven, %d failed, %d not built; %d runs\n\n%s", ok, len(sums), failed, gaps, len(recs), faults.Table(sums))
	if *markdown {
		fmt.Fprintf(stdout, "\n%s", faults.Markdown(sums))
	}
	if failed > 0 {
		return 1, fmt.Errorf("%d rows of the fault matrix failed: %s", failed, strings.Join(failedRows(sums), "; "))
	}
	return 0, nil
}

func failedRows(sums []faults.Summary) []string {
	var out []string
	for _, s := range sums {
		if s.Failed() {
			out = append(out, s.Row.Fault)
		}
	}
	return out
}

// failedTests reads the top-level tests that go test -v reports failed
// ("--- FAIL: TestX (12.3s)" at the start of a line).
func failedTests(path string) (map[string]bool, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("while opening the tests' output: %w", err)
	}
	defer f.Close()
	out := map[string]bool{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 16*1024*1024)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "--- FAIL: "); ok {
			name, _, _ := strings.Cut(rest, " ")
			out[name] = true
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("while reading the tests' output %s: %w", path, err)
	}
	return out, nil
}
