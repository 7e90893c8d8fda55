package e2e

import (
	"strings"
	"testing"
	"time"
)

// TestE2ESeedProcedure proves the test bed: the seed's procedure done by hand
// yields a streaming standby on which a row written on the primary appears.
func TestE2ESeedProcedure(t *testing.T) {
	e := Require(t)
	s := e.SeedProcedure(SeedOptions{Password: "pacs-" + e.RunID, ReplicationPassword: "repl-" + e.RunID})
	for _, st := range s.Steps {
		t.Logf("%-34s %6.2fs", st.Name, st.Duration.Seconds())
	}

	s.Primary.ExecSQL("INSERT INTO patient (pat_id, pat_name) VALUES ($1, $2)", "P-"+e.RunID, "DOE^JANE")
	s.Standby().WaitRow(20*time.Second, "SELECT EXISTS (SELECT 1 FROM patient WHERE pat_id = $1)", "P-"+e.RunID)

	if got := s.Standby().QueryString("SELECT pg_is_in_recovery()::text"); got != "true" {
		t.Errorf("standby db2: pg_is_in_recovery() = %s, want true", got)
	}
	if err := s.Standby().TryExecSQL("CREATE TABLE must_fail(x int)"); err == nil || !strings.Contains(err.Error(), "read-only") {
		t.Errorf("standby db2 accepted a write (err = %v); a standby must be read-only", err)
	}
	slot := s.Primary.QueryString("SELECT coalesce((SELECT active::text FROM pg_replication_slots WHERE slot_name = 'db2'), 'missing')")
	if slot != "true" {
		t.Errorf("primary db1: slot db2 active = %s, want true", slot)
	}
	// Passwords travel in files only: not in the containers' configuration,
	// not in the standby's primary_conninfo.
	for _, n := range []*Node{s.Primary, s.Standby()} {
		c, err := e.Docker.ContainerInspect(e.Ctx(apiTimeout), n.ID)
		if err != nil {
			t.Fatal(err)
		}
		if env := strings.Join(c.Config.Env, " "); strings.Contains(env, "pacs-"+e.RunID) || strings.Contains(env, "repl-"+e.RunID) {
			t.Errorf("node %s: a password shows in docker inspect: %s", n.Name, env)
		}
	}
	if conf := s.Standby().ReadFile("postgresql.auto.conf"); strings.Contains(conf, "repl-"+e.RunID) || !strings.Contains(conf, "passfile=") {
		t.Errorf("standby db2: primary_conninfo should use the passfile, not the password:\n%s", conf)
	}
	// The TCP path needs the password: a wrong one is refused (scram-sha-256, never trust).
	if err := s.Primary.TryQueryRow("SELECT 1", []any{new(int)}); err != nil {
		t.Fatalf("primary db1: superuser login over TCP failed: %v", err)
	}
	bad := *s.Primary
	bad.Password = "wrong"
	if err := bad.TryExecSQL("SELECT 1"); err == nil || !strings.Contains(err.Error(), "password authentication failed") {
		t.Errorf("primary db1: login with a wrong password: err = %v, want password authentication failed", err)
	}
}
