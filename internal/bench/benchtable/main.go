// Command benchtable prints the one table at the end of `make bench` from the
// rows the scenarios recorded (internal/bench.Record, one JSON object a line
// in PACSD_BENCH_ROWS) and, with -results DIR, writes them with the machine
// they were measured on to DIR/<date>.json (bench/results/<date>.json; the
// date in UTC).
//
//	go run ./internal/bench/benchtable -rows ROWS [-results DIR] [-note TEXT]
//
// The note defaults to $PACSD_BENCH_NOTE.
package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/pacsd/pacsd/internal/bench"
)

func main() {
	if err := run(os.Args[1:], os.Stdout, time.Now()); err != nil {
		fmt.Fprintf(os.Stderr, "benchtable: %v\n", err)
		os.Exit(1)
	}
}

func run(args []string, stdout io.Writer, now time.Time) error {
	fs := flag.NewFlagSet("benchtable", flag.ContinueOnError)
	rowsPath := fs.String("rows", "", "file of rows recorded by the scenarios (PACSD_BENCH_ROWS)")
	dir := fs.String("results", "", "directory to write <date>.json to (bench/results); nothing is written when empty")
	note := fs.String("note", os.Getenv("PACSD_BENCH_NOTE"), "a note kept in the results file (what else ran on the machine); default $PACSD_BENCH_NOTE")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *rowsPath == "" {
		return fmt.Errorf("-rows is required: the file PACSD_BENCH_ROWS named while the scenarios ran")
	}
	f, err := os.Open(*rowsPath)
	if err != nil {
		return fmt.Errorf("while opening the recorded rows: %w; run the scenarios with %s set first", err, bench.RowsEnv)
	}
	defer f.Close()
	rows, err := bench.ReadRows(f)
	if err != nil {
		return fmt.Errorf("%s: %w", *rowsPath, err)
	}
	if len(rows) == 0 {
		return fmt.Errorf("%s holds no rows: no scenario ran (PACSD_BENCH=1 and a -run pattern matching TestBench...)", *rowsPath)
	}
	met := 0
	for _, r := range rows {
		if r.Met {
			met++
		}
	}
	fmt.Fprintf(stdout, "\n== make bench: %d of %d targets met\n\n%s", met, len(rows), bench.Table(rows))
	if *dir == "" {
		return nil
	}
	res := results(rows, now, *note)
	out := filepath.Join(*dir, res.Date+".json")
	b, err := json.MarshalIndent(res, "", "  ")
	if err != nil {
		return fmt.Errorf("while encoding the results: %w", err)
	}
	if err := os.MkdirAll(*dir, 0o755); err != nil {
		return fmt.Errorf("while creating the results directory: %w", err)
	}
	if err := os.WriteFile(out, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("while writing the results: %w", err)
	}
	fmt.Fprintf(stdout, "\nresults written to %s\n", out)
	return nil
}

// results gathers the rows with where and when they were measured.
func results(rows []bench.Row, now time.Time, note string) bench.Results {
	runs, _ := strconv.Atoi(os.Getenv("PACSD_BENCH_RUNS"))
	return bench.Results{
		Date:   now.UTC().Format("2006-01-02"),
		Commit: output("git", "rev-parse", "--short", "HEAD"),
		Machine: bench.Machine{
			CPUs:   runtime.NumCPU(),
			Kernel: readTrim("/proc/sys/kernel/osrelease"),
			Go:     runtime.Version(),
			Docker: output("docker", "version", "--format", "{{.Server.Version}}"),
		},
		Runs: runs,
		Note: note,
		Rows: rows,
	}
}

// output returns the trimmed standard output of a command, or "" when it fails.
func output(name string, args ...string) string {
	var b bytes.Buffer
	cmd := exec.Command(name, args...)
	cmd.Stdout = &b
	if cmd.Run() != nil {
		return ""
	}
	return strings.TrimSpace(b.String())
}

func readTrim(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}
