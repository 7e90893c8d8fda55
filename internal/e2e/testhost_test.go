package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/network"
)

// TestE2ETestHosts proves two test hosts side by side: a container on one
// reaches a port published by the other at that host's address, and the
// server there sees the first host's address as the client's (as between two
// machines); the test process reaches both hosts' containers at their own
// addresses.
func TestE2ETestHosts(t *testing.T) {
	a, b := RequireTestHost(t), RequireTestHost(t)
	if a.Address == b.Address || a.Subnet == b.Subnet || a.Namespace == b.Namespace || a.Host == b.Host {
		t.Fatalf("two hosts share an address, subnet, namespace or socket: %+v and %+v", a, b)
	}
	ea, eb := a.Env(), b.Env()
	srv := ea.StartNode(NodeOptions{Name: "srv", Password: "srv-" + ea.RunID, Publish: true})
	other := eb.StartNode(NodeOptions{Name: "other", Password: "other-" + eb.RunID})
	srv.WaitWritable(90 * time.Second)
	other.WaitWritable(90 * time.Second)

	port := srv.HostPort()
	pass := File{Path: "/run/pacsd/pgpass", Content: []byte(fmt.Sprintf("*:*:*:%s:%s\n", srv.User, srv.Password)), Mode: 0o600}
	out, code, err := eb.RunOnce("reach", []string{"env", "PGPASSFILE=/run/pacsd/pgpass", "PGCONNECT_TIMEOUT=5", "psql", "-XAt",
		"-h", a.Address, "-p", port, "-U", srv.User, "-d", srv.Database,
		"-c", "SELECT host(client_addr) FROM pg_stat_activity WHERE pid = pg_backend_pid()"}, nil, pass)
	if err != nil || code != 0 {
		t.Fatalf("a container on host %s does not reach port %s published by host %s at %s: exit %d: %v\n%s",
			b.Name, port, a.Name, a.Address, code, err, out)
	}
	if got := strings.TrimSpace(out); got != b.Address {
		t.Errorf("the server on host %s sees the client on host %s as %q, want the host's address %s", a.Name, b.Name, got, b.Address)
	}
}

// testHostLeft is what TestE2ETestHostFailingChild made, for
// TestE2ETestHostCleanup to look for.
type testHostLeft struct {
	Name, Namespace, Veth, RunDir, DataRoot, ExecRoot, Route string
	ContainerPid                                             int
	// FirstRun is the run id of the child's Env on the machine's engine
	// (its network there): a child killed before its cleanup leaves it.
	FirstRun string
}

// TestE2ETestHostCleanup proves that a test host is removed whole when its
// test fails, even with its engine killed and a container paused on it: it
// runs a child test that does that and then fails, and looks for what the
// child left.
func TestE2ETestHostCleanup(t *testing.T) {
	Require(t)
	file := filepath.Join(t.TempDir(), "host")
	cmd := exec.Command(os.Args[0], "-test.run", "^TestE2ETestHostFailingChild$", "-test.v")
	cmd.Env = append(os.Environ(), "PACSD_E2E_HOST_CHILD="+file)
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "deliberate failure") {
		t.Fatalf("the child test should have failed deliberately; err %v, output:\n%s", err, out)
	}
	checkHostGone(t, readLeft(t, file, out))
}

// readLeft reads what a child test recorded of its host.
func readLeft(t *testing.T, file string, out []byte) testHostLeft {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatalf("the child did not record its host: %v\n%s", err, out)
	}
	var left testHostLeft
	if err := json.Unmarshal(b, &left); err != nil {
		t.Fatalf("while reading what the child recorded: %v", err)
	}
	return left
}

// checkHostGone fails the test for everything of the host that is left.
func checkHostGone(t *testing.T, left testHostLeft) {
	t.Helper()
	for _, p := range []string{left.Namespace, left.RunDir, left.DataRoot} {
		if _, err := os.Stat(p); err == nil {
			t.Errorf("test host %s: %s is left after a failed test", left.Name, p)
		}
	}
	if run("ip", "link", "show", left.Veth) == nil {
		t.Errorf("test host %s: veth %s is left after a failed test", left.Name, left.Veth)
	}
	if o, _ := exec.Command("ip", "route", "show", left.Route).Output(); len(strings.TrimSpace(string(o))) > 0 {
		t.Errorf("test host %s: route %s is left after a failed test", left.Name, strings.TrimSpace(string(o)))
	}
	if ps := (&TestHost{}).processesNaming(left.ExecRoot + "/"); len(ps) > 0 {
		t.Errorf("test host %s: %d processes naming its exec root are left after a failed test", left.Name, len(ps))
	}
	if _, err := os.Stat(fmt.Sprintf("/proc/%d", left.ContainerPid)); err == nil {
		if st, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", left.ContainerPid)); err == nil && strings.Contains(string(st), "postgres") {
			t.Errorf("test host %s: the container's process %d is left after a failed test", left.Name, left.ContainerPid)
		}
	}
	// The bridge and its rule go with the last host: if the bridge is there,
	// another test binary's host must be on it.
	if run("ip", "link", "show", TestHostBridge) == nil {
		if o, _ := exec.Command("ip", "-o", "link", "show", "master", TestHostBridge).Output(); len(strings.TrimSpace(string(o))) == 0 {
			t.Errorf("%s is left with no host on it after a failed test", TestHostBridge)
		}
	} else if run(append([]string{"iptables", "-w", "-C"}, forwardRule...)...) == nil {
		t.Errorf("the FORWARD rule for %s is left after a failed test", TestHostBridge)
	}
}

// TestE2ETestHostFailingChild is run only by TestE2ETestHostCleanup: it
// makes a test host with a paused container, kills the host's engine and
// fails.
func TestE2ETestHostFailingChild(t *testing.T) {
	file := os.Getenv("PACSD_E2E_HOST_CHILD")
	if file == "" {
		return // run by TestE2ETestHostCleanup only
	}
	h := RequireTestHost(t)
	e := h.Env()
	n := e.StartNode(NodeOptions{Name: "db1", Password: "pw-" + e.RunID})
	n.Pause()
	writeLeft(t, h, n, file)
	h.Kill()
	t.Fatal("deliberate failure")
}

// TestE2ETestHostAfterKilledRun proves that a test binary killed before its
// cleanup (a timeout, ^C twice) leaves nothing for good: its dockerd and
// container keep running, and the next test on that slot stops them, removes
// what they made and carries on; its own cleanup then leaves nothing.
func TestE2ETestHostAfterKilledRun(t *testing.T) {
	e := Require(t)
	file := filepath.Join(t.TempDir(), "host")
	cmd := exec.Command(os.Args[0], "-test.run", "^TestE2ETestHostKilledChild$", "-test.v")
	cmd.Env = append(os.Environ(), "PACSD_E2E_HOST_KILLED="+file)
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	if err := Poll(5*time.Minute, func() error {
		if _, err := os.Stat(file); err != nil {
			return fmt.Errorf("the child has not recorded its host yet: %w", err)
		}
		return nil
	}); err != nil {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		t.Fatalf("%v\n%s", err, out.String())
	}
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
	left := readLeft(t, file, []byte(out.String()))
	// What the killed child made on the machine's engine (its network) is
	// removed with this test's own objects.
	t.Cleanup(func() {
		f := filters.NewArgs(filters.Arg("label", LabelRun+"="+left.FirstRun))
		e.cleanupFilter(f)
		ns, err := e.Docker.NetworkList(context.Background(), network.ListOptions{Filters: f})
		if err == nil && len(ns) > 0 {
			t.Errorf("the killed run's network %s is left on the machine's engine", ns[0].Name)
		}
	})
	if p, err := processOf(left.ContainerPid); err != nil || p.gone() == nil {
		t.Fatalf("the killed run's container (pid %d) should still run: %v", left.ContainerPid, err)
	}
	t.Run("next run", func(t *testing.T) {
		h := RequireTestHost(t)
		if h.Name != left.Name {
			t.Fatalf("the next host took slot %s, not the killed run's %s (another test binary holds it?)", h.Name, left.Name)
		}
		if p, err := processOf(left.ContainerPid); err == nil && p.gone() != nil {
			t.Errorf("the killed run's container (pid %d) still runs on the new host", left.ContainerPid)
		}
		cs, err := h.Docker.ContainerList(h.First.Ctx(apiTimeout), container.ListOptions{All: true})
		if err != nil || len(cs) != 0 {
			t.Errorf("the new host holds %d containers of the killed run (%v)", len(cs), err)
		}
	})
	checkHostGone(t, left)
}

// TestE2ETestHostKilledChild is run only by TestE2ETestHostAfterKilledRun,
// which kills it once it has recorded its host and a running container.
func TestE2ETestHostKilledChild(t *testing.T) {
	file := os.Getenv("PACSD_E2E_HOST_KILLED")
	if file == "" {
		return // run by TestE2ETestHostAfterKilledRun only
	}
	h := RequireTestHost(t)
	e := h.Env()
	n := e.StartNode(NodeOptions{Name: "db1", Password: "pw-" + e.RunID})
	writeLeft(t, h, n, file)
	time.Sleep(10 * time.Minute) // killed long before
}

// TestE2ETestHostRemovesOldLayout proves that a test host clears what an
// earlier version of the test bed left on a machine (its bridge in the
// machine's namespace, whose address is in the test hosts' range, and its
// data root, bind-mounted onto itself as dockerd leaves it) instead of
// refusing to start for the bridge's route.
func TestE2ETestHostRemovesOldLayout(t *testing.T) {
	Require(t)
	for _, args := range [][]string{
		{"ip", "link", "add", "name", oldBridge, "type", "bridge"},
		{"ip", "addr", "add", "10.214.0.1/24", "dev", oldBridge},
		{"ip", "link", "set", oldBridge, "up"},
		{"mkdir", "-p", oldDataRoot + "/image"},
		{"mount", "--bind", oldDataRoot, oldDataRoot},
	} {
		if err := run(args...); err != nil {
			t.Fatalf("while laying out an earlier test bed: %v", err)
		}
	}
	t.Cleanup(func() {
		_ = run("ip", "link", "del", oldBridge)
		_ = unmountUnder(oldDataRoot)
		_ = os.RemoveAll(oldDataRoot)
	})
	h := RequireTestHost(t)
	if err := h.Ping(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	if run("ip", "link", "show", oldBridge) == nil {
		t.Errorf("the bridge %s of an earlier test bed is still there", oldBridge)
	}
	if _, err := os.Stat(oldDataRoot); err == nil {
		t.Errorf("the data root %s of an earlier test bed is still there", oldDataRoot)
	}
}

// writeLeft records, atomically in file, what test host h and its node n
// leave on the machine, for the parent test to check once the child is gone.
func writeLeft(t *testing.T, h *TestHost, n *Node, file string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), apiTimeout)
	defer cancel()
	c, err := h.Docker.ContainerInspect(ctx, n.ID)
	if err != nil {
		t.Fatal(err)
	}
	left := testHostLeft{
		Name: h.Name, Namespace: h.Namespace, Veth: h.veth, RunDir: h.runDir, DataRoot: h.dataRoot,
		ExecRoot: h.execRoot, Route: h.ownRoute, ContainerPid: c.State.Pid, FirstRun: h.First.RunID,
	}
	b, _ := json.Marshal(left)
	if err := os.WriteFile(file+".tmp", b, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(file+".tmp", file); err != nil {
		t.Fatal(err)
	}
}
