package certs

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math"
	"math/big"
	"net"
	"strings"
	"time"
)

// DefaultLifetime is the lifetime of node certificates when the spec gives
// none: 90 days.
const DefaultLifetime = 90 * 24 * time.Hour

const (
	// backdate is how long before the time given a certificate starts, so
	// that a peer whose clock is a little behind accepts it.
	backdate = 5 * time.Minute
	// caYears is the lifetime of a CA NewAuthority makes.
	caYears = 10
	// lifetimeSlack is how much longer than the configured lifetime a
	// certificate may be valid before Check says the lifetime was
	// shortened (Issue makes them backdate longer).
	lifetimeSlack = 10 * time.Minute
	// timeFormat is how Check's reasons give a time.
	timeFormat = "2006-01-02 15:04 UTC"
)

// Authority is a certificate authority that issues node certificates: a
// CA certificate and its private key. It is made by NewAuthority or
// ParseAuthority and is safe for concurrent use.
type Authority struct {
	cert   *x509.Certificate
	signer crypto.Signer
	// certPEM is every certificate of the CA's PEM, the CA first.
	certPEM []byte
	// chain is what Issue sends after a node's certificate: the
	// certificates of the CA's PEM that are not self-signed (an operator's
	// intermediate CA and the intermediates above it), so that a client
	// that trusts only the root verifies a node too. Empty for a root CA.
	chain []byte
}

// NewAuthority creates a CA for cluster: an ECDSA P-256 key and a
// self-signed certificate named "pacsd CA of cluster <cluster>" that may
// sign certificates and CRLs but no further CA (path length 0), valid from
// five minutes before now for ten years, with a random 128-bit serial
// number. It returns the authority and its private key as PKCS#8 PEM
// ("PRIVATE KEY"), for the cluster store to keep; the certificate is
// a.CertPEM(). It refuses an empty cluster name.
func NewAuthority(cluster string, now time.Time) (a *Authority, keyPEM []byte, err error) {
	if cluster == "" {
		return nil, nil, errors.New("while creating a certificate authority: the cluster has no name; give the cluster's name")
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("while creating the key of cluster %q's certificate authority: %w", cluster, err)
	}
	serial, err := newSerial()
	if err != nil {
		return nil, nil, fmt.Errorf("while creating cluster %q's certificate authority: %w", cluster, err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "pacsd CA of cluster " + cluster},
		NotBefore:             now.Add(-backdate),
		NotAfter:              now.AddDate(caYears, 0, 0),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		MaxPathLen:            0,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, nil, fmt.Errorf("while signing cluster %q's CA certificate: %w", cluster, err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, fmt.Errorf("while reading back cluster %q's CA certificate: %w", cluster, err)
	}
	keyPEM, err = encodeKey(key)
	if err != nil {
		return nil, nil, fmt.Errorf("while encoding the key of cluster %q's certificate authority: %w", cluster, err)
	}
	return &Authority{cert: cert, signer: key, certPEM: encodeCert(der)}, keyPEM, nil
}

// ParseAuthority reads a CA certificate and its private key, both PEM, so
// that an operator's own CA works as well as one NewAuthority made. The
// first certificate of certPEM is the CA; further certificates (the chain
// above an intermediate CA) are kept for CertPEM and sent with issued
// certificates; other PEM blocks are ignored. The key may be PKCS#1 ("RSA
// PRIVATE KEY"), SEC 1 ("EC PRIVATE KEY", an "EC PARAMETERS" block before
// it is skipped) or PKCS#8 ("PRIVATE KEY"), of type RSA, ECDSA or Ed25519;
// an encrypted key is refused. ParseAuthority checks that the certificate
// is a CA (basic constraints CA:TRUE) that may sign certificates (a key
// usage, when present, includes keyCertSign) and that the key belongs to
// it; otherwise the error says what is wrong and what to give instead. It
// does not look at the CA's validity period (it has no clock): Issue
// refuses to use an expired CA.
func ParseAuthority(certPEM, keyPEM []byte) (*Authority, error) {
	certs, err := parseCertificates(certPEM)
	if err != nil {
		return nil, fmt.Errorf("while reading the CA certificate: %w; give the CA's certificate in PEM", err)
	}
	if len(certs) == 0 {
		return nil, errors.New("while reading the CA certificate: it holds no PEM certificate (-----BEGIN CERTIFICATE-----); give the CA's certificate in PEM")
	}
	ca := certs[0]
	name := ca.Subject.String()
	if !ca.BasicConstraintsValid || !ca.IsCA {
		return nil, fmt.Errorf("while reading the CA certificate %q: it is not a certificate authority (its basic constraints do not say CA:TRUE); give the certificate of a CA", name)
	}
	if ca.KeyUsage != 0 && ca.KeyUsage&x509.KeyUsageCertSign == 0 {
		return nil, fmt.Errorf("while reading the CA certificate %q: it may not sign certificates (its key usage lacks keyCertSign); give the certificate of a CA that signs certificates", name)
	}
	signer, err := parsePrivateKey(keyPEM)
	if err != nil {
		return nil, fmt.Errorf("while reading the private key of the CA %q: %w", name, err)
	}
	if !samePublicKey(signer.Public(), ca.PublicKey) {
		return nil, fmt.Errorf("while reading the CA %q: the private key does not belong to its certificate; give the key the CA certificate was made for", name)
	}
	// libpq (OpenSSL) trusts a chain only up to a self-signed root in
	// sslrootcert: an intermediate alone would verify in Go and fail in
	// every standby.
	if root := certs[len(certs)-1]; !bytes.Equal(root.RawSubject, root.RawIssuer) || root.CheckSignatureFrom(root) != nil {
		return nil, fmt.Errorf("while reading the CA certificate %q: the file does not end with a self-signed root certificate (%q is signed by %q), and libpq trusts a chain only up to its root; append the certificates up to the root to the file", name, root.Subject.String(), root.Issuer.String())
	}
	var all, chain bytes.Buffer
	for _, c := range certs {
		all.Write(encodeCert(c.Raw))
		if !bytes.Equal(c.RawSubject, c.RawIssuer) {
			chain.Write(encodeCert(c.Raw))
		}
	}
	return &Authority{cert: ca, signer: signer, certPEM: all.Bytes(), chain: chain.Bytes()}, nil
}

// CertPEM is the CA certificate as PEM: what clients and standbys verify
// nodes with (PostgreSQL's ssl_ca_file, libpq's sslrootcert). For a CA
// NewAuthority made it is one certificate; for one ParseAuthority read, the
// certificates given, the CA first. The caller must not modify it.
func (a *Authority) CertPEM() []byte { return a.certPEM }

// Issue makes a server certificate for a node reached by names: DNS names
// (its container name, its DNS aliases) and IP addresses (its host's
// address; "[::1]" is taken as ::1). IP addresses become IP SANs, the rest
// DNS SANs; the first name is also the subject's common name. Each name
// must be an IP address or a host name of letters, digits, '-', '_' and
// dots; a name given twice is named once. The certificate has a new ECDSA
// P-256 key, serves TLS and may authenticate a client (extended key usages
// serverAuth and clientAuth, key usage digitalSignature), is valid from
// five minutes before now until now+lifetime but never beyond the CA's own
// end, and has a random 128-bit serial number. A lifetime of 0 means
// DefaultLifetime.
//
// It returns the certificate as PEM (followed by the CA's chain when the
// CA is an intermediate: what ssl_cert_file holds) and its private key as
// PKCS#8 PEM ("PRIVATE KEY"), which PostgreSQL reads (ssl_key_file, mode
// 0600). It refuses an empty names list, a negative lifetime and a CA that
// expired by now.
func (a *Authority) Issue(names []string, now time.Time, lifetime time.Duration) (certPEM, keyPEM []byte, err error) {
	if len(names) == 0 {
		return nil, nil, errors.New("while issuing a node certificate: no names were given; give the names the node is reached by (container name, aliases, host address)")
	}
	what := "while issuing a certificate for " + strings.Join(names, ", ")
	switch {
	case lifetime == 0:
		lifetime = DefaultLifetime
	case lifetime < 0:
		return nil, nil, fmt.Errorf("%s: the lifetime %v is negative; give a positive lifetime", what, lifetime)
	}
	if !now.Before(a.cert.NotAfter) {
		return nil, nil, fmt.Errorf("%s: the CA %q expired %s; give the cluster a new CA (every node then gets new certificates and clients must be given the new CA)",
			what, a.cert.Subject.String(), a.cert.NotAfter.UTC().Format(timeFormat))
	}
	var dns []string
	var ips []net.IP
	seen := map[string]bool{}
	for _, n := range names {
		if ip := parseIP(n); ip != nil {
			if !seen[ip.String()] {
				seen[ip.String()] = true
				ips = append(ips, ip)
				// libpq before PostgreSQL 15 matches a host against the
				// DNS names only: the address is written there too.
				dns = append(dns, ip.String())
			}
			continue
		}
		if why := badHostname(n); why != "" {
			return nil, nil, fmt.Errorf("%s: the name %q %s; give host names and IP addresses only", what, n, why)
		}
		if k := strings.ToLower(strings.TrimSuffix(n, ".")); !seen[k] {
			seen[k] = true
			dns = append(dns, n)
		}
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: while creating its key: %w", what, err)
	}
	serial, err := newSerial()
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", what, err)
	}
	notAfter := now.Add(lifetime)
	if notAfter.After(a.cert.NotAfter) {
		notAfter = a.cert.NotAfter
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: names[0]},
		DNSNames:              dns,
		IPAddresses:           ips,
		NotBefore:             now.Add(-backdate),
		NotAfter:              notAfter,
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, a.cert, key.Public(), a.signer)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: while signing it with the CA %q: %w", what, a.cert.Subject.String(), err)
	}
	keyPEM, err = encodeKey(key)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: while encoding its key: %w", what, err)
	}
	return append(encodeCert(der), a.chain...), keyPEM, nil
}

// Check says whether certPEM is a certificate pacsd can keep for a node
// reached by names: it parses; it chains to the CA, the first certificate
// of caPEM (an x509 verification for server authentication at now, with
// that certificate as the only root); it covers every one of names (as a
// TLS client checks a server's name: IP addresses against the IP SANs,
// others against the DNS SANs); and it is not due for renewal. It is due
// once no more than a third of lifetime is left before its NotAfter (a third
// of its own validity when that is shorter, cut by the CA's end), and when
// its validity is longer than lifetime and ten minutes (the configured
// lifetime was shortened). A lifetime of 0 means DefaultLifetime.
//
// When ok is false, why is one short sentence saying what is wrong, such
// as "the certificate does not name db-ro" or "the certificate expires
// 2026-12-03 10:00 UTC and is renewed after two thirds of its lifetime".
// Check is pure: no I/O, no clock.
func Check(certPEM, caPEM []byte, names []string, now time.Time, lifetime time.Duration) (ok bool, why string) {
	switch {
	case lifetime == 0:
		lifetime = DefaultLifetime
	case lifetime < 0:
		return false, fmt.Sprintf("the configured lifetime %v is negative", lifetime)
	}
	if len(bytes.TrimSpace(certPEM)) == 0 {
		return false, "no certificate"
	}
	leaf, err := firstCertificate(certPEM)
	if err != nil {
		return false, "the certificate cannot be read: " + err.Error()
	}
	ca, err := firstCertificate(caPEM)
	if err != nil {
		return false, "the cluster's CA certificate cannot be read: " + err.Error()
	}
	switch {
	case now.Before(leaf.NotBefore):
		return false, "the certificate is not valid before " + leaf.NotBefore.UTC().Format(timeFormat)
	case now.After(leaf.NotAfter):
		return false, "the certificate expired " + leaf.NotAfter.UTC().Format(timeFormat)
	case now.Before(ca.NotBefore):
		return false, "the cluster's CA is not valid before " + ca.NotBefore.UTC().Format(timeFormat)
	case now.After(ca.NotAfter):
		return false, "the cluster's CA expired " + ca.NotAfter.UTC().Format(timeFormat)
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca)
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, CurrentTime: now, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err != nil {
		return false, verifyReason(err)
	}
	var missing []string
	for _, n := range names {
		if leaf.VerifyHostname(n) != nil {
			missing = append(missing, n)
		}
	}
	if len(missing) > 0 {
		return false, "the certificate does not name " + strings.Join(missing, ", ")
	}
	// Due once a third of the configured lifetime is left (of the
	// certificate's own validity when the CA's end cut it shorter): the
	// backdate does not count, so a lifetime of a minute is not due at once.
	validity := leaf.NotAfter.Sub(leaf.NotBefore)
	if !now.Before(leaf.NotAfter.Add(-min(lifetime, validity) / 3)) {
		return false, "the certificate expires " + leaf.NotAfter.UTC().Format(timeFormat) + " and is renewed after two thirds of its lifetime"
	}
	if validity > lifetime+lifetimeSlack {
		return false, fmt.Sprintf("the certificate is valid for %s, longer than the configured lifetime of %s", human(validity), human(lifetime))
	}
	return true, ""
}

// verifyReason says why a certificate does not chain to the cluster's CA
// (err from Verify; both are within their validity).
func verifyReason(err error) string {
	var unknown x509.UnknownAuthorityError
	var invalid x509.CertificateInvalidError
	switch {
	case errors.As(err, &unknown):
		return "the certificate is not signed by the cluster's CA"
	case errors.As(err, &invalid) && invalid.Reason == x509.IncompatibleUsage:
		return "the certificate may not serve TLS (it lacks the server authentication usage)"
	}
	return "the certificate does not chain to the cluster's CA: " + err.Error()
}

// KeyMatches reports whether keyPEM (PKCS#1, SEC 1 or PKCS#8; RSA, ECDSA or
// Ed25519) is the private key of the first certificate of certPEM; false
// when either cannot be read.
func KeyMatches(certPEM, keyPEM []byte) bool {
	cert, err := firstCertificate(certPEM)
	if err != nil {
		return false
	}
	key, err := parsePrivateKey(keyPEM)
	if err != nil {
		return false
	}
	return samePublicKey(key.Public(), cert.PublicKey)
}

// newSerial returns a random positive serial number of 128 bits.
func newSerial() (*big.Int, error) {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return nil, fmt.Errorf("while drawing a serial number: %w", err)
	}
	if n.Sign() == 0 {
		n.SetInt64(1)
	}
	return n, nil
}

func encodeCert(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

func encodeKey(key crypto.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// parseCertificates returns every CERTIFICATE block of b, in order.
func parseCertificates(b []byte) ([]*x509.Certificate, error) {
	var out []*x509.Certificate
	for rest := b; ; {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			return out, nil
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("its certificate number %d cannot be parsed: %w", len(out)+1, err)
		}
		out = append(out, c)
	}
}

// firstCertificate returns the first CERTIFICATE block of b.
func firstCertificate(b []byte) (*x509.Certificate, error) {
	for rest := b; ; {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			return nil, errors.New("it holds no PEM certificate")
		}
		if block.Type == "CERTIFICATE" {
			return x509.ParseCertificate(block.Bytes)
		}
	}
}

// parsePrivateKey returns the first private key of keyPEM: PKCS#8
// ("PRIVATE KEY"), PKCS#1 ("RSA PRIVATE KEY") or SEC 1 ("EC PRIVATE KEY");
// RSA, ECDSA or Ed25519. Other blocks (such as "EC PARAMETERS") are
// skipped; an encrypted key is an error.
func parsePrivateKey(keyPEM []byte) (crypto.Signer, error) {
	for rest := keyPEM; ; {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			return nil, errors.New("it holds no PEM private key (PRIVATE KEY, RSA PRIVATE KEY or EC PRIVATE KEY); give the key in PEM")
		}
		if block.Type == "ENCRYPTED PRIVATE KEY" || strings.Contains(block.Headers["Proc-Type"], "ENCRYPTED") {
			return nil, errors.New("the key is encrypted; give it decrypted (openssl pkey -in KEY -out PLAIN), kept readable only by its owner")
		}
		var key any
		var err error
		switch block.Type {
		case "PRIVATE KEY":
			key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
		case "RSA PRIVATE KEY":
			key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
		case "EC PRIVATE KEY":
			key, err = x509.ParseECPrivateKey(block.Bytes)
		default:
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("its %s cannot be parsed: %w", block.Type, err)
		}
		switch k := key.(type) {
		case *rsa.PrivateKey:
			return k, nil
		case *ecdsa.PrivateKey:
			return k, nil
		case ed25519.PrivateKey:
			return k, nil
		}
		return nil, fmt.Errorf("its key is of type %T; give an RSA, ECDSA or Ed25519 key", key)
	}
}

// samePublicKey reports whether a and b are the same public key.
func samePublicKey(a, b crypto.PublicKey) bool {
	k, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	return ok && k.Equal(b)
}

// parseIP returns n as an IP address ("[::1]" too), nil when it is none.
func parseIP(n string) net.IP {
	if len(n) > 2 && n[0] == '[' && n[len(n)-1] == ']' {
		n = n[1 : len(n)-1]
	}
	return net.ParseIP(n)
}

// badHostname says why n cannot be a DNS name of a certificate; "" when it
// can (labels of letters, digits, '-' and '_', at most 63 bytes each and
// 253 in all, a final dot allowed).
func badHostname(n string) string {
	h := strings.TrimSuffix(n, ".")
	switch {
	case h == "":
		return "is empty"
	case len(h) > 253:
		return "is longer than 253 bytes"
	}
	for _, label := range strings.Split(h, ".") {
		if label == "" {
			return "has an empty label"
		}
		if len(label) > 63 {
			return "has a label longer than 63 bytes"
		}
		for _, c := range label {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return fmt.Sprintf("holds %q, which a host name cannot", c)
			}
		}
	}
	return ""
}

// human writes d in days when it is about a whole number of them, else as
// a duration to the minute.
func human(d time.Duration) string {
	days := d.Hours() / 24
	if d >= 24*time.Hour && math.Abs(days-math.Round(days)) < 0.01 {
		if r := math.Round(days); r != 1 {
			return fmt.Sprintf("%.0f days", r)
		}
		return "1 day"
	}
	return strings.TrimSuffix(d.Round(time.Minute).String(), "0s")
}
