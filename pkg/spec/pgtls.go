package spec

import (
	"fmt"
	"time"

	"github.com/hashicorp/hcl/v2"
)

// PostgresTLS is a cluster's tls block. TLS is always on for PostgreSQL:
// every node gets a server certificate signed by the cluster's certificate
// authority, standbys and pacsd verify it (sslmode=verify-full), and
// replication is accepted only over TLS. The block only says whose CA signs
// and for how long.
type PostgresTLS struct {
	// CA and CAKey are the files (absolute paths) of the operator's
	// certificate authority that pacsd issues node certificates from; both
	// "" when pacsd keeps a CA of its own for the cluster in the cluster
	// store (the state directory, or etcd).
	CA    string `json:"ca,omitempty"`
	CAKey string `json:"ca_key,omitempty"`
	// Lifetime is how long a node certificate is valid
	// (DefaultCertLifetime); pacsd issues a new one once two thirds of it
	// have passed, and the server takes it with a reload.
	Lifetime Duration `json:"cert_lifetime"`
}

// Bounds and default of tls.cert_lifetime.
const (
	DefaultCertLifetime = 90 * 24 * time.Hour
	MinCertLifetime     = time.Minute
	MaxCertLifetime     = 5 * 365 * 24 * time.Hour
)

var postgresTLSSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{{Name: "ca"}, {Name: "ca_key"}, {Name: "cert_lifetime"}},
}

// decodePostgresTLSBlock decodes a cluster's tls block into c.TLS.
func (d *decoder) decodePostgresTLSBlock(block *hcl.Block, c *Cluster) {
	content := d.content(block.Body, postgresTLSSchema)
	attrs := content.Attributes
	caAttr := d.str(attrs, "ca", &c.TLS.CA)
	keyAttr := d.str(attrs, "ca_key", &c.TLS.CAKey)
	switch {
	case caAttr != nil && keyAttr == nil:
		d.errorf(caAttr.Expr.Range(), "CA Key Missing", "The tls block of cluster %q names a CA certificate but not its key, and pacsd needs both to issue the nodes' certificates. Add ca_key = \"path\" (a file with mode 0600), or remove ca to let pacsd keep a CA of its own for the cluster.", c.Name)
	case caAttr == nil && keyAttr != nil:
		d.errorf(keyAttr.Expr.Range(), "CA Certificate Missing", "The tls block of cluster %q names a CA key but not its certificate. Add ca = \"path\", or remove ca_key to let pacsd keep a CA of its own for the cluster.", c.Name)
	}
	if caAttr != nil {
		if b, ok := d.readTLSFile(caAttr.Expr.Range(), c.TLS.CA, "TLS CA File"); ok && !pemCertificate(b) {
			d.errorf(caAttr.Expr.Range(), "Invalid TLS CA File", "The file %q holds no PEM certificate (-----BEGIN CERTIFICATE-----) that pacsd can read. Give the certificate of the CA that is to sign the nodes' server certificates.", c.TLS.CA)
		}
		c.TLS.CA = d.resolve(c.TLS.CA)
	}
	if keyAttr != nil {
		if b, ok := d.readPrivateFile(keyAttr.Expr.Range(), c.TLS.CAKey, "TLS Key"); ok && !pemPrivateKey(b) {
			d.errorf(keyAttr.Expr.Range(), "Invalid TLS Key", "The file %q holds no unencrypted PEM private key (-----BEGIN PRIVATE KEY-----, or RSA or EC) that pacsd can read. Give the CA's private key, without a passphrase.", c.TLS.CAKey)
		}
		c.TLS.CAKey = d.resolve(c.TLS.CAKey)
	}
	if attr := d.duration(attrs, "cert_lifetime", &c.TLS.Lifetime); attr != nil {
		if lt := c.TLS.Lifetime.Duration; lt < MinCertLifetime || lt > MaxCertLifetime {
			d.errorf(attr.Expr.Range(), "Certificate Lifetime Out of Range", "%s", fmt.Sprintf(
				"The cert_lifetime of cluster %q is %s. Use %s to %s (the default is %s): pacsd renews a node's certificate once two thirds of its lifetime have passed.",
				c.Name, shortDuration(lt), shortDuration(MinCertLifetime), shortDuration(MaxCertLifetime), shortDuration(DefaultCertLifetime)))
		}
	}
}
