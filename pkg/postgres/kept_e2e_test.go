package postgres

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/pacsd/pacsd/internal/e2e"
	"github.com/pacsd/pacsd/pkg/reconcile"
	"github.com/pacsd/pacsd/pkg/spec"
)

// TestE2EKeptConnections: a Database keeps a node's connection from one
// pass (State, ReadFiles, Close) to the next; a server restarted behind a
// kept connection does not make the next State fail; a changed password
// gets the server's refusal, not the connection kept for the old one; a
// connection that carried a verifier is not kept; Health on a kept
// connection to a frozen server returns within its deadline.
func TestE2EKeptConnections(t *testing.T) {
	e := e2e.Require(t)
	n := e.StartNode(e2e.NodeOptions{Name: "db1", Password: "pacs-" + e.RunID})
	n.WaitWritable(90 * time.Second)
	d := New()
	t.Cleanup(d.CloseIdle)
	addr, password := n.IP()+":5432", spec.NewSecret(n.Password, "test")
	// pass is what Observe does with a node: it returns the backend's pid and
	// whether the connection was a kept one.
	pass := func(what string) (pid uint32, kept bool) {
		t.Helper()
		c, err := d.connect(peerCtx(e, n), addr, n.User, password, n.Database)
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		defer c.Close()
		kept = c.kept
		if _, err := c.State(e.Ctx(30 * time.Second)); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if _, err := c.ReadFiles(e.Ctx(30*time.Second), []string{"PG_VERSION"}, nil); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		return c.conn.PgConn().PID(), kept
	}

	first, kept := pass("first pass")
	if kept {
		t.Errorf("first pass: the connection was a kept one, want a new one")
	}
	second, kept := pass("second pass")
	if !kept || second != first {
		t.Errorf("second pass: kept %v, backend %d; want the first pass's connection (backend %d) kept", kept, second, first)
	}
	if got := d.idleSet().len(); got != 1 {
		t.Errorf("%d connections idle after two passes, want 1", got)
	}

	// A server restarted behind the kept connection.
	n.Restart()
	n.WaitWritable(90 * time.Second)
	if ip := n.IP(); ip+":5432" != addr {
		t.Skipf("the restarted container got address %s instead of %s: no kept connection to try", ip, addr)
	}
	third, kept := pass("the pass after a restart")
	if !kept || third == first {
		t.Errorf("the pass after a restart: kept %v, backend %d; want the kept connection (backend %d) replaced by a new one", kept, third, first)
	}
	fourth, _ := pass("the pass after that")
	if fourth != third {
		t.Errorf("the pass after that: backend %d, want the new connection (backend %d) kept", fourth, third)
	}

	// A password other than the kept connection's.
	wrong := "changed-" + e.RunID
	_, err := d.connect(peerCtx(e, n), addr, n.User, spec.NewSecret(wrong, "test"), n.Database)
	if !errors.Is(err, reconcile.ErrServerRefused) {
		t.Errorf("Connect with a changed password: %v; want the server's refusal (ErrServerRefused)", err)
	}
	if err != nil && strings.Contains(err.Error(), wrong) {
		t.Errorf("the error shows the password: %v", err)
	}

	// A connection that carried a verifier is closed, not kept.
	c, err := d.connect(peerCtx(e, n), addr, n.User, password, n.Database)
	if err != nil {
		t.Fatal(err)
	}
	v, err := Verifier("role-" + e.RunID)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.SetRole(e.Ctx(30*time.Second), reconcile.RoleSpec{Name: "kept_" + e.RunID, Login: true, Verifier: v}); err != nil {
		t.Fatal(err)
	}
	c.Close()
	if got := d.idleSet().len(); got != 0 {
		t.Errorf("%d connections idle after one carried a verifier, want 0", got)
	}

	// Health on a kept connection to a frozen server ends by its deadline.
	pass("a pass before the freeze")
	n.Pause()
	t.Cleanup(n.Unpause)
	c, err = d.connect(peerCtx(e, n), addr, n.User, password, n.Database)
	if err != nil {
		t.Fatal(err)
	}
	if !c.kept {
		t.Error("the connection before the freeze was not kept")
	}
	const deadline = 2 * time.Second
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	began := time.Now()
	_, err = c.Health(ctx)
	took := time.Since(began)
	c.Close()
	if err == nil {
		t.Error("Health of a frozen server succeeded")
	}
	if took > deadline+500*time.Millisecond {
		t.Errorf("Health of a frozen server took %s, want at most its deadline of %s", took, deadline)
	}
	if errors.Is(err, reconcile.ErrServerRefused) {
		t.Errorf("Health of a frozen server: %v; it did not answer", err)
	}
}
