package reconcile

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/pacsd/pacsd/pkg/certs"
	"github.com/pacsd/pacsd/pkg/pgconf"
	"github.com/pacsd/pacsd/pkg/spec"
)

// Paths of a node's TLS files in PGDATA (the server reads them relative to
// it: see pgconf.ServerCertFile).
const (
	ServerCertPath = PGDATA + "/" + pgconf.ServerCertFile
	ServerKeyPath  = PGDATA + "/" + pgconf.ServerKeyFile
	RootCertPath   = PGDATA + "/" + pgconf.RootCertFile
)

// Authorities is what a ClusterStore implements when it keeps each
// cluster's certificate authority (the state directory and etcd do):
// Authority returns the cluster's CA, creating and storing it when none is
// stored, the same one for every caller.
type Authorities interface {
	Authority(ctx context.Context, cluster string) (*certs.Authority, error)
}

// CertIssue asks the executor to issue a certificate: a FileWrite that
// carries one has no content of its own; its Path gets the certificate and
// KeyPath its private key (see issueFiles).
type CertIssue struct {
	// Names are the DNS names and addresses the certificate must cover
	// (CertNames).
	Names    []string
	KeyPath  string
	Lifetime time.Duration
}

// CertNames are the names node n's server certificate covers: every name
// it is reached by. Its container name (pacsd and the standbys of its
// host), the cluster's client aliases, its host's address (standbys and
// clients on other hosts) and "localhost" (a client in the container).
// No side effects.
func CertNames(c *spec.Cluster, n *spec.Node) []string {
	names := []string{n.Container}
	for _, a := range []string{c.Clients.PrimaryAlias, c.Clients.StandbyAlias} {
		if a != "" {
			names = append(names, a)
		}
	}
	if n.Address != "" {
		names = append(names, n.Address)
	}
	names = append(names, "localhost")
	// The first name stays the container's; the rest sorted, once each.
	rest := slices.Sorted(slices.Values(names[1:]))
	return append(names[:1], slices.Compact(rest)...)
}

// certLifetime is c's node certificate lifetime.
func certLifetime(c *spec.Cluster) time.Duration {
	if c.TLS.Lifetime.Duration > 0 {
		return c.TLS.Lifetime.Duration
	}
	return spec.DefaultCertLifetime
}

// lastAuthority keeps the last CA each cluster's store gave: when the
// store cannot give it (etcd does not answer, the operator's files are
// being replaced), connections go on with it.
var lastAuthority sync.Map // cluster name -> *certs.Authority

// ErrCannotVerify is matched by the error of a connection pacsd did not
// try because it has no CA to verify the server with: it says nothing of
// the server (never "lost", never "not answering").
var ErrCannotVerify = errors.New("pacsd has no certificate authority to verify the server with")

// Authority returns the certificate authority of cluster c: the
// operator's (tls.ca and tls.ca_key), or the one its cluster store keeps
// (created there at the first call); asked again at each call, so that a
// CA replaced by the operator is taken at once. When it cannot be read,
// the last one read for c serves; with none, the error matches
// ErrCannotVerify.
func (d Deps) Authority(ctx context.Context, c *spec.Cluster) (*certs.Authority, error) {
	a, err := d.readAuthority(ctx, c)
	if err == nil {
		lastAuthority.Store(c.Name, a)
		return a, nil
	}
	if last, ok := lastAuthority.Load(c.Name); ok {
		return last.(*certs.Authority), nil
	}
	return nil, fmt.Errorf("%w: %w", ErrCannotVerify, err)
}

// readAuthority reads c's certificate authority (see Authority).
func (d Deps) readAuthority(ctx context.Context, c *spec.Cluster) (*certs.Authority, error) {
	if c.TLS.CA != "" {
		cert, err := os.ReadFile(c.TLS.CA)
		if err != nil {
			return nil, fmt.Errorf("cluster %q: while reading the CA certificate of its tls block: %w", c.Name, err)
		}
		key, err := os.ReadFile(c.TLS.CAKey)
		if err != nil {
			return nil, fmt.Errorf("cluster %q: while reading the CA key of its tls block: %w", c.Name, err)
		}
		a, err := certs.ParseAuthority(cert, key)
		if err != nil {
			return nil, fmt.Errorf("cluster %q: the CA of its tls block (%s, %s): %w", c.Name, c.TLS.CA, c.TLS.CAKey, err)
		}
		return a, nil
	}
	as := d.CAs
	if as == nil {
		as, _ = d.Store.(Authorities)
	}
	if as == nil {
		return nil, fmt.Errorf("cluster %q: its cluster store keeps no certificate authority; give one in the cluster's tls block (ca, ca_key)", c.Name)
	}
	a, err := as.Authority(ctx, c.Name)
	if err != nil {
		return nil, fmt.Errorf("cluster %q: while getting its certificate authority: %w", c.Name, err)
	}
	return a, nil
}

// Peer is how pacsd verifies the server it connects to: the name the
// server's certificate must carry and the CA it must chain to
// (sslmode=verify-full).
type Peer struct {
	ServerName string
	RootCA     []byte
}

type peerKey struct{}

// WithPeer returns ctx carrying p, for Database.Connect.
func WithPeer(ctx context.Context, p Peer) context.Context {
	return context.WithValue(ctx, peerKey{}, p)
}

// PeerFrom returns the Peer ctx carries, if any.
func PeerFrom(ctx context.Context) (Peer, bool) {
	p, ok := ctx.Value(peerKey{}).(Peer)
	return p, ok
}

// ErrNoPeer is returned by a Database's Connect when ctx carries no Peer:
// pacsd never connects to a server it cannot verify.
var ErrNoPeer = errors.New("no server name and CA to verify the server with")

// connect opens a superuser connection to node n of c at addr, verifying
// that the server is n (its certificate names n's container and chains to
// the cluster's CA).
func (d Deps) connect(ctx context.Context, c *spec.Cluster, n *spec.Node, addr string) (DBConn, error) {
	a, err := d.Authority(ctx, c)
	if err != nil {
		return nil, err
	}
	ctx = WithPeer(ctx, Peer{ServerName: n.Container, RootCA: a.CertPEM()})
	return d.DB.Connect(ctx, addr, c.Superuser.Name, c.Superuser.Password, c.Database)
}

// Connect is connect for the daemon: a superuser connection to node n of c
// at addr, the server verified.
func (d Deps) Connect(ctx context.Context, c *spec.Cluster, n *spec.Node, addr string) (DBConn, error) {
	return d.connect(ctx, c, n, addr)
}

// issueFiles returns files with every certificate to issue issued: a
// FileWrite with Issue becomes the certificate at its Path and the key at
// Issue.KeyPath (secret, 0600). Files without Issue are returned as they
// are.
func (d Deps) issueFiles(ctx context.Context, c *spec.Cluster, files []FileWrite) ([]FileWrite, error) {
	if !slices.ContainsFunc(files, func(f FileWrite) bool { return f.Issue != nil }) {
		return files, nil
	}
	a, err := d.Authority(ctx, c)
	if err != nil {
		return nil, err
	}
	out := make([]FileWrite, 0, len(files)+1)
	for _, f := range files {
		if f.Issue == nil {
			out = append(out, f)
			continue
		}
		cert, key, err := a.Issue(f.Issue.Names, time.Now(), f.Issue.Lifetime)
		if err != nil {
			return nil, fmt.Errorf("cluster %q: while issuing a server certificate for %v: %w", c.Name, f.Issue.Names, err)
		}
		// The key first: a server that reloads between the two finds the
		// old certificate with a new key and keeps its old context.
		out = append(out, FileWrite{Path: f.Issue.KeyPath, Content: key, Mode: 0o600, Secret: true})
		out = append(out, FileWrite{Path: f.Path, Content: cert, Mode: 0o600})
	}
	return out, nil
}

// certFiles are the TLS files of node n: the certificate to issue (with
// its key) and the cluster's CA certificate, under dir (PGDATA, or where
// they wait for the first initialisation).
func certFiles(c *spec.Cluster, n *spec.Node, ca []byte, dir string) []FileWrite {
	return []FileWrite{
		{Path: dir + "/" + pgconf.ServerCertFile, Mode: 0o600,
			Issue: &CertIssue{Names: CertNames(c, n), KeyPath: dir + "/" + pgconf.ServerKeyFile, Lifetime: certLifetime(c)}},
		{Path: dir + "/" + pgconf.RootCertFile, Content: ca, Mode: 0o600},
	}
}
