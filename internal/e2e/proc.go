package e2e

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

const (
	// procPath is the PATH of a process the test bed starts (Proc).
	procPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
	// procStopWait bounds the wait for a process to end after SIGTERM (Stop)
	// before it is killed.
	procStopWait = 10 * time.Second
)

// Proc is a process the test bed runs for a test: in a test host's network
// namespace (TestHost.StartProcess) or, for the test bed's own helpers such
// as StartEtcd's member, in the machine's. It runs in a process group of its
// own (so that a ^C at the terminal reaches the test binary alone, and every
// signal of Kill, Stop, Freeze and Thaw reaches the processes it started
// too), with a clean environment (PATH, HOME and what it was given), its own
// directory as HOME and working directory, stdin from /dev/null, and stdout
// and stderr appended to one log file (LogPath; Log reads it).
//
// A test host's PowerOff kills it with every other process of the host.
// When the test ends, also when it fails, whatever of its group still runs
// is killed (stopped ones too) and, when the test failed, the end of its log
// is logged.
//
// Its methods fail the test that started it: call them from that test (or
// its subtests that run in turn), not from other goroutines; Running, Pid,
// Exited, Log and LogPath may be called from any goroutine.
type Proc struct {
	// Name names it in messages and in its log file's name.
	Name string

	t       testing.TB
	host    *TestHost // nil: the machine's network namespace
	argv    []string
	env     []string // its whole environment
	dir     string   // HOME and working directory
	logPath string
	// stopWait is how long Stop waits after SIGTERM (procStopWait).
	stopWait time.Duration

	mu     sync.Mutex
	pid    int           // of the current (or last) run; also its group's id
	self   process       // the same, with its start time
	exited chan struct{} // closed when the current run has ended
	state  *os.ProcessState
}

// StartProcess starts argv (argv[0] looked up in procPath unless it holds a
// slash) in h's network namespace, entered with `nsenter --net` (never `ip
// netns exec`, which remounts /sys), and returns it running. Its environment
// is PATH and HOME (its own directory, under t.TempDir()) with env
// ("KEY=value", later entries replacing earlier ones and those two) on top:
// nothing of the test's environment leaks in. LocalDockerEnv gives what it
// needs to reach h's engine. Its log is LogPath, under the same directory.
// The test fails when the host is powered off or the process cannot start.
// It is killed when the test ends (see Proc).
func (h *TestHost) StartProcess(t testing.TB, name string, argv []string, env []string) *Proc {
	t.Helper()
	if h.fault == faultPoweredOff {
		t.Fatalf("test host %s: cannot start process %s: the host is powered off; PowerOn it first", h.Name, name)
	}
	p, err := newProc(t, name, h, t.TempDir(), argv, env)
	if err != nil {
		t.Fatalf("test host %s: %v", h.Name, err)
	}
	if err := p.start(); err != nil {
		t.Fatalf("test host %s: %v", h.Name, err)
	}
	return p
}

// LocalDockerEnv returns the environment ("KEY=value") that lets a process
// inside h's network namespace (StartProcess) reach h's own engine, as a
// process of a real host reaches its local engine: DOCKER_HOST at the unix
// socket of h's dockerd (Host). The socket is a file of the machine's mount
// namespace, which such a process shares.
func (h *TestHost) LocalDockerEnv() []string {
	return []string{"DOCKER_HOST=" + h.Host}
}

// newProc lays out a process (not started) and registers its cleanup.
func newProc(t testing.TB, name string, host *TestHost, dir string, argv, env []string) (*Proc, error) {
	if name == "" || strings.ContainsAny(name, "/\x00") {
		return nil, fmt.Errorf("process name %q: want a non-empty name without slashes", name)
	}
	if len(argv) == 0 || argv[0] == "" {
		return nil, fmt.Errorf("process %s: no command given (argv is empty)", name)
	}
	environ, err := procEnv(dir, env)
	if err != nil {
		return nil, fmt.Errorf("process %s: %w", name, err)
	}
	p := &Proc{
		Name: name, t: t, host: host,
		argv: append([]string(nil), argv...), env: environ,
		dir: dir, logPath: filepath.Join(dir, name+".log"), stopWait: procStopWait,
	}
	t.Cleanup(p.cleanup)
	return p, nil
}

// procEnv returns the whole environment of a process: PATH and HOME, then
// env, a later entry replacing an earlier one of the same key in place.
func procEnv(home string, env []string) ([]string, error) {
	out := []string{"PATH=" + procPath, "HOME=" + home}
	at := map[string]int{"PATH": 0, "HOME": 1}
	for _, kv := range env {
		k, _, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("environment entry %q: want KEY=value", kv)
		}
		if i, seen := at[k]; seen {
			out[i] = kv
			continue
		}
		at[k] = len(out)
		out = append(out, kv)
	}
	return out, nil
}

// where names the process and its place, for messages.
func (p *Proc) where() string {
	if p.host == nil {
		return "process " + p.Name
	}
	return fmt.Sprintf("process %s on test host %s", p.Name, p.host.Name)
}

// start starts a run of the process.
func (p *Proc) start() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.exited != nil {
		select {
		case <-p.exited:
		default:
			return fmt.Errorf("while starting %s: it is running already (pid %d)", p.where(), p.pid)
		}
	}
	bin, err := lookIn(envValue(p.env, "PATH"), p.argv[0])
	if err != nil {
		return fmt.Errorf("while starting %s: %w", p.where(), err)
	}
	args := append([]string{p.argv[0]}, p.argv[1:]...)
	if p.host != nil {
		nsenter, err := exec.LookPath("nsenter")
		if err != nil {
			return fmt.Errorf("while starting %s: %w; install util-linux", p.where(), err)
		}
		bin, args = nsenter, append([]string{nsenter, "--net=" + p.host.Namespace, "--", bin}, p.argv[1:]...)
	}
	if err := os.MkdirAll(p.dir, 0o700); err != nil {
		return fmt.Errorf("while starting %s: %w", p.where(), err)
	}
	logf, err := os.OpenFile(p.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("while opening the log of %s: %w", p.where(), err)
	}
	defer logf.Close()
	cmd := &exec.Cmd{Path: bin, Args: args, Env: p.env, Dir: p.dir, Stdout: logf, Stderr: logf,
		SysProcAttr: &syscall.SysProcAttr{Setpgid: true}}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("while starting %s (%s): %w", p.where(), strings.Join(p.argv, " "), err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		p.mu.Lock()
		p.state = cmd.ProcessState
		p.mu.Unlock()
		close(exited)
	}()
	p.pid, p.exited, p.state = cmd.Process.Pid, exited, nil
	// Not reaped before Wait, so it is there (a zombie at worst).
	p.self, _ = processOf(p.pid)
	return nil
}

// envValue returns the value of key in env ("KEY=value" entries), the last
// one counting, or "".
func envValue(env []string, key string) string {
	v := ""
	for _, kv := range env {
		if k, val, ok := strings.Cut(kv, "="); ok && k == key {
			v = val
		}
	}
	return v
}

// lookIn finds the executable file of a command in path (a PATH value), as
// a shell does; a name with a slash is taken as it is.
func lookIn(path, name string) (string, error) {
	isExec := func(f string) bool {
		st, err := os.Stat(f)
		return err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0
	}
	if strings.Contains(name, "/") {
		if isExec(name) {
			return name, nil
		}
		return "", fmt.Errorf("%s is no executable file", name)
	}
	for _, dir := range filepath.SplitList(path) {
		if dir == "" {
			continue
		}
		if f := filepath.Join(dir, name); isExec(f) {
			return f, nil
		}
	}
	return "", fmt.Errorf("%s not found in PATH %s", name, path)
}

// run returns the pid and exit channel of the current run (0, nil before
// the first).
func (p *Proc) run() (int, chan struct{}) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.pid, p.exited
}

// Pid returns the pid of the current run (or of the last one, once it has
// ended), which is also its process group's id.
func (p *Proc) Pid() int {
	pid, _ := p.run()
	return pid
}

// Exited returns a channel that is closed when the current run has ended.
// After Restart, a new run has a new channel.
func (p *Proc) Exited() <-chan struct{} {
	_, exited := p.run()
	return exited
}

// Running reports whether the current run has not ended. A process that
// has died (a zombie, say killed by PowerOff) counts as ended even before
// it is reaped.
func (p *Proc) Running() bool {
	p.mu.Lock()
	self, exited := p.self, p.exited
	p.mu.Unlock()
	if exited == nil {
		return false
	}
	select {
	case <-exited:
		return false
	default:
	}
	if self.gone() != nil {
		return true
	}
	// Dead but not reaped yet: it is, at once.
	select {
	case <-exited:
	case <-time.After(confirmTimeout):
	}
	return false
}

// ExitCode returns the exit code of the run that has ended, -1 when a
// signal ended it. It fails the test while the process runs.
func (p *Proc) ExitCode() int {
	p.t.Helper()
	_, exited := p.run()
	select {
	case <-exited:
	default:
		p.t.Fatalf("%s: no exit code: it is still running", p.where())
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.state.ExitCode()
}

// LogPath returns the file its stdout and stderr go to (every run appends).
func (p *Proc) LogPath() string { return p.logPath }

// Log returns the whole of its log: the output of every run so far.
func (p *Proc) Log() string {
	b, err := os.ReadFile(p.logPath)
	if err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	return string(b)
}

// Kill ends the process and every process of its group with SIGKILL
// (stopped ones too) and returns once all of them have ended. It does
// nothing more when they have already.
func (p *Proc) Kill() {
	p.t.Helper()
	if err := p.kill(); err != nil {
		p.t.Fatalf("%s: %v", p.where(), err)
	}
}

func (p *Proc) kill() error {
	pid, exited := p.run()
	if exited == nil {
		return nil
	}
	signalGroup(pid, syscall.SIGKILL)
	select {
	case <-exited:
	case <-time.After(confirmTimeout):
		return fmt.Errorf("pid %d did not end within %s of SIGKILL", pid, confirmTimeout)
	}
	return waitGroupGone(pid, confirmTimeout, syscall.SIGKILL)
}

// Stop ends the process as a service manager does: SIGTERM to its group
// (and SIGCONT, so that a frozen one gets it), then, when it or any process
// of its group has not ended within 10 s, SIGKILL. It returns once all have
// ended, and does nothing more when they have already.
func (p *Proc) Stop() {
	p.t.Helper()
	pid, exited := p.run()
	if exited == nil {
		return
	}
	signalGroup(pid, syscall.SIGTERM)
	signalGroup(pid, syscall.SIGCONT)
	deadline := time.Now().Add(p.stopWait)
	select {
	case <-exited:
	case <-time.After(p.stopWait):
	}
	if err := waitGroupGone(pid, time.Until(deadline), 0); err == nil {
		return
	}
	p.t.Logf("%s did not end within %s of SIGTERM; killing it", p.where(), p.stopWait)
	p.Kill()
}

// Term is Stop.
func (p *Proc) Term() {
	p.t.Helper()
	p.Stop()
}

// Freeze stops the process and every process of its group with SIGSTOP
// (fault: a frozen process) and returns once every thread of each is
// stopped. Thaw undoes it; Kill and Stop end frozen processes too.
func (p *Proc) Freeze() {
	p.t.Helper()
	if !p.Running() {
		p.t.Fatalf("%s: cannot freeze it: it is not running", p.where())
	}
	pid := p.Pid()
	signalGroup(pid, syscall.SIGSTOP)
	err := waitUntil(confirmTimeout, func() error {
		var errs []error
		for _, m := range groupMembers(pid) {
			if err := allStopped(m.pid); err != nil && m.gone() != nil {
				errs = append(errs, fmt.Errorf("pid %d: %w", m.pid, err))
			}
		}
		return errors.Join(errs...)
	})
	if err != nil {
		p.t.Fatalf("%s: while waiting for it to stop after SIGSTOP: %v", p.where(), err)
	}
}

// Thaw undoes Freeze: SIGCONT to its group, and returns once no thread of
// any process of the group is stopped any more.
func (p *Proc) Thaw() {
	p.t.Helper()
	pid, exited := p.run()
	if exited == nil {
		p.t.Fatalf("%s: cannot thaw it: it never ran", p.where())
	}
	signalGroup(pid, syscall.SIGCONT)
	err := waitUntil(confirmTimeout, func() error {
		var errs []error
		for _, m := range groupMembers(pid) {
			if err := noneStopped(m.pid); err != nil && m.gone() != nil {
				errs = append(errs, fmt.Errorf("pid %d: %w", m.pid, err))
			}
		}
		return errors.Join(errs...)
	})
	if err != nil {
		p.t.Fatalf("%s: while waiting for it to run again after SIGCONT: %v", p.where(), err)
	}
}

// Restart starts the process again, with the same argv and environment,
// once its run has ended (after Kill, Stop, its own exit, or its host's
// PowerOff and PowerOn); what is left of the last run's process group is
// killed first. Its output is appended to the same log. The test fails when
// it still runs or its host is powered off.
func (p *Proc) Restart() {
	p.t.Helper()
	if p.Running() {
		p.t.Fatalf("%s: cannot restart it: it is still running (pid %d); Kill or Stop it first", p.where(), p.Pid())
	}
	if p.host != nil && p.host.fault == faultPoweredOff {
		p.t.Fatalf("%s: cannot restart it: the host is powered off; PowerOn it first", p.where())
	}
	if err := waitGroupGone(p.Pid(), confirmTimeout, syscall.SIGKILL); err != nil {
		p.t.Fatalf("%s: before restarting it, what is left of its last run: %v", p.where(), err)
	}
	if err := p.start(); err != nil {
		p.t.Fatal(err)
	}
}

// cleanup kills whatever of the process still runs and, when the test
// failed, logs the end of its log.
func (p *Proc) cleanup() {
	if p.t.Failed() {
		if s := tail(p.logPath, 30); s != "" {
			p.t.Logf("cleanup: %s: its log (%s) ends:\n%s", p.where(), p.logPath, s)
		}
	}
	if err := p.kill(); err != nil {
		p.t.Errorf("cleanup: %s: %v", p.where(), err)
	}
}

// signalGroup sends sig to the process group pgid while any process of it
// is alive (so that a group id the kernel has handed on is not signalled).
func signalGroup(pgid int, sig syscall.Signal) {
	if pgid <= 0 || len(groupMembers(pgid)) == 0 {
		return
	}
	_ = syscall.Kill(-pgid, sig)
}

// waitGroupGone waits until no process of group pgid is alive; with a
// non-zero sig it sends sig to the group again on each look (a process may
// have started another meanwhile).
func waitGroupGone(pgid int, timeout time.Duration, sig syscall.Signal) error {
	if pgid <= 0 {
		return nil
	}
	err := waitUntil(timeout, func() error {
		left := groupMembers(pgid)
		if len(left) == 0 {
			return nil
		}
		if sig != 0 {
			signalGroup(pgid, sig)
		}
		return fmt.Errorf("%d processes of its group are still alive (pids %v)", len(left), pids(left))
	})
	if err != nil {
		return fmt.Errorf("while waiting for its process group %d to end: %w", pgid, err)
	}
	return nil
}

// groupMembers returns the live processes (zombies left out) of process
// group pgid.
func groupMembers(pgid int) []process {
	var out []process
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	for _, path := range stats {
		b, err := os.ReadFile(path)
		if err != nil {
			continue
		}
		st, pgrp, err := statGroup(string(b))
		if err != nil || pgrp != pgid || st == 'Z' || st == 'X' {
			continue
		}
		pid, _ := strconv.Atoi(strings.Split(path, "/")[2])
		if p, err := processOf(pid); err == nil {
			out = append(out, p)
		}
	}
	return out
}

// statGroup returns the state letter and the process group from the text of
// /proc/PID/stat.
func statGroup(s string) (state byte, pgrp int, err error) {
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, 0, fmt.Errorf("no state in %q", s)
	}
	// Fields after the name: state, ppid, pgrp, ...
	f := strings.Fields(s[i+1:])
	if len(f) < 3 || len(f[0]) != 1 {
		return 0, 0, fmt.Errorf("too few fields in %q", s)
	}
	pgrp, err = strconv.Atoi(f[2])
	if err != nil {
		return 0, 0, fmt.Errorf("bad process group in %q: %w", s, err)
	}
	return f[0][0], pgrp, nil
}

// noneStopped returns nil when no thread of pid is stopped (state T).
func noneStopped(pid int) error {
	states, err := threadStates(pid)
	if err != nil {
		return err
	}
	var stopped []string
	for tid, st := range states {
		if st == 'T' {
			stopped = append(stopped, strconv.Itoa(tid))
		}
	}
	if len(stopped) > 0 {
		return fmt.Errorf("%d of %d threads still stopped (tids %s)", len(stopped), len(states), strings.Join(stopped, " "))
	}
	return nil
}

// processesInNamespace returns the live processes (zombies left out) whose
// network namespace is the one at ns, the test process excepted.
func processesInNamespace(ns string) []process {
	want, err := os.Stat(ns)
	if err != nil {
		return nil
	}
	var out []process
	links, _ := filepath.Glob("/proc/[0-9]*/ns/net")
	for _, path := range links {
		st, err := os.Stat(path)
		if err != nil || !os.SameFile(st, want) {
			continue
		}
		pid, _ := strconv.Atoi(strings.Split(path, "/")[2])
		if pid == os.Getpid() {
			continue
		}
		if p, err := processOf(pid); err == nil && p.gone() != nil {
			out = append(out, p)
		}
	}
	return out
}
