package bench

import (
	"bytes"
	"context"
	_ "embed"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// ConvergeScript is the by-hand baseline of converging from nothing: the
// seed's primary/standby setup as the fastest honest operator's script
// (scripts/converge.sh; its header says what it does and needs).
//
//go:embed scripts/converge.sh
var ConvergeScript string

// BaseBackupScript is the baseline of building a standby: a bare
// pg_basebackup into an empty volume (scripts/basebackup.sh).
//
//go:embed scripts/basebackup.sh
var BaseBackupScript string

// Step is one timed step of a script.
type Step struct {
	Name       string
	Start, End time.Time
}

// Duration is how long the step took.
func (s Step) Duration() time.Duration { return s.End.Sub(s.Start) }

// Steps are the timed steps of one script run, in order.
type Steps []Step

// Sum returns the total duration of the named steps; a name no step has is
// an error, so that a renamed step never silently counts as zero.
func (ss Steps) Sum(names ...string) (time.Duration, error) {
	var d time.Duration
	for _, n := range names {
		i := ss.index(n)
		if i < 0 {
			return 0, fmt.Errorf("the script marked no step %q (steps: %s)", n, ss)
		}
		d += ss[i].Duration()
	}
	return d, nil
}

// EndLast moves the end of the last step to end (the caller's own wait,
// such as a standby streaming, finishes the script's last step).
func (ss Steps) EndLast(end time.Time) {
	if len(ss) > 0 {
		ss[len(ss)-1].End = end
	}
}

func (ss Steps) index(name string) int {
	for i, s := range ss {
		if s.Name == name {
			return i
		}
	}
	return -1
}

// String lists the steps with their durations: "a 1.20s, b 0.30s".
func (ss Steps) String() string {
	parts := make([]string, len(ss))
	for i, s := range ss {
		parts[i] = fmt.Sprintf("%s %.2fs", s.Name, s.Duration().Seconds())
	}
	return strings.Join(parts, ", ")
}

// stepPrefix begins the lines a script prints when a step begins:
// "bench-step <unix nanoseconds> <name>".
const stepPrefix = "bench-step "

// ParseSteps reads the step lines of a script's output (other lines are
// ignored): each step ends where the next begins, the last at end.
func ParseSteps(out string, end time.Time) (Steps, error) {
	var ss Steps
	for _, line := range strings.Split(out, "\n") {
		rest, ok := strings.CutPrefix(line, stepPrefix)
		if !ok {
			continue
		}
		ns, name, ok := strings.Cut(rest, " ")
		n, err := strconv.ParseInt(ns, 10, 64)
		if !ok || err != nil || strings.TrimSpace(name) == "" {
			return nil, fmt.Errorf("malformed step line %q: want %q<unix nanoseconds> <name>", line, stepPrefix)
		}
		at := time.Unix(0, n)
		if len(ss) > 0 {
			if at.Before(ss[len(ss)-1].Start) {
				return nil, fmt.Errorf("step %q begins before step %q", name, ss[len(ss)-1].Name)
			}
			ss[len(ss)-1].End = at
		}
		ss = append(ss, Step{Name: strings.TrimSpace(name), Start: at})
	}
	if len(ss) == 0 {
		return nil, fmt.Errorf("the script marked no step (no line starting with %q)", stepPrefix)
	}
	if end.Before(ss[len(ss)-1].Start) {
		return nil, fmt.Errorf("the script ended before its last step %q began", ss[len(ss)-1].Name)
	}
	ss[len(ss)-1].End = end
	return ss, nil
}

// RunScript runs script with bash, its environment extended by env
// ("NAME=value"), and returns the steps it marked and its combined output.
// A script that fails is an error that carries its output.
func RunScript(ctx context.Context, script string, env []string) (Steps, string, error) {
	cmd := exec.CommandContext(ctx, "bash", "-c", script, "bench-script")
	cmd.Env = append(cmd.Environ(), env...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	end := time.Now()
	if err != nil {
		return nil, out.String(), fmt.Errorf("while running the by-hand script: %w\n%s", err, out.String())
	}
	ss, err := ParseSteps(out.String(), end)
	if err != nil {
		return nil, out.String(), fmt.Errorf("while reading the by-hand script's steps: %w\n%s", err, out.String())
	}
	return ss, out.String(), nil
}
