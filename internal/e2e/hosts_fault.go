package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"
)

// Faults on a whole test host (design section 10): partitioned (its link
// down, its processes alive) and healed, powered off (every process of it
// killed, its link down) and on again. Like every fault of the test bed, each
// is confirmed in place before its helper returns.

// The whole-host faults a TestHost can be in.
const (
	faultPartitioned = "partitioned"
	faultPoweredOff  = "powered off"
)

// unreachableWithin is how long a connection attempt from the machine to a
// cut-off host is given before it counts as timed out.
const unreachableWithin = 300 * time.Millisecond

// Partition cuts the host off the network (fault: partitioned host): its link
// goes down (the machine's end of its veth pair; the host's own end then has
// no carrier) while its engine, containers and other processes keep running.
// It returns once confirmed: from the machine's namespace nothing reaches
// Address any more (a connection to the TLS engine endpoint times out, as
// one to any published port or to any of its containers does), and the
// host's containers reach no other host. Inside the host, its engine (Host,
// Docker) and its containers still answer; a Probe still watches its nodes.
// Heal ends it.
func (h *TestHost) Partition() {
	h.t.Helper()
	if err := h.partition(); err != nil {
		h.t.Fatalf("test host %s: while partitioning it: %v", h.Name, err)
	}
}

func (h *TestHost) partition() error {
	if h.fault != "" {
		return fmt.Errorf("it is %s already", h.fault)
	}
	if err := run("ip", "link", "set", h.veth, "down"); err != nil {
		return fmt.Errorf("while taking its link down: %w", err)
	}
	h.fault = faultPartitioned
	if err := waitUntil(confirmTimeout, h.cutOff); err != nil {
		return fmt.Errorf("confirming it is cut off: %w", err)
	}
	return nil
}

// Heal ends Partition: the host's link comes up again, with the machine's
// route to its containers' range and its own route to the other hosts as
// before (put back when the kernel dropped them). It returns once confirmed:
// both ends of the link up with a carrier, the routes there, and the host's
// engine answering at TLSEndpoint from the machine.
func (h *TestHost) Heal() {
	h.t.Helper()
	if err := h.heal(); err != nil {
		h.t.Fatalf("test host %s: while healing it: %v", h.Name, err)
	}
}

func (h *TestHost) heal() error {
	switch h.fault {
	case faultPartitioned:
	case faultPoweredOff:
		return errors.New("it is powered off: power it on (PowerOn), not heal it")
	default:
		return errors.New("it is not partitioned (Partition)")
	}
	if err := h.linkUp(); err != nil {
		return err
	}
	h.fault = ""
	if err := waitUntil(confirmTimeout, h.linked); err != nil {
		return fmt.Errorf("confirming its link is back: %w", err)
	}
	return nil
}

// PowerOff switches the host off (fault: host lost): its link goes down
// first, so that nothing its dying processes send leaves it, and then every
// process of it is killed with SIGKILL: dockerd, containerd, the shims,
// every process of every container (paused ones included) and every other
// process in its network namespace (a pacsd run there, say). What a machine
// that starts again no longer has goes too: the mounts of its engine, its
// exec root (on a real machine, in /run) and the links its engine made in
// its namespace (bridges, veth pairs). Its data root and files stay, as on a
// disk. It returns once confirmed: none of those processes is left and,
// from the machine, the host is cut off as by Partition. Engine calls
// through Docker fail at once (nothing listens on its socket). PowerOn ends
// it; the test's cleanup removes everything of a host left powered off.
func (h *TestHost) PowerOff() {
	h.t.Helper()
	if err := h.powerOff(); err != nil {
		h.t.Fatalf("test host %s: while powering it off: %v", h.Name, err)
	}
}

func (h *TestHost) powerOff() error {
	if h.fault == faultPoweredOff {
		return errors.New("it is powered off already")
	}
	if err := run("ip", "link", "set", h.veth, "down"); err != nil {
		return fmt.Errorf("while taking its link down: %w", err)
	}
	h.fault = faultPoweredOff
	if pid := h.pid(); pid != 0 {
		_ = syscall.Kill(pid, syscall.SIGKILL)
		select {
		case <-h.exitedChan():
		case <-time.After(confirmTimeout):
			return fmt.Errorf("dockerd (pid %d) did not end within %s of SIGKILL", pid, confirmTimeout)
		}
	}
	if _, err := h.killEverything(); err != nil {
		return fmt.Errorf("while killing its processes: %w", err)
	}
	if err := unmountUnder(h.dataRoot, h.execRoot); err != nil {
		return fmt.Errorf("while unmounting what its engine mounted: %w", err)
	}
	if err := removeOwnDir(h.execRoot); err != nil {
		return err
	}
	if err := os.Remove(h.pidfile); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("while removing its dockerd's pid file: %w", err)
	}
	if err := h.removeEngineLinks(); err != nil {
		return err
	}
	return waitUntil(confirmTimeout, func() error {
		if left := h.processesLeft(); len(left) > 0 {
			return fmt.Errorf("%d of its processes are still left (pids %v)", len(left), pids(left))
		}
		if pid := h.pid(); pid != 0 {
			return fmt.Errorf("its dockerd (pid %d) still runs", pid)
		}
		return h.cutOff()
	})
}

// removeEngineLinks removes the links its engine made in the host's
// namespace (bridges, the host's ends of its containers' veth pairs), which a
// machine that starts again no longer has: all but lo and eth0.
func (h *TestHost) removeEngineLinks() error {
	out, err := exec.Command("nsenter", "--net="+h.Namespace, "--", "ip", "-o", "link", "show").Output()
	if err != nil {
		return fmt.Errorf("while listing the links in its namespace: %w", err)
	}
	var errs []error
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		name, _, _ := strings.Cut(strings.TrimSuffix(f[1], ":"), "@")
		if name == "lo" || name == "eth0" {
			continue
		}
		// A veth may go with its peer's namespace meanwhile.
		if err := h.inNS("ip", "link", "del", "dev", name); err != nil && h.inNS("ip", "link", "show", "dev", name) == nil {
			errs = append(errs, fmt.Errorf("while removing link %s its engine made: %w", name, err))
		}
	}
	return errors.Join(errs...)
}

// PowerOn switches a host on again after PowerOff: its link comes up (with
// its routes, as Heal), and its dockerd starts on its data root as after a
// reboot, which restarts the containers whose restart policy says so. It
// returns once confirmed: the link and routes back, the engine answering on
// Host and at TLSEndpoint, and each container that ran at PowerOff in the
// state a reboot leaves it in: running again when its restart policy is
// always, or unless-stopped (unless it had been stopped by hand); stopped
// when it is no (or none). Containers restarted on-failure are not waited for.
func (h *TestHost) PowerOn() {
	h.t.Helper()
	if err := h.powerOn(); err != nil {
		h.t.Fatalf("test host %s: while powering it on: %v", h.Name, err)
	}
}

func (h *TestHost) powerOn() error {
	if h.fault != faultPoweredOff {
		return errors.New("it is not powered off (PowerOff)")
	}
	boot, err := h.bootPlan()
	if err != nil {
		return err
	}
	if err := h.linkUp(); err != nil {
		return err
	}
	if err := h.spawn(); err != nil {
		return err
	}
	h.fault = ""
	return waitUntil(testHostReady, func() error {
		if err := h.linked(); err != nil {
			return err
		}
		return h.booted(boot)
	})
}

// linkUp brings both ends of the host's link up and puts back its address
// and routes where they are gone: the host's route to the other hosts and
// the machine's route to the host's containers.
func (h *TestHost) linkUp() error {
	if err := run("ip", "link", "set", h.veth, "master", TestHostBridge, "up"); err != nil {
		return fmt.Errorf("while bringing its link up: %w", err)
	}
	for _, args := range [][]string{
		{"ip", "link", "set", "eth0", "up"},
		{"ip", "addr", "replace", h.Address + "/24", "dev", "eth0"},
	} {
		if err := h.inNS(args...); err != nil {
			return fmt.Errorf("while bringing its link up: %w", err)
		}
	}
	if err := run("ip", "route", "replace", h.ownRoute, "via", h.Address, "dev", TestHostBridge); err != nil {
		return fmt.Errorf("while routing its containers' range again: %w", err)
	}
	return nil
}

// cutOff returns nil when the host is cut off: the machine's end of its
// link down, its own end without carrier, and a connection from the machine
// to its TLS engine endpoint neither made nor refused within
// unreachableWithin.
func (h *TestHost) cutOff() error {
	flags, err := linkFlags("", h.veth)
	if err != nil {
		return err
	}
	if flags["UP"] {
		return fmt.Errorf("the machine's end of its link (%s) is still up", h.veth)
	}
	if flags, err = linkFlags(h.Namespace, "eth0"); err != nil {
		return err
	}
	if flags["LOWER_UP"] {
		return errors.New("its own end of its link (eth0) still has a carrier")
	}
	return unreachable(net.JoinHostPort(h.Address, TLSPort))
}

// unreachable returns nil when a TCP connection from the test process to
// addr is neither made nor refused within unreachableWithin.
func unreachable(addr string) error {
	c, err := net.DialTimeout("tcp", addr, unreachableWithin)
	if err == nil {
		_ = c.Close()
		return fmt.Errorf("the machine still connects to %s", addr)
	}
	if errors.Is(err, syscall.ECONNREFUSED) {
		return fmt.Errorf("the machine's connection to %s is refused, so something still answers there: %w", addr, err)
	}
	return nil
}

// linked returns nil when the host's link is up again: both ends up with a
// carrier, the machine's end on TestHostBridge, the host's route to the other
// hosts and the machine's route to its containers there, and its engine
// answering at TLSEndpoint from the machine.
func (h *TestHost) linked() error {
	flags, err := linkFlags("", h.veth)
	if err != nil {
		return err
	}
	if !flags["UP"] || !flags["LOWER_UP"] || !flags["master "+TestHostBridge] {
		return fmt.Errorf("the machine's end of its link (%s) is not up on %s yet (%v)", h.veth, TestHostBridge, flagList(flags))
	}
	if flags, err = linkFlags(h.Namespace, "eth0"); err != nil {
		return err
	}
	if !flags["UP"] || !flags["LOWER_UP"] {
		return fmt.Errorf("its own end of its link (eth0) is not up yet (%v)", flagList(flags))
	}
	out, err := exec.Command("ip", "route", "show", h.ownRoute).Output()
	if err != nil || !strings.Contains(string(out), "via "+h.Address+" dev "+TestHostBridge) {
		return fmt.Errorf("the machine has no route of its containers' range %s via %s (%q, %v)", h.ownRoute, h.Address, strings.TrimSpace(string(out)), err)
	}
	out, err = exec.Command("nsenter", "--net="+h.Namespace, "--", "ip", "route", "show", TestHostSubnet).Output()
	if err != nil || !strings.Contains(string(out), "dev eth0") {
		return fmt.Errorf("it has no route to the other hosts (%s dev eth0) (%q, %v)", TestHostSubnet, strings.TrimSpace(string(out)), err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if _, err := h.tlsClient.Ping(ctx); err != nil {
		return fmt.Errorf("its engine does not answer at %s from the machine: %w", h.TLSEndpoint, err)
	}
	return nil
}

// linkFlags returns the flags of a link (UP, LOWER_UP, NO-CARRIER, ...) and
// "master BRIDGE" when it is a port of one, in the machine's namespace (ns
// "") or in the namespace at ns.
func linkFlags(ns, dev string) (map[string]bool, error) {
	args := []string{"ip", "-o", "link", "show", "dev", dev}
	if ns != "" {
		args = append([]string{"nsenter", "--net=" + ns, "--"}, args...)
	}
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("%s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	line := string(out)
	i, j := strings.IndexByte(line, '<'), strings.IndexByte(line, '>')
	if i < 0 || j < i {
		return nil, fmt.Errorf("%s: no flags in %q", strings.Join(args, " "), line)
	}
	flags := map[string]bool{}
	for _, f := range strings.Split(line[i+1:j], ",") {
		flags[f] = true
	}
	f := strings.Fields(line[j:])
	for k := 0; k+1 < len(f); k++ {
		if f[k] == "master" {
			flags["master "+f[k+1]] = true
		}
	}
	return flags, nil
}

func flagList(flags map[string]bool) string {
	var out []string
	for f, on := range flags {
		if on {
			out = append(out, f)
		}
	}
	sort.Strings(out)
	return strings.Join(out, ",")
}

// bootState is what a container that ran at PowerOff is after PowerOn.
type bootState struct {
	name, policy string
	running      bool // else stopped
}

// bootPlan reads, from the host's data root, which containers ran when it
// was powered off and what a reboot does to each (see PowerOn), by
// container ID. Containers restarted on-failure are left out.
func (h *TestHost) bootPlan() (map[string]bootState, error) {
	dir := filepath.Join(h.dataRoot, "containers")
	ents, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("while listing its containers on disk: %w", err)
	}
	plan := map[string]bootState{}
	for _, e := range ents {
		var cfg struct {
			Name  string
			State struct {
				Running, Paused bool
			}
			HasBeenManuallyStopped bool
		}
		var hc struct {
			RestartPolicy struct{ Name string }
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name(), "config.v2.json"))
		if err != nil {
			continue // being created or removed
		}
		if err := json.Unmarshal(b, &cfg); err != nil {
			return nil, fmt.Errorf("while reading container %s on disk: %w", e.Name(), err)
		}
		if b, err = os.ReadFile(filepath.Join(dir, e.Name(), "hostconfig.json")); err != nil {
			return nil, fmt.Errorf("while reading container %s on disk: %w", e.Name(), err)
		}
		if err := json.Unmarshal(b, &hc); err != nil {
			return nil, fmt.Errorf("while reading container %s on disk: %w", e.Name(), err)
		}
		if !cfg.State.Running && !cfg.State.Paused {
			continue
		}
		s := bootState{name: strings.TrimPrefix(cfg.Name, "/"), policy: hc.RestartPolicy.Name}
		switch s.policy {
		case "always":
			s.running = true
		case "unless-stopped":
			s.running = !cfg.HasBeenManuallyStopped
		case "", "no":
		default:
			continue
		}
		plan[e.Name()] = s
	}
	return plan, nil
}

// booted returns nil when every container of plan is as a reboot leaves it.
func (h *TestHost) booted(plan map[string]bootState) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for id, want := range plan {
		c, err := h.Docker.ContainerInspect(ctx, id)
		if err != nil {
			return fmt.Errorf("while inspecting container %s: %w", want.name, err)
		}
		running := c.State != nil && c.State.Running && !c.State.Restarting && !c.State.Paused
		policy := want.policy
		if policy == "" {
			policy = "no"
		}
		switch {
		case want.running && !running:
			return fmt.Errorf("container %s (restart policy %s) is not running again yet (%s)", want.name, policy, c.State.Status)
		case !want.running && c.State != nil && c.State.Running:
			return fmt.Errorf("container %s (restart policy %s) runs, but a reboot leaves it stopped", want.name, policy)
		}
	}
	return nil
}
