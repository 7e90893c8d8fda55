package e2e

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pacsd/pacsd/pkg/docker"
)

// TestE2ETestHostTLS proves each test host's engine endpoint over TLS:
// pacsd's Docker adapter reaches it with the host's files, and is refused
// with a certificate authority that did not sign the engine's certificate,
// with a client certificate of another authority, with none, and without
// TLS; the files are private and the engine's certificate names the host's
// address.
func TestE2ETestHostTLS(t *testing.T) {
	h := RequireTestHost(t)
	if want := "tcp://" + h.Address + ":" + TLSPort; h.TLSEndpoint != want {
		t.Errorf("test host %s: TLSEndpoint %q, want %q", h.Name, h.TLSEndpoint, want)
	}
	checkTLSFiles(t, h)

	ping := func(endpoint string, files *docker.TLSFiles) error {
		rt, err := docker.New(endpoint, files, h.Address)
		if err != nil {
			return err
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return rt.Ping(ctx)
	}
	own := &docker.TLSFiles{CA: h.TLSFiles.CA, Cert: h.TLSFiles.Cert, Key: h.TLSFiles.Key}
	if err := ping(h.TLSEndpoint, own); err != nil {
		t.Fatalf("test host %s: pacsd's Docker adapter does not reach the engine at %s with the host's TLS files: %v", h.Name, h.TLSEndpoint, err)
	}
	foreign := ForeignTLSFiles(t)
	for _, c := range []struct {
		name  string
		files *docker.TLSFiles
		want  string // in the error
	}{
		{"a certificate authority that did not sign the engine's certificate",
			&docker.TLSFiles{CA: foreign.CA, Cert: h.TLSFiles.Cert, Key: h.TLSFiles.Key}, "certificate signed by unknown authority"},
		{"a client certificate of another authority",
			&docker.TLSFiles{CA: h.TLSFiles.CA, Cert: foreign.Cert, Key: foreign.Key}, "bad certificate"},
		{"no client certificate", &docker.TLSFiles{CA: h.TLSFiles.CA}, "bad certificate"},
		{"no TLS", nil, "HTTP request to an HTTPS server"},
	} {
		err := ping(h.TLSEndpoint, c.files)
		if err == nil {
			t.Errorf("test host %s: a client with %s reaches the engine at %s; it must be refused", h.Name, c.name, h.TLSEndpoint)
			continue
		}
		if !strings.Contains(err.Error(), c.want) {
			t.Errorf("test host %s: a client with %s is refused with %q, want it to say %q", h.Name, c.name, err, c.want)
		}
		t.Logf("refused, with %s: %v", c.name, err)
	}
}

// checkTLSFiles checks that the host's TLS files are private PEM files, and
// that the engine's certificate names the host's address and, like the
// client's, was signed by the host's authority.
func checkTLSFiles(t *testing.T, h *TestHost) {
	t.Helper()
	if st, err := os.Stat(h.tlsDir); err != nil || st.Mode().Perm() != 0o700 {
		t.Errorf("test host %s: TLS directory %s: %v, want mode 0700", h.Name, h.tlsDir, err)
	}
	for _, key := range []string{h.TLSFiles.Key, h.tls.serverKey} {
		if st, err := os.Stat(key); err != nil || st.Mode().Perm() != 0o600 {
			t.Errorf("test host %s: key %s: %v, want mode 0600", h.Name, key, err)
		}
		if filepath.Dir(key) != h.tlsDir {
			t.Errorf("test host %s: key %s is not in %s", h.Name, key, h.tlsDir)
		}
	}
	readCert := func(path string) *x509.Certificate {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("test host %s: %v", h.Name, err)
		}
		blk, _ := pem.Decode(b)
		if blk == nil || blk.Type != "CERTIFICATE" {
			t.Fatalf("test host %s: %s holds no PEM certificate", h.Name, path)
		}
		c, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			t.Fatalf("test host %s: %s: %v", h.Name, path, err)
		}
		return c
	}
	roots := x509.NewCertPool()
	roots.AddCert(readCert(h.TLSFiles.CA))
	server := readCert(h.tls.serverCert)
	if _, err := server.Verify(x509.VerifyOptions{Roots: roots, DNSName: h.Address}); err != nil {
		t.Errorf("test host %s: the engine's certificate is not valid for %s under the host's authority: %v", h.Name, h.Address, err)
	}
	if len(server.IPAddresses) != 1 || !server.IPAddresses[0].Equal(net.ParseIP(h.Address)) || len(server.DNSNames) != 0 {
		t.Errorf("test host %s: the engine's certificate names %v %v, want only %s", h.Name, server.IPAddresses, server.DNSNames, h.Address)
	}
	if _, err := readCert(h.TLSFiles.Cert).Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Errorf("test host %s: the client certificate is not valid for clients under the host's authority: %v", h.Name, err)
	}
}

// tlsPing pings the host's engine at TLSEndpoint through pacsd's Docker
// adapter with the host's TLS files.
func tlsPing(h *TestHost, timeout time.Duration) error {
	rt, err := docker.New(h.TLSEndpoint, &docker.TLSFiles{CA: h.TLSFiles.CA, Cert: h.TLSFiles.Cert, Key: h.TLSFiles.Key}, h.Address)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return rt.Ping(ctx)
}
