package e2e

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// TLSPort is the port every test host's engine listens on with TLS, at the
// host's address (TestHost.TLSEndpoint).
const TLSPort = "2376"

// tlsValidity is how long the test bed's certificates are valid.
const tlsValidity = 30 * 24 * time.Hour

// TLSFiles names the PEM files a client needs to reach an engine over TLS:
// the certificate authority that signed the engine's certificate, and a
// client certificate that authority signed with its private key. Keys are
// mode 0600, in a directory of mode 0700.
type TLSFiles struct {
	CA   string // the certificate authority
	Cert string // the client certificate
	Key  string // the client certificate's private key
}

// tlsAuthority is a certificate authority of the test bed, kept in memory.
type tlsAuthority struct {
	cert *x509.Certificate
	der  []byte
	key  *ecdsa.PrivateKey
}

// newTLSAuthority makes a self-signed certificate authority (ECDSA P-256).
func newTLSAuthority(name string) (*tlsAuthority, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("while generating the key of certificate authority %s: %w", name, err)
	}
	tmpl, err := certTemplate("pacsd-e2e CA " + name)
	if err != nil {
		return nil, err
	}
	tmpl.IsCA = true
	tmpl.BasicConstraintsValid = true
	tmpl.KeyUsage = x509.KeyUsageCertSign | x509.KeyUsageCRLSign
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("while signing certificate authority %s: %w", name, err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("while reading certificate authority %s back: %w", name, err)
	}
	return &tlsAuthority{cert: cert, der: der, key: key}, nil
}

// certTemplate returns a certificate template with a random serial, valid
// from an hour ago (clocks of containers may lag) for tlsValidity.
func certTemplate(cn string) (*x509.Certificate, error) {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, fmt.Errorf("while drawing a certificate serial: %w", err)
	}
	now := time.Now()
	return &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: cn, Organization: []string{"pacsd end-to-end tests"}},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(tlsValidity),
	}, nil
}

// issue signs a certificate for a server at ips (ExtKeyUsageServerAuth) or,
// with no ips, for a client (ExtKeyUsageClientAuth), and writes it and its
// key as certPath and keyPath.
func (a *tlsAuthority) issue(cn string, ips []net.IP, certPath, keyPath string) error {
	usage := x509.ExtKeyUsageClientAuth
	if len(ips) > 0 {
		usage = x509.ExtKeyUsageServerAuth
	}
	return a.issueFor(cn, ips, []x509.ExtKeyUsage{usage}, certPath, keyPath)
}

// issueFor signs a certificate for ips (its IP SANs, none for a client
// only) with the given extended key usages, and writes it and its key as
// certPath and keyPath.
func (a *tlsAuthority) issueFor(cn string, ips []net.IP, usages []x509.ExtKeyUsage, certPath, keyPath string) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return fmt.Errorf("while generating the key of %s: %w", cn, err)
	}
	tmpl, err := certTemplate(cn)
	if err != nil {
		return err
	}
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature
	tmpl.ExtKeyUsage = usages
	tmpl.IPAddresses = ips
	der, err := x509.CreateCertificate(rand.Reader, tmpl, a.cert, &key.PublicKey, a.key)
	if err != nil {
		return fmt.Errorf("while signing the certificate of %s: %w", cn, err)
	}
	pkcs8, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return fmt.Errorf("while encoding the key of %s: %w", cn, err)
	}
	if err := writePEM(keyPath, "PRIVATE KEY", pkcs8, 0o600); err != nil {
		return err
	}
	return writePEM(certPath, "CERTIFICATE", der, 0o644)
}

// writePEM writes one PEM block as a new file of the given mode (a file left
// there is replaced, so that its mode cannot be looser).
func writePEM(path, typ string, der []byte, mode os.FileMode) error {
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("while replacing %s: %w", path, err)
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY|syscall.O_NOFOLLOW, mode)
	if err != nil {
		return fmt.Errorf("while creating %s: %w", path, err)
	}
	err = pem.Encode(f, &pem.Block{Type: typ, Bytes: der})
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("while writing %s: %w", path, err)
	}
	return nil
}

// tlsDirFiles makes dir (mode 0700) and returns the client's files in it.
func tlsDirFiles(dir string) (TLSFiles, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return TLSFiles{}, fmt.Errorf("while creating %s: %w", dir, err)
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return TLSFiles{}, fmt.Errorf("while restricting %s: %w", dir, err)
	}
	return TLSFiles{
		CA:   filepath.Join(dir, "ca.pem"),
		Cert: filepath.Join(dir, "cert.pem"),
		Key:  filepath.Join(dir, "key.pem"),
	}, nil
}

// hostTLS is what a test host's engine and its clients need for TLS.
type hostTLS struct {
	client                TLSFiles // ca.pem, cert.pem, key.pem
	serverCert, serverKey string   // server-cert.pem, server-key.pem
}

// writeHostTLS makes, in dir, a new certificate authority, a server
// certificate for address (its IP SAN) and a client certificate, both
// signed by that authority. The authority's key is never written.
func writeHostTLS(dir, host, address string) (hostTLS, error) {
	ip := net.ParseIP(address)
	if ip == nil {
		return hostTLS{}, fmt.Errorf("test host %s: address %q is no IP address", host, address)
	}
	files, err := tlsDirFiles(dir)
	if err != nil {
		return hostTLS{}, err
	}
	ca, err := newTLSAuthority(host)
	if err != nil {
		return hostTLS{}, err
	}
	out := hostTLS{client: files, serverCert: filepath.Join(dir, "server-cert.pem"), serverKey: filepath.Join(dir, "server-key.pem")}
	if err := writePEM(files.CA, "CERTIFICATE", ca.der, 0o644); err != nil {
		return hostTLS{}, err
	}
	if err := ca.issue("dockerd "+host, []net.IP{ip}, out.serverCert, out.serverKey); err != nil {
		return hostTLS{}, err
	}
	if err := ca.issue("pacsd", nil, files.Cert, files.Key); err != nil {
		return hostTLS{}, err
	}
	return out, nil
}

// ForeignTLSFiles returns client TLS files of a certificate authority that
// signed no test host's certificate: a client using them trusts no test
// host's engine, and no test host's engine trusts it. They are written into
// a directory of the test, removed when it ends.
func ForeignTLSFiles(t testing.TB) TLSFiles {
	t.Helper()
	files, err := tlsDirFiles(filepath.Join(t.TempDir(), "foreign-tls"))
	if err != nil {
		t.Fatal(err)
	}
	ca, err := newTLSAuthority("foreign")
	if err == nil {
		err = writePEM(files.CA, "CERTIFICATE", ca.der, 0o644)
	}
	if err == nil {
		err = ca.issue("pacsd", nil, files.Cert, files.Key)
	}
	if err != nil {
		t.Fatalf("while making TLS files of a foreign certificate authority: %v", err)
	}
	return files
}
