package docker

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/docker/docker/client"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/pacsd/pacsd/pkg/spec"
)

// SSH names what pacsd uses on an ssh:// endpoint (the host block's ssh
// block, spec.SSH).
type SSH struct {
	// IdentityFile is the private key offered, alone; "" means the keys of
	// the ssh agent of SSH_AUTH_SOCK, then ~/.ssh/id_ed25519, id_ecdsa and
	// id_rsa (spec.LoadSSHKeys).
	IdentityFile string
	// KnownHosts is the known_hosts file the host's key must be in; ""
	// means ~/.ssh/known_hosts.
	KnownHosts string
	// DialTimeout bounds each connection (TCP, ssh handshake, login) and
	// each forwarding to the engine's socket through it;
	// DefaultSSHDialTimeout when zero.
	DialTimeout time.Duration
}

// DefaultSSHDialTimeout bounds a connection to an ssh:// endpoint and each
// forwarding to the engine's socket, so that an engine call to a host that is
// down, cut off or whose sshd is stopped fails in seconds instead of hanging.
const DefaultSSHDialTimeout = 10 * time.Second

const (
	// sshKeepAlive is how often an ssh connection is checked
	// (keepalive@openssh.com, like OpenSSH's ServerAliveInterval), and how
	// long a reply may take before the connection counts as dead and is
	// closed: a stream that waits on it (engine events) then ends, and the
	// next call connects again.
	sshKeepAlive = 10 * time.Second
	// sshIdleClose is how long an ssh connection stays open without any
	// forwarding through it (the Docker client keeps idle HTTP connections
	// 30 s; Runtime.Close closes them at once).
	sshIdleClose = 30 * time.Second
)

// Option changes what New sets up.
type Option func(*options)

type options struct {
	ssh *SSH
}

// WithSSH gives the key and known_hosts files of an ssh:// endpoint; without
// it, the defaults of SSH apply.
func WithSSH(s SSH) Option { return func(o *options) { o.ssh = &s } }

// sshDialer reaches the Docker engine's unix socket on a host through one ssh
// connection, which serves every request (one channel each: OpenSSH's
// direct-streamlocal forwarding, so no docker CLI is needed on the host). A
// connection that ended (sshd restarted, the host rebooted) or stopped
// answering (keepalive, a forwarding not opened in time) is replaced on the
// next dial. Keys and known_hosts are read again for each new connection, so
// that an operator's fix takes effect without restarting pacsd.
type sshDialer struct {
	endpoint   spec.SSHEndpoint
	identity   string // "" for the agent and the default keys
	knownHosts string
	timeout    time.Duration
	keepAlive  time.Duration
	idleClose  time.Duration

	mu      sync.Mutex
	conn    *sshConn    // the current connection, nil before the first
	pending *sshPending // a connection being made, nil when none
}

// sshPending is a connection being made; done is closed when conn or err is set.
type sshPending struct {
	done chan struct{}
	conn *sshConn
	err  error
}

// newSSHDialer checks what a connection to endpoint would use, as the parser
// does (spec.ParseSSHEndpoint, LoadSSHKeys, LoadKnownHosts), and returns a
// dialer for it. It does not connect.
func newSSHDialer(endpoint string, s *SSH) (*sshDialer, error) {
	if s == nil {
		s = &SSH{}
	}
	e, err := spec.ParseSSHEndpoint(endpoint)
	if err != nil {
		return nil, fmt.Errorf("the endpoint cannot be used: %w; write ssh://USER@HOST[:PORT][/path/to/docker.sock]", err)
	}
	d := &sshDialer{endpoint: e, identity: s.IdentityFile, knownHosts: s.KnownHosts,
		timeout: s.DialTimeout, keepAlive: sshKeepAlive, idleClose: sshIdleClose}
	if d.timeout <= 0 {
		d.timeout = DefaultSSHDialTimeout
	}
	if d.knownHosts == "" {
		if d.knownHosts, err = spec.DefaultKnownHosts(); err != nil {
			return nil, err
		}
	}
	if _, err := spec.LoadSSHKeys(d.identity); err != nil {
		return nil, err
	}
	if _, err := spec.LoadKnownHosts(d.knownHosts, &d.endpoint); err != nil {
		return nil, err
	}
	return d, nil
}

// clientOptions make the Docker client send its requests through d. The
// client's host is ssh://HOST:PORT: it shows in the client's messages and as
// the HTTP Host header, which the engine does not read.
func (d *sshDialer) clientOptions() []client.Opt {
	tr := &http.Transport{MaxIdleConns: 6, IdleConnTimeout: 30 * time.Second}
	return []client.Opt{
		client.WithHTTPClient(&http.Client{Transport: tr, CheckRedirect: client.CheckRedirect}),
		client.WithHost("ssh://" + d.endpoint.Addr()),
		client.WithDialContext(d.DialContext),
		func(*client.Client) error {
			tr.Proxy = nil // WithHost sets the environment's proxy for hosts it does not know
			return nil
		},
	}
}

// String names the endpoint in messages.
func (d *sshDialer) String() string { return d.endpoint.String() }

// DialContext returns a connection to the engine's socket through the ssh
// connection, making one when there is none or it ended. Network and address
// (the HTTP client's) are not used. It gives up after d.timeout at most, or
// when ctx ends.
func (d *sshDialer) DialContext(ctx context.Context, _, _ string) (net.Conn, error) {
	deadline := time.Now().Add(d.timeout)
	ctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	for attempt := 0; ; attempt++ {
		c, err := d.connection(ctx)
		if err != nil {
			return nil, err
		}
		conn, err := c.forward(ctx, d.endpoint.Socket)
		if err == nil {
			return conn, nil
		}
		var refused *ssh.OpenChannelError
		if attempt == 0 && ctx.Err() == nil && !errors.As(err, &refused) {
			// The connection was lost (sshd restarted, the host rebooted),
			// maybe before its end was noticed: make a new one.
			c.kill()
			continue
		}
		if ctx.Err() != nil && !time.Now().Before(deadline) {
			// The connection did not open a channel within the dial
			// timeout: it does not answer. The next dial makes another.
			c.kill()
		}
		return nil, d.forwardError(err, ctx)
	}
}

// connection returns the current ssh connection, or waits for a new one to
// be made (one at a time, whoever asks, bounded by d.timeout and not by the
// first caller's ctx). A caller that joined an attempt begun before it, which
// failed, makes an attempt of its own while ctx lasts.
func (d *sshDialer) connection(ctx context.Context) (*sshConn, error) {
	for {
		d.mu.Lock()
		if c := d.conn; c != nil && !c.ended() {
			d.mu.Unlock()
			return c, nil
		}
		p, mine := d.pending, false
		if p == nil {
			p, mine = &sshPending{done: make(chan struct{})}, true
			d.pending = p
			go d.connect(p)
		}
		d.mu.Unlock()
		select {
		case <-p.done:
			if p.err == nil || mine {
				return p.conn, p.err
			}
		case <-ctx.Done():
			return nil, fmt.Errorf("while connecting over ssh to %s: no connection within %s (%v); check that the host is up, reachable and that its sshd answers", d, d.timeout, ctx.Err())
		}
	}
}

// connect makes a connection for p and makes it the current one.
func (d *sshDialer) connect(p *sshPending) {
	c, err := d.dial()
	d.mu.Lock()
	d.pending = nil
	if err == nil {
		d.conn = c
	}
	p.conn, p.err = c, err
	d.mu.Unlock()
	close(p.done)
}

// dial connects, checks the host's key and logs in, within d.timeout.
func (d *sshDialer) dial() (*sshConn, error) {
	where := fmt.Sprintf("while connecting over ssh to %s", d)
	keys, err := spec.LoadSSHKeys(d.identity)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", where, err)
	}
	// The host's entry is looked up here, not by LoadKnownHosts: when there
	// is none, checkHostKey refuses the key the host presents and shows it.
	known, err := spec.LoadKnownHosts(d.knownHosts, nil)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", where, err)
	}
	known.Keys = known.Lookup(d.endpoint)
	deadline := time.Now().Add(d.timeout)
	signers := keys.Signers
	offered := fileKeys(keys)
	if keys.Agent != "" {
		ac, err := net.DialTimeout("unix", keys.Agent, d.timeout)
		if err == nil {
			defer ac.Close()
			_ = ac.SetDeadline(deadline)
			var agentSigners []ssh.Signer
			agentSigners, err = agent.NewClient(ac).Signers()
			signers = append(agentSigners, signers...)
			offered = append([]string{fmt.Sprintf("%d from the ssh agent at %s", len(agentSigners), keys.Agent)}, offered...)
		}
		switch {
		case err != nil && len(signers) == 0:
			return nil, fmt.Errorf("%s: cannot use the ssh agent at %s (SSH_AUTH_SOCK): %v; start the agent and load the key (ssh-add), or give identity_file in the host's ssh block", where, keys.Agent, err)
		case err != nil:
			offered = append(offered, fmt.Sprintf("none of the ssh agent at %s, which failed: %v", keys.Agent, err))
		}
	}
	cfg := &ssh.ClientConfig{
		User:              d.endpoint.User,
		Auth:              []ssh.AuthMethod{ssh.PublicKeys(signers...)},
		HostKeyCallback:   d.checkHostKey(known),
		HostKeyAlgorithms: hostKeyAlgorithms(known),
		Timeout:           d.timeout,
	}
	nd := net.Dialer{Timeout: d.timeout, KeepAlive: 15 * time.Second}
	tcp, err := nd.Dial("tcp", d.endpoint.Addr())
	if err != nil {
		return nil, d.connectError(where, err)
	}
	_ = tcp.SetDeadline(deadline)
	sc, chans, reqs, err := ssh.NewClientConn(tcp, d.endpoint.Addr(), cfg)
	if err != nil {
		_ = tcp.Close()
		var hk *hostKeyError
		switch {
		case errors.As(err, &hk):
			return nil, fmt.Errorf("%s: %w", where, hk)
		case strings.Contains(err.Error(), "unable to authenticate"):
			return nil, fmt.Errorf("%s: the host refused every key pacsd offered (%s) for the user %q; add pacsd's public key (ssh-keygen -y -f KEY prints it) to ~%s/.ssh/authorized_keys on the host, or name the right key in identity_file", where, strings.Join(offered, "; "), d.endpoint.User, d.endpoint.User)
		case strings.Contains(err.Error(), "no common algorithm for host key"):
			return nil, fmt.Errorf("%s: the host offers no host key of the types %s holds for it (%v): the host's keys changed, or someone is intercepting the connection; pacsd does not connect. Check the key's fingerprint on the host (ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub) and replace the entry: ssh-keygen -R '%s' -f %s, then ssh-keyscan -p %d %s >> %s", where, known.File, err, knownhosts.Normalize(d.endpoint.Addr()), known.File, d.endpoint.Port, d.endpoint.Host, known.File)
		}
		return nil, d.connectError(where, err)
	}
	_ = tcp.SetDeadline(time.Time{})
	c := &sshConn{client: ssh.NewClient(sc, chans, reqs), done: make(chan struct{}), idleClose: d.idleClose}
	go func() {
		_ = c.client.Wait()
		close(c.done)
	}()
	go c.keepAlive(d.keepAlive)
	return c, nil
}

// fileKeys describes the key files of keys for messages.
func fileKeys(keys spec.SSHKeys) []string {
	var out []string
	for i, f := range keys.Files {
		out = append(out, fmt.Sprintf("%s (%s)", f, ssh.FingerprintSHA256(keys.Signers[i].PublicKey())))
	}
	return out
}

// connectError says why a connection could not be made.
func (d *sshDialer) connectError(where string, err error) error {
	var ne net.Error
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return fmt.Errorf("%s: nothing listens on %s (ECONNREFUSED); check that sshd runs on the host and listens on port %d", where, d.endpoint.Addr(), d.endpoint.Port)
	case errors.As(err, &ne) && ne.Timeout(), errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("%s: no answer within %s (%s); the host may be down or cut off, or its sshd stopped", where, d.timeout, plain(err.Error()))
	}
	return fmt.Errorf("%s: %s", where, plain(err.Error()))
}

// plain rewords what the Docker client would take for its own connection
// errors: it replaces any error whose text holds "connection refused" or
// "dial unix" with "Cannot connect to the Docker daemon at ssh://HOST:PORT.
// Is the docker daemon running?", which would hide what pacsd found.
func plain(s string) string {
	s = strings.ReplaceAll(s, "connection refused", "refused (ECONNREFUSED)")
	return strings.ReplaceAll(s, "dial unix", "connect to unix socket")
}

// forwardError says why the engine's socket could not be reached through a
// connection.
func (d *sshDialer) forwardError(err error, ctx context.Context) error {
	where := fmt.Sprintf("while reaching the Docker engine's socket %s over ssh (%s)", d.endpoint.Socket, d)
	var oe *ssh.OpenChannelError
	switch {
	case errors.As(err, &oe) && oe.Reason == ssh.Prohibited:
		return fmt.Errorf("%s: the host's sshd refused to forward to the socket (%s); in the host's sshd_config set AllowStreamLocalForwarding yes (the default) and AllowTcpForwarding yes or local (OpenSSH forwards to a socket only where it forwards local TCP ports too), leave DisableForwarding off and no restrict or no-port-forwarding on the key in authorized_keys, then reload sshd", where, plain(oe.Message))
	case errors.As(err, &oe):
		return fmt.Errorf("%s: the host's sshd could not connect to the socket (%s: %s); check that the engine runs, that it listens on %s, and that %s may open it (root, or in the docker group)", where, oe.Reason, plain(oe.Message), d.endpoint.Socket, d.endpoint.User)
	case ctx.Err() != nil:
		return fmt.Errorf("%s: no answer (%v); the host may be down or cut off, or its sshd stopped", where, ctx.Err())
	}
	return fmt.Errorf("%s: %s", where, plain(err.Error()))
}

// hostKeyError is a host key pacsd refuses, with what to do.
type hostKeyError struct{ msg string }

func (e *hostKeyError) Error() string { return e.msg }

// checkHostKey checks the key the host presents against known and says what
// to do when it is unknown, changed or revoked.
func (d *sshDialer) checkHostKey(known *spec.KnownHosts) ssh.HostKeyCallback {
	return func(hostname string, remote net.Addr, key ssh.PublicKey) error {
		err := known.Callback(hostname, remote, key)
		if err == nil {
			return nil
		}
		name := knownhosts.Normalize(d.endpoint.Addr())
		scan := fmt.Sprintf("ssh-keyscan -p %d %s", d.endpoint.Port, d.endpoint.Host)
		var ke *knownhosts.KeyError
		var re *knownhosts.RevokedError
		switch {
		case errors.As(err, &re):
			return &hostKeyError{fmt.Sprintf("the host key of %s (%s %s) is marked @revoked in %s line %d; pacsd does not connect. Give the host a new host key and add it to %s", name, key.Type(), ssh.FingerprintSHA256(key), re.Revoked.Filename, re.Revoked.Line, known.File)}
		case errors.As(err, &ke) && len(ke.Want) == 0:
			return &hostKeyError{spec.UnknownSSHHost(d.endpoint, known.File, key).Detail}
		case errors.As(err, &ke):
			var want []string
			for _, k := range ke.Want {
				want = append(want, fmt.Sprintf("%s %s at %s line %d", k.Key.Type(), ssh.FingerprintSHA256(k.Key), k.Filename, k.Line))
			}
			return &hostKeyError{fmt.Sprintf("the host key of %s has changed: it presented the %s key %s, but %s holds %s. Someone may be intercepting the connection, or the host's key was replaced (a reinstalled host); pacsd does not connect. Check the fingerprint on the host (ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub); if the key changed on purpose, remove the old entry (ssh-keygen -R '%s' -f %s) and add the new one (%s >> %s)", name, key.Type(), ssh.FingerprintSHA256(key), known.File, strings.Join(want, ", "), name, known.File, scan, known.File)}
		}
		return &hostKeyError{fmt.Sprintf("the host key of %s cannot be checked against %s: %v", name, known.File, err)}
	}
}

// hostKeyAlgorithms returns the host key algorithms of the keys known holds
// for the host, so that the host presents a key pacsd can check (as OpenSSH
// orders them); nil (every algorithm) when it holds none or certificate
// authorities may vouch for the host.
func hostKeyAlgorithms(known *spec.KnownHosts) []string {
	if known.Authorities || len(known.Keys) == 0 {
		return nil
	}
	var algs []string
	seen := map[string]bool{}
	add := func(a ...string) {
		for _, s := range a {
			if !seen[s] {
				seen[s] = true
				algs = append(algs, s)
			}
		}
	}
	for _, k := range known.Keys {
		if t := k.Key.Type(); t == ssh.KeyAlgoRSA {
			add(ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256, ssh.KeyAlgoRSA)
		} else {
			add(t)
		}
	}
	return algs
}

// sshConn is one ssh connection and the forwardings open through it.
type sshConn struct {
	client    *ssh.Client
	done      chan struct{} // closed when the connection has ended
	killed    atomic.Bool   // set when pacsd closes it
	idleClose time.Duration

	mu   sync.Mutex
	open int         // forwardings open
	idle *time.Timer // closes the connection when none has been open for idleClose
}

// ended reports whether the connection has ended or is being closed.
func (c *sshConn) ended() bool {
	if c.killed.Load() {
		return true
	}
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// kill closes the connection; it counts as ended at once.
func (c *sshConn) kill() {
	c.killed.Store(true)
	_ = c.client.Close()
}

// forward opens a channel to the unix socket at path on the host, giving up
// when ctx ends or the connection does.
func (c *sshConn) forward(ctx context.Context, path string) (net.Conn, error) {
	type result struct {
		conn net.Conn
		err  error
	}
	ch := make(chan result, 1)
	c.acquire()
	go func() {
		conn, err := c.client.Dial("unix", path)
		ch <- result{conn, err}
	}()
	var r result
	select {
	case r = <-ch:
	case <-ctx.Done():
		go func() { // the channel may still open: close it then
			if r := <-ch; r.conn != nil {
				_ = r.conn.Close()
			}
			c.release()
		}()
		return nil, ctx.Err()
	}
	if r.err != nil {
		c.release()
		return nil, r.err
	}
	return &sshChannel{Conn: r.conn, c: c}, nil
}

// acquire counts a forwarding and stops the idle timer.
func (c *sshConn) acquire() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.open++
	if c.idle != nil {
		c.idle.Stop()
		c.idle = nil
	}
}

// release counts a forwarding closed; with none left, the connection is
// closed after idleClose unless another opens meanwhile.
func (c *sshConn) release() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.open--
	if c.open > 0 {
		return
	}
	var t *time.Timer
	t = time.AfterFunc(c.idleClose, func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		if c.idle == t && c.open == 0 {
			c.kill()
		}
	})
	c.idle = t
}

// keepAlive closes the connection when the host does not answer a keepalive
// request within every, checked every every.
func (c *sshConn) keepAlive(every time.Duration) {
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-c.done:
			return
		case <-tick.C:
		}
		reply := make(chan error, 1)
		go func() {
			_, _, err := c.client.SendRequest("keepalive@openssh.com", true, nil)
			reply <- err
		}()
		timer := time.NewTimer(every)
		select {
		case err := <-reply:
			timer.Stop()
			if err != nil {
				c.kill()
				return
			}
		case <-timer.C:
			c.kill()
			return
		case <-c.done:
			timer.Stop()
			return
		}
	}
}

// sshChannel is a forwarding to the engine's socket; closing it counts it
// closed once.
type sshChannel struct {
	net.Conn
	c    *sshConn
	once sync.Once
}

func (s *sshChannel) Close() error {
	err := s.Conn.Close()
	s.once.Do(s.c.release)
	return err
}

// CloseWrite closes the sending side (an exec's stdin), as a unix socket's.
func (s *sshChannel) CloseWrite() error {
	if cw, ok := s.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// redactedEndpoint returns endpoint with the password of its user part, if
// any, replaced, for messages.
func redactedEndpoint(endpoint string) string {
	if u, err := url.Parse(endpoint); err == nil && u.User != nil {
		if _, set := u.User.Password(); set {
			return u.Redacted()
		}
	}
	return endpoint
}
