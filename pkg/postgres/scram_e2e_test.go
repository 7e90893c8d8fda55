package postgres

import (
	"context"
	"testing"
	"time"

	"github.com/pacsd/pacsd/internal/e2e"
	"github.com/pacsd/pacsd/pkg/reconcile"
)

// TestE2EScramHugeIterations stores verifiers with huge iteration counts
// as a login role could: 2^22 by ALTER ROLE (the server itself runs PBKDF2
// on it once, checking it is no empty password's) and 2^30 straight into
// pg_authid (PBKDF2 would take minutes). VerifierMatches must answer false
// at once without computing them, and SetRole then puts a verifier of
// pacsd's own in their place.
func TestE2EScramHugeIterations(t *testing.T) {
	e := e2e.Require(t)
	n := e.StartNode(e2e.NodeOptions{Name: "db1", Password: "pacs-" + e.RunID})
	n.WaitWritable(90 * time.Second)
	c := mustConnect(t, e, n)
	pw := "huge-" + e.RunID
	n.ExecSQL("CREATE ROLE huge LOGIN")
	for _, iterations := range []int{1 << 22, 1 << 30} {
		huge := verifierWith(t, pw, iterations, true)
		lit, err := quoteLiteral(huge)
		if err != nil {
			t.Fatal(err)
		}
		if iterations <= 1<<22 {
			n.ExecSQL("ALTER ROLE huge PASSWORD " + lit)
		} else {
			n.ExecSQL("UPDATE pg_authid SET rolpassword = " + lit + " WHERE rolname = 'huge'")
		}
		stored := state(t, c).Roles["huge"].Verifier
		if stored != huge {
			t.Fatalf("PostgreSQL stored %q, not the verifier given (%q)", stored, huge)
		}
		derived := scramDerivations.Load()
		done := make(chan bool, 1)
		began := time.Now()
		go func() { done <- VerifierMatches(stored, pw) }()
		select {
		case got := <-done:
			if got {
				t.Errorf("a stored verifier with %d iterations matched", iterations)
			}
			if d := time.Since(began); d > 100*time.Millisecond {
				t.Errorf("VerifierMatches took %s on a stored verifier with %d iterations", d, iterations)
			}
			if n := scramDerivations.Load() - derived; n != 0 {
				t.Errorf("VerifierMatches ran PBKDF2 on a stored verifier with %d iterations", iterations)
			}
		case <-time.After(2 * time.Second):
			t.Fatalf("VerifierMatches computes a stored verifier with %d iterations (still running after 2 s)", iterations)
		}
	}
	// Drift: pacsd's own verifier goes in its place, and it matches.
	v, err := Verifier(pw)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.SetRole(context.Background(), reconcile.RoleSpec{Name: "huge", Login: true, Verifier: v}); err != nil {
		t.Fatal(err)
	}
	if got := state(t, c).Roles["huge"].Verifier; got != v || !VerifierMatches(got, pw) {
		t.Errorf("after SetRole the role's verifier is %q, want pacsd's %q, matching the password", got, v)
	}
	if _, err := connect(t, e, n, "huge", pw); err != nil {
		t.Errorf("login with the password after the reset: %v", err)
	}
}
