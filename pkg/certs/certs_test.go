package certs

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

var t0 = time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)

func newCA(t *testing.T, cluster string) (*Authority, []byte) {
	t.Helper()
	a, key, err := NewAuthority(cluster, t0)
	if err != nil {
		t.Fatal(err)
	}
	return a, key
}

func issue(t *testing.T, a *Authority, names []string, now time.Time, lifetime time.Duration) (certPEM, keyPEM []byte) {
	t.Helper()
	c, k, err := a.Issue(names, now, lifetime)
	if err != nil {
		t.Fatal(err)
	}
	return c, k
}

func parseFirst(t *testing.T, b []byte) *x509.Certificate {
	t.Helper()
	c, err := firstCertificate(b)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// selfSigned makes a CA certificate for key with tmpl's fields (a serial
// number, a name and a validity are filled in when missing).
func selfSigned(t *testing.T, key crypto.Signer, tmpl *x509.Certificate) []byte {
	t.Helper()
	return signedBy(t, key.Public(), tmpl, tmpl, key)
}

func signedBy(t *testing.T, pub crypto.PublicKey, tmpl, parent *x509.Certificate, signer crypto.Signer) []byte {
	t.Helper()
	if tmpl.SerialNumber == nil {
		tmpl.SerialNumber = big.NewInt(time.Now().UnixNano())
	}
	if tmpl.Subject.CommonName == "" {
		tmpl.Subject = pkix.Name{CommonName: "test " + t.Name()}
	}
	if tmpl.NotAfter.IsZero() {
		tmpl.NotBefore, tmpl.NotAfter = t0.Add(-time.Hour), t0.AddDate(5, 0, 0)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, signer)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

func caTemplate() *x509.Certificate {
	return &x509.Certificate{IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
}

func pemOf(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}

func pkcs8(t *testing.T, key crypto.PrivateKey) []byte {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pemOf("PRIVATE KEY", der)
}

func ecKey(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// TestNewAuthority: the CA is what the contract says, and its PEM and key
// read back as the same CA.
func TestNewAuthority(t *testing.T) {
	a, key := newCA(t, "pacs")
	c := parseFirst(t, a.CertPEM())
	type ca struct {
		CN                      string
		IsCA, Constraints, Zero bool
		MaxPathLen              int
		Usage                   x509.KeyUsage
		NotBefore, NotAfter     time.Time
		SelfSigned              bool
		Curve                   string
		SerialBits              bool
	}
	pub, _ := c.PublicKey.(*ecdsa.PublicKey)
	curve := ""
	if pub != nil {
		curve = pub.Curve.Params().Name
	}
	got := ca{
		CN: c.Subject.CommonName, IsCA: c.IsCA, Constraints: c.BasicConstraintsValid, Zero: c.MaxPathLenZero,
		MaxPathLen: c.MaxPathLen, Usage: c.KeyUsage, NotBefore: c.NotBefore.UTC(), NotAfter: c.NotAfter.UTC(),
		SelfSigned: c.CheckSignatureFrom(c) == nil, Curve: curve,
		SerialBits: c.SerialNumber.Sign() > 0 && c.SerialNumber.BitLen() <= 128,
	}
	want := ca{
		CN: "pacsd CA of cluster pacs", IsCA: true, Constraints: true, Zero: true,
		Usage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign, NotBefore: t0.Add(-5 * time.Minute), NotAfter: t0.AddDate(10, 0, 0),
		SelfSigned: true, Curve: "P-256", SerialBits: true,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("CA certificate (-want +got):\n%s", diff)
	}
	if b, _ := pem.Decode(key); b == nil || b.Type != "PRIVATE KEY" {
		t.Errorf("key PEM: %q, want a PKCS#8 PRIVATE KEY", key)
	}
	b, err := ParseAuthority(a.CertPEM(), key)
	if err != nil {
		t.Fatalf("ParseAuthority of a new CA: %v", err)
	}
	if !bytes.Equal(b.CertPEM(), a.CertPEM()) {
		t.Error("ParseAuthority: CertPEM differs from the new CA's")
	}
	if _, _, err := NewAuthority("", t0); err == nil {
		t.Error("NewAuthority of an unnamed cluster: no error")
	}
	other, _ := newCA(t, "pacs")
	if parseFirst(t, other.CertPEM()).SerialNumber.Cmp(c.SerialNumber) == 0 {
		t.Error("two CAs have one serial number")
	}
}

// TestIssue: the node certificate is what the contract says.
func TestIssue(t *testing.T) {
	a, _ := newCA(t, "pacs")
	cert, key := issue(t, a, []string{"pacs-db1", "db", "10.0.0.12", "DB", "[::1]", "10.0.0.12", "db-ro."}, t0, 0)
	c := parseFirst(t, cert)
	type node struct {
		CN                  string
		DNS                 []string
		IPs                 []string
		Usage               x509.KeyUsage
		Ext                 []x509.ExtKeyUsage
		IsCA                bool
		NotBefore, NotAfter time.Time
		Blocks              int
		KeyType             string
	}
	var ips []string
	for _, ip := range c.IPAddresses {
		ips = append(ips, ip.String())
	}
	kb, _ := pem.Decode(key)
	got := node{
		CN: c.Subject.CommonName, DNS: c.DNSNames, IPs: ips, Usage: c.KeyUsage, Ext: c.ExtKeyUsage, IsCA: c.IsCA,
		NotBefore: c.NotBefore.UTC(), NotAfter: c.NotAfter.UTC(), Blocks: bytes.Count(cert, []byte("BEGIN CERTIFICATE")), KeyType: kb.Type,
	}
	want := node{
		CN: "pacs-db1", DNS: []string{"pacs-db1", "db", "10.0.0.12", "::1", "db-ro."}, IPs: []string{"10.0.0.12", "::1"},
		Usage: x509.KeyUsageDigitalSignature, Ext: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		NotBefore: t0.Add(-5 * time.Minute), NotAfter: t0.Add(DefaultLifetime), Blocks: 1, KeyType: "PRIVATE KEY",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("node certificate (-want +got):\n%s", diff)
	}
	if pub, ok := c.PublicKey.(*ecdsa.PublicKey); !ok || pub.Curve != elliptic.P256() {
		t.Errorf("node key: %T, want ECDSA P-256", c.PublicKey)
	}
	if _, err := x509.ParsePKCS8PrivateKey(kb.Bytes); err != nil {
		t.Errorf("node key is not PKCS#8: %v", err)
	}
	if !KeyMatches(cert, key) {
		t.Error("KeyMatches of an issued certificate and its key: false")
	}
	_, key2 := issue(t, a, []string{"pacs-db1"}, t0, time.Hour)
	if KeyMatches(cert, key2) {
		t.Error("KeyMatches of a certificate and another certificate's key: true")
	}
}

// TestIssueCapsAtCA: a certificate never outlives its CA, and an expired
// CA issues nothing.
func TestIssueCapsAtCA(t *testing.T) {
	a, _ := newCA(t, "pacs")
	caEnd := parseFirst(t, a.CertPEM()).NotAfter
	now := caEnd.Add(-30 * 24 * time.Hour)
	cert, _ := issue(t, a, []string{"db"}, now, DefaultLifetime)
	if got := parseFirst(t, cert).NotAfter; !got.Equal(caEnd) {
		t.Errorf("NotAfter %v, want the CA's %v", got, caEnd)
	}
	if ok, why := Check(cert, a.CertPEM(), []string{"db"}, now.Add(time.Hour), DefaultLifetime); !ok {
		t.Errorf("Check of a certificate cut short by its CA's end: %s", why)
	}
	_, _, err := a.Issue([]string{"db"}, caEnd, DefaultLifetime)
	if err == nil || !strings.Contains(err.Error(), "expired") {
		t.Errorf("Issue by an expired CA: %v, want an error saying it expired", err)
	}
}

func TestIssueRefuses(t *testing.T) {
	a, _ := newCA(t, "pacs")
	for _, tc := range []struct {
		name     string
		names    []string
		lifetime time.Duration
		want     string
	}{
		{"no names", nil, time.Hour, "no names were given"},
		{"empty name", []string{"db", ""}, time.Hour, `the name "" is empty`},
		{"space", []string{"db one"}, time.Hour, `holds ' '`},
		{"empty label", []string{"db..x"}, time.Hour, "empty label"},
		{"long label", []string{strings.Repeat("a", 64)}, time.Hour, "longer than 63"},
		{"negative lifetime", []string{"db"}, -time.Hour, "is negative"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := a.Issue(tc.names, t0, tc.lifetime)
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "while issuing") {
				t.Errorf("Issue: %v, want an error saying %q", err, tc.want)
			}
		})
	}
}

// TestCheck: what Check keeps and why it does not keep the rest.
func TestCheck(t *testing.T) {
	a, _ := newCA(t, "pacs")
	other, _ := newCA(t, "pacs")
	names := []string{"pacs-db1", "db", "db-ro", "10.0.0.12", "fd00::12"}
	cert, _ := issue(t, a, names, t0, DefaultLifetime)
	short, _ := issue(t, a, names, t0, 24*time.Hour)
	foreign, _ := issue(t, other, names, t0, DefaultLifetime)
	clientOnly := signedBy(t, ecKey(t).Public(), &x509.Certificate{
		DNSNames: names, NotBefore: t0.Add(-time.Hour), NotAfter: t0.Add(time.Hour),
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}, a.cert, a.signer)
	end := "2027-03-03 10:00 UTC" // t0 + 90 days
	type result struct {
		OK  bool
		Why string
	}
	for _, tc := range []struct {
		name     string
		cert, ca []byte
		names    []string
		now      time.Time
		lifetime time.Duration
		want     result
	}{
		{"kept", cert, a.CertPEM(), names, t0.Add(time.Hour), DefaultLifetime, result{true, ""}},
		{"default lifetime", cert, a.CertPEM(), names, t0.Add(time.Hour), 0, result{true, ""}},
		{"some names", cert, a.CertPEM(), []string{"db"}, t0.Add(time.Hour), DefaultLifetime, result{true, ""}},
		{"no names", cert, a.CertPEM(), nil, t0.Add(time.Hour), DefaultLifetime, result{true, ""}},
		{"other case", cert, a.CertPEM(), []string{"PACS-DB1", "db-ro."}, t0.Add(time.Hour), DefaultLifetime, result{true, ""}},
		{"IPv6 in brackets", cert, a.CertPEM(), []string{"[fd00::12]"}, t0.Add(time.Hour), DefaultLifetime, result{true, ""}},
		{"just issued", cert, a.CertPEM(), names, t0, DefaultLifetime, result{true, ""}},
		{"DNS name missing", cert, a.CertPEM(), append(names[:3:3], "db-rw"), t0.Add(time.Hour), DefaultLifetime,
			result{false, "the certificate does not name db-rw"}},
		{"IP missing", cert, a.CertPEM(), append(names[:2:2], "10.0.0.13", "db-x"), t0.Add(time.Hour), DefaultLifetime,
			result{false, "the certificate does not name 10.0.0.13, db-x"}},
		{"IP as a DNS name", cert, a.CertPEM(), []string{"10.0.0.12.nip.io"}, t0.Add(time.Hour), DefaultLifetime,
			result{false, "the certificate does not name 10.0.0.12.nip.io"}},
		{"other CA", foreign, a.CertPEM(), names, t0.Add(time.Hour), DefaultLifetime,
			result{false, "the certificate is not signed by the cluster's CA"}},
		{"client only", clientOnly, a.CertPEM(), names, t0, DefaultLifetime,
			result{false, "the certificate may not serve TLS (it lacks the server authentication usage)"}},
		// Valid until t0+90d: due once a third of the lifetime (30 days)
		// is left, at t0+60d; the backdate does not count.
		{"before two thirds", cert, a.CertPEM(), names, t0.Add(60*24*time.Hour - time.Nanosecond), DefaultLifetime, result{true, ""}},
		{"at two thirds", cert, a.CertPEM(), names, t0.Add(60 * 24 * time.Hour), DefaultLifetime,
			result{false, "the certificate expires " + end + " and is renewed after two thirds of its lifetime"}},
		{"expired", cert, a.CertPEM(), names, t0.Add(91 * 24 * time.Hour), DefaultLifetime,
			result{false, "the certificate expired " + end}},
		{"not valid yet", cert, a.CertPEM(), names, t0.Add(-time.Hour), DefaultLifetime,
			result{false, "the certificate is not valid before 2026-12-03 09:55 UTC"}},
		{"lifetime shortened", cert, a.CertPEM(), names, t0.Add(time.Hour), 30 * 24 * time.Hour,
			result{false, "the certificate is valid for 90 days, longer than the configured lifetime of 30 days"}},
		{"lifetime lengthened", short, a.CertPEM(), names, t0.Add(time.Hour), DefaultLifetime, result{true, ""}},
		{"short lifetime kept", short, a.CertPEM(), names, t0.Add(time.Hour), 24 * time.Hour, result{true, ""}},
		{"short lifetime due", short, a.CertPEM(), names, t0.Add(16 * time.Hour), 24 * time.Hour,
			result{false, "the certificate expires 2026-12-04 10:00 UTC and is renewed after two thirds of its lifetime"}},
		{"shortened to hours", cert, a.CertPEM(), names, t0.Add(time.Hour), 36 * time.Hour,
			result{false, "the certificate is valid for 90 days, longer than the configured lifetime of 36h0m"}},
		{"no certificate", nil, a.CertPEM(), names, t0, DefaultLifetime, result{false, "no certificate"}},
		{"blank certificate", []byte("\n \n"), a.CertPEM(), names, t0, DefaultLifetime, result{false, "no certificate"}},
		{"not PEM", []byte("hello"), a.CertPEM(), names, t0, DefaultLifetime,
			result{false, "the certificate cannot be read: it holds no PEM certificate"}},
		{"no CA", cert, nil, names, t0, DefaultLifetime,
			result{false, "the cluster's CA certificate cannot be read: it holds no PEM certificate"}},
		{"negative lifetime", cert, a.CertPEM(), names, t0, -time.Hour, result{false, "the configured lifetime -1h0m0s is negative"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ok, why := Check(tc.cert, tc.ca, tc.names, tc.now, tc.lifetime)
			if diff := cmp.Diff(tc.want, result{ok, why}); diff != "" {
				t.Errorf("Check (-want +got):\n%s", diff)
			}
		})
	}
}

// TestCheckExpiredCA: a certificate of a CA that expired is not kept, and
// the reason names the CA.
func TestCheckExpiredCA(t *testing.T) {
	key := ecKey(t)
	ca := selfSigned(t, key, &x509.Certificate{IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
		NotBefore: t0.Add(-48 * time.Hour), NotAfter: t0})
	a, err := ParseAuthority(ca, pkcs8(t, key))
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := issue(t, a, []string{"db"}, t0.Add(-time.Hour), time.Hour)
	// The certificate ends with its CA; a CA edited to end sooner than
	// its certificates is what this looks at.
	leaf := parseFirst(t, cert)
	tmpl := &x509.Certificate{SerialNumber: leaf.SerialNumber, Subject: leaf.Subject, DNSNames: leaf.DNSNames,
		NotBefore: leaf.NotBefore, NotAfter: t0.Add(time.Hour), ExtKeyUsage: leaf.ExtKeyUsage}
	longer := signedBy(t, leaf.PublicKey, tmpl, a.cert, a.signer)
	ok, why := Check(longer, ca, []string{"db"}, t0.Add(time.Minute), time.Hour)
	if diff := cmp.Diff("the cluster's CA expired 2026-12-03 10:00 UTC", why); ok || diff != "" {
		t.Errorf("Check with an expired CA: %v (-want +got):\n%s", ok, diff)
	}
}

// TestParseAuthority: an operator's own CA of any key type is taken; what
// is no CA, or not its key, is refused with what is wrong.
func TestParseAuthority(t *testing.T) {
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	_, edKey, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ec := ecKey(t)
	sec1, err := x509.MarshalECPrivateKey(ec)
	if err != nil {
		t.Fatal(err)
	}
	ecParams := pemOf("EC PARAMETERS", []byte{0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07})

	rsaCA := selfSigned(t, rsaKey, caTemplate())
	edCA := selfSigned(t, edKey, caTemplate())
	ecCA := selfSigned(t, ec, caTemplate())
	noUsage := selfSigned(t, ec, &x509.Certificate{IsCA: true, BasicConstraintsValid: true})
	leafKey := ecKey(t)
	notCA := selfSigned(t, leafKey, &x509.Certificate{KeyUsage: x509.KeyUsageDigitalSignature, BasicConstraintsValid: true})
	signOnly := selfSigned(t, ec, &x509.Certificate{IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageDigitalSignature})
	encrypted := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Headers: map[string]string{"Proc-Type": "4,ENCRYPTED", "DEK-Info": "AES-128-CBC,00"}, Bytes: []byte{1}})

	for _, tc := range []struct {
		name      string
		cert, key []byte
		want      string // "" to accept; else a part of the error
	}{
		{"RSA PKCS#1", rsaCA, pemOf("RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(rsaKey)), ""},
		{"RSA PKCS#8", rsaCA, pkcs8(t, rsaKey), ""},
		{"Ed25519 PKCS#8", edCA, pkcs8(t, edKey), ""},
		{"ECDSA SEC 1 after EC PARAMETERS", ecCA, append(ecParams, pemOf("EC PRIVATE KEY", sec1)...), ""},
		{"CA without key usage", noUsage, pkcs8(t, ec), ""},
		{"not a CA", notCA, pkcs8(t, leafKey), "it is not a certificate authority"},
		{"CA that may not sign certificates", signOnly, pkcs8(t, ec), "it may not sign certificates"},
		{"key of another certificate", rsaCA, pkcs8(t, ec), "the private key does not belong to its certificate"},
		{"key of another CA", ecCA, pkcs8(t, edKey), "does not belong"},
		{"no certificate", nil, pkcs8(t, ec), "holds no PEM certificate"},
		{"damaged certificate", pemOf("CERTIFICATE", []byte("nope")), pkcs8(t, ec), "cannot be parsed"},
		{"no key", ecCA, nil, "holds no PEM private key"},
		{"key is a certificate", ecCA, ecCA, "holds no PEM private key"},
		{"damaged key", ecCA, pemOf("PRIVATE KEY", []byte("nope")), "its PRIVATE KEY cannot be parsed"},
		{"encrypted key", rsaCA, encrypted, "the key is encrypted"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, err := ParseAuthority(tc.cert, tc.key)
			if tc.want != "" {
				if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "while reading") {
					t.Fatalf("ParseAuthority: %v, want an error saying %q", err, tc.want)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseAuthority: %v", err)
			}
			cert, key := issue(t, a, []string{"db", "127.0.0.1"}, t0, 0)
			if ok, why := Check(cert, a.CertPEM(), []string{"db", "127.0.0.1"}, t0, 0); !ok {
				t.Errorf("Check of a certificate the CA issued: %s", why)
			}
			if !KeyMatches(cert, key) {
				t.Error("KeyMatches of an issued certificate: false")
			}
			if !KeyMatches(tc.cert, tc.key) {
				t.Error("KeyMatches of the CA and its key: false")
			}
		})
	}
}

func TestKeyMatches(t *testing.T) {
	a, caKey := newCA(t, "pacs")
	cert, key := issue(t, a, []string{"db"}, t0, 0)
	_, otherKey := issue(t, a, []string{"db"}, t0, 0)
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	rsaCert := selfSigned(t, rsaKey, caTemplate())
	for _, tc := range []struct {
		name      string
		cert, key []byte
		want      bool
	}{
		{"its key", cert, key, true},
		{"the CA and its key", a.CertPEM(), caKey, true},
		{"RSA PKCS#1", rsaCert, pemOf("RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(rsaKey)), true},
		{"another key", cert, otherKey, false},
		{"the CA's key", cert, caKey, false},
		{"an RSA key", cert, pkcs8(t, rsaKey), false},
		{"no key", cert, nil, false},
		{"no certificate", nil, key, false},
		{"garbage", []byte("x"), []byte("y"), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := KeyMatches(tc.cert, tc.key); got != tc.want {
				t.Errorf("KeyMatches = %v, want %v", got, tc.want)
			}
		})
	}
}

// serveTLS serves TLS handshakes with cert and key on a loopback port,
// asking clients for a certificate of clientCAs when it is not nil, and
// returns the address.
func serveTLS(t *testing.T, cert, key []byte, clientCAs *x509.CertPool) string {
	t.Helper()
	pair, err := tls.X509KeyPair(cert, key)
	if err != nil {
		t.Fatalf("tls.X509KeyPair of an issued certificate: %v", err)
	}
	cfg := &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12}
	if clientCAs != nil {
		cfg.ClientAuth, cfg.ClientCAs = tls.RequireAndVerifyClientCert, clientCAs
	}
	l, err := tls.Listen("tcp", "127.0.0.1:0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(10 * time.Second))
				if c.(*tls.Conn).Handshake() == nil {
					_, _ = c.Write([]byte("ok"))
				}
			}()
		}
	}()
	return l.Addr().String()
}

// dial makes a TLS handshake with addr as serverName, trusting roots, and
// reads what the server writes once it accepted the handshake.
func dial(addr, serverName string, roots *x509.CertPool, client []tls.Certificate) error {
	d := &net.Dialer{Timeout: 10 * time.Second}
	c, err := tls.DialWithDialer(d, "tcp", addr, &tls.Config{RootCAs: roots, ServerName: serverName, Certificates: client, MinVersion: tls.VersionTLS12})
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	b := make([]byte, 2)
	if _, err := c.Read(b); err != nil {
		return err
	}
	if string(b) != "ok" {
		return errors.New("the server answered " + string(b))
	}
	return nil
}

// TestTLSHandshake: a client that trusts the CA reaches a node by each of
// its names and by none other; a node's certificate also authenticates it
// as a client (a standby to its primary).
func TestTLSHandshake(t *testing.T) {
	now := time.Now()
	a, _, err := NewAuthority("pacs", now)
	if err != nil {
		t.Fatal(err)
	}
	names := []string{"pacs-db1", "db", "127.0.0.1"}
	cert, key := issue(t, a, names, now, time.Hour)
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(a.CertPEM()) {
		t.Fatal("CertPEM holds no certificate")
	}
	addr := serveTLS(t, cert, key, roots)
	clientCert, clientKey := issue(t, a, []string{"pacs-db2"}, now, time.Hour)
	pair, err := tls.X509KeyPair(clientCert, clientKey)
	if err != nil {
		t.Fatal(err)
	}
	client := []tls.Certificate{pair}
	for _, n := range names {
		if err := dial(addr, n, roots, client); err != nil {
			t.Errorf("handshake as %q: %v", n, err)
		}
	}
	var hostErr x509.HostnameError
	if err := dial(addr, "db-ro", roots, client); !errors.As(err, &hostErr) {
		t.Errorf("handshake as a name not in the certificate: %v, want an x509.HostnameError", err)
	}
	other, _, err := NewAuthority("pacs", now)
	if err != nil {
		t.Fatal(err)
	}
	otherRoots := x509.NewCertPool()
	otherRoots.AppendCertsFromPEM(other.CertPEM())
	var unknown x509.UnknownAuthorityError
	if err := dial(addr, "db", otherRoots, client); !errors.As(err, &unknown) {
		t.Errorf("handshake trusting another CA: %v, want an x509.UnknownAuthorityError", err)
	}
	foreignCert, foreignKey := issue(t, other, []string{"pacs-db2"}, now, time.Hour)
	foreign, err := tls.X509KeyPair(foreignCert, foreignKey)
	if err != nil {
		t.Fatal(err)
	}
	if err := dial(addr, "db", roots, []tls.Certificate{foreign}); err == nil {
		t.Error("a client with a certificate of another CA was accepted")
	}
}

// TestTLSHandshakeIntermediate: a node certificate of an operator's
// intermediate CA carries the intermediate, so that a client trusting only
// the root (or only the intermediate) verifies it.
func TestTLSHandshakeIntermediate(t *testing.T) {
	rootKey, midKey := ecKey(t), ecKey(t)
	now := time.Now()
	rootTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "operator root"}, IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign, NotBefore: now.Add(-time.Hour), NotAfter: now.AddDate(1, 0, 0)}
	rootPEM := selfSigned(t, rootKey, rootTmpl)
	root := parseFirst(t, rootPEM)
	midPEM := signedBy(t, midKey.Public(), &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "operator pacsd CA"},
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign, NotBefore: now.Add(-time.Hour), NotAfter: now.AddDate(1, 0, 0)},
		root, rootKey)
	// The intermediate alone verifies in Go but not in libpq: refused.
	if _, err := ParseAuthority(midPEM, pkcs8(t, midKey)); err == nil || !strings.Contains(err.Error(), "self-signed root") {
		t.Errorf("an intermediate CA without its root: %v; want it refused, naming the root", err)
	}
	a, err := ParseAuthority(append(append([]byte{}, midPEM...), rootPEM...), pkcs8(t, midKey))
	if err != nil {
		t.Fatal(err)
	}
	if got := bytes.Count(a.CertPEM(), []byte("BEGIN CERTIFICATE")); got != 2 {
		t.Errorf("CertPEM holds %d certificates, want the intermediate and the root", got)
	}
	cert, key := issue(t, a, []string{"db"}, now, time.Hour)
	if got := bytes.Count(cert, []byte("BEGIN CERTIFICATE")); got != 2 {
		t.Errorf("the node's certificate PEM holds %d certificates, want the node's and the intermediate", got)
	}
	if ok, why := Check(cert, a.CertPEM(), []string{"db"}, now, time.Hour); !ok {
		t.Errorf("Check: %s", why)
	}
	addr := serveTLS(t, cert, key, nil)
	for name, anchor := range map[string][]byte{"root": rootPEM, "intermediate": midPEM, "CertPEM": a.CertPEM()} {
		roots := x509.NewCertPool()
		roots.AppendCertsFromPEM(anchor)
		if err := dial(addr, "db", roots, nil); err != nil {
			t.Errorf("handshake trusting the %s: %v", name, err)
		}
	}
}

func TestHuman(t *testing.T) {
	for d, want := range map[time.Duration]string{
		DefaultLifetime + 5*time.Minute: "90 days",
		24 * time.Hour:                  "1 day",
		36 * time.Hour:                  "36h0m",
		90 * time.Minute:                "1h30m",
	} {
		if got := human(d); got != want {
			t.Errorf("human(%v) = %q, want %q", d, got, want)
		}
	}
}
