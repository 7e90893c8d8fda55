package daemon

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/pacsd/pacsd/pkg/spec"
)

// httpSecurity is what daemon.tls and daemon.token_file make of the HTTP
// endpoints: the server's TLS configuration, how a client authenticates,
// and the Client this pacsd asks other pacsd with. One is made from each
// spec taken, so that a new token, certificate or client CA takes effect
// on reload; whether the endpoints are served over TLS at all is decided
// when pacsd starts, as daemon.listen is.
type httpSecurity struct {
	// server is the TLS configuration of the endpoints (nil without
	// daemon.tls): daemon.tls's certificate, TLS 1.2 at least, and client
	// certificates verified with client_ca when it is set.
	server *tls.Config
	// tokenSum is the SHA-256 of the token (token set): a request's token
	// is compared by its sum, in constant time.
	tokenSum [sha256.Size]byte
	token    bool
	// clientCA: a client certificate that clientPool verifies
	// authenticates.
	clientCA   bool
	clientPool *x509.CertPool
	client     *Client
}

// newHTTPSecurity reads the files daemon.tls names. last is the security in
// force (nil at the start): when the new spec has no tls block, its server
// configuration is kept, since the endpoints are served over TLS until
// pacsd restarts.
func newHTTPSecurity(dm spec.Daemon, last *httpSecurity) (*httpSecurity, error) {
	// A token without a value is no token: an empty credential never
	// authenticates.
	s := &httpSecurity{token: dm.Token.Reveal() != "", clientCA: dm.TLS != nil && dm.TLS.ClientCA != ""}
	if s.token {
		s.tokenSum = sha256.Sum256([]byte(dm.Token.Reveal()))
	}
	var err error
	if s.client, err = NewClient(dm, 0); err != nil {
		return nil, err
	}
	if dm.TLS == nil {
		if last != nil {
			s.server = last.server
		}
		return s, nil
	}
	pair, err := tls.LoadX509KeyPair(dm.TLS.Cert, dm.TLS.Key)
	if err != nil {
		return nil, fmt.Errorf("while reading daemon.tls (cert %s, key %s): %w", dm.TLS.Cert, dm.TLS.Key, err)
	}
	// No session tickets: a resumed session would carry a client
	// certificate verified by a client CA that a reload replaced.
	s.server = &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{pair}, SessionTicketsDisabled: true}
	if s.clientCA {
		if s.clientPool, err = certPool(dm.TLS.ClientCA, "daemon.tls.client_ca"); err != nil {
			return nil, err
		}
		s.server.ClientCAs = s.clientPool
		s.server.ClientAuth = tls.VerifyClientCertIfGiven
	}
	return s, nil
}

// certPool reads the PEM certificates of a CA file; what names the
// attribute for the error.
func certPool(path, what string) (*x509.CertPool, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("while reading %s: %w", what, err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("%s %s holds no PEM certificate", what, path)
	}
	return pool, nil
}

// authenticates reports whether the endpoints ask clients to authenticate
// (a token, or a client CA).
func (s *httpSecurity) authenticates() bool { return s.token || s.clientCA }

// authenticated reports whether r comes with a client certificate that
// the client CA in force verifies, or the token, as a bearer token or as
// the password of basic authentication (any user name: a browser asks for
// both).
func (s *httpSecurity) authenticated(r *http.Request) bool {
	if s.clientCA && s.verifiedClient(r.TLS) {
		return true
	}
	if !s.token {
		return false
	}
	var given string
	if scheme, cred, ok := strings.Cut(r.Header.Get("Authorization"), " "); ok && strings.EqualFold(scheme, "Bearer") {
		given = strings.TrimSpace(cred)
	} else if _, password, ok := r.BasicAuth(); ok {
		given = password
	} else {
		return false
	}
	sum := sha256.Sum256([]byte(given))
	return subtle.ConstantTimeCompare(sum[:], s.tokenSum[:]) == 1
}

// verifiedClient reports whether the client certificate of the connection
// cs was verified in its handshake and is verified by the client CA in
// force now: a connection kept open across a reload that replaced
// daemon.tls.client_ca authenticates no more by a certificate of the old CA.
func (s *httpSecurity) verifiedClient(cs *tls.ConnectionState) bool {
	if cs == nil || len(cs.VerifiedChains) == 0 || len(cs.PeerCertificates) == 0 || s.clientPool == nil {
		return false
	}
	inter := x509.NewCertPool()
	for _, c := range cs.PeerCertificates[1:] {
		inter.AddCert(c)
	}
	_, err := cs.PeerCertificates[0].Verify(x509.VerifyOptions{Roots: s.clientPool, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
	return err == nil
}

// how says what a client must send, for the 401's body and the log.
func (s *httpSecurity) how() string {
	var ways []string
	if s.token {
		ways = append(ways, `the token of daemon.token_file, as "Authorization: Bearer TOKEN" or as the password of HTTP basic authentication (any user name)`)
	}
	if s.clientCA {
		ways = append(ways, "a client certificate signed by daemon.tls.client_ca")
	}
	return strings.Join(ways, ", or ")
}

// authenticate serves next only to a client that authenticates, when
// daemon.token_file or daemon.tls.client_ca asks for it: anyone else gets
// 401 (with a basic authentication challenge when there is a token, so
// that a browser asks for it), except on GET /healthz. Without either,
// which the parser allows on a loopback address only, what only reads is
// open and what changes pacsd's state (POST /failsafe) is refused.
//
// pacsd listens where it started until it restarts, while a reload may
// take a file that listens on loopback without TLS or authentication: a
// request that reaches pacsd through an address that is not loopback is
// therefore refused (403) unless it came over TLS and the spec in force
// authenticates, whatever the spec's listen address says.
func (d *Daemon) authenticate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reads := r.Method == http.MethodGet || r.Method == http.MethodHead
		s := d.security.Load()
		switch {
		case reads && r.URL.Path == "/healthz":
			next.ServeHTTP(w, r)
		case s == nil:
			http.Error(w, "pacsd has not read its topology file yet", http.StatusServiceUnavailable)
		case offLoopback(r) && (r.TLS == nil || !s.authenticates()):
			d.log.Debug("HTTP request refused: an address that is not loopback, without TLS or authentication", "method", r.Method, "path", r.URL.Path, "remote", r.RemoteAddr, "tls", r.TLS != nil)
			http.Error(w, "pacsd: this address is not loopback, and pacsd serves it only over TLS with authentication (daemon.tls, and daemon.token_file or daemon.tls.client_ca), which the file pacsd runs with does not give. Set them again and reload pacsd, or restart pacsd so that the file's daemon.listen takes effect. Only /healthz is open.", http.StatusForbidden)
		case !s.authenticates() && reads, s.authenticated(r):
			next.ServeHTTP(w, r)
		case !s.authenticates():
			http.Error(w, fmt.Sprintf("pacsd: %s %s changes pacsd's state, which it never allows without authentication: set daemon.token_file, or client_ca in daemon.tls, and reload pacsd.", r.Method, r.URL.Path), http.StatusForbidden)
		default:
			if s.token {
				w.Header().Set("WWW-Authenticate", `Basic realm="pacsd", charset="UTF-8"`)
			}
			d.log.Debug("HTTP request refused: no valid credentials", "method", r.Method, "path", r.URL.Path, "remote", r.RemoteAddr)
			http.Error(w, "pacsd: authentication required; send "+s.how()+". Only /healthz is open.", http.StatusUnauthorized)
		}
	})
}

// offLoopback reports whether r reached pacsd through an address of the
// host that is not loopback (the local address of its connection), that is
// from the network. A request handed to the handler without a connection
// (in the process itself) is not.
func offLoopback(r *http.Request) bool {
	switch a := r.Context().Value(http.LocalAddrContextKey).(type) {
	case nil:
		return false
	case *net.TCPAddr:
		return !a.IP.IsLoopback()
	case *net.UnixAddr:
		return false
	default:
		return true
	}
}

// Client asks pacsd's HTTP endpoints as a spec's daemon block says: over
// https with daemon.tls (the server's certificate verified with
// daemon.tls.ServerCA, or the system's authorities without one; daemon.tls's
// certificate presented as the client's when client_ca is set), with the
// token of daemon.token_file as a bearer token, never through a proxy of
// the environment, and without following redirects (a redirect is the
// answer). It is what pacsd status and the failsafe between hosts use.
type Client struct {
	hc     *http.Client
	scheme string
	token  spec.Secret
}

// NewClient returns the Client of dm; timeout bounds each request (0: the
// request's context alone). The error says which file cannot be read.
func NewClient(dm spec.Daemon, timeout time.Duration) (*Client, error) {
	tr := &http.Transport{Proxy: nil, TLSHandshakeTimeout: 10 * time.Second, MaxIdleConnsPerHost: 2, IdleConnTimeout: time.Minute}
	// No redirect is followed: the token would go along to wherever it
	// points on the same host, another port or plain http included.
	noRedirect := func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	c := &Client{hc: &http.Client{Transport: tr, Timeout: timeout, CheckRedirect: noRedirect}, scheme: "http", token: dm.Token}
	if t := dm.TLS; t != nil {
		c.scheme = "https"
		tr.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12}
		if ca := t.ServerCA(); ca != "" {
			pool, err := certPool(ca, "the CA of daemon.tls (ca, else client_ca)")
			if err != nil {
				return nil, err
			}
			tr.TLSClientConfig.RootCAs = pool
		}
		if t.ClientCA != "" {
			pair, err := tls.LoadX509KeyPair(t.Cert, t.Key)
			if err != nil {
				return nil, fmt.Errorf("while reading daemon.tls (cert %s, key %s), this client's certificate: %w", t.Cert, t.Key, err)
			}
			tr.TLSClientConfig.Certificates = []tls.Certificate{pair}
		}
	}
	return c, nil
}

// URL is the URL of path (such as "/status") at the pacsd at addr ("host:port").
func (c *Client) URL(addr, path string) string { return c.scheme + "://" + addr + path }

// Do sends req with the token, when there is one.
func (c *Client) Do(req *http.Request) (*http.Response, error) {
	if c.token.Reveal() != "" {
		req.Header.Set("Authorization", "Bearer "+c.token.Reveal())
	}
	return c.hc.Do(req)
}

// Get asks for path at the pacsd at addr.
func (c *Client) Get(ctx context.Context, addr, path string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.URL(addr, path), nil)
	if err != nil {
		return nil, err
	}
	return c.Do(req)
}
