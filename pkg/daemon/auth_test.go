package daemon

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pacsd/pacsd/internal/e2e"
	"github.com/pacsd/pacsd/pkg/spec"
)

// authFixture is a daemon whose file has daemon.tls and daemon.token_file
// (client_ca too when asked), serving its endpoints over TLS on a loopback
// port of its own.
type authFixture struct {
	*fixture
	files e2e.HTTPTLS
	addr  string
}

func newAuthFixture(t *testing.T, daemonBlock func(e2e.HTTPTLS) string) *authFixture {
	t.Helper()
	files := e2e.WriteHTTPTLS(t, filepath.Join(t.TempDir(), "tls"), net.IPv4(127, 0, 0, 1))
	f, err := newFixture(t, topology("4MB", "db1-data")+"daemon {\n  listen = \"0.0.0.0:9187\"\n"+daemonBlock(files)+"}\n")
	if err != nil {
		t.Fatalf("New: %v\nlog:\n%s", err, f.log)
	}
	f.d.looping.Store(true) // /healthz answers 200 while the loop runs
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := f.d.serveHTTP(ln)
	t.Cleanup(func() { _ = srv.Close() })
	return &authFixture{fixture: f, files: files, addr: ln.Addr().String()}
}

// do sends method path to the fixture's daemon with cl; prepare sets the
// request's credentials.
func (a *authFixture) do(t *testing.T, cl *http.Client, method, path string, prepare func(*http.Request)) (int, http.Header, string) {
	t.Helper()
	var body io.Reader
	if method == http.MethodPost {
		body = strings.NewReader(`{"cluster":"pacs","node":"db1","host":"a"}`)
	}
	req, err := http.NewRequest(method, "https://"+a.addr+path, body)
	if err != nil {
		t.Fatal(err)
	}
	if prepare != nil {
		prepare(req)
	}
	resp, err := cl.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

// guarded are the endpoints a client must authenticate for.
var guarded = []struct{ method, path string }{
	{"GET", "/status"}, {"GET", "/metrics"}, {"GET", "/events"}, {"GET", "/"}, {"GET", "/web/page.js"},
	{"GET", "/readyz"}, {"GET", "/primary?node=db1"}, {"GET", "/replica?node=db2"}, {"HEAD", "/status"},
	{"POST", "/failsafe"}, {"GET", "/no-such-page"}, {"GET", "/healthz/"}, {"POST", "/healthz"},
}

// TestHTTPAuthentication: with daemon.tls and daemon.token_file, every
// endpoint but GET /healthz answers 401 to a client without credentials
// (a basic authentication challenge with it, so that a browser asks) or
// with a wrong token, and serves one that sends the token as a bearer
// token or as the password of basic authentication; plain HTTP gets no
// answer of an endpoint; TLS below 1.2 is refused.
func TestHTTPAuthentication(t *testing.T) {
	a := newAuthFixture(t, func(h e2e.HTTPTLS) string { return h.Block(false) })
	cl := a.files.Client(t, "", "")
	for _, g := range guarded {
		code, h, body := a.do(t, cl, g.method, g.path, nil)
		if code != http.StatusUnauthorized {
			t.Errorf("%s %s without credentials: %d, want 401", g.method, g.path, code)
		}
		if got := h.Get("WWW-Authenticate"); got != `Basic realm="pacsd", charset="UTF-8"` {
			t.Errorf("%s %s without credentials: WWW-Authenticate %q, want a basic challenge", g.method, g.path, got)
		}
		if g.method != "HEAD" && !strings.Contains(body, "Authorization: Bearer TOKEN") {
			t.Errorf("%s %s without credentials: the body does not say what to send: %q", g.method, g.path, body)
		}
		if strings.Contains(body, a.files.Token) || strings.Contains(fmt.Sprint(h), a.files.Token) {
			t.Errorf("%s %s: the answer shows the token", g.method, g.path)
		}
	}
	if code, _, body := a.do(t, cl, "GET", "/healthz", nil); code != http.StatusOK {
		t.Errorf("GET /healthz without credentials: %d %s, want 200", code, body)
	}
	bearer := func(token string) func(*http.Request) {
		return func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+token) }
	}
	basic := func(user, token string) func(*http.Request) {
		return func(r *http.Request) { r.SetBasicAuth(user, token) }
	}
	for name, tc := range map[string]struct {
		prepare func(*http.Request)
		want    int
	}{
		"bearer token":                 {bearer(a.files.Token), http.StatusOK},
		"bearer, scheme in lower case": {func(r *http.Request) { r.Header.Set("Authorization", "bearer "+a.files.Token) }, http.StatusOK},
		"basic, any user":              {basic("operator", a.files.Token), http.StatusOK},
		"basic, no user":               {basic("", a.files.Token), http.StatusOK},
		"wrong bearer token":           {bearer(strings.ToUpper(a.files.Token)), http.StatusUnauthorized},
		"bearer token cut short":       {bearer(a.files.Token[:len(a.files.Token)-1]), http.StatusUnauthorized},
		"token and one character more": {bearer(a.files.Token + "x"), http.StatusUnauthorized},
		"empty bearer":                 {bearer(""), http.StatusUnauthorized},
		"token as the basic user":      {basic(a.files.Token, ""), http.StatusUnauthorized},
		"other scheme":                 {func(r *http.Request) { r.Header.Set("Authorization", "Token "+a.files.Token) }, http.StatusUnauthorized},
		"token in the query":           {func(r *http.Request) { r.URL.RawQuery = "token=" + a.files.Token }, http.StatusUnauthorized},
	} {
		for _, path := range []string{"/status", "/metrics", "/events"} {
			if code, _, body := a.do(t, cl, "GET", path, tc.prepare); code != tc.want {
				t.Errorf("%s, GET %s: %d %s, want %d", name, path, code, body, tc.want)
			}
		}
	}
	// A client certificate counts for nothing without client_ca.
	if code, _, _ := a.do(t, a.files.Client(t, a.files.ClientCert, a.files.ClientKey), "GET", "/status", nil); code != http.StatusUnauthorized {
		t.Errorf("a client certificate without daemon.tls.client_ca: %d, want 401", code)
	}
	// POST /failsafe with the token reaches the handler (which says this
	// pacsd does not run on every host).
	if code, _, body := a.do(t, cl, "POST", "/failsafe", bearer(a.files.Token)); code != http.StatusNotFound || !strings.Contains(body, "every host") {
		t.Errorf("POST /failsafe with the token: %d %s, want the handler's 404", code, body)
	}

	// Plain HTTP gets the TLS server's refusal, never an endpoint.
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Get("http://" + a.addr + "/status")
	if err == nil {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest || strings.Contains(string(b), `"clusters"`) {
			t.Errorf("plain HTTP: %s %s, want 400 from the TLS server", resp.Status, b)
		}
	}
	// TLS 1.1 is refused.
	old := a.files.Client(t, "", "")
	old.Transport.(*http.Transport).TLSClientConfig.MinVersion = tls.VersionTLS10
	old.Transport.(*http.Transport).TLSClientConfig.MaxVersion = tls.VersionTLS11
	if _, err := old.Get("https://" + a.addr + "/healthz"); err == nil {
		t.Error("a client limited to TLS 1.1 was served")
	}
	if strings.Contains(a.log.String(), a.files.Token) {
		t.Error("the daemon's log shows the token")
	}
}

// TestHTTPClientCertificates: with daemon.tls.client_ca, a client
// certificate that CA signed authenticates, one of another CA does not
// (refused in the handshake), and no certificate is 401.
func TestHTTPClientCertificates(t *testing.T) {
	a := newAuthFixture(t, func(h e2e.HTTPTLS) string {
		return fmt.Sprintf("  tls {\n    cert = %q\n    key = %q\n    client_ca = %q\n  }\n", h.Cert, h.Key, h.CA)
	})
	withCert := a.files.Client(t, a.files.ClientCert, a.files.ClientKey)
	for _, g := range guarded {
		want := http.StatusOK
		switch g.path {
		case "/no-such-page", "/healthz/":
			want = http.StatusNotFound
		case "/primary?node=db1", "/replica?node=db2", "/readyz":
			want = http.StatusServiceUnavailable // nothing observed: but served
		case "/healthz":
			want = http.StatusMethodNotAllowed
		case "/failsafe":
			want = http.StatusNotFound // this pacsd does not run on every host
		}
		if code, _, body := a.do(t, withCert, g.method, g.path, nil); code != want {
			t.Errorf("%s %s with a client certificate: %d %s, want %d", g.method, g.path, code, body, want)
		}
	}
	code, h, body := a.do(t, a.files.Client(t, "", ""), "GET", "/status", nil)
	if code != http.StatusUnauthorized || h.Get("WWW-Authenticate") != "" || !strings.Contains(body, "client certificate signed by daemon.tls.client_ca") {
		t.Errorf("GET /status without a certificate: %d %q %s, want 401 saying to send a client certificate (no basic challenge: there is no token)", code, h.Get("WWW-Authenticate"), body)
	}
	// Go's client sends no certificate the server's CAs did not sign: 401;
	// a client that sends it anyway fails the handshake.
	foreign := a.files.Client(t, "", "")
	pair, err := tls.LoadX509KeyPair(a.files.ForeignCert, a.files.ForeignKey)
	if err != nil {
		t.Fatal(err)
	}
	foreign.Transport.(*http.Transport).TLSClientConfig.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &pair, nil }
	if resp, err := foreign.Get("https://" + a.addr + "/status"); err == nil {
		resp.Body.Close()
		t.Errorf("a client certificate of another CA: %s, want a failed handshake", resp.Status)
	}
	if code, _, _ := a.do(t, a.files.Client(t, a.files.ForeignCert, a.files.ForeignKey), "GET", "/status", nil); code != http.StatusUnauthorized {
		t.Errorf("a client holding a certificate of another CA: %d, want 401", code)
	}
	// pacsd's own client presents daemon.tls's certificate and verifies
	// the server with client_ca (no ca given).
	c, err := NewClient(a.d.Spec().Daemon, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := c.Get(context.Background(), a.addr, "/status")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("pacsd's client with daemon.tls's certificate: %s, want 200", resp.Status)
	}
}

// TestHTTPClientOfTheFile: the Client of a daemon block speaks https with
// daemon.tls and sends the token; without ca it trusts the system's
// authorities only, so a server of the test's own CA is refused.
func TestHTTPClientOfTheFile(t *testing.T) {
	a := newAuthFixture(t, func(h e2e.HTTPTLS) string { return h.Block(false) })
	dm := a.d.Spec().Daemon
	c, err := NewClient(dm, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if got := c.URL(a.addr, "/status"); got != "https://"+a.addr+"/status" {
		t.Errorf("URL %s, want https", got)
	}
	resp, err := c.Get(context.Background(), a.addr, "/status")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("the file's client: %s, want 200", resp.Status)
	}
	system := dm
	tlsCopy := *dm.TLS
	tlsCopy.CA = ""
	system.TLS = &tlsCopy
	if c, err = NewClient(system, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if resp, err := c.Get(context.Background(), a.addr, "/status"); err == nil {
		resp.Body.Close()
		t.Errorf("a client without ca trusted the test's own CA: %s", resp.Status)
	}
	if c, err = NewClient(spec.Daemon{}, 0); err != nil || c.URL("127.0.0.1:9187", "/status") != "http://127.0.0.1:9187/status" {
		t.Errorf("the client of a daemon block without tls: %v, %v", c, err)
	}
	missing := dm
	missing.TLS = &spec.DaemonTLS{Cert: dm.TLS.Cert, Key: dm.TLS.Key, CA: filepath.Join(t.TempDir(), "none.pem")}
	if _, err := NewClient(missing, 0); err == nil || !strings.Contains(err.Error(), "daemon.tls") {
		t.Errorf("a client whose CA file is missing: %v, want an error naming daemon.tls", err)
	}
}

// TestHTTPWithoutAuthentication: on loopback without token and client CA,
// what reads is open as before, and POST /failsafe, which changes pacsd's
// state, is refused.
func TestHTTPWithoutAuthentication(t *testing.T) {
	f := mustFixture(t)
	if code, body := f.get("/status"); code != http.StatusOK {
		t.Errorf("GET /status on loopback without authentication: %d %s, want 200", code, body)
	}
	rec := httptest.NewRecorder()
	f.d.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/failsafe", strings.NewReader("{}")))
	if rec.Code != http.StatusForbidden || !strings.Contains(rec.Body.String(), "token_file") {
		t.Errorf("POST /failsafe without authentication configured: %d %s, want 403 saying what to set", rec.Code, rec.Body)
	}
}

// TestHTTPSecurityReload: a new token takes effect on reload, without a
// restart; a key that cannot be read refuses the file.
func TestHTTPSecurityReload(t *testing.T) {
	a := newAuthFixture(t, func(h e2e.HTTPTLS) string { return h.Block(false) })
	cl := a.files.Client(t, "", "")
	old := a.files.Token
	next := strings.Repeat("n", 40)
	if err := os.WriteFile(a.files.TokenFile, []byte(next+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	a.d.forced.Store(true)
	a.d.reload()
	bearer := func(token string) func(*http.Request) {
		return func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+token) }
	}
	if code, _, _ := a.do(t, cl, "GET", "/status", bearer(next)); code != http.StatusOK {
		t.Errorf("the new token after reload: %d, want 200", code)
	}
	if code, _, _ := a.do(t, cl, "GET", "/status", bearer(old)); code != http.StatusUnauthorized {
		t.Errorf("the old token after reload: %d, want 401", code)
	}
	// The key made unreadable between validation and loading: the file
	// is refused, the last good one stays.
	sec, err := newHTTPSecurity(spec.Daemon{TLS: &spec.DaemonTLS{Cert: a.files.Cert, Key: filepath.Join(t.TempDir(), "gone.pem")}}, nil)
	if err == nil || sec != nil || !strings.Contains(err.Error(), "daemon.tls") {
		t.Errorf("a key that cannot be read: %v, want an error naming daemon.tls", err)
	}
}

// nonLoopbackIP is an address of this machine that is not loopback, to
// reach a listener on every address the way another host would; the test
// is skipped without one.
func nonLoopbackIP(t *testing.T) net.IP {
	t.Helper()
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		t.Skipf("no interface addresses: %v", err)
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && n.IP.To4() != nil && !n.IP.IsLoopback() && !n.IP.IsLinkLocalUnicast() {
			return n.IP
		}
	}
	t.Skip("this machine has no IPv4 address but loopback")
	return nil
}

// TestHTTPReloadKeepsAuthenticationOffLoopback: pacsd listens where it
// started until it restarts, so a file reloaded with a loopback listen
// address and neither token nor client CA does not open the endpoints to
// the network: a request that reaches a listener on every address through
// an address that is not loopback is refused, one through loopback is
// served as on loopback. A request off loopback without TLS is refused
// even with the token.
func TestHTTPReloadKeepsAuthenticationOffLoopback(t *testing.T) {
	a := newAuthFixture(t, func(h e2e.HTTPTLS) string { return h.Block(false) })
	plain := httptest.NewRequest(http.MethodGet, "/status", nil)
	plain = plain.WithContext(context.WithValue(plain.Context(), http.LocalAddrContextKey, &net.TCPAddr{IP: net.IPv4(192, 0, 2, 7), Port: 9187}))
	plain.Header.Set("Authorization", "Bearer "+a.files.Token)
	rec := httptest.NewRecorder()
	a.d.Handler().ServeHTTP(rec, plain)
	if rec.Code != http.StatusForbidden {
		t.Errorf("GET /status with the token over plain HTTP off loopback: %d %s, want 403", rec.Code, rec.Body)
	}
	ip := nonLoopbackIP(t)
	ln, err := net.Listen("tcp", "0.0.0.0:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := a.d.serveHTTP(ln)
	t.Cleanup(func() { _ = srv.Close() })
	port := ln.Addr().(*net.TCPAddr).Port
	a.write(topology("4MB", "db1-data") + "daemon {\n  listen = \"127.0.0.1:9187\"\n}\n")
	a.d.forced.Store(true)
	a.d.reload()
	if !a.d.Spec().Daemon.Token.IsZero() {
		t.Fatalf("the file without token_file was not taken:\n%s", a.log)
	}
	cl := a.files.Client(t, "", "")
	cl.Transport.(*http.Transport).TLSClientConfig.ServerName = "127.0.0.1" // the certificate's address
	for _, g := range []struct{ method, path string }{{"GET", "/status"}, {"GET", "/metrics"}, {"GET", "/"}, {"POST", "/failsafe"}} {
		req, err := http.NewRequest(g.method, "https://"+net.JoinHostPort(ip.String(), fmt.Sprint(port))+g.path, strings.NewReader("{}"))
		if err != nil {
			t.Fatal(err)
		}
		resp, err := cl.Do(req)
		if err != nil {
			t.Fatalf("%s %s through %s: %v", g.method, g.path, ip, err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode < 400 || strings.Contains(string(b), `"clusters"`) {
			t.Errorf("%s %s through %s after a reload without authentication: %s %s, want a refusal", g.method, g.path, ip, resp.Status, b)
		}
	}
	resp, err := cl.Get("https://" + net.JoinHostPort("127.0.0.1", fmt.Sprint(port)) + "/status")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("GET /status through loopback after the reload: %s, want 200", resp.Status)
	}
}

// TestHTTPClientCAReplacedOnReload: a client certificate authenticates
// by the client CA in force when the request comes, not by the one of its
// connection's handshake: after a reload that replaces daemon.tls.client_ca,
// a client that keeps its connection open is no longer served.
func TestHTTPClientCAReplacedOnReload(t *testing.T) {
	block := func(h e2e.HTTPTLS, clientCA string) string {
		return fmt.Sprintf("  tls {\n    cert = %q\n    key = %q\n    client_ca = %q\n  }\n", h.Cert, h.Key, clientCA)
	}
	a := newAuthFixture(t, func(h e2e.HTTPTLS) string { return block(h, h.CA) })
	other := e2e.WriteHTTPTLS(t, filepath.Join(t.TempDir(), "other"), net.IPv4(127, 0, 0, 1))
	withCert := a.files.Client(t, a.files.ClientCert, a.files.ClientKey)
	if code, _, body := a.do(t, withCert, "GET", "/status", nil); code != http.StatusOK {
		t.Fatalf("GET /status with a client certificate: %d %s", code, body)
	}
	a.write(topology("4MB", "db1-data") + "daemon {\n  listen = \"0.0.0.0:9187\"\n" + block(a.files, other.CA) + "}\n")
	a.d.forced.Store(true)
	a.d.reload()
	if got := a.d.Spec().Daemon.TLS.ClientCA; got != other.CA {
		t.Fatalf("the file with another client_ca was not taken (%s):\n%s", got, a.log)
	}
	if code, _, _ := a.do(t, withCert, "GET", "/status", nil); code != http.StatusUnauthorized {
		t.Errorf("GET /status on a connection opened before client_ca was replaced, with a certificate of the old CA: %d, want 401", code)
	}
	// A new connection with it fails the handshake.
	if resp, err := a.files.Client(t, a.files.ClientCert, a.files.ClientKey).Get("https://" + a.addr + "/status"); err == nil {
		resp.Body.Close()
		t.Errorf("GET /status on a new connection with a certificate of the old CA: %s, want a failed handshake", resp.Status)
	}
	if code, _, body := a.do(t, a.files.Client(t, other.ClientCert, other.ClientKey), "GET", "/status", nil); code != http.StatusOK {
		t.Errorf("GET /status with a certificate of the new client CA: %d %s, want 200", code, body)
	}
}

// TestHTTPClientFollowsNoRedirect: the Client of the file asks the one
// URL it is given: a redirect, even to another port of the same host over
// plain HTTP, is answered as it is, and the token goes nowhere else.
func TestHTTPClientFollowsNoRedirect(t *testing.T) {
	a := newAuthFixture(t, func(h e2e.HTTPTLS) string { return h.Block(false) })
	var elsewhere []string
	plain := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		elsewhere = append(elsewhere, r.Header.Get("Authorization"))
	}))
	t.Cleanup(plain.Close)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	redirecting := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, plain.URL+"/status", http.StatusFound)
	})}
	go func() { _ = redirecting.ServeTLS(ln, a.files.Cert, a.files.Key) }()
	t.Cleanup(func() { _ = redirecting.Close() })
	c, err := NewClient(a.d.Spec().Daemon, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := c.Get(context.Background(), ln.Addr().String(), "/status")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound {
		t.Errorf("a redirect: %s, want the 302 itself", resp.Status)
	}
	if why := askFailsafe(context.Background(), c, ln.Addr().String(), []byte("{}"), 5*time.Second); why == "" {
		t.Error("a failsafe request answered with a redirect was taken as confirmed")
	}
	plain.Close() // waits for its handlers
	if len(elsewhere) > 0 {
		t.Errorf("the client followed the redirect to %s, with Authorization %q", plain.URL, elsewhere)
	}
}

// TestHTTPEmptyTokenAuthenticatesNobody: a token without a value (a
// Secret that names its file but holds nothing) is no token: an empty
// bearer token or basic password is never taken for it.
func TestHTTPEmptyTokenAuthenticatesNobody(t *testing.T) {
	s, err := newHTTPSecurity(spec.Daemon{Token: spec.NewSecret("", "empty.token")}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for name, prepare := range map[string]func(*http.Request){
		"empty bearer":         func(r *http.Request) { r.Header.Set("Authorization", "Bearer ") },
		"empty basic password": func(r *http.Request) { r.SetBasicAuth("pacsd", "") },
	} {
		r := httptest.NewRequest(http.MethodGet, "/status", nil)
		prepare(r)
		if s.authenticated(r) {
			t.Errorf("%s: authenticated by an empty token", name)
		}
	}
	if s.authenticates() {
		t.Error("an empty token counts as a way to authenticate")
	}
}
