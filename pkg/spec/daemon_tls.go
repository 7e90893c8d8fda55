package spec

import (
	"crypto/tls"
	"crypto/x509"
	"strings"

	"github.com/hashicorp/hcl/v2"
)

// MinTokenLength is the fewest characters daemon.token_file's token may
// have: a shorter one could be guessed.
const MinTokenLength = 32

// DaemonTLS is the daemon.tls block: pacsd's HTTP endpoint serves HTTPS with
// this certificate, and verifies the certificates of the other side with
// these certificate authorities. Paths are absolute or resolved against the
// topology file's directory.
type DaemonTLS struct {
	// Cert and Key are the server certificate (PEM; the chain of
	// intermediate authorities may follow it) and its private key, readable
	// by its owner only. With ClientCA, pacsd presents them as its client
	// certificate too, to the pacsd of other hosts (failsafe) and, from
	// pacsd status, to its own daemon.
	Cert string `json:"cert"`
	Key  string `json:"key"`
	// CA verifies the server certificates of the pacsd that pacsd and its
	// commands ask (pacsd status, failsafe between hosts); "" means
	// ClientCA, and without it the system's certificate authorities (see
	// ServerCA).
	CA string `json:"ca,omitempty"`
	// ClientCA, when set, verifies client certificates: a client that
	// presents a certificate it signed is authenticated.
	ClientCA string `json:"client_ca,omitempty"`
}

// ServerCA is the certificate authority file that verifies the server
// certificates of pacsd: CA, else ClientCA (whose clients, pacsd among them,
// present the server certificate), else "" for the system's authorities.
func (t *DaemonTLS) ServerCA() string {
	if t.CA != "" {
		return t.CA
	}
	return t.ClientCA
}

// Authenticates reports whether pacsd's HTTP endpoint authenticates its
// clients: by the token of token_file, or by client certificates that
// tls.client_ca signed. Without either every endpoint is open, which the
// parser allows on a loopback address only.
func (d Daemon) Authenticates() bool {
	return !d.Token.IsZero() || d.TLS != nil && d.TLS.ClientCA != ""
}

var daemonTLSSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{{Name: "cert", Required: true}, {Name: "key", Required: true}, {Name: "ca"}, {Name: "client_ca"}},
}

// decodeDaemonTLSBlock decodes daemon.tls, the certificate of pacsd's own
// HTTP endpoint, checked as decodeTLSBlock checks a client's: PEM files, the
// key readable by its owner only and belonging to the certificate.
func (d *decoder) decodeDaemonTLSBlock(block *hcl.Block) *DaemonTLS {
	t := &DaemonTLS{}
	attrs := d.content(block.Body, daemonTLSSchema).Attributes
	d.decodeCertAndKey(attrs, &t.Cert, &t.Key,
		"the server certificate of pacsd's HTTP endpoint, with the addresses its clients reach it at (the host's address, 127.0.0.1 for pacsd status on the machine) as subject alternative names",
		"the server certificate")
	if attr := d.str(attrs, "ca", &t.CA); attr != nil {
		d.checkCAFile(attr.Expr.Range(), t.CA, "the certificate of the CA that signed the server certificates of pacsd (daemon.tls.cert)")
	}
	if attr := d.str(attrs, "client_ca", &t.ClientCA); attr != nil {
		d.checkCAFile(attr.Expr.Range(), t.ClientCA, "the certificate of the CA that signs the client certificates pacsd accepts")
	}
	for _, p := range []*string{&t.Cert, &t.Key, &t.CA, &t.ClientCA} {
		if *p != "" {
			*p = d.resolve(*p)
		}
	}
	return t
}

// checkCAFile reports a CA file (relative to the topology file) that cannot
// be read or holds no PEM certificate; give says what the file should hold.
func (d *decoder) checkCAFile(rng hcl.Range, path, give string) {
	if b, ok := d.readTLSFile(rng, path, "TLS CA File"); ok && !x509.NewCertPool().AppendCertsFromPEM(b) {
		d.errorf(rng, "Invalid TLS CA File", "The file %q holds no PEM certificate (-----BEGIN CERTIFICATE-----) that pacsd can read. Give %s.", path, give)
	}
}

// decodeCertAndKey decodes the cert and key attributes of a tls block into
// cert and key (as written) and checks them: a PEM certificate, an
// unencrypted PEM private key readable by its owner only, and the key of
// that certificate. give says which certificate it must be, keyOf names it
// for the key's detail.
func (d *decoder) decodeCertAndKey(attrs hcl.Attributes, cert, key *string, give, keyOf string) {
	var certPEM, keyPEM []byte
	if attr := d.str(attrs, "cert", cert); attr != nil {
		if b, ok := d.readTLSFile(attr.Expr.Range(), *cert, "TLS Certificate"); ok {
			if pemCertificate(b) {
				certPEM = b
			} else {
				d.errorf(attr.Expr.Range(), "Invalid TLS Certificate", "The file %q holds no PEM certificate (-----BEGIN CERTIFICATE-----) that pacsd can read. Give %s.", *cert, give)
			}
		}
	}
	keyAttr := d.str(attrs, "key", key)
	if keyAttr != nil {
		if b, ok := d.readPrivateFile(keyAttr.Expr.Range(), *key, "TLS Key"); ok {
			if pemPrivateKey(b) {
				keyPEM = b
			} else {
				d.errorf(keyAttr.Expr.Range(), "Invalid TLS Key", "The file %q holds no unencrypted PEM private key (-----BEGIN PRIVATE KEY-----, or RSA or EC) that pacsd can read. Give the private key of %s, without a passphrase.", *key, keyOf)
			}
		}
	}
	if certPEM != nil && keyPEM != nil {
		if _, err := tls.X509KeyPair(certPEM, keyPEM); err != nil {
			d.errorf(keyAttr.Expr.Range(), "TLS Key Does Not Match the Certificate", "The key %q does not belong to the certificate %q (%s). Give the key the certificate was made for.", *key, *cert, err)
		}
	}
}

// decodeTokenFile reads daemon.token_file: a file readable by its owner only
// (like a password file) that holds the token clients of pacsd's HTTP
// endpoint send, at least MinTokenLength printable ASCII characters without
// spaces (trailing line breaks are dropped). It returns the zero Secret when
// the attribute is absent or wrong.
func (d *decoder) decodeTokenFile(attrs hcl.Attributes) Secret {
	var path string
	attr := d.str(attrs, "token_file", &path)
	if attr == nil {
		return Secret{}
	}
	rng := attr.Expr.Range()
	b, ok := d.readPrivateFile(rng, path, "Token File")
	if !ok {
		return Secret{}
	}
	const howTo = "Write a random token of at least 32 characters on one line, such as the output of \"openssl rand -hex 32\"."
	token := trimLineEnds(string(b))
	switch {
	case token == "":
		d.errorf(rng, "Empty Token File", "The token file %q is empty. "+howTo, path)
	case strings.IndexFunc(token, func(r rune) bool { return r <= ' ' || r > '~' }) >= 0:
		d.errorf(rng, "Invalid Character in Token", "The token in %q holds a space, a line break, a control character or a character beyond ASCII, which an Authorization header cannot carry as written. "+howTo, path)
	case len(token) < MinTokenLength:
		d.errorf(rng, "Token Too Short", "The token in %q has fewer than %d characters, short enough to be guessed. "+howTo, path, MinTokenLength)
	default:
		return NewSecret(token, path)
	}
	return Secret{}
}

// checkListenSecurity refuses a daemon.listen address that is not loopback
// (rng is its value; host its host part) without TLS or without a way to
// authenticate clients (hasToken: the token_file attribute is written):
// the endpoints would then show the clusters' state to the network, and
// take failsafe confirmations, from anyone who reaches the address.
func (d *decoder) checkListenSecurity(rng hcl.Range, host string, dm *Daemon, hasToken bool) {
	if loopbackHost(host) {
		return
	}
	if dm.TLS == nil {
		d.errorf(rng, "HTTP Endpoint Without TLS",
			"The listen address %q is not a loopback address, so pacsd's HTTP endpoints (the status, the metrics, the load balancer's checks, the failsafe confirmations between hosts) and the credentials of their clients would travel unencrypted over the network. Add a tls block to the daemon block with the cert and key of pacsd's server certificate, or listen on 127.0.0.1 (the default).", dm.Listen)
	}
	if !hasToken && (dm.TLS == nil || dm.TLS.ClientCA == "") {
		d.errorf(rng, "HTTP Endpoint Without Authentication",
			"The listen address %q is not a loopback address, and nothing authenticates the clients of pacsd's HTTP endpoints: anyone who reaches the address could read the clusters' status and confirm failsafe. Add token_file = \"PATH\" to the daemon block (a file of mode 0600 holding a random token of at least %d characters, such as the output of \"openssl rand -hex 32\"), or client_ca to its tls block (the CA that signs the clients' certificates), or listen on 127.0.0.1 (the default).", dm.Listen, MinTokenLength)
	}
}
