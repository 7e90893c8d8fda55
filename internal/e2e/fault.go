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
