package e2e

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// etcdctl runs etcdctl from the machine against endpoints and returns its
// output, failing the test when it fails.
func etcdctl(t *testing.T, endpoints []string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, etcdctlPath(t), append([]string{"--endpoints", strings.Join(endpoints, ","),
		"--dial-timeout", "5s", "--command-timeout", "10s"}, args...)...)
	cmd.Env = []string{"PATH=" + procPath, "ETCDCTL_API=3"}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("etcdctl %s against %s: %v: %s", strings.Join(args, " "), strings.Join(endpoints, ","), err, out)
	}
	return strings.TrimSpace(string(out))
}

// TestE2EEtcdSingle proves that StartEtcd's member on loopback answers a
// put and a get.
func TestE2EEtcdSingle(t *testing.T) {
	e := StartEtcd(t)
	eps := e.Endpoints()
	if len(eps) != 1 || !strings.HasPrefix(eps[0], "http://127.0.0.1:") {
		t.Fatalf("Endpoints() = %q, want one http://127.0.0.1:PORT", eps)
	}
	if got := etcdctl(t, eps, "put", "/pacsd-e2e/k", "v1"); got != "OK" {
		t.Fatalf("put said %q, want OK", got)
	}
	if got := etcdctl(t, eps, "get", "--print-value-only", "/pacsd-e2e/k"); got != "v1" {
		t.Errorf("get = %q, want v1", got)
	}
}

// etcdctlPath returns the path of etcdctl on the test's PATH.
func etcdctlPath(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("etcdctl")
	if err != nil {
		t.Fatalf("etcdctl is missing (%v); %s", err, etcdMissing)
	}
	return bin
}

// waitProc waits until p's run has ended and returns its log.
func waitProc(t *testing.T, p *Proc, within time.Duration) string {
	t.Helper()
	select {
	case <-p.Exited():
	case <-time.After(within):
		t.Fatalf("%s did not end within %s; its log:\n%s", p.where(), within, p.Log())
	}
	if code := p.ExitCode(); code != 0 {
		t.Fatalf("%s exited %d; its log:\n%s", p.where(), code, p.Log())
	}
	return strings.TrimSpace(p.Log())
}

// TestE2EEtcdCluster proves the etcd of the mode "pacsd on every host": a
// cluster of three members across three test hosts forms and takes writes;
// with two members stopped a write fails (no quorum) within a few seconds,
// and with them started again writes go through and what was written
// before is there; a process in a host's namespace reaches its own member
// at its host's address and on loopback; a host's PowerOff kills its
// member and its processes (a frozen one too) and keeps the member's data,
// and after PowerOn the member starts again and catches up on what the
// other two took meanwhile.
func TestE2EEtcdCluster(t *testing.T) {
	hosts := RequireTestHosts(t, 3)
	c := StartEtcdCluster(t, hosts)

	var want []string
	for _, h := range hosts {
		want = append(want, "http://"+h.Address+":2379")
	}
	if diff := cmp.Diff(want, c.Endpoints()); diff != "" {
		t.Fatalf("Endpoints() (-want +got):\n%s", diff)
	}
	if err := c.Healthy(10 * time.Second); err != nil {
		t.Fatalf("a new cluster takes no write: %v", err)
	}
	var names, wantNames []string
	for _, line := range strings.Split(etcdctl(t, c.Endpoints(), "member", "list"), "\n") {
		// id, started, name, peer URLs, client URLs, is learner
		if f := strings.Split(line, ", "); len(f) >= 5 {
			names = append(names, f[2]+" "+f[1]+" "+f[4])
		}
	}
	for _, h := range hosts {
		wantNames = append(wantNames, h.Name+" started http://"+h.Address+":2379")
	}
	sort.Strings(names)
	sort.Strings(wantNames)
	if diff := cmp.Diff(wantNames, names); diff != "" {
		t.Errorf("member list (-want +got):\n%s", diff)
	}

	t.Log("a process in each host's namespace reaches its own member at the host's address and on loopback")
	etcdctl(t, c.Endpoints(), "put", "/pacsd-e2e/before", "b1")
	for _, h := range hosts {
		for _, ep := range []string{"http://" + h.Address + ":2379", "http://127.0.0.1:2379"} {
			p := h.StartProcess(t, "get", []string{etcdctlPath(t), "--endpoints", ep, "get", "--print-value-only", "/pacsd-e2e/before"}, []string{"ETCDCTL_API=3"})
			if got := waitProc(t, p, 30*time.Second); got != "b1" {
				t.Errorf("test host %s: etcdctl get at %s from inside printed %q, want b1", h.Name, ep, got)
			}
		}
		p := h.StartProcess(t, "addr", []string{"ip", "-4", "-o", "addr", "show", "dev", "eth0"}, nil)
		if got := waitProc(t, p, 30*time.Second); !strings.Contains(got, " "+h.Address+"/24 ") {
			t.Errorf("test host %s: a process inside sees eth0 as %q, want address %s", h.Name, got, h.Address)
		}
	}

	t.Log("two members stopped: no quorum")
	c.Member(1).Stop()
	c.Member(2).Stop()
	if c.Member(1).Running() || c.Member(2).Running() {
		t.Fatal("a member still runs after Stop")
	}
	start := time.Now()
	err := c.Healthy(3 * time.Second)
	if err == nil {
		t.Fatal("with two of three members stopped, a write went through")
	}
	if took := time.Since(start); took > 15*time.Second {
		t.Errorf("the write without quorum failed only after %s", took)
	}
	t.Logf("without quorum the write failed after %s: %v", time.Since(start).Round(time.Millisecond), err)
	if err := Poll(10*time.Second, func() error {
		if c.Member(0).Health(time.Second) == nil {
			return errors.New("the member left alone still says it is healthy (it has a leader)")
		}
		return nil
	}); err != nil {
		t.Error(err)
	}

	t.Log("both started again: quorum back, data kept")
	c.Member(1).Start()
	c.Member(2).Start()
	if err := c.Healthy(10 * time.Second); err != nil {
		t.Fatalf("with the members started again, a write fails: %v", err)
	}
	if got := etcdctl(t, c.Endpoints(), "get", "--print-value-only", "/pacsd-e2e/before"); got != "b1" {
		t.Errorf("after the members' restart, get = %q, want b1", got)
	}

	t.Log("the first host powered off: its member and processes killed, its data kept")
	h0, m0 := hosts[0], c.Member(0)
	sleeper := h0.StartProcess(t, "sleep", []string{"sleep", "1000"}, nil)
	frozen := h0.StartProcess(t, "frozen", []string{"sleep", "1000"}, nil)
	frozen.Freeze()
	memberPid := m0.Proc().Pid()
	h0.PowerOff()
	for _, p := range []*Proc{m0.Proc(), sleeper, frozen} {
		if p.Running() {
			t.Errorf("%s still runs after PowerOff", p.where())
		}
		if left := groupMembers(p.Pid()); len(left) > 0 {
			t.Errorf("%s: pids %v of its group are left after PowerOff", p.where(), pids(left))
		}
	}
	if m0.Running() {
		t.Errorf("the member on %s still runs after PowerOff (pid %d)", h0.Name, memberPid)
	}
	if _, err := os.Stat(filepath.Join(m0.DataDir, "member")); err != nil {
		t.Errorf("PowerOff did not keep the data of the member on %s: %v", h0.Name, err)
	}
	if err := c.Healthy(10 * time.Second); err != nil {
		t.Fatalf("with one host of three powered off, a write fails: %v", err)
	}
	etcdctl(t, c.Endpoints()[1:], "put", "/pacsd-e2e/while-off", "w1")

	t.Log("powered on: the member starts again and catches up")
	h0.PowerOn()
	m0.Start()
	if !m0.Running() || m0.Proc().Pid() == memberPid {
		t.Fatalf("after Start the member on %s runs %t with pid %d (was %d); want a new process", h0.Name, m0.Running(), m0.Proc().Pid(), memberPid)
	}
	if err := m0.Health(5 * time.Second); err != nil {
		t.Errorf("the member started again after PowerOn is not healthy: %v", err)
	}
	// A serializable read answers from the member's own copy.
	if got := etcdctl(t, c.Endpoints()[:1], "get", "--consistency", "s", "--print-value-only", "/pacsd-e2e/while-off"); got != "w1" {
		t.Errorf("the member started again has %q for what was written while its host was off, want w1", got)
	}
	if err := c.Healthy(10 * time.Second); err != nil {
		t.Errorf("after PowerOn and Start, a write fails: %v", err)
	}
	sleeper.Restart()
	if !sleeper.Running() {
		t.Errorf("%s does not run after Restart on the host powered on again; its log:\n%s", sleeper.where(), sleeper.Log())
	}
}

// TestE2EProcOnTestHost proves a process started on a test host: it runs
// in the host's network namespace (sees the host's address), reaches the
// host's own engine with LocalDockerEnv, gets only the environment it was
// given, and is frozen, thawed, killed and restarted in place.
func TestE2EProcOnTestHost(t *testing.T) {
	h := RequireTestHost(t)

	p := h.StartProcess(t, "addr", []string{"ip", "-4", "-o", "addr", "show"}, nil)
	if got := waitProc(t, p, 30*time.Second); !strings.Contains(got, "eth0    inet "+h.Address+"/24 ") {
		t.Errorf("a process on %s sees these addresses, want eth0 with %s:\n%s", h.Name, h.Address, got)
	}

	info, err := h.Docker.Info(context.Background())
	if err != nil {
		t.Fatalf("while asking the engine of test host %s for its ID: %v", h.Name, err)
	}
	p = h.StartProcess(t, "docker", []string{"docker", "info", "--format", "{{.ID}}"}, h.LocalDockerEnv())
	if got := waitProc(t, p, 60*time.Second); got != info.ID {
		t.Errorf("docker info with LocalDockerEnv inside %s printed engine ID %q, want the host's engine %q", h.Name, got, info.ID)
	}

	p = h.StartProcess(t, "env", []string{"env"}, []string{"PACSD_X=1"})
	got := strings.Split(waitProc(t, p, 30*time.Second), "\n")
	sort.Strings(got)
	if diff := cmp.Diff([]string{"HOME=" + p.dir, "PACSD_X=1", "PATH=" + procPath}, got); diff != "" {
		t.Errorf("environment of a process on %s (-want +got):\n%s", h.Name, diff)
	}

	s := h.StartProcess(t, "sleep", []string{"sh", "-c", "sleep 1000 & sleep 1000; wait"}, nil)
	if err := Poll(10*time.Second, func() error {
		if n := len(groupMembers(s.Pid())); n != 3 {
			return fmt.Errorf("%d processes in its group, want 3", n)
		}
		return nil
	}); err != nil {
		t.Fatalf("%s: %v", s.where(), err)
	}
	for _, m := range groupMembers(s.Pid()) {
		if err := inNetNamespace(m.pid, h.Namespace); err != nil {
			t.Errorf("%s: %v", s.where(), err)
		}
	}
	s.Freeze()
	for _, m := range groupMembers(s.Pid()) {
		if err := allStopped(m.pid); err != nil {
			t.Errorf("after Freeze, pid %d: %v", m.pid, err)
		}
	}
	s.Thaw()
	for _, m := range groupMembers(s.Pid()) {
		if err := noneStopped(m.pid); err != nil {
			t.Errorf("after Thaw, pid %d: %v", m.pid, err)
		}
	}
	s.Freeze()
	s.Kill()
	if s.Running() || len(groupMembers(s.Pid())) > 0 {
		t.Fatalf("%s (frozen) still runs after Kill", s.where())
	}
	s.Restart()
	if !s.Running() {
		t.Fatalf("%s does not run after Restart", s.where())
	}
	if err := inNetNamespace(s.Pid(), h.Namespace); err != nil {
		t.Errorf("after Restart, %s: %v", s.where(), err)
	}
	s.Stop()
	if s.Running() {
		t.Errorf("%s still runs after Stop", s.where())
	}
}

// inNetNamespace returns nil when pid runs in the network namespace at ns.
func inNetNamespace(pid int, ns string) error {
	for _, p := range processesInNamespace(ns) {
		if p.pid == pid {
			return nil
		}
	}
	return fmt.Errorf("pid %d is not in the network namespace %s", pid, ns)
}
