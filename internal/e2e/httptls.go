package e2e

import (
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// HTTPTLS names the files a test gives pacsd's daemon block for its HTTP
// endpoints (daemon.tls and daemon.token_file), made by WriteHTTPTLS: a
// certificate authority of its own, pacsd's certificate signed by it, a
// client certificate signed by it, one signed by another authority, and a
// token. Keys and the token are mode 0600.
type HTTPTLS struct {
	// CA is the certificate authority that signed Cert and ClientCert
	// (daemon.tls.ca and client_ca).
	CA string
	// Cert and Key are pacsd's certificate (daemon.tls.cert and key): for
	// the addresses given to WriteHTTPTLS, for server and for client
	// authentication (pacsd presents it to other pacsd with client_ca).
	Cert, Key string
	// ClientCert and ClientKey are a client certificate CA signed.
	ClientCert, ClientKey string
	// ForeignCert and ForeignKey are a client certificate of another
	// authority: pacsd must not take it.
	ForeignCert, ForeignKey string
	// TokenFile holds Token (daemon.token_file).
	TokenFile, Token string
}

// WriteHTTPTLS makes HTTPTLS's files in dir (created, mode 0700) for a
// pacsd reached at ips; it fails the test when it cannot.
func WriteHTTPTLS(t testing.TB, dir string, ips ...net.IP) HTTPTLS {
	t.Helper()
	h, err := writeHTTPTLS(dir, ips)
	if err != nil {
		t.Fatalf("while making the TLS files and token of pacsd's HTTP endpoints in %s: %v", dir, err)
	}
	return h
}

func writeHTTPTLS(dir string, ips []net.IP) (HTTPTLS, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return HTTPTLS{}, err
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return HTTPTLS{}, err
	}
	in := func(name string) string { return filepath.Join(dir, name) }
	h := HTTPTLS{CA: in("http-ca.pem"), Cert: in("pacsd.pem"), Key: in("pacsd-key.pem"), ClientCert: in("client.pem"), ClientKey: in("client-key.pem"),
		ForeignCert: in("foreign.pem"), ForeignKey: in("foreign-key.pem"), TokenFile: in("pacsd.token")}
	ca, err := newTLSAuthority("pacsd HTTP")
	if err != nil {
		return HTTPTLS{}, err
	}
	foreign, err := newTLSAuthority("foreign")
	if err != nil {
		return HTTPTLS{}, err
	}
	both := []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}
	for _, step := range []func() error{
		func() error { return writePEM(h.CA, "CERTIFICATE", ca.der, 0o644) },
		func() error { return ca.issueFor("pacsd", ips, both, h.Cert, h.Key) },
		func() error { return ca.issue("pacsd client", nil, h.ClientCert, h.ClientKey) },
		func() error { return foreign.issue("foreign client", nil, h.ForeignCert, h.ForeignKey) },
	} {
		if err := step(); err != nil {
			return HTTPTLS{}, err
		}
	}
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return HTTPTLS{}, fmt.Errorf("while drawing a token: %w", err)
	}
	h.Token = hex.EncodeToString(b)
	if err := os.WriteFile(h.TokenFile, []byte(h.Token+"\n"), 0o600); err != nil {
		return HTTPTLS{}, fmt.Errorf("while writing the token file: %w", err)
	}
	return h, nil
}

// Block returns the lines of a daemon block that use these files:
// token_file, and tls with cert, key and ca, and client_ca when clientCA.
func (h HTTPTLS) Block(clientCA bool) string {
	var b strings.Builder
	fmt.Fprintf(&b, "  token_file = %q\n  tls {\n    cert = %q\n    key  = %q\n    ca   = %q\n", h.TokenFile, h.Cert, h.Key, h.CA)
	if clientCA {
		fmt.Fprintf(&b, "    client_ca = %q\n", h.CA)
	}
	b.WriteString("  }\n")
	return b.String()
}

// Client returns an HTTPS client that trusts CA and presents the client
// certificate certPath/keyPath (none when certPath is ""), with no proxy.
func (h HTTPTLS) Client(t testing.TB, certPath, keyPath string) *http.Client {
	t.Helper()
	b, err := os.ReadFile(h.CA)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(b)
	conf := &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	if certPath != "" {
		pair, err := tls.LoadX509KeyPair(certPath, keyPath)
		if err != nil {
			t.Fatal(err)
		}
		conf.Certificates = []tls.Certificate{pair}
	}
	return &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{Proxy: nil, TLSClientConfig: conf}}
}
