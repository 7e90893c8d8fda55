package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/volume"
	"github.com/docker/docker/client"
)

// The address plan of the test hosts. Every test host is attached to
// TestHostBridge, a bridge in the machine's network namespace that stands for
// the switch between machines; the machine itself has TestHostGateway on it.
// The host in slot s (1 to maxTestHosts) has the address 10.213.0.(10+s) and
// takes its containers' networks from 10.214.(16*s).0/20, which the machine
// routes to that address. Test traffic goes only to these addresses, to
// loopback and to containers.
const (
	// TestHostBridge is the bridge in the machine's network namespace that
	// every test host's veth pair is attached to.
	TestHostBridge = "pacsd-e2e-br0"
	// TestHostSubnet is the subnet of TestHostBridge.
	TestHostSubnet = "10.213.0.0/24"
	// TestHostGateway is the machine's own address on TestHostBridge.
	TestHostGateway = "10.213.0.1"

	// maxTestHosts is the number of slots; slot 1 is the second engine's.
	maxTestHosts = 15
	// testHostContainers is the range the hosts' container networks come from.
	testHostContainers = "10.214.0.0/16"
	// testHostRunDir holds each host's sockets, pid files, exec root and log
	// (removed when the test ends), and the lock files of the slots.
	testHostRunDir = "/run/pacsd-e2e"
	// testHostDataDir holds each host's data root (removed when the test ends).
	testHostDataDir = "/var/lib/pacsd-e2e"
	// testHostReady bounds the wait for a host's engine to answer after a start.
	testHostReady = 60 * time.Second
	// testHostWait bounds the wait for a free slot.
	testHostWait = 5 * time.Minute
)

// TestHost is one host of the multi-host test bed on this machine (design
// section 10): a network namespace of its own with its own dockerd (and the
// containerd it manages), its own data root, exec root, socket, pid file and
// default bridge, and a veth pair to TestHostBridge with an address of its
// own. Its engine never touches the machine's network namespace: its
// bridges, iptables rules and published ports are in its namespace. Its
// containers reach other hosts and the machine through the host's address
// (masqueraded, as behind a real host), other hosts and the containers of the
// machine's engine reach its published ports at Address, and the test process
// reaches its containers at their own addresses (Node.IP), routed by the
// machine through Address. Its engine answers on a unix socket (Host,
// Docker) and, as a remote engine answers pacsd, at TLSEndpoint with TLS and
// client verification (TLSFiles). A Probe reaches its nodes from inside its
// namespace.
//
// A whole host can fail: Partition and Heal take its link down and up
// (its processes alive), PowerOff and PowerOn kill every process of it with
// its link down and start its engine again as after a reboot.
//
// Each test that asks for a host gets it to itself; test binaries running side
// by side take other slots or wait for one (lock files). When the test ends,
// also when it fails, everything made for the host is removed: its containers,
// volumes and networks, its dockerd and containerd, its directories, the veth
// pair, the route, the namespace, and, with the last host on the machine,
// TestHostBridge and its iptables rule. The image under test is loaded into
// each new host (docker save | docker load, seconds). A test binary killed
// before its cleanup leaves its host behind: the next test on that slot
// starts the engine on what was left (which stops the old containers),
// removes it all and carries on.
//
// Its methods fail the test that required it: call them from that test, not
// from its subtests or other goroutines.
type TestHost struct {
	// Name names the host: its namespace is pacsd-e2e-<Name>, its directories
	// end in /<Name>.
	Name string
	// Namespace is the path of its network namespace; enter it with
	// `nsenter --net=<Namespace>` (not `ip netns exec`, which remounts /sys,
	// where dockerd then finds no cgroups).
	Namespace string
	// Address is the host's address on TestHostBridge: where the machine,
	// other hosts and containers of the machine's engine reach the ports its
	// engine publishes.
	Address string
	// Subnet is where the host's container networks are taken from; the
	// machine routes it to Address.
	Subnet string
	// Host is the host's engine as a DOCKER_HOST value (a unix socket).
	Host string
	// TLSEndpoint is the host's engine over TCP with TLS, as pacsd reaches a
	// remote engine: tcp://<Address>:2376. The engine verifies clients
	// (--tlsverify): only a client certificate its authority signed gets in.
	TLSEndpoint string
	// TLSFiles are the client's files for TLSEndpoint: the authority that
	// signed the engine's certificate (whose only SAN is Address) and a
	// client certificate it signed. The authority is the host's own, made
	// when the host starts; its key is not kept.
	TLSFiles TLSFiles
	// Docker is a client of the host's engine. Its calls hang while the
	// engine is stopped (Stop) and fail while it is killed (Kill): bound them
	// with a context.
	Docker *client.Client
	// Image is the image under test, present on the machine's engine and on
	// this host's.
	Image string
	// First is the test's Env on the machine's (first) engine.
	First *Env

	t    testing.TB
	slot int
	lock *os.File

	nsName, veth        string
	runDir, execRoot    string
	dataRoot, socket    string
	pidfile, logPath    string
	bip, pool, ownRoute string
	tlsDir              string
	tls                 hostTLS
	tlsClient           *client.Client // of TLSEndpoint, with TLSFiles

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{} // closed when cmd has exited

	// fault is the whole-host fault in effect: "", faultPartitioned or
	// faultPoweredOff (see Partition and PowerOff).
	fault string
	// base is the Env of handles made for containers others created on the
	// host (see Container).
	base *Env
}

// RequireTestHost starts a test host in a free slot (waiting for one at most
// five minutes) and returns it, with the image under test loaded, and the
// test's Env on the machine's engine as First. Without PACSD_E2E=1 the test
// is skipped; with it, anything missing (root, dockerd, nsenter, ip,
// iptables, the machine's engine, the image, a free address range) fails the
// test. Everything made for the host is removed when the test ends.
func RequireTestHost(t testing.TB) *TestHost {
	t.Helper()
	return requireTestHost(t, 2, maxTestHosts, "host")
}

// RequireTestHosts starts n test hosts (each as RequireTestHost does, in
// slots free at the time, waiting for them at most five minutes), bringing
// them up side by side, and returns them in the order their slots were taken
// (the lowest free first). They share one Env on the machine's engine (First). Everything made for them is removed when the
// test ends, the hosts side by side.
func RequireTestHosts(t testing.TB, n int) []*TestHost {
	t.Helper()
	if n < 1 || n > maxTestHosts-1 {
		t.Fatalf("RequireTestHosts: %d hosts asked for; the test bed has room for 1 to %d", n, maxTestHosts-1)
	}
	env := testHostPreflight(t)
	hosts := make([]*TestHost, 0, n)
	t.Cleanup(func() { cleanupHosts(hosts) })
	for len(hosts) < n {
		slot, lock, err := takeSlot(2, maxTestHosts, testHostWait)
		if err != nil {
			t.Fatalf("while taking slot %d of the %d test hosts asked for: %v", len(hosts)+1, n, err)
		}
		h := newTestHost(t, slot, "host"+strconv.Itoa(slot), lock)
		h.Image, h.First = env.Image, env
		hosts = append(hosts, h)
	}
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i, h := range hosts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := h.up(); err != nil {
				errs[i] = fmt.Errorf("test host %s: %w", h.Name, err)
			}
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	return hosts
}

// cleanupHosts runs the cleanup of every host side by side.
func cleanupHosts(hosts []*TestHost) {
	var wg sync.WaitGroup
	for _, h := range hosts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			h.cleanup()
		}()
	}
	wg.Wait()
}

// requireTestHost starts a host in the first free slot from first to last;
// with first == last the host is named prefix alone, else prefix<slot>.
func requireTestHost(t testing.TB, first, last int, prefix string) *TestHost {
	t.Helper()
	env := testHostPreflight(t)
	slot, lock, err := takeSlot(first, last, testHostWait)
	if err != nil {
		t.Fatal(err)
	}
	name := prefix
	if first != last {
		name = prefix + strconv.Itoa(slot)
	}
	h := newTestHost(t, slot, name, lock)
	h.Image, h.First = env.Image, env
	t.Cleanup(h.cleanup)
	if err := h.up(); err != nil {
		t.Fatalf("test host %s: %v", h.Name, err)
	}
	return h
}

// testHostPreflight skips the test without PACSD_E2E=1, fails it when
// anything a test host needs is missing, and returns the test's Env on the
// machine's engine.
func testHostPreflight(t testing.TB) *Env {
	t.Helper()
	if !Enabled() {
		t.Skip("end-to-end test: set PACSD_E2E=1 (or run 'make test') to run it against a Docker engine")
	}
	if os.Geteuid() != 0 {
		t.Fatalf("a test host needs root (it runs its own dockerd in a network namespace); run the end-to-end tests as root")
	}
	for _, bin := range []string{"dockerd", "nsenter", "ip", "iptables"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Fatalf("a test host needs %s: %v; install it (dockerd: 'bash scripts/engine.sh'; nsenter: util-linux; ip: iproute2; iptables)", bin, err)
		}
	}
	env := Require(t)
	if err := os.MkdirAll(testHostRunDir, 0o700); err != nil {
		t.Fatalf("while creating %s: %v", testHostRunDir, err)
	}
	return env
}

// takeSlot locks the first free slot from first to last, trying again until
// wait has passed.
func takeSlot(first, last int, wait time.Duration) (int, *os.File, error) {
	deadline := time.Now().Add(wait)
	for {
		for s := first; s <= last; s++ {
			f, err := lockFile(slotLock(s), 0)
			if err == nil {
				return s, f, nil
			}
			if !errors.Is(err, syscall.EWOULDBLOCK) {
				return 0, nil, err
			}
		}
		if time.Now().After(deadline) {
			return 0, nil, fmt.Errorf("while waiting for a free test host slot (%d to %d): all taken for %s by other test binaries; "+
				"wait for them, or end them and run the test again (it clears what they left)", first, last, wait)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func slotLock(s int) string { return filepath.Join(testHostRunDir, fmt.Sprintf("slot%d.lock", s)) }

// newTestHost lays out the names, paths and addresses of the host in slot.
func newTestHost(t testing.TB, slot int, name string, lock *os.File) *TestHost {
	run := filepath.Join(testHostRunDir, name)
	h := &TestHost{
		Name:      name,
		nsName:    "pacsd-e2e-" + name,
		Address:   fmt.Sprintf("10.213.0.%d", 10+slot),
		Subnet:    fmt.Sprintf("10.214.%d.0/20", 16*slot),
		t:         t,
		slot:      slot,
		lock:      lock,
		veth:      fmt.Sprintf("pe2e%d", slot),
		runDir:    run,
		execRoot:  filepath.Join(run, "exec"),
		socket:    filepath.Join(run, "docker.sock"),
		pidfile:   filepath.Join(run, "docker.pid"),
		logPath:   filepath.Join(run, "dockerd.log"),
		dataRoot:  filepath.Join(testHostDataDir, name),
		bip:       fmt.Sprintf("10.214.%d.1/24", 16*slot+15),
		pool:      fmt.Sprintf("base=10.214.%d.0/20,size=24", 16*slot),
		ownRoute:  fmt.Sprintf("10.214.%d.0/20", 16*slot),
		Namespace: "/run/netns/pacsd-e2e-" + name,
		tlsDir:    filepath.Join(run, "tls"),
	}
	h.Host = "unix://" + h.socket
	h.TLSEndpoint = "tcp://" + net.JoinHostPort(h.Address, TLSPort)
	return h
}

// up brings the host up: clears what an earlier run on this slot left
// running, makes its network, starts its engine (on what an earlier run left
// in its data root, if anything, which its start cleans), removes every
// object on it and loads the image.
func (h *TestHost) up() error {
	if err := h.killStale(); err != nil {
		return err
	}
	if err := h.netUp(); err != nil {
		return err
	}
	for _, d := range []string{h.runDir, h.dataRoot} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return fmt.Errorf("while creating %s: %w", d, err)
		}
	}
	var err error
	if h.tls, err = writeHostTLS(h.tlsDir, h.Name, h.Address); err != nil {
		return err
	}
	h.TLSFiles = h.tls.client
	h.Docker, err = client.NewClientWithOpts(client.WithHost(h.Host), client.WithAPIVersionNegotiation())
	if err != nil {
		return fmt.Errorf("while making a client of its engine: %w", err)
	}
	h.tlsClient, err = client.NewClientWithOpts(client.WithHost(h.TLSEndpoint), client.WithAPIVersionNegotiation(),
		client.WithTLSClientConfig(h.TLSFiles.CA, h.TLSFiles.Cert, h.TLSFiles.Key))
	if err != nil {
		return fmt.Errorf("while making a TLS client of its engine: %w", err)
	}
	if err := h.spawn(); err != nil {
		return err
	}
	if err := h.removeAll(); err != nil {
		return err
	}
	return h.loadImage(h.First.Docker)
}

// lockFile takes an exclusive lock on path, waiting at most wait (0: not at
// all; the error then wraps syscall.EWOULDBLOCK).
func lockFile(path string, wait time.Duration) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR|syscall.O_NOFOLLOW, 0o600)
	if err != nil {
		return nil, fmt.Errorf("while opening %s: %w", path, err)
	}
	deadline := time.Now().Add(wait)
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return f, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) || !time.Now().Before(deadline) {
			_ = f.Close()
			return nil, fmt.Errorf("while locking %s: %w", path, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// run runs a command and returns an error with its output when it fails.
func run(args ...string) error {
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// inNS runs a command in the host's network namespace.
func (h *TestHost) inNS(args ...string) error {
	return run(append([]string{"nsenter", "--net=" + h.Namespace, "--"}, args...)...)
}

// netUp makes the host's network: TestHostBridge with its iptables rule
// (when no host made them yet), the namespace, the veth pair with the host's
// address, and the machine's route to the host's containers. Each step is
// skipped when its result is there already (left by an earlier run).
func (h *TestHost) netUp() error {
	bed, err := lockFile(filepath.Join(testHostRunDir, "bridge.lock"), time.Minute)
	if err != nil {
		return fmt.Errorf("while waiting to set up %s: %w", TestHostBridge, err)
	}
	defer bed.Close()
	removeOldLayout(h.t)
	if err := h.checkRoutes(); err != nil {
		return err
	}
	if run("ip", "link", "show", TestHostBridge) != nil {
		if err := run("ip", "link", "add", "name", TestHostBridge, "type", "bridge"); err != nil {
			return fmt.Errorf("while making the test hosts' bridge: %w", err)
		}
	}
	gw := TestHostGateway + "/24"
	for _, args := range [][]string{
		{"ip", "addr", "replace", gw, "dev", TestHostBridge},
		{"ip", "link", "set", TestHostBridge, "up"},
	} {
		if err := run(args...); err != nil {
			return fmt.Errorf("while setting up the test hosts' bridge: %w", err)
		}
	}
	// With the machine's engine running, bridged frames pass through the
	// FORWARD chain, whose policy is DROP: let frames between hosts through.
	if run(append([]string{"iptables", "-w", "-C"}, forwardRule...)...) != nil {
		if err := run(append([]string{"iptables", "-w", "-I"}, forwardRule...)...); err != nil {
			return fmt.Errorf("while letting frames between test hosts through the FORWARD chain: %w", err)
		}
	}
	if _, err := os.Stat(h.Namespace); err != nil {
		if err := run("ip", "netns", "add", h.nsName); err != nil {
			return fmt.Errorf("while making its network namespace: %w", err)
		}
	}
	if run("ip", "link", "show", h.veth) != nil {
		peer := h.veth + "p"
		for _, args := range [][]string{
			{"ip", "link", "add", h.veth, "type", "veth", "peer", "name", peer},
			{"ip", "link", "set", peer, "netns", h.nsName},
			{"nsenter", "--net=" + h.Namespace, "--", "ip", "link", "set", peer, "name", "eth0"},
		} {
			if err := run(args...); err != nil {
				return fmt.Errorf("while making its veth pair: %w", err)
			}
		}
	}
	if err := run("ip", "link", "set", h.veth, "master", TestHostBridge, "up"); err != nil {
		return fmt.Errorf("while attaching its veth to %s: %w", TestHostBridge, err)
	}
	for _, args := range [][]string{
		{"ip", "link", "set", "lo", "up"},
		{"ip", "addr", "replace", h.Address + "/24", "dev", "eth0"},
		{"ip", "link", "set", "eth0", "up"},
		// Forwarding on before dockerd starts: dockerd then leaves the
		// namespace's FORWARD policy at ACCEPT, so that the test process
		// reaches every container at its own address.
		{"sh", "-c", "echo 1 > /proc/sys/net/ipv4/ip_forward"},
	} {
		if err := h.inNS(args...); err != nil {
			return fmt.Errorf("while setting up its namespace: %w", err)
		}
	}
	if err := run("ip", "route", "replace", h.ownRoute, "via", h.Address, "dev", TestHostBridge); err != nil {
		return fmt.Errorf("while routing its containers' range: %w", err)
	}
	return nil
}

// The layout of an earlier version of the test bed, whose second engine ran
// in the machine's own network namespace.
const (
	oldBridge   = "pacsd-e2e-br2"
	oldRunDir   = testHostRunDir + "/docker2"
	oldPidfile  = testHostRunDir + "/docker2.pid"
	oldDataRoot = "/var/lib/pacsd-e2e-docker2"
)

// removeOldLayout removes what an earlier version of the test bed left on
// this machine (its bridge, whose address would collide with the test
// hosts', its data root and run files), unless its dockerd still runs.
func removeOldLayout(t testing.TB) {
	if pidOf(oldPidfile, oldRunDir) != 0 {
		t.Logf("an earlier test bed's second engine still runs (%s); leaving it alone", oldPidfile)
		return
	}
	if run("ip", "link", "show", oldBridge) == nil {
		if out, _ := exec.Command("ip", "-o", "link", "show", "master", oldBridge).Output(); len(bytes.TrimSpace(out)) == 0 {
			if err := run("ip", "link", "del", oldBridge); err != nil {
				t.Logf("while removing the bridge %s of an earlier test bed: %v", oldBridge, err)
			} else {
				t.Logf("removed the bridge %s of an earlier test bed", oldBridge)
			}
		}
	}
	if _, err := os.Stat(oldDataRoot); err == nil {
		if err := unmountUnder(oldDataRoot, oldRunDir); err != nil {
			t.Logf("while unmounting what an earlier test bed left: %v", err)
			return
		}
		for _, p := range []string{oldDataRoot, oldRunDir, oldPidfile, testHostRunDir + "/docker2.sock", testHostRunDir + "/docker2.log"} {
			if err := os.RemoveAll(p); err != nil {
				t.Logf("while removing %s of an earlier test bed: %v", p, err)
			}
		}
		t.Logf("removed the data root %s of an earlier test bed", oldDataRoot)
	}
}

// forwardRule lets frames between test hosts through the FORWARD chain.
var forwardRule = []string{"FORWARD", "-i", TestHostBridge, "-o", TestHostBridge, "-j", "ACCEPT"}

// checkRoutes fails when the machine has a route into the test hosts'
// addresses that the test bed did not make: those addresses would then reach
// something real.
func (h *TestHost) checkRoutes() error {
	out, err := exec.Command("ip", "-o", "-4", "route", "show", "table", "all").Output()
	if err != nil {
		return fmt.Errorf("while listing the machine's routes: %w", err)
	}
	_, bed, _ := net.ParseCIDR(TestHostSubnet)
	_, hosts, _ := net.ParseCIDR(testHostContainers)
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		dst := f[0]
		if dst == "local" || dst == "broadcast" || dst == "unicast" {
			if len(f) < 2 {
				continue
			}
			dst = f[1]
		}
		if !strings.Contains(dst, "/") {
			dst += "/32"
		}
		_, n, err := net.ParseCIDR(dst)
		if err != nil {
			continue // default, and others that are no prefix
		}
		ours := strings.Contains(line, " dev "+TestHostBridge+" ") || strings.HasSuffix(line, " dev "+TestHostBridge)
		if ours {
			continue
		}
		if overlaps(n, bed) || overlaps(n, hosts) {
			return fmt.Errorf("the machine has a route %q into the test hosts' addresses (%s and %s); "+
				"the test bed needs them to itself: remove that route or run the tests on another machine",
				strings.Join(strings.Fields(line), " "), TestHostSubnet, testHostContainers)
		}
	}
	return nil
}

func overlaps(a, b *net.IPNet) bool { return a.Contains(b.IP) || b.Contains(a.IP) }

// spawn starts the host's dockerd in its namespace and waits until it
// answers. A dockerd that was killed leaves its pid file and its
// containerd's: they are removed first, or the new one waits for the old.
func (h *TestHost) spawn() error {
	dockerd, err := exec.LookPath("dockerd")
	if err != nil {
		return fmt.Errorf("while looking for dockerd: %w", err)
	}
	for _, f := range []string{h.pidfile, filepath.Join(h.execRoot, "containerd", "containerd.pid")} {
		if err := os.Remove(f); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("while removing %s left by a dockerd that was killed: %w", f, err)
		}
	}
	logf, err := os.OpenFile(h.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("while opening %s: %w", h.logPath, err)
	}
	defer logf.Close()
	cmd := exec.Command("nsenter", "--net="+h.Namespace, "--", dockerd,
		"--host", h.Host,
		"--data-root", h.dataRoot,
		"--exec-root", h.execRoot,
		"--pidfile", h.pidfile,
		"--bip", h.bip,
		"--default-address-pool", h.pool,
		"--host", h.TLSEndpoint,
		"--tlsverify",
		"--tlscacert", h.TLSFiles.CA,
		"--tlscert", h.tls.serverCert,
		"--tlskey", h.tls.serverKey,
	)
	cmd.Stdout, cmd.Stderr = logf, logf
	// Its own process group: a ^C at the terminal reaches the test binary,
	// whose cleanup then stops the engine in order.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("while starting its dockerd: %w", err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	h.mu.Lock()
	h.cmd, h.exited = cmd, exited
	h.mu.Unlock()
	if err := h.waitReady(testHostReady); err != nil {
		return fmt.Errorf("while starting its dockerd: %w; its log (%s) ends:\n%s", err, h.logPath, tail(h.logPath, 20))
	}
	return nil
}

// waitReady waits until the engine answers a ping.
func (h *TestHost) waitReady(timeout time.Duration) error {
	return Poll(timeout, func() error {
		select {
		case <-h.exitedChan():
			return errors.New("dockerd exited")
		default:
		}
		return h.ping(time.Second)
	})
}

func (h *TestHost) exitedChan() chan struct{} {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.exited
}

// Ping asks the host's engine whether it answers, waiting at most timeout.
func (h *TestHost) Ping(timeout time.Duration) error { return h.ping(timeout) }

func (h *TestHost) ping(timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if _, err := h.Docker.Ping(ctx); err != nil {
		return fmt.Errorf("while pinging the engine of test host %s: %w", h.Name, err)
	}
	return nil
}

// tail returns the last n lines of a file, for failure messages.
func tail(path string, n int) string {
	b, _ := os.ReadFile(path)
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// loadImage copies the image under test from the machine's engine unless the
// host already holds the same image ID (`docker save | docker load`).
func (h *TestHost) loadImage(first *client.Client) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	want, err := first.ImageInspect(ctx, h.Image)
	if err != nil {
		return fmt.Errorf("while inspecting image %s on the machine's engine: %w", h.Image, err)
	}
	if have, err := h.Docker.ImageInspect(ctx, h.Image); err == nil && have.ID == want.ID {
		return nil
	}
	start := time.Now()
	rc, err := first.ImageSave(ctx, []string{h.Image})
	if err != nil {
		return fmt.Errorf("while saving image %s from the machine's engine: %w", h.Image, err)
	}
	defer rc.Close()
	resp, err := h.Docker.ImageLoad(ctx, rc, client.ImageLoadWithQuiet(true))
	if err != nil {
		return fmt.Errorf("while loading image %s: %w", h.Image, err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	have, err := h.Docker.ImageInspect(ctx, h.Image)
	if err != nil || have.ID != want.ID {
		return fmt.Errorf("while loading image %s: image ID %q after load, want %q (%v): %s", h.Image, have.ID, want.ID, err, out)
	}
	h.t.Logf("test host %s: loaded image %s in %s", h.Name, h.Image, time.Since(start).Round(time.Millisecond))
	return nil
}

// pid returns the running dockerd's pid, or 0 when it has exited.
func (h *TestHost) pid() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.cmd == nil {
		return 0
	}
	select {
	case <-h.exited:
		return 0
	default:
		return h.cmd.Process.Pid
	}
}

// Stop freezes the host's dockerd with SIGSTOP (fault: engine unreachable)
// and returns once every thread of it is stopped. Its containers keep
// running, but every API call hangs until its context ends. Start thaws it.
func (h *TestHost) Stop() {
	h.t.Helper()
	pid := h.pid()
	if pid == 0 {
		h.t.Fatalf("test host %s: cannot stop dockerd: it is not running", h.Name)
	}
	if err := stopProcess(pid); err != nil {
		h.t.Fatalf("test host %s: while stopping dockerd: %v", h.Name, err)
	}
}

// Kill ends the host's dockerd and the containerd it manages with SIGKILL
// (fault: engine crashed) and returns once both have ended. API calls fail
// at once (nobody listens on the socket) while the containers keep running
// under their shims. (Left alone, the orphaned containerd stops answering,
// and a new dockerd waits for it in vain.) Start brings up a new dockerd and
// containerd, which find the containers again; without live restore dockerd
// then stops them, as after any crash of the engine.
func (h *TestHost) Kill() {
	h.t.Helper()
	if err := h.kill(); err != nil {
		h.t.Fatalf("test host %s: %v", h.Name, err)
	}
}

func (h *TestHost) kill() error {
	pid := h.pid()
	if pid == 0 {
		return errors.New("cannot kill dockerd: it is not running")
	}
	containerd, cerr := h.containerd()
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		return fmt.Errorf("while sending SIGKILL to dockerd (pid %d): %w", pid, err)
	}
	select {
	case <-h.exitedChan():
	case <-time.After(confirmTimeout):
		return fmt.Errorf("dockerd (pid %d) did not end within %s of SIGKILL", pid, confirmTimeout)
	}
	if cerr == nil && containerd.pid != 0 {
		_ = syscall.Kill(containerd.pid, syscall.SIGKILL)
		if err := containerd.waitGone(confirmTimeout); err != nil {
			return fmt.Errorf("containerd after SIGKILL: %w", err)
		}
	}
	return nil
}

// containerd returns the containerd the host's dockerd manages (its command
// line names the exec root; shims are not it), or the zero process.
func (h *TestHost) containerd() (process, error) {
	for _, p := range h.processesNaming(h.execRoot + "/") {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", p.pid))
		if err != nil {
			continue
		}
		if filepath.Base(strings.SplitN(string(b), "\x00", 2)[0]) == "containerd" {
			return p, nil
		}
	}
	return process{}, nil
}

// processesNaming returns the live processes whose command line contains mark.
func (h *TestHost) processesNaming(mark string) []process {
	var out []process
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, path := range procs {
		b, err := os.ReadFile(path)
		if err != nil || !bytes.Contains(b, []byte(mark)) {
			continue
		}
		pid, err := strconv.Atoi(filepath.Base(filepath.Dir(path)))
		if err != nil || pid == os.Getpid() {
			continue
		}
		if p, err := processOf(pid); err == nil && p.gone() != nil {
			out = append(out, p)
		}
	}
	return out
}

// Start makes the host's engine answer again after Stop (SIGCONT) or Kill (a
// new dockerd on the same roots), and waits until it does.
func (h *TestHost) Start() {
	h.t.Helper()
	if err := h.start(); err != nil {
		h.t.Fatalf("test host %s: %v", h.Name, err)
	}
}

func (h *TestHost) start() error {
	if pid := h.pid(); pid != 0 {
		if err := syscall.Kill(pid, syscall.SIGCONT); err != nil {
			return fmt.Errorf("while sending SIGCONT to dockerd (pid %d): %w", pid, err)
		}
		if err := h.waitReady(testHostReady); err != nil {
			return fmt.Errorf("while thawing dockerd: %w", err)
		}
		return nil
	}
	// A containerd orphaned by a killed dockerd no longer answers.
	if c, _ := h.containerd(); c.pid != 0 {
		_ = syscall.Kill(c.pid, syscall.SIGKILL)
		if err := c.waitGone(confirmTimeout); err != nil {
			return fmt.Errorf("containerd of a killed dockerd: %w", err)
		}
	}
	return h.spawn()
}

// Env returns an Env on the host's engine: a network of its own there, names
// and labels of a fresh run id, and cleanup by label when the test ends (the
// engine is made to answer first). Nodes started through it run on this
// host; the test process reaches them at Node.IP as on the machine's engine,
// and a Probe reaches them from inside the host's network namespace.
func (h *TestHost) Env() *Env {
	h.t.Helper()
	e := &Env{T: h.t, Docker: h.Docker, Image: h.Image, RunID: newRunID(), host: h}
	h.t.Cleanup(func() {
		if err := h.start(); err != nil {
			h.t.Logf("cleanup: test host %s: %v", h.Name, err)
			return
		}
		e.cleanup()
	})
	e.Network = e.Name("net")
	if _, err := h.Docker.NetworkCreate(e.Ctx(apiTimeout), e.Network, network.CreateOptions{Driver: "bridge", Labels: e.Labels()}); err != nil {
		h.t.Fatalf("while creating network %s on test host %s: %v", e.Network, h.Name, err)
	}
	return e
}

// HostAddress returns the host's address (Address): where a container on the
// machine's engine or on another host reaches a port this host's engine
// publishes, as it would reach another machine.
func (h *TestHost) HostAddress() string { return h.Address }

// killStale ends a dockerd left running on this slot by a test binary that
// died before its cleanup (we hold the slot's lock, so no live test uses
// it), the containerd of a dockerd that was killed, and every other process
// left in the host's network namespace but its engine's shims.
func (h *TestHost) killStale() error {
	if pid := pidOf(h.pidfile, h.execRoot); pid != 0 {
		h.t.Logf("test host %s: stopping dockerd (pid %d) left by an earlier run", h.Name, pid)
		p, err := processOf(pid)
		if err == nil {
			_ = syscall.Kill(pid, syscall.SIGCONT)
			_ = syscall.Kill(pid, syscall.SIGTERM)
			if p.waitGone(30*time.Second) != nil {
				_ = syscall.Kill(pid, syscall.SIGKILL)
				if err := p.waitGone(confirmTimeout); err != nil {
					return fmt.Errorf("while stopping the dockerd of an earlier run: %w", err)
				}
			}
		}
	}
	if c, _ := h.containerd(); c.pid != 0 {
		h.t.Logf("test host %s: killing containerd (pid %d) left by an earlier run", h.Name, c.pid)
		_ = syscall.Kill(c.pid, syscall.SIGKILL)
		if err := c.waitGone(confirmTimeout); err != nil {
			return fmt.Errorf("while ending the containerd of an earlier run: %w", err)
		}
	}
	// What else ran in its namespace (an etcd member, a pacsd) would hold
	// the host's ports. The engine's shims are left to the engine's start,
	// which stops their containers.
	var left []process
	for _, p := range processesInNamespace(h.Namespace) {
		if cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", p.pid)); err == nil && !bytes.Contains(cmdline, []byte(h.execRoot+"/")) {
			left = append(left, p)
		}
	}
	if len(left) > 0 {
		h.t.Logf("test host %s: killing %d processes left in its network namespace by an earlier run (pids %v)", h.Name, len(left), pids(left))
		for _, p := range left {
			_ = syscall.Kill(p.pid, syscall.SIGKILL)
		}
		for _, p := range left {
			if err := p.waitGone(confirmTimeout); err != nil {
				return fmt.Errorf("while ending the processes an earlier run left in its namespace: %w", err)
			}
		}
	}
	return nil
}

// pidOf reads a pidfile and returns the pid when that process runs (not a
// zombie) and its command line contains mark, else 0.
func pidOf(pidfile, mark string) int {
	b, err := os.ReadFile(pidfile)
	if err != nil {
		return 0
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return 0
	}
	if p, err := processOf(pid); err != nil || p.gone() == nil {
		return 0
	}
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil || !bytes.Contains(cmdline, []byte(mark)) {
		return 0
	}
	return pid
}

// removeAll removes every container, volume and user-defined network of the
// host's engine.
func (h *TestHost) removeAll() error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*apiTimeout)
	defer cancel()
	var errs []error
	cs, err := h.Docker.ContainerList(ctx, container.ListOptions{All: true})
	if err != nil {
		return fmt.Errorf("while listing its containers: %w", err)
	}
	for _, c := range cs {
		if c.State == "paused" {
			_ = h.Docker.ContainerUnpause(ctx, c.ID)
		}
		if err := h.Docker.ContainerRemove(ctx, c.ID, container.RemoveOptions{Force: true, RemoveVolumes: true}); err != nil {
			errs = append(errs, fmt.Errorf("while removing container %s: %w", c.ID[:12], err))
		}
	}
	vs, err := h.Docker.VolumeList(ctx, volume.ListOptions{})
	if err != nil {
		return fmt.Errorf("while listing its volumes: %w", err)
	}
	for _, v := range vs.Volumes {
		if err := h.Docker.VolumeRemove(ctx, v.Name, true); err != nil {
			errs = append(errs, fmt.Errorf("while removing volume %s: %w", v.Name, err))
		}
	}
	ns, err := h.Docker.NetworkList(ctx, network.ListOptions{})
	if err != nil {
		return fmt.Errorf("while listing its networks: %w", err)
	}
	for _, n := range ns {
		switch n.Name {
		case "none", "host", "bridge":
			continue
		}
		if err := h.Docker.NetworkRemove(ctx, n.ID); err != nil {
			errs = append(errs, fmt.Errorf("while removing network %s: %w", n.Name, err))
		}
	}
	return errors.Join(errs...)
}

// cleanup removes everything made for the host: the objects on its engine,
// its dockerd and containerd (and, should they not stop, every process left
// in its namespace or naming its exec root), its mounts and directories,
// its network, and the slot's lock. It reports what it could not remove but
// never stops half-way.
func (h *TestHost) cleanup() {
	defer func() { _ = h.lock.Close() }()
	logf := func(format string, args ...any) {
		h.t.Logf("cleanup: test host %s: "+format, append([]any{h.Name}, args...)...)
	}
	if h.t.Failed() {
		if s := tail(h.logPath, 30); s != "" {
			logf("its dockerd's log (%s) ends:\n%s", h.logPath, s)
		}
	}
	if h.Docker != nil {
		if err := h.start(); err != nil {
			logf("%v", err)
		} else if err := h.removeAll(); err != nil {
			logf("%v", err)
		}
		_ = h.Docker.Close()
	}
	if h.tlsClient != nil {
		_ = h.tlsClient.Close()
	}
	if pid := h.pid(); pid != 0 {
		_ = syscall.Kill(pid, syscall.SIGCONT)
		_ = syscall.Kill(pid, syscall.SIGTERM)
		select {
		case <-h.exitedChan():
		case <-time.After(30 * time.Second):
			logf("dockerd (pid %d) did not stop within 30 s of SIGTERM; killing it", pid)
			if err := h.kill(); err != nil {
				logf("%v", err)
			}
		}
	}
	if err := h.killLeftovers(); err != nil {
		logf("%v", err)
	}
	if err := unmountUnder(h.dataRoot, h.runDir); err != nil {
		logf("%v", err)
	}
	for _, d := range []string{h.dataRoot, h.runDir} {
		if err := removeOwnDir(d); err != nil {
			logf("%v", err)
		}
	}
	if err := h.netDown(); err != nil {
		logf("%v", err)
	}
	_ = os.Remove(testHostDataDir) // only when no other host has its data root there
}

// killLeftovers ends, with SIGKILL, what may be left of the host once its
// dockerd has ended (it is, unless the engine could not be started again to
// remove its containers): see killEverything.
func (h *TestHost) killLeftovers() error {
	n, err := h.killEverything()
	if n > 0 {
		h.t.Logf("cleanup: test host %s: killed %d processes left after its dockerd ended", h.Name, n)
	}
	return err
}

// killEverything ends with SIGKILL every process of the host but dockerd:
// containerd, shims and any process naming its exec root, the processes of
// its containers (found by the container IDs of its data root in their
// cgroups, thawed first), and every process in its network namespace. It
// looks again after each round (a dying shim may have started something),
// and returns how many processes it killed and what would not end.
func (h *TestHost) killEverything() (int, error) {
	killed := 0
	for round := 0; ; round++ {
		left := h.processesLeft()
		if len(left) == 0 {
			return killed, nil
		}
		if round == 3 {
			return killed, fmt.Errorf("%d processes are still left after %d rounds of SIGKILL (pids %v)", len(left), round, pids(left))
		}
		for _, p := range left {
			_ = syscall.Kill(p.pid, syscall.SIGKILL)
		}
		var errs []error
		for _, p := range left {
			if err := p.waitGone(confirmTimeout); err != nil {
				errs = append(errs, err)
			}
		}
		killed += len(left)
		if err := errors.Join(errs...); err != nil {
			return killed, err
		}
	}
}

// processesLeft returns the live processes of the host but dockerd and the
// test process itself: those naming its exec root, those of its containers
// and those in its network namespace (without duplicates).
func (h *TestHost) processesLeft() []process {
	left := h.processesNaming(h.execRoot + "/")
	left = append(left, h.containerProcesses()...)
	if ns, err := os.Stat(h.Namespace); err == nil {
		procs, _ := filepath.Glob("/proc/[0-9]*/ns/net")
		for _, path := range procs {
			st, err := os.Stat(path)
			if err != nil || !os.SameFile(st, ns) {
				continue
			}
			pid, _ := strconv.Atoi(strings.Split(path, "/")[2])
			if p, err := processOf(pid); err == nil && pid != os.Getpid() {
				left = append(left, p)
			}
		}
	}
	seen := map[int]bool{}
	out := left[:0]
	for _, p := range left {
		if !seen[p.pid] && p.gone() != nil { // zombies have ended
			seen[p.pid] = true
			out = append(out, p)
		}
	}
	return out
}

// pids lists the pids of processes, for messages.
func pids(ps []process) []int {
	out := make([]int, len(ps))
	for i, p := range ps {
		out[i] = p.pid
	}
	return out
}

// containerProcesses returns the live processes of the containers in the
// host's data root, thawing the frozen ones so that a SIGKILL takes effect.
func (h *TestHost) containerProcesses() []process {
	ents, err := os.ReadDir(filepath.Join(h.dataRoot, "containers"))
	if err != nil || len(ents) == 0 {
		return nil
	}
	var out []process
	cgroups, _ := filepath.Glob("/proc/[0-9]*/cgroup")
	for _, path := range cgroups {
		b, err := os.ReadFile(path)
		if err != nil {
			continue
		}
		for _, e := range ents {
			if len(e.Name()) != 64 || !bytes.Contains(b, []byte("/"+e.Name())) {
				continue
			}
			pid, _ := strconv.Atoi(strings.Split(path, "/")[2])
			if p, err := processOf(pid); err == nil {
				thaw(pid)
				out = append(out, p)
			}
			break
		}
	}
	return out
}

// thaw thaws pid's cgroup when it is frozen; it does its best and reports
// nothing (a frozen process then shows as not gone, which is reported).
func thaw(pid int) {
	is, file, err := freezerState(pid)
	if err != nil || !is {
		return
	}
	if filepath.Base(file) == "freezer.state" {
		_ = os.WriteFile(file, []byte("THAWED"), 0o644)
		return
	}
	_ = os.WriteFile(filepath.Join(filepath.Dir(file), "cgroup.freeze"), []byte("0"), 0o644)
}

// unmountUnder unmounts every mount at or below the given directories, the
// deepest first (a dockerd that was killed leaves its mounts behind).
func unmountUnder(dirs ...string) error {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return fmt.Errorf("while reading /proc/self/mountinfo: %w", err)
	}
	var points []string
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 5 {
			continue
		}
		mp := unescapeMount(f[4])
		for _, d := range dirs {
			if mp == d || strings.HasPrefix(mp, d+"/") {
				points = append(points, mp)
			}
		}
	}
	sort.Slice(points, func(i, j int) bool { return len(points[i]) > len(points[j]) })
	var errs []error
	for _, mp := range points {
		if err := syscall.Unmount(mp, syscall.MNT_DETACH); err != nil && !errors.Is(err, syscall.EINVAL) && !errors.Is(err, syscall.ENOENT) {
			errs = append(errs, fmt.Errorf("while unmounting %s: %w", mp, err))
		}
	}
	return errors.Join(errs...)
}

// unescapeMount undoes the octal escapes (\040 for a space) of mountinfo.
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// removeOwnDir removes a directory of the test bed, and refuses any other.
func removeOwnDir(dir string) error {
	if !strings.HasPrefix(dir, testHostRunDir+"/") && !strings.HasPrefix(dir, testHostDataDir+"/") {
		return fmt.Errorf("refusing to remove %s: not a directory of the test bed", dir)
	}
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("while removing %s: %w", dir, err)
	}
	return nil
}

// netDown removes the host's route, veth pair and namespace and, when no
// other host is attached to TestHostBridge any more, the bridge and its
// iptables rule.
func (h *TestHost) netDown() error {
	bed, err := lockFile(filepath.Join(testHostRunDir, "bridge.lock"), time.Minute)
	if err != nil {
		return fmt.Errorf("while waiting to remove its network: %w", err)
	}
	defer bed.Close()
	var errs []error
	if out, _ := exec.Command("ip", "route", "show", h.ownRoute).Output(); len(bytes.TrimSpace(out)) > 0 {
		if err := run("ip", "route", "del", h.ownRoute); err != nil {
			errs = append(errs, fmt.Errorf("while removing its route: %w", err))
		}
	}
	if run("ip", "link", "show", h.veth) == nil {
		if err := run("ip", "link", "del", h.veth); err != nil {
			errs = append(errs, fmt.Errorf("while removing its veth pair: %w", err))
		}
	}
	if _, err := os.Stat(h.Namespace); err == nil {
		if err := run("ip", "netns", "del", h.nsName); err != nil {
			errs = append(errs, fmt.Errorf("while removing its network namespace: %w", err))
		}
	}
	if run("ip", "link", "show", TestHostBridge) == nil {
		out, err := exec.Command("ip", "-o", "link", "show", "master", TestHostBridge).Output()
		if err != nil {
			errs = append(errs, fmt.Errorf("while listing the hosts on %s: %w", TestHostBridge, err))
		} else if len(bytes.TrimSpace(out)) == 0 {
			if err := run("ip", "link", "del", TestHostBridge); err != nil {
				errs = append(errs, fmt.Errorf("while removing the test hosts' bridge: %w", err))
			}
			for run(append([]string{"iptables", "-w", "-C"}, forwardRule...)...) == nil {
				if err := run(append([]string{"iptables", "-w", "-D"}, forwardRule...)...); err != nil {
					errs = append(errs, fmt.Errorf("while removing the test hosts' FORWARD rule: %w", err))
					break
				}
			}
		}
	}
	return errors.Join(errs...)
}
