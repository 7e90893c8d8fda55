package e2e

import (
	"sync"
	"time"

	"github.com/pacsd/pacsd/pkg/certs"
)

// tlsDir is where StartNode places a node's server certificate and key.
const tlsDir = "/run/e2e-tls"

// envCAs keeps each Env's certificate authority.
var envCAs sync.Map // *Env -> *certs.Authority

// CA returns the run's certificate authority: StartNode's servers present
// certificates it issued. Made at the first call.
func (e *Env) CA() *certs.Authority {
	e.T.Helper()
	if a, ok := envCAs.Load(e); ok {
		return a.(*certs.Authority)
	}
	a, _, err := certs.NewAuthority("e2e-"+e.RunID, time.Now())
	if err != nil {
		e.T.Fatalf("while making the run's CA: %v", err)
	}
	actual, _ := envCAs.LoadOrStore(e, a)
	return actual.(*certs.Authority)
}

// serverTLSFiles are a server certificate for a node called name (its
// network alias) in container cname, and its key, owned by the image's
// postgres user (uid, gid), the key 0600.
func (e *Env) serverTLSFiles(name, cname string, uid, gid int) []File {
	e.T.Helper()
	cert, key, err := e.CA().Issue([]string{name, cname, "localhost"}, time.Now(), 24*time.Hour)
	if err != nil {
		e.T.Fatalf("node %s: while issuing its server certificate: %v", name, err)
	}
	return []File{
		{Path: tlsDir + "/server.crt", Content: cert, Mode: 0o600, UID: uid, GID: gid},
		{Path: tlsDir + "/server.key", Content: key, Mode: 0o600, UID: uid, GID: gid},
	}
}
