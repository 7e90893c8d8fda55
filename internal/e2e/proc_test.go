package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestProcEnv(t *testing.T) {
	for _, c := range []struct {
		name string
		env  []string
		want []string
	}{
		{name: "nothing added", want: []string{"PATH=" + procPath, "HOME=/h"}},
		{name: "added after PATH and HOME", env: []string{"A=1", "B=x=y"},
			want: []string{"PATH=" + procPath, "HOME=/h", "A=1", "B=x=y"}},
		{name: "a later entry replaces in place", env: []string{"A=1", "PATH=/bin", "A=2", "HOME="},
			want: []string{"PATH=/bin", "HOME=", "A=2"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := procEnv("/h", c.env)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(c.want, got); diff != "" {
				t.Errorf("procEnv (-want +got):\n%s", diff)
			}
		})
	}
	for _, bad := range []string{"NOEQUALS", "=value"} {
		if _, err := procEnv("/h", []string{bad}); err == nil {
			t.Errorf("procEnv accepted entry %q; want an error", bad)
		}
	}
}

func TestStatGroup(t *testing.T) {
	st, pgrp, err := statGroup("4242 (a (strange) name) S 1 4240 4240 0 -1 4194560 ...")
	if err != nil {
		t.Fatal(err)
	}
	if st != 'S' || pgrp != 4240 {
		t.Errorf("statGroup = %c, %d; want S, 4240", st, pgrp)
	}
	b, err := os.ReadFile("/proc/self/stat")
	if err != nil {
		t.Fatal(err)
	}
	if _, pgrp, err := statGroup(string(b)); err != nil || pgrp != syscall.Getpgrp() {
		t.Errorf("statGroup(/proc/self/stat) = %d, %v; want the test's group %d", pgrp, err, syscall.Getpgrp())
	}
	if _, _, err := statGroup("12 (x"); err == nil {
		t.Error("statGroup accepted a line without fields")
	}
}

func TestLookIn(t *testing.T) {
	dir := t.TempDir()
	exe, plain := filepath.Join(dir, "tool"), filepath.Join(dir, "data")
	if err := os.WriteFile(exe, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(plain, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if got, err := lookIn("/nonexistent:"+dir, "tool"); err != nil || got != exe {
		t.Errorf("lookIn(tool) = %q, %v; want %q", got, err, exe)
	}
	for _, name := range []string{"data", "missing", plain} {
		if got, err := lookIn(dir, name); err == nil {
			t.Errorf("lookIn(%s) = %q; want an error (no executable file)", name, got)
		}
	}
	if got, err := lookIn("", exe); err != nil || got != exe {
		t.Errorf("lookIn(%s) = %q, %v; want it as it is", exe, got, err)
	}
}

// startLocal starts a Proc in the machine's network namespace, as StartEtcd
// does.
func startLocal(t *testing.T, name string, argv, env []string) *Proc {
	t.Helper()
	p, err := newProc(t, name, nil, t.TempDir(), argv, env)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.start(); err != nil {
		t.Fatal(err)
	}
	return p
}

func waitExited(t *testing.T, p *Proc, within time.Duration) {
	t.Helper()
	select {
	case <-p.Exited():
	case <-time.After(within):
		t.Fatalf("%s did not end within %s; its log:\n%s", p.where(), within, p.Log())
	}
}

// TestProcEnvironmentAndLog proves that a process gets a clean environment
// (PATH, HOME, what it was given: nothing of the test's) and that its
// stdout and stderr land in its log, every run appended.
func TestProcEnvironmentAndLog(t *testing.T) {
	t.Setenv("PACSD_PROC_TEST_LEAK", "1")
	p := startLocal(t, "env", []string{"sh", "-c", "env; echo to-stderr >&2"}, []string{"FOO=bar"})
	waitExited(t, p, 10*time.Second)
	if code := p.ExitCode(); code != 0 {
		t.Fatalf("exit code %d; log:\n%s", code, p.Log())
	}
	var got []string
	for _, l := range strings.Split(strings.TrimSpace(p.Log()), "\n") {
		// The shell adds PWD (and SHLVL, _ on some); those are its own.
		if k, _, _ := strings.Cut(l, "="); k != "PWD" && k != "SHLVL" && k != "_" {
			got = append(got, l)
		}
	}
	sort.Strings(got)
	want := []string{"FOO=bar", "HOME=" + p.dir, "PATH=" + procPath, "to-stderr"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("its environment and stderr (-want +got):\n%s", diff)
	}
	if !strings.Contains(p.Log(), "PWD="+p.dir) {
		t.Errorf("its working directory is not its own directory %s; log:\n%s", p.dir, p.Log())
	}
	p.Restart()
	waitExited(t, p, 10*time.Second)
	if n := strings.Count(p.Log(), "to-stderr"); n != 2 {
		t.Errorf("after Restart the log holds %d runs, want 2:\n%s", n, p.Log())
	}
}

// TestProcSignals proves Freeze, Thaw, Kill, Restart and Stop on a process
// that started another one in its group: each reaches the whole group and
// is confirmed in place.
func TestProcSignals(t *testing.T) {
	p := startLocal(t, "sleeper", []string{"sh", "-c", "sleep 1000 & sleep 1000; wait"}, nil)
	var group []process
	if err := Poll(10*time.Second, func() error {
		if group = groupMembers(p.Pid()); len(group) != 3 {
			return fmt.Errorf("its group has %d live processes, want 3 (sh and two sleeps)", len(group))
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if !p.Running() {
		t.Fatal("Running() = false right after the start")
	}

	p.Freeze()
	for _, m := range group {
		if err := allStopped(m.pid); err != nil {
			t.Errorf("after Freeze, pid %d: %v", m.pid, err)
		}
	}
	p.Thaw()
	for _, m := range group {
		if err := noneStopped(m.pid); err != nil {
			t.Errorf("after Thaw, pid %d: %v", m.pid, err)
		}
	}

	// Frozen, then killed: SIGKILL ends stopped processes.
	p.Freeze()
	p.Kill()
	if p.Running() {
		t.Error("Running() = true after Kill")
	}
	for _, m := range group {
		if err := m.gone(); err != nil {
			t.Errorf("after Kill: %v", err)
		}
	}
	if code := p.ExitCode(); code != -1 {
		t.Errorf("exit code after Kill = %d, want -1 (a signal)", code)
	}

	old := p.Pid()
	p.Restart()
	if !p.Running() || p.Pid() == old {
		t.Fatalf("after Restart: Running() = %t, pid %d (was %d); want a new run", p.Running(), p.Pid(), old)
	}
	start := time.Now()
	p.Stop()
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("Stop of processes that end on SIGTERM took %s", took)
	}
	if left := groupMembers(p.Pid()); len(left) > 0 {
		t.Errorf("after Stop, its group still has pids %v", pids(left))
	}
}

// TestProcStopKillsWhatIgnoresTerm proves that Stop kills a group that
// ignores SIGTERM once its wait has passed, frozen or not.
func TestProcStopKillsWhatIgnoresTerm(t *testing.T) {
	p := startLocal(t, "stubborn", []string{"sh", "-c", `trap "" TERM; sleep 1000 & sleep 1000; wait`}, nil)
	p.stopWait = time.Second
	if err := Poll(10*time.Second, func() error {
		if n := len(groupMembers(p.Pid())); n != 3 {
			return fmt.Errorf("its group has %d live processes, want 3", n)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	p.Freeze()
	start := time.Now()
	p.Stop()
	if took := time.Since(start); took < time.Second {
		t.Errorf("Stop returned after %s, before its wait of 1 s: the group did not ignore SIGTERM?", took)
	}
	if p.Running() {
		t.Error("Running() = true after Stop")
	}
	if left := groupMembers(p.Pid()); len(left) > 0 {
		t.Errorf("after Stop, its group still has pids %v", pids(left))
	}
}

func TestEtcdArgs(t *testing.T) {
	got := etcdArgs("/usr/bin/etcd", etcdMemberConfig{
		name: "host2", dataDir: "/d",
		clientURLs:      []string{"http://10.213.0.12:2379", "http://127.0.0.1:2379"},
		advertiseClient: "http://10.213.0.12:2379", peerURL: "http://10.213.0.12:2380",
		initialCluster: "host2=http://10.213.0.12:2380,host3=http://10.213.0.13:2380", token: "tok",
	})
	want := []string{"/usr/bin/etcd",
		"--name", "host2",
		"--data-dir", "/d",
		"--listen-client-urls", "http://10.213.0.12:2379,http://127.0.0.1:2379",
		"--advertise-client-urls", "http://10.213.0.12:2379",
		"--listen-peer-urls", "http://10.213.0.12:2380",
		"--initial-advertise-peer-urls", "http://10.213.0.12:2380",
		"--initial-cluster", "host2=http://10.213.0.12:2380,host3=http://10.213.0.13:2380",
		"--initial-cluster-state", "new",
		"--initial-cluster-token", "tok",
		"--logger", "zap",
		"--log-outputs", "stderr",
		"--pre-vote",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("etcdArgs (-want +got):\n%s", diff)
	}
}

func TestFreeLoopbackPorts(t *testing.T) {
	a, b, err := freeLoopbackPorts()
	if err != nil {
		t.Fatal(err)
	}
	if a == b || a <= 0 || b <= 0 || a == EtcdClientPort || b == EtcdClientPort || a == EtcdPeerPort || b == EtcdPeerPort {
		t.Errorf("freeLoopbackPorts = %d, %d; want two distinct ports, neither 2379 nor 2380", a, b)
	}
}
