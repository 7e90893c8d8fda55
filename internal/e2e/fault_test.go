package e2e

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// spinThreads is how many busy threads the child of
// TestStopProcessWaitsForEveryThread runs: more than the cores of a small
// machine, so that some are waiting for a core when the signal comes.
const spinThreads = 16

// TestStopProcessWaitsForEveryThread proves that stopProcess returns only
// when every thread of a multi-threaded process is stopped: a process stops
// thread by thread, each when it next runs, so right after kill(SIGSTOP)
// threads that wait for a core still run (and a stopped engine could still
// answer). It stops and resumes a child with busy threads many times and
// looks at every thread's state as soon as stopProcess returns.
func TestStopProcessWaitsForEveryThread(t *testing.T) {
	cmd := exec.Command(os.Args[0], "-test.run", "^TestHelperSpinThreads$")
	// One P per busy thread, so that they all want a core at once.
	cmd.Env = append(os.Environ(), "PACSD_E2E_SPIN_CHILD=1", fmt.Sprintf("GOMAXPROCS=%d", spinThreads+2))
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("while starting the child with busy threads: %v", err)
	}
	pid := cmd.Process.Pid
	t.Cleanup(func() {
		_ = syscall.Kill(pid, syscall.SIGKILL)
		_ = cmd.Wait()
	})
	ready := make(chan error, 1)
	go func() {
		line, err := bufio.NewReader(out).ReadString('\n')
		if err == nil && strings.TrimSpace(line) != "ready" {
			err = fmt.Errorf("child said %q, want ready", line)
		}
		ready <- err
	}()
	select {
	case err := <-ready:
		if err != nil {
			t.Fatalf("the child with busy threads did not start: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the child with busy threads did not say ready within 30 s")
	}

	const tries = 10
	late := 0
	var example string
	for i := 0; i < tries; i++ {
		if err := stopProcess(pid); err != nil {
			t.Fatalf("try %d: %v", i, err)
		}
		states, err := threadStates(pid)
		if err != nil {
			t.Fatalf("try %d: %v", i, err)
		}
		if len(states) < spinThreads {
			t.Fatalf("try %d: the child has %d threads, want at least %d", i, len(states), spinThreads)
		}
		if running := notStopped(states); len(running) > 0 {
			late++
			example = fmt.Sprintf("try %d: threads not stopped yet (tid:state) %s of %d", i, strings.Join(running, " "), len(states))
		}
		if err := syscall.Kill(pid, syscall.SIGCONT); err != nil {
			t.Fatalf("try %d: while sending SIGCONT: %v", i, err)
		}
		// Let it run again before the next stop, so every try starts from
		// busy threads.
		if err := Poll(10*time.Second, func() error {
			states, err := threadStates(pid)
			if err != nil {
				return err
			}
			if len(notStopped(states)) == len(states) {
				return nil
			}
			return fmt.Errorf("threads still stopped after SIGCONT")
		}); err != nil {
			t.Fatalf("try %d: %v", i, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if late > 0 {
		t.Errorf("stopProcess returned while threads of pid %d still ran at %d of %d tries; last: %s", pid, late, tries, example)
	}
}

// notStopped returns "tid:state" of every thread not in state T or t, sorted.
func notStopped(states map[int]byte) []string {
	var out []string
	for tid, st := range states {
		if st != 'T' && st != 't' {
			out = append(out, strconv.Itoa(tid)+":"+string(st))
		}
	}
	sort.Strings(out)
	return out
}

// TestHelperSpinThreads is the child of TestStopProcessWaitsForEveryThread:
// it runs spinThreads busy threads, says ready and spins until killed. Run
// on its own it returns at once.
func TestHelperSpinThreads(t *testing.T) {
	if os.Getenv("PACSD_E2E_SPIN_CHILD") != "1" {
		return
	}
	started := make(chan struct{})
	for i := 0; i < spinThreads; i++ {
		go func() {
			runtime.LockOSThread()
			started <- struct{}{}
			for x := 0; ; x++ {
				_ = x
			}
		}()
	}
	for i := 0; i < spinThreads; i++ {
		<-started
	}
	fmt.Println("ready")
	select {}
}
