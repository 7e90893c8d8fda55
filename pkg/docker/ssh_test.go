package docker

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/pacsd/pacsd/pkg/spec"
)

// newKey returns a new ed25519 key.
func newKey(t *testing.T) (ssh.Signer, ed25519.PrivateKey) {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return s, priv
}

// writeKeyFile writes priv as an OpenSSH private key file with mode.
func writeKeyFile(t *testing.T, file string, priv ed25519.PrivateKey, mode os.FileMode) {
	t.Helper()
	block, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(file), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(file, pem.EncodeToMemory(block), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(file, mode); err != nil {
		t.Fatal(err)
	}
}

// writeKnownHosts writes a known_hosts file naming key for addr (host:port).
func writeKnownHosts(t *testing.T, file, addr string, key ssh.PublicKey) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(file), 0o700); err != nil {
		t.Fatal(err)
	}
	line := knownhosts.Line([]string{knownhosts.Normalize(addr)}, key) + "\n"
	if err := os.WriteFile(file, []byte(line), 0o644); err != nil {
		t.Fatal(err)
	}
}

// fakeEngine serves the few Docker API calls these tests make on a unix
// socket and returns its path.
func fakeEngine(t *testing.T) string {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "docker.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Api-Version", "1.44")
		switch {
		case strings.HasSuffix(r.URL.Path, "/_ping"):
			_, _ = io.WriteString(w, "OK")
		case strings.HasSuffix(r.URL.Path, "/containers/json"):
			w.Header().Set("Content-Type", "application/json")
			_, _ = io.WriteString(w, "[]")
		default:
			http.NotFound(w, r)
		}
	})}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })
	return sock
}

// fakeSSHD is an ssh server in the test process that forwards
// direct-streamlocal channels (what OpenSSH's AllowStreamLocalForwarding
// allows) to local unix sockets. It can stall (every connection, old and
// new, stops being read, as when sshd is stopped) and drop its connections
// (as when sshd restarts).
type fakeSSHD struct {
	addr     string
	hostKey  ssh.Signer
	cfg      *ssh.ServerConfig
	prohibit bool // refuse forwardings, as AllowStreamLocalForwarding no

	mu       sync.Mutex
	accepted int
	conns    []net.Conn
	stalled  chan struct{} // closed while not stalled
}

func startFakeSSHD(t *testing.T, authorized ...ssh.PublicKey) *fakeSSHD {
	t.Helper()
	hostKey, _ := newKey(t)
	f := &fakeSSHD{hostKey: hostKey, stalled: make(chan struct{})}
	close(f.stalled)
	f.cfg = &ssh.ServerConfig{PublicKeyCallback: func(_ ssh.ConnMetadata, key ssh.PublicKey) (*ssh.Permissions, error) {
		for _, a := range authorized {
			if bytes.Equal(a.Marshal(), key.Marshal()) {
				return &ssh.Permissions{}, nil
			}
		}
		return nil, fmt.Errorf("unknown key %s", ssh.FingerprintSHA256(key))
	}}
	f.cfg.AddHostKey(hostKey)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f.addr = l.Addr().String()
	t.Cleanup(func() {
		_ = l.Close()
		f.resume()
		f.drop()
	})
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			f.mu.Lock()
			f.accepted++
			f.conns = append(f.conns, c)
			f.mu.Unlock()
			go f.serve(&gatedConn{Conn: c, f: f})
		}
	}()
	return f
}

// gatedConn is a server side connection that is not read while f stalls.
type gatedConn struct {
	net.Conn
	f *fakeSSHD
}

func (g *gatedConn) Read(b []byte) (int, error) {
	for {
		g.f.mu.Lock()
		gate := g.f.stalled
		g.f.mu.Unlock()
		<-gate
		n, err := g.Conn.Read(b)
		g.f.mu.Lock()
		gate = g.f.stalled
		g.f.mu.Unlock()
		<-gate // what arrived while stalled is read only after
		return n, err
	}
}

func (f *fakeSSHD) serve(c net.Conn) {
	_, chans, reqs, err := ssh.NewServerConn(c, f.cfg)
	if err != nil {
		_ = c.Close()
		return
	}
	go func() { // keepalive@openssh.com and the like: "unknown", as OpenSSH answers
		for r := range reqs {
			if r.WantReply {
				_ = r.Reply(false, nil)
			}
		}
	}()
	for nc := range chans {
		var p struct {
			Path      string
			Reserved0 string
			Reserved1 uint32
		}
		switch {
		case nc.ChannelType() != "direct-streamlocal@openssh.com":
			_ = nc.Reject(ssh.UnknownChannelType, "only stream local forwarding")
			continue
		case f.prohibit:
			_ = nc.Reject(ssh.Prohibited, "stream local forwarding disabled")
			continue
		case ssh.Unmarshal(nc.ExtraData(), &p) != nil:
			_ = nc.Reject(ssh.ConnectionFailed, "bad request")
			continue
		}
		uc, err := net.Dial("unix", p.Path)
		if err != nil {
			_ = nc.Reject(ssh.ConnectionFailed, err.Error())
			continue
		}
		ch, creqs, err := nc.Accept()
		if err != nil {
			_ = uc.Close()
			continue
		}
		go ssh.DiscardRequests(creqs)
		go func() {
			_, _ = io.Copy(ch, uc)
			_ = ch.CloseWrite()
			_ = ch.Close()
		}()
		go func() {
			_, _ = io.Copy(uc, ch)
			_ = uc.(*net.UnixConn).CloseWrite()
		}()
	}
}

func (f *fakeSSHD) stall() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.stalled = make(chan struct{})
}

func (f *fakeSSHD) resume() {
	f.mu.Lock()
	defer f.mu.Unlock()
	select {
	case <-f.stalled:
	default:
		close(f.stalled)
	}
}

// drop closes every connection, as a restarted sshd does.
func (f *fakeSSHD) drop() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, c := range f.conns {
		_ = c.Close()
	}
	f.conns = nil
}

func (f *fakeSSHD) connections() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.accepted
}

// sshSetup is a fake sshd, an engine behind it, and pacsd's files for it.
type sshSetup struct {
	sshd     *fakeSSHD
	socket   string
	key      string // identity file
	known    string // known_hosts with the host's key
	endpoint string
}

func newSSHSetup(t *testing.T) *sshSetup {
	t.Helper()
	// No agent or ~/.ssh of the machine's user may count.
	t.Setenv("HOME", t.TempDir())
	t.Setenv("SSH_AUTH_SOCK", "")
	client, priv := newKey(t)
	s := &sshSetup{socket: fakeEngine(t), sshd: startFakeSSHD(t, client.PublicKey())}
	dir := t.TempDir()
	s.key = filepath.Join(dir, "id")
	writeKeyFile(t, s.key, priv, 0o600)
	s.known = filepath.Join(dir, "known_hosts")
	writeKnownHosts(t, s.known, s.sshd.addr, s.sshd.hostKey.PublicKey())
	s.endpoint = "ssh://pacsd@" + s.sshd.addr + s.socket
	return s
}

func (s *sshSetup) runtime(t *testing.T, timeout time.Duration) *Runtime {
	t.Helper()
	r, err := New(s.endpoint, nil, "127.0.0.1", WithSSH(SSH{IdentityFile: s.key, KnownHosts: s.known, DialTimeout: timeout}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Close() })
	return r
}

// TestSSHOneConnectionServesEveryCall: many calls, one after another and at
// once, go through one ssh connection.
func TestSSHOneConnectionServesEveryCall(t *testing.T) {
	s := newSSHSetup(t)
	r := s.runtime(t, 5*time.Second)
	ctx := context.Background()
	for i := 0; i < 20; i++ {
		if err := r.Ping(ctx); err != nil {
			t.Fatalf("Ping %d: %v", i, err)
		}
	}
	var wg sync.WaitGroup
	errs := make(chan error, 10)
	for i := 0; i < 10; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := r.cli.ContainerList(ctx, container.ListOptions{}); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("ContainerList at once: %v", err)
	}
	if n := s.sshd.connections(); n != 1 {
		t.Errorf("the calls made %d ssh connections, want 1", n)
	}
}

// TestSSHReconnects: after the server dropped the connection (sshd
// restarted), the next call connects again and works.
func TestSSHReconnects(t *testing.T) {
	s := newSSHSetup(t)
	r := s.runtime(t, 5*time.Second)
	ctx := context.Background()
	if err := r.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	for round := 2; round <= 4; round++ {
		s.sshd.drop()
		if _, err := r.cli.ContainerList(ctx, container.ListOptions{}); err != nil {
			t.Fatalf("round %d: the first call after the connection was dropped: %v", round, err)
		}
		if n := s.sshd.connections(); n != round {
			t.Errorf("round %d: %d ssh connections, want %d", round, n, round)
		}
	}

	// A connection lost before its end is noticed: the dial that finds it
	// dead makes a new one at once, not the call after.
	d, err := newSSHDialer(s.endpoint, &SSH{IdentityFile: s.key, KnownHosts: s.known})
	if err != nil {
		t.Fatal(err)
	}
	conn, err := d.DialContext(ctx, "tcp", "ignored:80")
	if err != nil {
		t.Fatal(err)
	}
	_ = conn.Close()
	lost := &sshConn{client: d.conn.client, done: make(chan struct{}), idleClose: time.Hour} // its end is never noticed
	_ = lost.client.Close()
	d.conn = lost
	conn, err = d.DialContext(ctx, "tcp", "ignored:80")
	if err != nil {
		t.Fatalf("dial with the current connection lost unnoticed: %v", err)
	}
	_ = conn.Close()
	if !lost.ended() || d.conn == lost {
		t.Error("the lost connection is still the current one")
	}
}

// TestSSHStalledServer: while sshd answers nothing (stopped), calls fail
// within their timeouts, on the connection they had and on a new one, and
// work again once it answers; the keepalive closes the dead connection.
func TestSSHStalledServer(t *testing.T) {
	s := newSSHSetup(t)
	const dial = 1 * time.Second
	r := s.runtime(t, dial)
	r.Timeouts.Inspect = 2 * time.Second
	ctx := context.Background()
	if err := r.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	s.sshd.stall()
	start := time.Now()
	err := r.Ping(ctx)
	if took := time.Since(start); err == nil || took > 3*time.Second {
		t.Fatalf("Ping on a stalled connection: %v after %s; want an error within the 2 s timeout", err, took)
	}

	// A new connection to a stalled server gives up after the dial timeout,
	// whatever the caller's context.
	d, err := newSSHDialer(s.endpoint, &SSH{IdentityFile: s.key, KnownHosts: s.known, DialTimeout: dial})
	if err != nil {
		t.Fatal(err)
	}
	start = time.Now()
	_, err = d.DialContext(context.Background(), "tcp", "ignored:80")
	if took := time.Since(start); err == nil || took > dial+time.Second || !strings.Contains(err.Error(), "no") {
		t.Fatalf("dial to a stalled server: %v after %s; want an error after about %s", err, took, dial)
	}
	t.Logf("dial to a stalled server: %v", err)

	s.sshd.resume()
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := r.Ping(ctx)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Ping after the server answers again: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}

	// The keepalive ends a connection whose server stopped answering.
	d.keepAlive = 200 * time.Millisecond
	conn, err := d.DialContext(ctx, "tcp", "ignored:80")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	c := d.conn
	s.sshd.stall()
	defer s.sshd.resume()
	select {
	case <-c.done:
	case <-time.After(3 * time.Second):
		t.Fatal("the keepalive did not close a connection whose server stopped answering")
	}
}

// TestSSHIdleConnectionCloses: with no forwarding open for the idle time,
// the ssh connection is closed, and the next call makes a new one.
func TestSSHIdleConnectionCloses(t *testing.T) {
	s := newSSHSetup(t)
	d, err := newSSHDialer(s.endpoint, &SSH{IdentityFile: s.key, KnownHosts: s.known})
	if err != nil {
		t.Fatal(err)
	}
	d.idleClose = 100 * time.Millisecond
	conn, err := d.DialContext(context.Background(), "tcp", "ignored:80")
	if err != nil {
		t.Fatal(err)
	}
	c := d.conn
	time.Sleep(300 * time.Millisecond)
	if c.ended() {
		t.Fatal("the connection was closed while a forwarding was open")
	}
	_ = conn.Close()
	_ = conn.Close() // counted once
	select {
	case <-c.done:
	case <-time.After(3 * time.Second):
		t.Fatal("the idle connection was not closed")
	}
	conn, err = d.DialContext(context.Background(), "tcp", "ignored:80")
	if err != nil {
		t.Fatalf("dial after the idle close: %v", err)
	}
	_ = conn.Close()
	if n := s.sshd.connections(); n != 2 {
		t.Errorf("%d connections, want 2", n)
	}
}

// TestSSHRefusals: a wrong host key, an unknown host, a key the server does
// not accept and a server that forwards nothing fail with what to do.
func TestSSHRefusals(t *testing.T) {
	ctx := context.Background()
	t.Run("changed host key", func(t *testing.T) {
		s := newSSHSetup(t)
		other, _ := newKey(t)
		writeKnownHosts(t, s.known, s.sshd.addr, other.PublicKey())
		err := s.runtime(t, 5*time.Second).Ping(ctx)
		for _, want := range []string{"has changed", ssh.FingerprintSHA256(s.sshd.hostKey.PublicKey()), ssh.FingerprintSHA256(other.PublicKey()), "ssh-keygen -R", "ssh-keyscan -p"} {
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("got %v, want an error saying %q", err, want)
			}
		}
		if n := s.sshd.connections(); n != 1 {
			t.Errorf("%d connections, want 1", n)
		}
	})
	t.Run("unknown host", func(t *testing.T) {
		s := newSSHSetup(t)
		other, _ := newKey(t)
		r := s.runtime(t, 5*time.Second)
		writeKnownHosts(t, s.known, "10.0.0.12:22", other.PublicKey())
		_, err := New(s.endpoint, nil, "", WithSSH(SSH{IdentityFile: s.key, KnownHosts: s.known}))
		if err == nil || !strings.Contains(err.Error(), "holds no key for") || !strings.Contains(err.Error(), "ssh-keyscan -p") {
			t.Errorf("New: got %v, want the unknown host refused with ssh-keyscan", err)
		}
		// The host's entry removed after New: refused at the connection.
		err = r.Ping(ctx)
		if err == nil || !strings.Contains(err.Error(), "holds no key for") || !strings.Contains(err.Error(), ssh.FingerprintSHA256(s.sshd.hostKey.PublicKey())) {
			t.Errorf("Ping: got %v, want the unknown host refused with the key it presented", err)
		}
	})
	t.Run("key not authorized", func(t *testing.T) {
		s := newSSHSetup(t)
		_, priv := newKey(t)
		writeKeyFile(t, s.key, priv, 0o600)
		err := s.runtime(t, 5*time.Second).Ping(ctx)
		if err == nil || !strings.Contains(err.Error(), "refused every key") || !strings.Contains(err.Error(), "authorized_keys") {
			t.Errorf("got %v, want the key refused with authorized_keys", err)
		}
	})
	t.Run("forwarding prohibited", func(t *testing.T) {
		s := newSSHSetup(t)
		s.sshd.prohibit = true
		err := s.runtime(t, 5*time.Second).Ping(ctx)
		if err == nil || !strings.Contains(err.Error(), "AllowStreamLocalForwarding") {
			t.Errorf("got %v, want the refusal to name AllowStreamLocalForwarding", err)
		}
	})
	t.Run("no engine at the socket", func(t *testing.T) {
		s := newSSHSetup(t)
		s.endpoint = "ssh://pacsd@" + s.sshd.addr + "/nonexistent/docker.sock"
		err := s.runtime(t, 5*time.Second).Ping(ctx)
		if err == nil || !strings.Contains(err.Error(), "/nonexistent/docker.sock") || !strings.Contains(err.Error(), "engine runs") {
			t.Errorf("got %v, want the missing socket named", err)
		}
	})
	t.Run("nothing listens", func(t *testing.T) {
		s := newSSHSetup(t)
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := l.Addr().String()
		_ = l.Close()
		writeKnownHosts(t, s.known, addr, s.sshd.hostKey.PublicKey())
		s.endpoint = "ssh://pacsd@" + addr + s.socket
		err = s.runtime(t, 5*time.Second).Ping(ctx)
		if err == nil || !strings.Contains(err.Error(), "ECONNREFUSED") || !strings.Contains(err.Error(), "sshd") {
			t.Errorf("got %v, want connection refused", err)
		}
	})
}

// TestSSHAgent: without identity_file, the keys of the agent of
// SSH_AUTH_SOCK log in.
func TestSSHAgent(t *testing.T) {
	s := newSSHSetup(t)
	_, priv := newKey(t)
	keyring := agent.NewKeyring()
	// The agent holds another key first, then the authorized one.
	if err := keyring.Add(agent.AddedKey{PrivateKey: priv}); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(s.key)
	if err != nil {
		t.Fatal(err)
	}
	authorized, err := ssh.ParseRawPrivateKey(b)
	if err != nil {
		t.Fatal(err)
	}
	if err := keyring.Add(agent.AddedKey{PrivateKey: authorized}); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(t.TempDir(), "agent.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() { _ = agent.ServeAgent(keyring, c); _ = c.Close() }()
		}
	}()
	t.Setenv("SSH_AUTH_SOCK", sock)
	r, err := New(s.endpoint, nil, "", WithSSH(SSH{KnownHosts: s.known}))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if err := r.Ping(context.Background()); err != nil {
		t.Fatalf("Ping with the agent's key: %v", err)
	}
	// Without the authorized key in the agent, login fails and says what was offered.
	if err := keyring.RemoveAll(); err != nil {
		t.Fatal(err)
	}
	if err := keyring.Add(agent.AddedKey{PrivateKey: priv}); err != nil {
		t.Fatal(err)
	}
	r2, err := New(s.endpoint, nil, "", WithSSH(SSH{KnownHosts: s.known}))
	if err != nil {
		t.Fatal(err)
	}
	defer r2.Close()
	if err := r2.Ping(context.Background()); err == nil || !strings.Contains(err.Error(), "1 from the ssh agent") {
		t.Errorf("Ping with another key in the agent: got %v, want the refusal naming the agent's key", err)
	}
}

func TestNewSSHEndpoints(t *testing.T) {
	s := newSSHSetup(t)
	good := WithSSH(SSH{IdentityFile: s.key, KnownHosts: s.known})
	for _, tc := range []struct {
		endpoint string
		tls      *TLSFiles
		opts     []Option
		want     string
	}{
		{"ssh://" + s.sshd.addr, nil, []Option{good}, "names no user"},
		{"ssh://pacsd:pw@" + s.sshd.addr, nil, []Option{good}, "holds a password"},
		{"ssh://pacsd@" + s.sshd.addr, &TLSFiles{}, []Option{good}, "TLS files are only used with tcp://"},
		{"tcp://127.0.0.1:2375", nil, []Option{good}, "ssh settings are only used with ssh://"},
		{"ssh://pacsd@" + s.sshd.addr, nil, []Option{WithSSH(SSH{IdentityFile: s.key + ".missing", KnownHosts: s.known})}, "does not exist"},
		{"ssh://pacsd@" + s.sshd.addr, nil, nil, "SSH_AUTH_SOCK is not set"},
	} {
		_, err := New(tc.endpoint, tc.tls, "", tc.opts...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("New(%q): got %v, want an error containing %q", tc.endpoint, err, tc.want)
		}
		if err != nil && strings.Contains(err.Error(), ":pw@") {
			t.Errorf("New(%q): the password shows in %v", tc.endpoint, err)
		}
	}
	r, err := New("ssh://pacsd@"+s.sshd.addr, nil, "", good)
	if err != nil {
		t.Fatal(err)
	}
	_ = r.Close()
}

// TestSSHValidateAgreesWithNew: the parser refuses exactly the ssh settings
// that New refuses, for the same files and environment.
func TestSSHValidateAgreesWithNew(t *testing.T) {
	t.Setenv("PACSD_TEST_PASSWORD", "from-the-environment")
	hostKey, _ := newKey(t)
	_, priv := newKey(t)
	for _, tc := range []struct {
		name     string
		endpoint string
		prepare  func(t *testing.T, home, dir string) (identity, known string)
		refused  bool
	}{
		{"files", "ssh://pacsd@10.0.0.12:2222", func(t *testing.T, home, dir string) (string, string) {
			writeKeyFile(t, dir+"/id", priv, 0o600)
			writeKnownHosts(t, dir+"/kh", "10.0.0.12:2222", hostKey.PublicKey())
			return dir + "/id", dir + "/kh"
		}, false},
		{"defaults", "ssh://pacsd@10.0.0.12", func(t *testing.T, home, dir string) (string, string) {
			writeKeyFile(t, home+"/.ssh/id_ecdsa", priv, 0o600)
			writeKnownHosts(t, home+"/.ssh/known_hosts", "10.0.0.12:22", hostKey.PublicKey())
			return "", ""
		}, false},
		{"no default key", "ssh://pacsd@10.0.0.12", func(t *testing.T, home, dir string) (string, string) {
			writeKnownHosts(t, home+"/.ssh/known_hosts", "10.0.0.12:22", hostKey.PublicKey())
			return "", ""
		}, true},
		{"open default key", "ssh://pacsd@10.0.0.12", func(t *testing.T, home, dir string) (string, string) {
			writeKeyFile(t, home+"/.ssh/id_rsa", priv, 0o640)
			writeKnownHosts(t, home+"/.ssh/known_hosts", "10.0.0.12:22", hostKey.PublicKey())
			return "", ""
		}, true},
		{"open key", "ssh://pacsd@10.0.0.12", func(t *testing.T, home, dir string) (string, string) {
			writeKeyFile(t, dir+"/id", priv, 0o644)
			writeKnownHosts(t, dir+"/kh", "10.0.0.12:22", hostKey.PublicKey())
			return dir + "/id", dir + "/kh"
		}, true},
		{"public key as identity", "ssh://pacsd@10.0.0.12", func(t *testing.T, home, dir string) (string, string) {
			if err := os.WriteFile(dir+"/id.pub", ssh.MarshalAuthorizedKey(hostKey.PublicKey()), 0o600); err != nil {
				t.Fatal(err)
			}
			writeKnownHosts(t, dir+"/kh", "10.0.0.12:22", hostKey.PublicKey())
			return dir + "/id.pub", dir + "/kh"
		}, true},
		{"other port known", "ssh://pacsd@10.0.0.12:2222", func(t *testing.T, home, dir string) (string, string) {
			writeKeyFile(t, dir+"/id", priv, 0o600)
			writeKnownHosts(t, dir+"/kh", "10.0.0.12:22", hostKey.PublicKey())
			return dir + "/id", dir + "/kh"
		}, true},
		{"known_hosts writable by others", "ssh://pacsd@10.0.0.12", func(t *testing.T, home, dir string) (string, string) {
			writeKeyFile(t, dir+"/id", priv, 0o600)
			writeKnownHosts(t, dir+"/kh", "10.0.0.12:22", hostKey.PublicKey())
			if err := os.Chmod(dir+"/kh", 0o666); err != nil {
				t.Fatal(err)
			}
			return dir + "/id", dir + "/kh"
		}, true},
		{"no known_hosts", "ssh://pacsd@10.0.0.12", func(t *testing.T, home, dir string) (string, string) {
			writeKeyFile(t, dir+"/id", priv, 0o600)
			return dir + "/id", ""
		}, true},
		{"no user", "ssh://10.0.0.12", func(t *testing.T, home, dir string) (string, string) {
			writeKeyFile(t, dir+"/id", priv, 0o600)
			writeKnownHosts(t, dir+"/kh", "10.0.0.12:22", hostKey.PublicKey())
			return dir + "/id", dir + "/kh"
		}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			home, dir := t.TempDir(), t.TempDir()
			t.Setenv("HOME", home)
			t.Setenv("SSH_AUTH_SOCK", "")
			identity, known := tc.prepare(t, home, dir)
			block := ""
			if identity != "" || known != "" {
				block = "  ssh {\n"
				if identity != "" {
					block += fmt.Sprintf("    identity_file = %q\n", identity)
				}
				if known != "" {
					block += fmt.Sprintf("    known_hosts = %q\n", known)
				}
				block += "  }\n"
			}
			src := fmt.Sprintf(`cluster "pacs" {
  image    = "dcm4che/postgres-dcm4chee:17.4-34"
  database = "pacsdb"
  superuser {
    name     = "pacs"
    password = env("PACSD_TEST_PASSWORD")
  }
  node "db1" {
    host = "b"
    port = 15432
  }
}
host "b" {
  docker  = %q
  address = "10.0.0.12"
%s}
`, tc.endpoint, block)
			_, diags := spec.Parse([]byte(src), filepath.Join(dir, "pacs.hcl"))
			r, err := New(tc.endpoint, nil, "10.0.0.12", WithSSH(SSH{IdentityFile: identity, KnownHosts: known}))
			if err == nil {
				_ = r.Close()
			}
			if diags.HasErrors() != tc.refused || (err != nil) != tc.refused {
				t.Errorf("validate refused: %v (%s); New refused: %v (%v); want both %v", diags.HasErrors(), diags.Error(), err != nil, err, tc.refused)
			}
		})
	}
}
