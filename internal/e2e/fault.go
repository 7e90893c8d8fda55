package e2e

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// A fault the test bed injects is confirmed in place before the helper that
// injects it returns, so that what a test measures next is the fault and not
// the moments before it took effect.

const (
	// confirmTimeout bounds the wait for an injected fault to take effect.
	confirmTimeout = 30 * time.Second
	// confirmInterval is how often the confirmation looks again.
	confirmInterval = 2 * time.Millisecond
)

// waitUntil calls cond every confirmInterval until it returns nil or timeout
// passes, and returns its last error (nil on success). It never fails the test.
func waitUntil(timeout time.Duration, cond func() error) error {
	deadline := time.Now().Add(timeout)
	for {
		err := cond()
		if err == nil || time.Now().After(deadline) {
			return err
		}
		time.Sleep(confirmInterval)
	}
}

// stopProcess sends SIGSTOP to pid (fault: a frozen process) and returns
// once every thread of it is stopped. A multi-threaded process stops thread
// by thread, each when it next runs, so right after the signal a thread
// waiting for a core may still run and, say, answer a request.
func stopProcess(pid int) error {
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		return fmt.Errorf("while sending SIGSTOP to pid %d: %w", pid, err)
	}
	if err := waitUntil(confirmTimeout, func() error { return allStopped(pid) }); err != nil {
		return fmt.Errorf("while waiting for pid %d to stop after SIGSTOP: %w; a thread in uninterruptible sleep (state D) stops only when it wakes", pid, err)
	}
	return nil
}

// allStopped returns nil when every thread of pid is in state T (stopped) or
// t (stopped by a tracer), else an error naming the threads that are not.
func allStopped(pid int) error {
	states, err := threadStates(pid)
	if err != nil {
		return err
	}
	var running []string
	for tid, st := range states {
		if st != 'T' && st != 't' {
			running = append(running, strconv.Itoa(tid)+":"+string(st))
		}
	}
	if len(running) > 0 {
		sort.Strings(running)
		return fmt.Errorf("%d of %d threads not stopped (tid:state %s)", len(running), len(states), strings.Join(running, " "))
	}
	return nil
}

// threadStates reads the state letter (R, S, D, T, Z, ...) of every thread of
// pid from /proc.
func threadStates(pid int) (map[int]byte, error) {
	dirs, err := filepath.Glob(fmt.Sprintf("/proc/%d/task/[0-9]*", pid))
	if err != nil || len(dirs) == 0 {
		return nil, fmt.Errorf("while listing the threads of pid %d: none found (%v)", pid, err)
	}
	states := map[int]byte{}
	for _, d := range dirs {
		b, err := os.ReadFile(filepath.Join(d, "stat"))
		if errors.Is(err, os.ErrNotExist) || errors.Is(err, syscall.ESRCH) {
			continue // the thread ended
		}
		if err != nil {
			return nil, fmt.Errorf("while reading %s/stat: %w", d, err)
		}
		st, _, err := parseStat(string(b))
		if err != nil {
			return nil, fmt.Errorf("while reading %s/stat: %w", d, err)
		}
		tid, _ := strconv.Atoi(filepath.Base(d))
		states[tid] = st
	}
	if len(states) == 0 {
		return nil, fmt.Errorf("pid %d has no threads left", pid)
	}
	return states, nil
}

// parseStat returns the state letter and the start time (in clock ticks
// since boot) from the text of /proc/PID/stat. The command name before them
// is in parentheses and may itself hold spaces and parentheses.
func parseStat(s string) (state byte, start uint64, err error) {
	i := strings.LastIndexByte(s, ')')
	if i < 0 || i+2 >= len(s) {
		return 0, 0, fmt.Errorf("no state in %q", s)
	}
	// Fields after the name: state is field 3 of the file, starttime field 22.
	f := strings.Fields(s[i+1:])
	if len(f) < 20 {
		return 0, 0, fmt.Errorf("too few fields in %q", s)
	}
	start, err = strconv.ParseUint(f[19], 10, 64)
	if err != nil {
		return 0, 0, fmt.Errorf("bad start time in %q: %w", s, err)
	}
	return f[0][0], start, nil
}

// process names one process: its pid and its start time, so that a pid the
// kernel hands to a new process is not taken for the old one.
type process struct {
	pid   int
	start uint64
}

// processOf returns the process pid as it is now.
func processOf(pid int) (process, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return process{}, fmt.Errorf("while reading /proc/%d/stat: %w", pid, err)
	}
	_, start, err := parseStat(string(b))
	if err != nil {
		return process{}, fmt.Errorf("while reading /proc/%d/stat: %w", pid, err)
	}
	return process{pid: pid, start: start}, nil
}

// gone returns nil when p has ended: no such pid, another process under its
// pid, or a zombie (it exited; its parent has not reaped it yet).
func (p process) gone() error {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.pid))
	if errors.Is(err, os.ErrNotExist) || errors.Is(err, syscall.ESRCH) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("while reading /proc/%d/stat: %w", p.pid, err)
	}
	st, start, err := parseStat(string(b))
	if err != nil {
		return fmt.Errorf("while reading /proc/%d/stat: %w", p.pid, err)
	}
	if start != p.start || st == 'Z' || st == 'X' {
		return nil
	}
	return fmt.Errorf("pid %d still runs (state %c)", p.pid, st)
}

// waitGone waits until p has ended.
func (p process) waitGone(timeout time.Duration) error {
	if err := waitUntil(timeout, p.gone); err != nil {
		return fmt.Errorf("while waiting for pid %d to end: %w", p.pid, err)
	}
	return nil
}

// frozen returns nil when the processes of pid's cgroup are frozen (docker
// pause): the cgroup v1 freezer says FROZEN, or cgroup v2's cgroup.events
// says "frozen 1". thawed reports the opposite.
func frozen(pid int) error { return freezerIs(pid, true) }

// thawed returns nil when pid's cgroup is not frozen (docker unpause).
func thawed(pid int) error { return freezerIs(pid, false) }

func freezerIs(pid int, want bool) error {
	is, file, err := freezerState(pid)
	if err != nil {
		return err
	}
	if is != want {
		return fmt.Errorf("cgroup of pid %d frozen=%t (%s), want %t", pid, is, file, want)
	}
	return nil
}

// freezerState reads whether pid's cgroup is frozen, and from which file.
func freezerState(pid int) (bool, string, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	if err != nil {
		return false, "", fmt.Errorf("while reading the cgroups of pid %d: %w", pid, err)
	}
	var v1, v2 string
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		if parts[0] == "0" && parts[1] == "" {
			v2 = parts[2]
		}
		for _, c := range strings.Split(parts[1], ",") {
			if c == "freezer" {
				v1 = parts[2]
			}
		}
	}
	mounts, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return false, "", fmt.Errorf("while reading /proc/self/mountinfo: %w", err)
	}
	if v1 != "" {
		if dir := cgroupDir(string(mounts), "cgroup", "freezer", v1); dir != "" {
			file := filepath.Join(dir, "freezer.state")
			s, err := os.ReadFile(file)
			if err != nil {
				return false, file, fmt.Errorf("while reading %s: %w", file, err)
			}
			// FREEZING while some task has not stopped yet: not frozen.
			return strings.TrimSpace(string(s)) == "FROZEN", file, nil
		}
	}
	if v2 != "" {
		if dir := cgroupDir(string(mounts), "cgroup2", "", v2); dir != "" {
			file := filepath.Join(dir, "cgroup.events")
			s, err := os.ReadFile(file)
			if err != nil {
				return false, file, fmt.Errorf("while reading %s: %w", file, err)
			}
			for _, l := range strings.Split(string(s), "\n") {
				if k, v, ok := strings.Cut(l, " "); ok && k == "frozen" {
					return v == "1", file, nil
				}
			}
			return false, file, fmt.Errorf("no frozen line in %s", file)
		}
	}
	return false, "", fmt.Errorf("no freezer cgroup found for pid %d (cgroups %q)", pid, strings.TrimSpace(string(b)))
}

// cgroupDir returns the directory of cgroup path in the mount of fstype
// (with option opt for cgroup v1) listed in mountinfo, or "".
func cgroupDir(mountinfo, fstype, opt, path string) string {
	for _, line := range strings.Split(mountinfo, "\n") {
		pre, post, ok := strings.Cut(line, " - ")
		if !ok {
			continue
		}
		f, g := strings.Fields(pre), strings.Fields(post)
		if len(f) < 5 || len(g) < 3 || g[0] != fstype {
			continue
		}
		if opt != "" && !strings.Contains(","+g[2]+",", ","+opt+",") {
			continue
		}
		root, mnt := f[3], f[4]
		rel := path
		if root != "/" {
			if !strings.HasPrefix(path, root) {
				continue
			}
			rel = strings.TrimPrefix(path, root)
		}
		return filepath.Join(mnt, rel)
	}
	return ""
}

// WaitProcessGone waits until the process pid, as it is now, has ended: a
// zombie, which still answers kill(pid, 0), counts as ended.
func WaitProcessGone(pid int, timeout time.Duration) error {
	p, err := processOf(pid)
	if err != nil {
		return nil // already gone
	}
	return p.waitGone(timeout)
}
