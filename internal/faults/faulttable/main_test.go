package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/pacsd/pacsd/internal/faults"
	"github.com/pacsd/pacsd/internal/jsonl"
)

func writeRecords(t *testing.T, recs []faults.Record) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "runs.jsonl")
	if err := jsonl.Append(path, recs...); err != nil {
		t.Fatal(err)
	}
	return path
}

// every returns one passing run of every row that is built.
func every() []faults.Record {
	var recs []faults.Record
	for _, r := range faults.Matrix {
		for _, test := range r.Tests {
			if r.NotBuilt == "" {
				recs = append(recs, faults.Record{Row: r.ID, Test: test, Passed: true, Writer: true, Probe: true, Acked: 10, ConvergedMS: 1200})
			}
		}
	}
	return recs
}

func TestRunEveryRowProven(t *testing.T) {
	var out bytes.Buffer
	code, err := run([]string{"-records", writeRecords(t, every()), "-markdown"}, &out)
	if code != 0 || err != nil {
		t.Fatalf("exit %d, %v\n%s", code, err, out.String())
	}
	built := 0
	for _, r := range faults.Matrix {
		if r.NotBuilt == "" {
			built++
		}
	}
	for _, want := range []string{"rows proven, 0 failed", "| fault | expected | runs |", "not built"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	if !strings.Contains(out.String(), "== make faults: "+strconv.Itoa(built)+" of "+strconv.Itoa(len(faults.Matrix))+" rows proven") {
		t.Errorf("output does not count %d proven rows:\n%s", built, out.String())
	}
}

func TestRunFailsOnAFailedOrMissingRow(t *testing.T) {
	recs := every()
	recs[0].Lost = 1
	last := recs[len(recs)-1].Row
	for recs[len(recs)-1].Row == last {
		recs = recs[:len(recs)-1] // the last built row has no run
	}
	var out bytes.Buffer
	code, err := run([]string{"-records", writeRecords(t, recs)}, &out)
	if code != 1 || err == nil || !strings.Contains(err.Error(), "2 rows of the fault matrix failed") {
		t.Fatalf("exit %d, %v; want 1 and two failed rows\n%s", code, err, out.String())
	}
	if !strings.Contains(out.String(), "FAILED") || !strings.Contains(out.String(), "NOT RUN") {
		t.Errorf("output:\n%s", out.String())
	}
}

func TestRunPatternAndErrors(t *testing.T) {
	var out bytes.Buffer
	if code, err := run([]string{"-pattern"}, &out); code != 0 || err != nil || strings.TrimSpace(out.String()) != faults.TestPattern() {
		t.Errorf("-pattern: exit %d, %v, %q", code, err, out.String())
	}
	if code, err := run(nil, &out); code != 2 || err == nil || !strings.Contains(err.Error(), faults.ReportEnv) {
		t.Errorf("no -records: exit %d, %v", code, err)
	}
	if code, err := run([]string{"-records", filepath.Join(t.TempDir(), "none")}, &out); code != 1 || err == nil || !strings.Contains(err.Error(), faults.ReportEnv) {
		t.Errorf("missing file: exit %d, %v", code, err)
	}
}

// TestRunLogFailsRunsOfAFailedTest: a test that failed after recording
// passing runs (a check at its end) fails its rows.
func TestRunLogFailsRunsOfAFailedTest(t *testing.T) {
	recs := every()
	failed := recs[0].Test
	log := filepath.Join(t.TempDir(), "faults.log")
	text := "=== RUN   " + failed + "\n    --- FAIL: " + failed + "/sub (1.0s)\n--- FAIL: " + failed + " (12.3s)\n--- PASS: TestOther (1.0s)\n"
	if err := os.WriteFile(log, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	code, err := run([]string{"-records", writeRecords(t, recs), "-log", log}, &out)
	if code != 1 || err == nil || !strings.Contains(out.String(), "the test failed after this run was recorded") {
		t.Fatalf("exit %d, %v; want 1 and the failed test's rows failed\n%s", code, err, out.String())
	}
	if code, err := run([]string{"-records", writeRecords(t, recs), "-log", filepath.Join(t.TempDir(), "none")}, &out); code != 1 || err == nil {
		t.Errorf("a missing log: exit %d, %v; want 1", code, err)
	}
}
