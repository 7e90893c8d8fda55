package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

var built struct {
	once sync.Once
	bin  string
	err  error
}

// pacsdBinary builds pacsd once per test run and returns its path.
func pacsdBinary(t *testing.T) string {
	t.Helper()
	built.once.Do(func() {
		dir, err := os.MkdirTemp("", "pacsd-bin-")
		if err != nil {
			built.err = err
			return
		}
		built.bin = filepath.Join(dir, "pacsd")
		if out, err := exec.Command("go", "build", "-o", built.bin, ".").CombinedOutput(); err != nil {
			built.err = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if built.err != nil {
		t.Fatal(built.err)
	}
	return built.bin
}

// process is `pacsd run` as a process of its own, on the file of a daemonRun
// (its listen address and state directory), so that it can be killed.
type process struct {
	cmd    *exec.Cmd
	log    *syncBuffer
	exited chan error
}

// startProcess starts pacsd run on file; when the test ends a process still
// running gets SIGTERM and must exit 0.
func startProcess(t *testing.T, file string) *process {
	t.Helper()
	p := &process{log: &syncBuffer{}, exited: make(chan error, 1)}
	p.cmd = exec.Command(pacsdBinary(t), "run", "-f", file)
	p.cmd.Stdout, p.cmd.Stderr = p.log, p.log
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.exited <- p.cmd.Wait() }()
	t.Cleanup(func() {
		if p.cmd.ProcessState == nil {
			_ = p.cmd.Process.Signal(syscall.SIGTERM)
			select {
			case err := <-p.exited:
				if err != nil {
					t.Errorf("pacsd run (pid %d) after SIGTERM: %v", p.cmd.Process.Pid, err)
				}
			case <-time.After(time.Minute):
				_ = p.cmd.Process.Kill()
				t.Errorf("pacsd run (pid %d) did not stop within a minute of SIGTERM", p.cmd.Process.Pid)
			}
		}
		if t.Failed() {
			t.Logf("log of pacsd run (pid %d):\n%s", p.cmd.Process.Pid, p.log)
		}
	})
	return p
}

// running fails the test when the process has exited.
func (p *process) running(t *testing.T) {
	t.Helper()
	select {
	case err := <-p.exited:
		p.exited <- err
		t.Fatalf("pacsd run (pid %d) exited: %v\n%s", p.cmd.Process.Pid, err, p.log)
	default:
	}
}

// mark returns how much the process has logged so far, for killAt.
func (p *process) mark() int { return len(p.log.String()) }

// killAt sends SIGKILL to the process as soon as its log, after the mark
// since, has a line with the message msg, and returns that line. It fails
// the test when the message does not come within timeout.
func (p *process) killAt(t *testing.T, msg string, since int, timeout time.Duration) string {
	t.Helper()
	want := `"msg":"` + msg + `"`
	var line string
	waitFor(t, timeout, "pacsd to log "+msg, func() error {
		for _, l := range strings.Split(p.log.String()[since:], "\n") {
			if strings.Contains(l, want) {
				line = l
				return nil
			}
		}
		return fmt.Errorf("not yet")
	})
	if err := p.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-p.exited
	p.exited <- nil
	return line
}

// TestMain removes the binary pacsdBinary built, if any, after the tests.
func TestMain(m *testing.M) {
	code := m.Run()
	if built.bin != "" {
		os.RemoveAll(filepath.Dir(built.bin))
	}
	os.Exit(code)
}
