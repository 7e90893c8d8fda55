package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/pacsd/pacsd/internal/bench"
)

func writeRows(t *testing.T, rows ...bench.Row) string {
	t.Helper()
	var b bytes.Buffer
	for _, r := range rows {
		line, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		b.Write(append(line, '\n'))
	}
	path := filepath.Join(t.TempDir(), "rows.jsonl")
	if err := os.WriteFile(path, b.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestRunWritesTableAndResults(t *testing.T) {
	base := bench.NewSide("by hand", []float64{10, 11})
	rows := []bench.Row{
		bench.NewRow("converge", "apply from nothing", "s", bench.NewSide("pacsd apply", []float64{7, 8}), &base, bench.Ratio("<=", 0.8)),
		bench.NewRow("reload", "saved edit", "s", bench.NewSide("pacsd run", []float64{0.6}), nil, bench.Max("<", 0.5)),
	}
	in := writeRows(t, rows...)
	dir := filepath.Join(t.TempDir(), "results")
	out := filepath.Join(dir, "2026-01-02.json")
	var stdout bytes.Buffer
	// 01:30 on Jan 3 in UTC+3 is still Jan 2 in UTC: the file is named in UTC.
	now := time.Date(2026, 1, 3, 1, 30, 0, 0, time.FixedZone("UTC+3", 3*3600))
	if err := run([]string{"-rows", in, "-results", dir, "-note", "shared engine"}, &stdout, now); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"1 of 2 targets met", "converge", "ratio <= 0.8", "pacsd < 0.5 s", "MISSED", "results written to " + out} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, stdout.String())
		}
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var res bench.Results
	if err := json.Unmarshal(b, &res); err != nil {
		t.Fatalf("results file: %v\n%s", err, b)
	}
	if res.Date != "2026-01-02" || res.Note != "shared engine" || res.Machine.CPUs < 1 || res.Machine.Go == "" {
		t.Errorf("results header: %+v", res)
	}
	if diff := cmp.Diff(rows, res.Rows); diff != "" {
		t.Errorf("rows in the results file (-want +got):\n%s", diff)
	}
}

func TestRunRefuses(t *testing.T) {
	empty := writeRows(t)
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"no rows flag", nil, "-rows is required"},
		{"missing file", []string{"-rows", filepath.Join(t.TempDir(), "none")}, "while opening the recorded rows"},
		{"no rows", []string{"-rows", empty}, "holds no rows"},
	} {
		err := run(tc.args, &bytes.Buffer{}, time.Now())
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: run = %v, want an error holding %q", tc.name, err, tc.want)
		}
	}
}

func TestRunWithoutResultsWritesNothing(t *testing.T) {
	in := writeRows(t, bench.NewRow("idle", "idle", "MB", bench.NewSide("pacsd run", []float64{24}), nil, bench.Max("<", 30)))
	var stdout bytes.Buffer
	if err := run([]string{"-rows", in}, &stdout, time.Now()); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(stdout.String(), "results written") {
		t.Errorf("results written without -results:\n%s", stdout.String())
	}
}
