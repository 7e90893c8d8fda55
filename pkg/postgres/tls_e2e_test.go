package postgres

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/pacsd/pacsd/internal/e2e"
	"github.com/pacsd/pacsd/pkg/certs"
	"github.com/pacsd/pacsd/pkg/reconcile"
	"github.com/pacsd/pacsd/pkg/spec"
)

// TestE2EConnectVerifiesServer: pacsd's connections are TLS, verified as
// sslmode=verify-full: the server's certificate must name the node and
// chain to the cluster's CA, and a server without TLS is never spoken to
// in clear text. Each refusal still says the server answered.
func TestE2EConnectVerifiesServer(t *testing.T) {
	e := e2e.Require(t)
	n := e.StartNode(e2e.NodeOptions{Name: "db1", Password: "pacs-" + e.RunID})
	plain := e.StartNode(e2e.NodeOptions{Name: "plain", Password: "pacs-" + e.RunID, Cmd: []string{"postgres"}})
	n.WaitWritable(90 * time.Second)
	plain.WaitWritable(90 * time.Second)
	pw := spec.NewSecret(n.Password, "test")

	c, err := New().connect(peerCtx(e, n), n.IP()+":5432", n.User, pw, n.Database)
	if err != nil {
		t.Fatalf("the right name and CA: %v", err)
	}
	var ssl bool
	if err := c.conn.QueryRow(e.Ctx(10*time.Second), "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()").Scan(&ssl); err != nil || !ssl {
		t.Errorf("pg_stat_ssl of pacsd's own connection: ssl=%v, %v; want true", ssl, err)
	}
	c.Close()

	other, _, err := certs.NewAuthority("other", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	for what, peer := range map[string]reconcile.Peer{
		"another name": {ServerName: "db2", RootCA: e.CA().CertPEM()},
		"another CA":   {ServerName: n.Name, RootCA: other.CertPEM()},
	} {
		_, err := New().connect(reconcile.WithPeer(e.Ctx(30*time.Second), peer), n.IP()+":5432", n.User, pw, n.Database)
		if err == nil {
			t.Errorf("%s: connected; want the certificate refused", what)
		} else if !errors.Is(err, reconcile.ErrServerRefused) {
			t.Errorf("%s: %v; want an error that says the server answered (ErrServerRefused)", what, err)
		}
	}
	_, err = New().connect(e.Ctx(30*time.Second), n.IP()+":5432", n.User, pw, n.Database)
	if !errors.Is(err, reconcile.ErrNoPeer) {
		t.Errorf("no peer to verify: %v; want ErrNoPeer", err)
	}
	_, err = New().connect(peerCtx(e, plain), plain.IP()+":5432", plain.User, pw, plain.Database)
	if err == nil || !errors.Is(err, reconcile.ErrServerRefused) || !strings.Contains(err.Error(), "TLS") {
		t.Errorf("a server without TLS: %v; want a refusal that names TLS", err)
	}
}
