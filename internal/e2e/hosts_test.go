package e2e

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestE2ETestHostPartition proves Partition and Heal on two hosts: while host
// a is partitioned, the machine reaches neither its engine's TLS endpoint nor
// its published port nor its container, its containers do not reach host b
// nor b's containers host a, and a probe (inside a's namespace) still sees
// a's node writable, through a handle made as for a container pacsd created;
// after Heal (with the machine's route to a's containers removed meanwhile,
// as the kernel may drop it) everything is reached again.
func TestE2ETestHostPartition(t *testing.T) {
	start := time.Now()
	hosts := RequireTestHosts(t, 2)
	t.Logf("two test hosts up in %s", time.Since(start).Round(time.Millisecond))
	a, b := hosts[0], hosts[1]
	if a.Address == b.Address || a.Namespace == b.Namespace || a.Subnet == b.Subnet || a.TLSEndpoint == b.TLSEndpoint {
		t.Fatalf("two hosts share an address, namespace, subnet or endpoint: %s and %s", a.Name, b.Name)
	}
	for _, h := range hosts {
		if _, err := h.Docker.ImageInspect(h.First.Ctx(apiTimeout), h.Image); err != nil {
			t.Fatalf("test host %s: image %s is not loaded: %v", h.Name, h.Image, err)
		}
	}
	ea, eb := a.Env(), b.Env()
	srv := ea.StartNode(NodeOptions{Name: "srv", Password: "srv-" + ea.RunID, Publish: true})
	other := eb.StartNode(NodeOptions{Name: "other", Password: "other-" + eb.RunID, Publish: true})
	srv.WaitWritable(90 * time.Second)
	other.WaitWritable(90 * time.Second)
	// A handle as for a container pacsd made on host a.
	watched := a.Container(ea.Name("srv"), srv.User, srv.Password, srv.Database)
	if watched.Network != ea.Network || watched.ID != srv.ID || watched.Host() != a {
		t.Fatalf("TestHost.Container: network %q, id %s, host %v; want %q, %s, %s", watched.Network, watched.ID, watched.Host(), ea.Network, srv.ID, a.Name)
	}
	aPort, bPort, srvIP := srv.HostPort(), other.HostPort(), srv.IP()
	reaches := func(from *Env, h *TestHost, port string) int {
		t.Helper()
		out, code, err := from.RunOnce("isready", []string{"pg_isready", "-h", h.Address, "-p", port, "-t", "3"}, nil)
		if err != nil {
			t.Fatalf("while running pg_isready against %s:%s: %v", h.Address, port, err)
		}
		t.Logf("pg_isready -h %s -p %s: exit %d: %s", h.Address, port, code, strings.TrimSpace(out))
		return code
	}
	machineReaches := func(addr string) error {
		c, err := net.DialTimeout("tcp", addr, 2*time.Second)
		if err == nil {
			_ = c.Close()
		}
		return err
	}
	for _, addr := range []string{net.JoinHostPort(a.Address, aPort), net.JoinHostPort(srvIP, "5432")} {
		if err := machineReaches(addr); err != nil {
			t.Fatalf("before the partition, the machine does not reach %s: %v", addr, err)
		}
	}
	if code := reaches(ea, b, bPort); code != 0 {
		t.Fatalf("before the partition, a container on host %s does not reach host %s's published port (pg_isready exit %d)", a.Name, b.Name, code)
	}

	a.Partition()
	p := ea.StartProbe(func() []*Node { return []*Node{watched} })
	for _, addr := range []string{a.TLSEndpoint[len("tcp://"):], net.JoinHostPort(a.Address, aPort), net.JoinHostPort(srvIP, "5432")} {
		if err := unreachable(addr); err != nil {
			t.Errorf("test host %s partitioned: %v", a.Name, err)
		}
	}
	if err := tlsPing(a, time.Second); err == nil {
		t.Errorf("test host %s partitioned: its engine still answers at %s", a.Name, a.TLSEndpoint)
	}
	if code := reaches(ea, b, bPort); code != 2 {
		t.Errorf("test host %s partitioned: a container on it reaches host %s's published port (pg_isready exit %d, want 2: no answer)", a.Name, b.Name, code)
	}
	if code := reaches(eb, a, aPort); code != 2 {
		t.Errorf("test host %s partitioned: a container on host %s reaches its published port (pg_isready exit %d, want 2: no answer)", a.Name, b.Name, code)
	}
	if err := a.Ping(5 * time.Second); err != nil {
		t.Errorf("test host %s partitioned: its engine does not answer on its socket: %v", a.Name, err)
	}
	time.Sleep(2 * time.Second)
	r := p.Stop()
	t.Log(r)
	if r.Ticks < 10 || r.Writable[watched.Name] < r.Ticks*8/10 {
		t.Errorf("test host %s partitioned: the probe saw node %s writable at %d of %d ticks, want nearly all (it runs inside the host); last error %q",
			a.Name, watched.Name, r.Writable[watched.Name], r.Ticks, r.LastErrors[watched.Name])
	}

	// The kernel may drop the machine's route to the host's containers with
	// the link; Heal must put it back.
	if err := run("ip", "route", "del", a.ownRoute); err != nil {
		t.Fatal(err)
	}
	a.Heal()
	for _, addr := range []string{net.JoinHostPort(a.Address, aPort), net.JoinHostPort(srvIP, "5432")} {
		if err := machineReaches(addr); err != nil {
			t.Errorf("test host %s healed: the machine does not reach %s: %v", a.Name, addr, err)
		}
	}
	if err := tlsPing(a, 5*time.Second); err != nil {
		t.Errorf("test host %s healed: %v", a.Name, err)
	}
	if code := reaches(ea, b, bPort); code != 0 {
		t.Errorf("test host %s healed: a container on it does not reach host %s's published port (pg_isready exit %d)", a.Name, b.Name, code)
	}
	if code := reaches(eb, a, aPort); code != 0 {
		t.Errorf("test host %s healed: a container on host %s does not reach its published port (pg_isready exit %d)", a.Name, b.Name, code)
	}
	srv.WaitWritable(30 * time.Second)
}

// TestE2ETestHostPowerOff proves PowerOff and PowerOn: every process of the
// host ends (its engine, containerd, its containers', a paused one's, and a
// process started in its namespace), nothing answers at its address, and its
// engine's socket refuses at once; after PowerOn the engine answers again (on
// its socket and over TLS), a container with restart policy unless-stopped
// runs again with its committed data, and one with policy no stays stopped.
func TestE2ETestHostPowerOff(t *testing.T) {
	h := RequireTestHost(t)
	e := h.Env()
	keep := e.StartNode(NodeOptions{Name: "keep", Password: "keep-" + e.RunID, RestartPolicy: "unless-stopped", Publish: true})
	gone := e.StartNode(NodeOptions{Name: "gone", Password: "gone-" + e.RunID})
	keep.WaitWritable(90 * time.Second)
	gone.WaitWritable(90 * time.Second)
	keep.ExecSQL("CREATE TABLE before_power_off (v int); INSERT INTO before_power_off VALUES (42)")
	gone.Pause()
	port := keep.HostPort()

	// A process of the host's own (as pacsd or etcd would be), started in its namespace.
	sleeper := exec.Command("nsenter", "--net="+h.Namespace, "--", "sleep", "600")
	if err := sleeper.Start(); err != nil {
		t.Fatal(err)
	}
	sleeperDone := make(chan struct{})
	go func() { _ = sleeper.Wait(); close(sleeperDone) }()
	t.Cleanup(func() { _ = sleeper.Process.Kill(); <-sleeperDone })

	var procs []process
	note := func(what string, pid int) {
		t.Helper()
		p, err := processOf(pid)
		if err != nil {
			t.Fatalf("test host %s: %s (pid %d): %v", h.Name, what, pid, err)
		}
		procs = append(procs, p)
	}
	note("dockerd", h.pid())
	c, _ := h.containerd()
	if c.pid == 0 {
		t.Fatalf("test host %s: no containerd found", h.Name)
	}
	note("containerd", c.pid)
	for _, n := range []*Node{keep, gone} {
		insp, err := h.Docker.ContainerInspect(e.Ctx(apiTimeout), n.ID)
		if err != nil {
			t.Fatal(err)
		}
		note("container "+n.Name, insp.State.Pid)
	}
	note("a process in its namespace", sleeper.Process.Pid)
	shims := h.processesNaming(h.execRoot + "/")
	if len(shims) < 3 { // containerd and two shims
		t.Fatalf("test host %s: %d processes name its exec root, want containerd and a shim per container", h.Name, len(shims))
	}
	procs = append(procs, shims...)

	start := time.Now()
	h.PowerOff()
	t.Logf("powered off in %s", time.Since(start).Round(time.Millisecond))
	for _, p := range procs {
		if err := p.gone(); err != nil {
			t.Errorf("test host %s powered off: %v", h.Name, err)
		}
	}
	if ns := inNamespace(t, h); len(ns) > 0 {
		t.Errorf("test host %s powered off: processes %v are still in its namespace", h.Name, ns)
	}
	for _, addr := range []string{net.JoinHostPort(h.Address, TLSPort), net.JoinHostPort(h.Address, port)} {
		if err := unreachable(addr); err != nil {
			t.Errorf("test host %s powered off: %v", h.Name, err)
		}
	}
	pingStart := time.Now()
	if err := h.Ping(5 * time.Second); err == nil || time.Since(pingStart) > time.Second {
		t.Errorf("test host %s powered off: its engine's socket answered (%v) or took %s to fail", h.Name, err, time.Since(pingStart))
	}

	start = time.Now()
	h.PowerOn()
	t.Logf("powered on in %s", time.Since(start).Round(time.Millisecond))
	if err := tlsPing(h, 5*time.Second); err != nil {
		t.Errorf("test host %s powered on: %v", h.Name, err)
	}
	if st := gone.State(); st != "exited" {
		t.Errorf("test host %s powered on: container %s (restart policy no) is %s, want exited", h.Name, gone.Name, st)
	}
	keep.WaitWritable(90 * time.Second)
	if got := keep.QueryString("SELECT v::text FROM before_power_off"); got != "42" {
		t.Errorf("test host %s powered on: node %s holds %q, want the row committed before the power went off (42)", h.Name, keep.Name, got)
	}
	if c, err := net.DialTimeout("tcp", net.JoinHostPort(h.Address, port), 5*time.Second); err != nil {
		t.Errorf("test host %s powered on: the machine does not reach its published port %s: %v", h.Name, port, err)
	} else {
		_ = c.Close()
	}
}

// inNamespace returns the pids of the processes in the host's network
// namespace, but the test process.
func inNamespace(t *testing.T, h *TestHost) []int {
	t.Helper()
	ns, err := os.Stat(h.Namespace)
	if err != nil {
		t.Fatalf("test host %s: %v", h.Name, err)
	}
	var out []int
	paths, _ := filepath.Glob("/proc/[0-9]*/ns/net")
	for _, path := range paths {
		st, err := os.Stat(path)
		if err != nil || !os.SameFile(st, ns) {
			continue
		}
		var pid int
		_, _ = fmt.Sscanf(path, "/proc/%d/", &pid)
		if p, err := processOf(pid); err == nil && pid != os.Getpid() && p.gone() != nil {
			out = append(out, pid)
		}
	}
	return out
}

// TestE2ETestHostCleanupAfterHostFaults proves that a test's cleanup removes
// test hosts left partitioned and powered off: it runs a child test that
// leaves one of each, each with a running container, and fails; then it looks
// for what the child left.
func TestE2ETestHostCleanupAfterHostFaults(t *testing.T) {
	Require(t)
	file := filepath.Join(t.TempDir(), "host")
	cmd := exec.Command(os.Args[0], "-test.run", "^TestE2ETestHostFaultedChild$", "-test.v")
	cmd.Env = append(os.Environ(), "PACSD_E2E_HOST_FAULTED="+file)
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "deliberate failure") {
		t.Fatalf("the child test should have failed deliberately; err %v, output:\n%s", err, out)
	}
	for _, suffix := range []string{".partitioned", ".off"} {
		checkHostGone(t, readLeft(t, file+suffix, out))
	}
	if t.Failed() {
		t.Logf("the child's output:\n%s", out)
	}
}

// TestE2ETestHostFaultedChild is run only by
// TestE2ETestHostCleanupAfterHostFaults: it leaves one host partitioned and
// one powered off, each with a container, and fails.
func TestE2ETestHostFaultedChild(t *testing.T) {
	file := os.Getenv("PACSD_E2E_HOST_FAULTED")
	if file == "" {
		return // run by TestE2ETestHostCleanupAfterHostFaults only
	}
	hosts := RequireTestHosts(t, 2)
	for i, h := range hosts {
		e := h.Env()
		n := e.StartNode(NodeOptions{Name: "db1", Password: "pw-" + e.RunID, RestartPolicy: "unless-stopped"})
		if i == 0 {
			writeLeft(t, h, n, file+".partitioned")
			h.Partition()
		} else {
			writeLeft(t, h, n, file+".off")
			h.PowerOff()
		}
	}
	t.Fatal("deliberate failure")
}
