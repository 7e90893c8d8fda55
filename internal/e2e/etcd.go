package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

const (
	// EtcdClientPort is where a member of an EtcdCluster answers clients,
	// on its host's Address (and on loopback inside the host).
	EtcdClientPort = 2379
	// EtcdPeerPort is where a member of an EtcdCluster talks to its peers,
	// on its host's Address.
	EtcdPeerPort = 2380

	// etcdReady bounds the wait for a started etcd to answer (healthy).
	etcdReady = 60 * time.Second
	// etcdHostDir is the directory of a host's member in the host's data
	// root, beside its engine's files.
	etcdHostDir = "pacsd-e2e-etcd"
	// etcdHealthyKey is the key Healthy writes.
	etcdHealthyKey = "/pacsd-e2e/healthy"
)

// etcdMissing is what a test that needs etcd says when it is not installed.
const etcdMissing = "run 'bash scripts/etcd.sh' (as root it installs Debian's etcd-server and etcd-client)"

// Etcd is a single etcd member on loopback, for tests of pacsd's etcd store
// (design section 10): plain http on free ports (client and peer), a data
// dir of its own, in the machine's network namespace.
type Etcd struct {
	proc      *Proc
	clientURL string
}

// StartEtcd starts a single etcd member on 127.0.0.1 with free client and
// peer ports and a fresh data dir under t.TempDir(), and returns it once it
// answers healthy. Without PACSD_E2E=1 the test is skipped; with it, a
// missing etcd or etcdctl fails the test (never skips), saying to run
// scripts/etcd.sh. The member is killed and its data removed when the test
// ends.
func StartEtcd(t testing.TB) *Etcd {
	t.Helper()
	bin, _ := requireEtcd(t)
	dir := t.TempDir()
	var lastErr error
	// A free port may be taken between the look and etcd's bind: try anew.
	for attempt := 1; attempt <= 3; attempt++ {
		client, peer, err := freeLoopbackPorts()
		if err != nil {
			t.Fatalf("while looking for free ports for etcd: %v", err)
		}
		clientURL := "http://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(client))
		peerURL := "http://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(peer))
		name := "etcd" + strconv.Itoa(attempt)
		argv := etcdArgs(bin, etcdMemberConfig{
			name: "pacsd-e2e", dataDir: filepath.Join(dir, name+".data"),
			clientURLs: []string{clientURL}, advertiseClient: clientURL,
			peerURL: peerURL, initialCluster: "pacsd-e2e=" + peerURL,
			token: "pacsd-e2e-" + newRunID(),
		})
		p, err := newProc(t, name, nil, dir, argv, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := p.start(); err != nil {
			t.Fatal(err)
		}
		if lastErr = waitEtcdHealthy(p, clientURL, nil, etcdReady); lastErr == nil {
			return &Etcd{proc: p, clientURL: clientURL}
		}
		if err := p.kill(); err != nil {
			t.Fatalf("while killing the etcd that did not start: %v", err)
		}
		if !strings.Contains(p.Log(), "address already in use") {
			break
		}
	}
	t.Fatalf("etcd on loopback did not start: %v", lastErr)
	return nil
}

// Endpoints returns the member's client URL: http://127.0.0.1:PORT.
func (e *Etcd) Endpoints() []string { return []string{e.clientURL} }

// requireEtcd skips the test without PACSD_E2E=1, fails it when etcd or
// etcdctl is not on PATH, and returns both binaries' paths.
func requireEtcd(t testing.TB) (etcd, etcdctl string) {
	t.Helper()
	if !Enabled() {
		t.Skip("end-to-end test: set PACSD_E2E=1 (or run 'make test') to run it against etcd")
	}
	etcd, err := exec.LookPath("etcd")
	if err != nil {
		t.Fatalf("etcd is missing (%v); %s", err, etcdMissing)
	}
	if etcdctl, err = exec.LookPath("etcdctl"); err != nil {
		t.Fatalf("etcdctl is missing (%v); %s", err, etcdMissing)
	}
	return etcd, etcdctl
}

// freeLoopbackPorts returns two TCP ports free on 127.0.0.1 at the time of
// the look, neither of them etcd's well-known ones.
func freeLoopbackPorts() (int, int, error) {
	var ports []int
	var held []net.Listener
	defer func() {
		for _, l := range held {
			_ = l.Close()
		}
	}()
	for len(ports) < 2 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, 0, err
		}
		held = append(held, l)
		port := l.Addr().(*net.TCPAddr).Port
		if port == EtcdClientPort || port == EtcdPeerPort {
			continue
		}
		ports = append(ports, port)
	}
	return ports[0], ports[1], nil
}

// etcdMemberConfig is what differs between the members the test bed starts.
type etcdMemberConfig struct {
	name, dataDir   string
	clientURLs      []string // where it listens for clients
	advertiseClient string
	peerURL         string // where it listens for and is reached by peers
	initialCluster  string // name=peerURL,...
	token           string
}

// etcdArgs returns the command line of an etcd member (etcd 3.4 and newer):
// plain http, pre-vote, a new cluster (on a data dir that holds a member already,
// etcd ignores the initial-* flags and rejoins), logs to stderr.
func etcdArgs(bin string, c etcdMemberConfig) []string {
	return []string{bin,
		"--name", c.name,
		"--data-dir", c.dataDir,
		"--listen-client-urls", strings.Join(c.clientURLs, ","),
		"--advertise-client-urls", c.advertiseClient,
		"--listen-peer-urls", c.peerURL,
		"--initial-advertise-peer-urls", c.peerURL,
		"--initial-cluster", c.initialCluster,
		"--initial-cluster-state", "new",
		"--initial-cluster-token", c.token,
		"--logger", "zap",
		"--log-outputs", "stderr",
		// A member cut off and back must not depose the leader (an
		// election, during which no lease is renewed): etcd 3.5 and newer
		// do this by default, 3.4 does not.
		"--pre-vote",
	}
}

// etcdHealth asks the member at clientURL for /health, dialling from inside
// the network namespace at ns (or from the machine's, ns ""), and returns nil
// when it says healthy: it has a leader and a quorum read went through. answered
// reports whether the member answered at all.
func etcdHealth(clientURL, ns string, timeout time.Duration) (answered bool, err error) {
	tr := &http.Transport{DisableKeepAlives: true}
	if ns != "" {
		tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
			return dialInNamespace(ctx, ns, network, addr)
		}
	}
	c := &http.Client{Transport: tr, Timeout: timeout}
	resp, err := c.Get(clientURL + "/health")
	if err != nil {
		return false, fmt.Errorf("while asking %s/health: %w", clientURL, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	var h struct {
		Health string `json:"health"`
		Reason string `json:"reason"`
	}
	if err := json.Unmarshal(body, &h); err != nil {
		return true, fmt.Errorf("%s/health answered %s with %q: %w", clientURL, resp.Status, body, err)
	}
	if h.Health != "true" {
		return true, fmt.Errorf("%s/health answered %s: not healthy (%s)", clientURL, resp.Status, strings.TrimSpace(string(body)))
	}
	return true, nil
}

// waitEtcdHealthy waits until the member p runs answers healthy at
// clientURL (asked from inside host's namespace when host is not nil).
func waitEtcdHealthy(p *Proc, clientURL string, host *TestHost, timeout time.Duration) error {
	ns := ""
	if host != nil {
		ns = host.Namespace
	}
	err := Poll(timeout, func() error {
		if !p.Running() {
			return errors.New("it exited")
		}
		_, err := etcdHealth(clientURL, ns, time.Second)
		return err
	})
	if err != nil {
		return fmt.Errorf("%s is not healthy at %s within %s: %w; its log (%s) ends:\n%s",
			p.where(), clientURL, timeout, err, p.LogPath(), tail(p.LogPath(), 15))
	}
	return nil
}

// EtcdCluster is an etcd cluster across test hosts, one member per host,
// each run in its host's network namespace (design section 10): the etcd of
// pacsd's mode "pacsd on every host". Members are named after their hosts
// and listen on their host's Address: clients at EtcdClientPort (also on
// loopback inside the host, for a process there), peers at EtcdPeerPort,
// plain http. Each member's data dir is under its host's data root, so that
// the host's PowerOff kills the member (it is a process of the host) and
// leaves its data, as a disk keeps it, for Start after PowerOn.
//
// Its methods, and those of its members, fail the test that started it:
// call them from that test, not from other goroutines.
type EtcdCluster struct {
	t       testing.TB
	etcdctl string // its path
	members []*EtcdMember
}

// EtcdMember is one member of an EtcdCluster.
type EtcdMember struct {
	// Name is its etcd name, its host's name.
	Name string
	// Host is the test host it runs on.
	Host *TestHost
	// ClientURL is where clients reach it: http://<Host.Address>:2379.
	ClientURL string
	// PeerURL is where its peers reach it: http://<Host.Address>:2380.
	PeerURL string
	// DataDir is its data dir, under its host's data root.
	DataDir string

	cluster *EtcdCluster
	proc    *Proc
}

// StartEtcdCluster starts an etcd cluster of one member on each of hosts
// (in their order; three for a cluster that survives one lost member) and
// returns it once every member answers healthy (the cluster has a leader and
// each member serves a quorum read). Each member starts on a fresh data
// dir. Without PACSD_E2E=1 the test is skipped; with it, a missing etcd or
// etcdctl fails it. Every member is killed and its data dir removed when
// the test ends.
func StartEtcdCluster(t testing.TB, hosts []*TestHost) *EtcdCluster {
	t.Helper()
	bin, etcdctl := requireEtcd(t)
	if len(hosts) == 0 {
		t.Fatal("StartEtcdCluster: no test hosts given; start them with RequireTestHosts")
	}
	c := &EtcdCluster{t: t, etcdctl: etcdctl}
	var peers []string
	for _, h := range hosts {
		if h.fault == faultPoweredOff {
			t.Fatalf("test host %s: cannot start an etcd member there: the host is powered off; PowerOn it first", h.Name)
		}
		m := &EtcdMember{
			Name: h.Name, Host: h, cluster: c,
			ClientURL: "http://" + net.JoinHostPort(h.Address, strconv.Itoa(EtcdClientPort)),
			PeerURL:   "http://" + net.JoinHostPort(h.Address, strconv.Itoa(EtcdPeerPort)),
			DataDir:   filepath.Join(h.dataRoot, etcdHostDir, "data"),
		}
		c.members = append(c.members, m)
		peers = append(peers, m.Name+"="+m.PeerURL)
	}
	// Registered first, so that it runs after the members' own cleanups
	// have killed them.
	t.Cleanup(c.cleanup)
	token := "pacsd-e2e-" + newRunID()
	for _, m := range c.members {
		dir := filepath.Dir(m.DataDir)
		if err := removeOwnDir(dir); err != nil {
			t.Fatalf("test host %s: while clearing the directory of its etcd member: %v", m.Name, err)
		}
		argv := etcdArgs(bin, etcdMemberConfig{
			name: m.Name, dataDir: m.DataDir,
			clientURLs:      []string{m.ClientURL, "http://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(EtcdClientPort))},
			advertiseClient: m.ClientURL, peerURL: m.PeerURL,
			initialCluster: strings.Join(peers, ","), token: token,
		})
		p, err := newProc(t, "etcd", m.Host, dir, argv, nil)
		if err != nil {
			t.Fatal(err)
		}
		m.proc = p
		if err := p.start(); err != nil {
			t.Fatal(err)
		}
	}
	errs := make([]error, len(c.members))
	done := make(chan int)
	for i, m := range c.members {
		go func() {
			errs[i] = waitEtcdHealthy(m.proc, m.ClientURL, m.Host, etcdReady)
			done <- i
		}()
	}
	for range c.members {
		<-done
	}
	if err := errors.Join(errs...); err != nil {
		t.Fatalf("the etcd cluster of %d members did not form: %v", len(c.members), err)
	}
	return c
}

// Endpoints returns the client URL of every member, in the order of the
// hosts: http://<Address>:2379 each.
func (c *EtcdCluster) Endpoints() []string {
	out := make([]string, len(c.members))
	for i, m := range c.members {
		out[i] = m.ClientURL
	}
	return out
}

// Len returns the number of members.
func (c *EtcdCluster) Len() int { return len(c.members) }

// Member returns member i (0 is the one on the first host given).
func (c *EtcdCluster) Member(i int) *EtcdMember {
	c.t.Helper()
	if i < 0 || i >= len(c.members) {
		c.t.Fatalf("etcd cluster: no member %d (it has %d)", i, len(c.members))
	}
	return c.members[i]
}

// Healthy returns nil when a write to the cluster goes through within
// timeout: etcdctl, run from the machine with every member's endpoint, puts
// a key, again after an error (a leader election under way, say) while
// time is left. Without a quorum (two of three members stopped, say) it
// returns an error, with what each member says of its health, once timeout
// has passed. It never fails the test.
func (c *EtcdCluster) Healthy(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		left := time.Until(deadline)
		err := c.put(max(left, 100*time.Millisecond))
		if err == nil {
			return nil
		}
		if time.Until(deadline) <= 0 {
			return fmt.Errorf("%w; its members say: %s", err, c.healthReport())
		}
		time.Sleep(min(200*time.Millisecond, time.Until(deadline)))
	}
}

// put writes etcdHealthyKey with etcdctl within timeout.
func (c *EtcdCluster) put(timeout time.Duration) error {
	dial := min(timeout, 2*time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), timeout+10*time.Second)
	defer cancel()
	eps := strings.Join(c.Endpoints(), ",")
	cmd := exec.CommandContext(ctx, c.etcdctl,
		"--endpoints", eps,
		"--dial-timeout", dial.String(), "--command-timeout", timeout.String(),
		"put", etcdHealthyKey, time.Now().UTC().Format(time.RFC3339Nano))
	cmd.Env = []string{"PATH=" + procPath, "ETCDCTL_API=3"}
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("while writing %s to the etcd cluster (%s): %w: %s", etcdHealthyKey, eps, err, lastLine(string(out)))
	}
	if strings.TrimSpace(string(out)) != "OK" {
		return fmt.Errorf("while writing %s to the etcd cluster (%s): etcdctl said %q, want OK", etcdHealthyKey, eps, out)
	}
	return nil
}

// healthReport says, for messages, what each member says of its health.
func (c *EtcdCluster) healthReport() string {
	var out []string
	for _, m := range c.members {
		switch {
		case !m.Running():
			out = append(out, m.Name+": not running")
		case m.Host.fault != "":
			out = append(out, m.Name+": its host is "+m.Host.fault)
		default:
			if err := m.Health(time.Second); err != nil {
				out = append(out, fmt.Sprintf("%s: %v", m.Name, err))
			} else {
				out = append(out, m.Name+": healthy")
			}
		}
	}
	return strings.Join(out, "; ")
}

// lastLine returns the last non-empty line of s, trimmed.
func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}

// cleanup removes every member's directory (the members' own cleanups have
// killed them by then).
func (c *EtcdCluster) cleanup() {
	for _, m := range c.members {
		if m.proc != nil {
			if err := m.proc.kill(); err != nil {
				c.t.Errorf("cleanup: %v", err)
			}
		}
		if err := removeOwnDir(filepath.Dir(m.DataDir)); err != nil {
			c.t.Errorf("cleanup: test host %s: %v", m.Name, err)
		}
	}
}

// Proc returns the member's process: its log, Freeze and Thaw.
func (m *EtcdMember) Proc() *Proc { return m.proc }

// Running reports whether the member's process runs.
func (m *EtcdMember) Running() bool { return m.proc.Running() }

// Health returns nil when the member answers healthy (it has a leader and
// serves a quorum read), asked from inside its host's namespace within
// timeout. It never fails the test.
func (m *EtcdMember) Health(timeout time.Duration) error {
	_, err := etcdHealth(m.ClientURL, m.Host.Namespace, timeout)
	return err
}

// Stop ends the member with SIGTERM (etcd hands leadership on first) and
// returns once it has ended (killed when it has not within 10 s).
func (m *EtcdMember) Stop() {
	m.cluster.t.Helper()
	m.proc.Stop()
}

// Kill ends the member with SIGKILL and returns once it has ended.
func (m *EtcdMember) Kill() {
	m.cluster.t.Helper()
	m.proc.Kill()
}

// Start starts the member again on its data dir after Stop, Kill or its
// host's PowerOff and PowerOn: it rejoins the cluster. When with it a
// majority of the members runs, Start returns once it answers healthy (it
// has rejoined, with a leader; a member of a partitioned host cannot until
// Heal); else once it answers at all. The test fails when it runs already
// or its host is powered off.
func (m *EtcdMember) Start() {
	t := m.cluster.t
	t.Helper()
	if m.Running() {
		t.Fatalf("etcd member %s: cannot start it: it is running", m.Name)
	}
	m.proc.Restart()
	running := 0
	for _, o := range m.cluster.members {
		if o.Running() {
			running++
		}
	}
	if 2*running > len(m.cluster.members) {
		if err := waitEtcdHealthy(m.proc, m.ClientURL, m.Host, etcdReady); err != nil {
			t.Fatalf("etcd member %s did not rejoin: %v", m.Name, err)
		}
		return
	}
	err := Poll(etcdReady, func() error {
		if !m.proc.Running() {
			return errors.New("it exited")
		}
		if answered, err := etcdHealth(m.ClientURL, m.Host.Namespace, time.Second); !answered {
			return err
		}
		return nil
	})
	if err != nil {
		t.Fatalf("etcd member %s does not answer within %s (%d of %d members run, no quorum): %v; its log (%s) ends:\n%s",
			m.Name, etcdReady, running, len(m.cluster.members), err, m.proc.LogPath(), tail(m.proc.LogPath(), 15))
	}
}
