package postgres

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/pacsd/pacsd/internal/e2e"
	"github.com/pacsd/pacsd/pkg/reconcile"
	"github.com/pacsd/pacsd/pkg/spec"
)

const autoConf = "postgresql.auto.conf"

// peerCtx is a context of 30 s that verifies node n's certificate (the
// run's CA, n's name).
func peerCtx(e *e2e.Env, n *e2e.Node) context.Context {
	return reconcile.WithPeer(e.Ctx(30*time.Second), reconcile.Peer{ServerName: n.Name, RootCA: e.CA().CertPEM()})
}

// connect opens a Conn to node n as user (the superuser when user is "").
func connect(t *testing.T, e *e2e.Env, n *e2e.Node, user, password string) (*Conn, error) {
	t.Helper()
	if user == "" {
		user, password = n.User, n.Password
	}
	c, err := New().connect(peerCtx(e, n), n.IP()+":5432", user, spec.NewSecret(password, "test"), n.Database)
	if err == nil {
		t.Cleanup(c.Close)
	}
	return c, err
}

func mustConnect(t *testing.T, e *e2e.Env, n *e2e.Node) *Conn {
	t.Helper()
	c, err := connect(t, e, n, "", "")
	if err != nil {
		t.Fatalf("node %s: %v", n.Name, err)
	}
	return c
}

func state(t *testing.T, c *Conn) *reconcile.DBState {
	t.Helper()
	s, err := c.State(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// eventually polls the state of c until check returns nil, for at most 20 s.
func eventually(t *testing.T, e *e2e.Env, c *Conn, what string, check func(*reconcile.DBState) error) {
	t.Helper()
	e.Eventually(20*time.Second, what, func() error {
		s, err := c.State(context.Background())
		if err != nil {
			return err
		}
		return check(s)
	})
}

// TestE2EStatePrimaryAndStandby reads the state of a primary and of its
// streaming standby built by the seed procedure.
func TestE2EStatePrimaryAndStandby(t *testing.T) {
	e := e2e.Require(t)
	replPassword := "repl-" + e.RunID
	seed := e.SeedProcedure(e2e.SeedOptions{Password: "pacs-" + e.RunID, ReplicationPassword: replPassword})
	primary, standby := mustConnect(t, e, seed.Primary), mustConnect(t, e, seed.Standby())

	// The standby names itself db2 to its primary, as pacsd's own
	// primary_conninfo will; primary_conninfo takes effect on reload.
	conninfo := seed.Standby().QueryString("SELECT current_setting('primary_conninfo')")
	lit, err := quoteLiteral(conninfo + " application_name=db2")
	if err != nil {
		t.Fatal(err)
	}
	seed.Standby().ExecSQL("ALTER SYSTEM SET primary_conninfo = " + lit)
	if err := standby.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	eventually(t, e, primary, "the primary to see standby db2 streaming", func(s *reconcile.DBState) error {
		if !cmp.Equal(s.Streaming, []string{"db2"}) {
			return fmt.Errorf("Streaming = %q", s.Streaming)
		}
		if !s.Slots["db2"] {
			return fmt.Errorf("Slots = %v, want db2 active", s.Slots)
		}
		return nil
	})

	p := state(t, primary)
	if p.Version < 150000 || p.InRecovery || p.Timeline != 1 || p.Receiver != "" {
		t.Errorf("primary: Version %d, InRecovery %v, Timeline %d, Receiver %q; want 15xxxx, false, 1, \"\"",
			p.Version, p.InRecovery, p.Timeline, p.Receiver)
	}
	if diff := cmp.Diff(map[string]bool{"db2": true}, p.Slots); diff != "" {
		t.Errorf("primary: Slots (-want +got):\n%s", diff)
	}
	if got := p.Roles["pacs"]; !got.Login || !got.Superuser || !got.Replication || !IsVerifier(got.Verifier) {
		t.Errorf("primary: role pacs = %+v, want a superuser that logs in with a SCRAM verifier", got)
	}
	// The replication role got its verifier from PostgreSQL itself, from
	// the plain password of the seed procedure: it must match here.
	repl := p.Roles["replicator"]
	if !repl.Login || !repl.Replication || repl.Superuser {
		t.Errorf("primary: role replicator = %+v, want LOGIN REPLICATION NOSUPERUSER", repl)
	}
	if !VerifierMatches(repl.Verifier, replPassword) {
		t.Errorf("primary: PostgreSQL's verifier of the replication password does not match it")
	}
	if VerifierMatches(repl.Verifier, replPassword+"x") {
		t.Errorf("primary: PostgreSQL's verifier of the replication password matches another password")
	}
	if got := p.Roles["pg_monitor"].MemberOf; !cmp.Equal(got, []string{"pg_read_all_settings", "pg_read_all_stats", "pg_stat_scan_tables"}) {
		t.Errorf("primary: pg_monitor MemberOf = %q", got)
	}
	want := reconcile.Setting{Value: "replica", Context: "postmaster", SourceFile: e2e.PGDATA + "/postgresql.conf"}
	if diff := cmp.Diff(want, p.Settings["wal_level"]); diff != "" {
		t.Errorf("primary: wal_level (-want +got):\n%s", diff)
	}

	s := state(t, standby)
	if s.Version != p.Version || !s.InRecovery || s.Timeline != 1 || s.Receiver != "streaming" || s.Streaming != nil || len(s.Slots) != 0 {
		t.Errorf("standby: Version %d, InRecovery %v, Timeline %d, Receiver %q, Streaming %q, Slots %v;"+
			" want %d, true, 1, streaming, none, none", s.Version, s.InRecovery, s.Timeline, s.Receiver, s.Streaming, s.Slots, p.Version)
	}
	for name, c := range map[string]*Conn{"": primary, "streaming": standby} {
		h, err := c.Health(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if h.Receiver != name {
			t.Errorf("Health: WAL receiver %q, want %q", h.Receiver, name)
		}
	}
	if got := s.Settings["primary_conninfo"]; !strings.Contains(got.Value, "application_name=db2") ||
		got.Context != "sighup" || got.SourceFile != e2e.PGDATA+"/"+autoConf {
		t.Errorf("standby: primary_conninfo = %+v", got)
	}
	if got := s.Roles["replicator"].Verifier; got != repl.Verifier {
		t.Errorf("standby: the replicator's verifier differs from the primary's")
	}

	// A postmaster parameter changed by ALTER SYSTEM is pending a restart
	// after a reload; its reset clears that.
	seed.Primary.ExecSQL("ALTER SYSTEM SET shared_buffers = '64MB'")
	if err := primary.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	eventually(t, e, primary, "shared_buffers to be pending a restart", func(s *reconcile.DBState) error {
		if got := s.Settings["shared_buffers"]; got.Value != "128MB" || got.Context != "postmaster" || !got.PendingRestart {
			return fmt.Errorf("shared_buffers = %+v, want 128MB, postmaster, pending restart", got)
		}
		return nil
	})
	if err := primary.ResetSetting(context.Background(), "shared_buffers"); err != nil {
		t.Fatal(err)
	}
	if err := primary.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	eventually(t, e, primary, "shared_buffers to be no longer pending", func(s *reconcile.DBState) error {
		if got := s.Settings["shared_buffers"]; got.PendingRestart {
			return fmt.Errorf("shared_buffers = %+v, still pending a restart", got)
		}
		return nil
	})

	// A promoted standby reports its new timeline at once, before any
	// checkpoint records it in the control file.
	seed.Standby().ExecSQL("SELECT pg_promote(wait => true)")
	s = state(t, standby)
	if s.InRecovery || s.Timeline != 2 || s.Receiver != "" {
		t.Errorf("promoted standby: InRecovery %v, Timeline %d, Receiver %q; want false, 2, \"\"", s.InRecovery, s.Timeline, s.Receiver)
	}
}

// TestE2ERolesSlotsSettings changes roles, slots and settings on one server
// and checks what the server then reports, that logins follow the password,
// and that neither a password nor a verifier reaches the server log.
func TestE2ERolesSlotsSettings(t *testing.T) {
	e := e2e.Require(t)
	n := e.StartNode(e2e.NodeOptions{Name: "db1", Password: "pacs-" + e.RunID})
	n.WaitWritable(90 * time.Second)
	c := mustConnect(t, e, n)
	ctx := context.Background()

	t.Run("files through the server", func(t *testing.T) {
		n.WriteFile("pacsd.pgpass", []byte("*:*:*:replicator:s3cret\n"), 0o600)
		hba, pass := reconcile.PGDATA+"/pg_hba.conf", reconcile.PGDATA+"/pacsd.pgpass"
		got, err := c.ReadFiles(ctx, []string{hba, pass, reconcile.PGDATA + "/absent", reconcile.BuildingMarker}, []string{pass})
		if err != nil {
			t.Fatal(err)
		}
		if string(got[hba]) != n.ReadFile("pg_hba.conf") {
			t.Errorf("pg_hba.conf through the server: got %q, want what the container holds", got[hba])
		}
		sum := sha256.Sum256([]byte("*:*:*:replicator:s3cret\n"))
		if !bytes.Equal(got[pass], sum[:]) {
			t.Errorf("the passfile: got %x, want its SHA-256 %x (its content must never be read)", got[pass], sum)
		}
		if len(got) != 2 {
			t.Errorf("missing files must not be in the result; got %d entries", len(got))
		}
	})

	t.Run("wrong password", func(t *testing.T) {
		_, err := connect(t, e, n, n.User, "wrong-"+e.RunID)
		if err == nil {
			t.Fatal("Connect with a wrong password succeeded")
		}
		msg := err.Error()
		if !strings.Contains(msg, n.IP()+":5432") || !strings.Contains(msg, n.User) || strings.Contains(msg, "wrong-"+e.RunID) {
			t.Errorf("error %q: want address and user named, no password", msg)
		}
	})

	t.Run("verifiers of PostgreSQL", func(t *testing.T) {
		// PostgreSQL hashes these with SASLprep, and so does pacsd:
		// ASCII, composed and decomposed text, a no-break space (a space),
		// a ligature (NFKC), a soft hyphen (nothing).
		for pw, match := range map[string]bool{
			"plain-" + e.RunID:                    true,
			"pässwort-" + e.RunID:                 true,
			"pa\u0308sswort-" + e.RunID:           true,
			"no\u00a0break-" + e.RunID:            true,
			"\ufb01le-Gr\u00f6\u00dfe-" + e.RunID: true,
			"soft\u00adhyphen-" + e.RunID:         true,
		} {
			lit, _ := quoteLiteral(pw)
			n.ExecSQL("DROP ROLE IF EXISTS probe")
			n.ExecSQL("CREATE ROLE probe LOGIN PASSWORD " + lit)
			v := state(t, c).Roles["probe"].Verifier
			if !IsVerifier(v) {
				t.Fatalf("PostgreSQL stored %q, not a SCRAM verifier", v)
			}
			if got := VerifierMatches(v, pw); got != match {
				t.Errorf("VerifierMatches(PostgreSQL's verifier of %q) = %v, want %v", pw, got, match)
			}
			if VerifierMatches(v, pw+"x") {
				t.Errorf("PostgreSQL's verifier of %q matches another password", pw)
			}
		}
		if err := c.DropRole(ctx, "probe"); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("non-ASCII passwords log in", func(t *testing.T) {
		// pacsd's verifier of each password, set by SetRole: pgx (PRECIS)
		// and psql (libpq, SASLprep) log in with it as written, and psql
		// with its decomposed form too.
		for pw, decomposed := range map[string]string{
			"Gr\u00f6\u00dfe-Stra\u00dfe-" + e.RunID:                       "Gro\u0308\u00dfe-Stra\u00dfe-" + e.RunID,
			"\u043f\u0430\u0440\u043e\u043b\u044c-\u5bc6\u7801-" + e.RunID: "",
			"$(touch x);'\\\"caf\u00e9-" + e.RunID:                         "$(touch x);'\\\"cafe\u0301-" + e.RunID,
		} {
			v, err := Verifier(pw)
			if err != nil {
				t.Fatalf("Verifier(%q): %v", pw, err)
			}
			if err := c.SetRole(ctx, reconcile.RoleSpec{Name: "intl", Login: true, Verifier: v}); err != nil {
				t.Fatal(err)
			}
			if _, err := connect(t, e, n, "intl", pw); err != nil {
				t.Errorf("pgx login as intl with %q: %v", pw, err)
			}
			for _, p := range []string{pw, decomposed} {
				if p == "" {
					continue
				}
				out, code := n.Exec("postgres", "env", "PGPASSWORD="+p, "psql", "-h", n.IP(), "-U", "intl", "-d", "postgres", "-Atc", "SELECT current_user")
				if code != 0 || strings.TrimSpace(out) != "intl" {
					t.Errorf("psql login as intl with %q (set as %q): exit %d, %s", p, pw, code, out)
				}
			}
			if _, err := connect(t, e, n, "intl", pw+"x"); err == nil {
				t.Errorf("a login with another password than %q succeeded", pw)
			}
		}
		if err := c.DropRole(ctx, "intl"); err != nil {
			t.Fatal(err)
		}
	})

	// From here on every statement is logged, three ways: as it comes, with
	// its duration, and in transactions sampled for logging.
	logAll := map[string]string{"log_statement": "all", "log_min_duration_statement": "0", "log_transaction_sample_rate": "1"}
	for name, value := range logAll {
		n.ExecSQL("ALTER SYSTEM SET " + name + " = '" + value + "'")
	}
	if err := c.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	eventually(t, e, c, "every statement to be logged", func(s *reconcile.DBState) error {
		for name, value := range logAll {
			if got := s.Settings[name]; got.Value != value || got.SourceFile != e2e.PGDATA+"/"+autoConf {
				return fmt.Errorf("%s = %+v", name, got)
			}
		}
		return nil
	})

	pw1, pw2 := "first-"+e.RunID, "second-"+e.RunID
	v1, err := Verifier(pw1)
	if err != nil {
		t.Fatal(err)
	}
	v2, err := Verifier(pw2)
	if err != nil {
		t.Fatal(err)
	}
	login := func(pw string) error {
		_, err := connect(t, e, n, "archive", pw)
		return err
	}
	role := func() reconcile.RoleState { return state(t, c).Roles["archive"] }

	t.Run("SetRole creates", func(t *testing.T) {
		r := reconcile.RoleSpec{Name: "archive", Login: true, Verifier: v1, MemberOf: []string{"pg_monitor"}}
		if err := c.SetRole(ctx, r); err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(reconcile.RoleState{Login: true, Verifier: v1, MemberOf: []string{"pg_monitor"}}, role()); diff != "" {
			t.Errorf("role archive (-want +got):\n%s", diff)
		}
		if err := login(pw1); err != nil {
			t.Errorf("login with the password set: %v", err)
		}
		if err := c.SetRole(ctx, r); err != nil {
			t.Errorf("SetRole of a role that matches: %v", err)
		}
	})

	t.Run("SetRole alters", func(t *testing.T) {
		r := reconcile.RoleSpec{Name: "archive", Login: true, Replication: true, Verifier: v2,
			MemberOf: []string{"pg_read_all_data"}}
		if err := c.SetRole(ctx, r); err != nil {
			t.Fatal(err)
		}
		want := reconcile.RoleState{Login: true, Replication: true, Verifier: v2,
			MemberOf: []string{"pg_monitor", "pg_read_all_data"}}
		if diff := cmp.Diff(want, role()); diff != "" {
			t.Errorf("role archive (-want +got):\n%s", diff)
		}
		if err := login(pw2); err != nil {
			t.Errorf("login with the new password: %v", err)
		}
		if err := login(pw1); err == nil || !strings.Contains(err.Error(), "password authentication failed") {
			t.Errorf("login with the old password: err = %v, want password authentication failed", err)
		}
		// Attributes alone, the password left alone.
		if err := c.SetRole(ctx, reconcile.RoleSpec{Name: "archive", Login: true}); err != nil {
			t.Fatal(err)
		}
		if got := role(); got.Replication || got.Verifier != v2 {
			t.Errorf("role archive = %+v, want NOREPLICATION and the password kept", got)
		}
	})

	t.Run("SetRole refuses", func(t *testing.T) {
		if err := c.SetRole(ctx, reconcile.RoleSpec{Name: "archive", Login: true, Verifier: pw1}); err == nil ||
			strings.Contains(err.Error(), pw1) {
			t.Errorf("SetRole with a plain password: err = %v, want a refusal that does not quote it", err)
		}
		if err := c.SetRole(ctx, reconcile.RoleSpec{Name: n.User, Login: true}); err == nil {
			t.Errorf("SetRole took SUPERUSER from the connected role")
		}
		if err := login(pw2); err != nil {
			t.Errorf("a refused SetRole changed the password: %v", err)
		}
		err := c.SetRole(ctx, reconcile.RoleSpec{Name: "archive", Login: true, Verifier: v1, MemberOf: []string{"no_such_role"}})
		if err == nil || strings.Contains(err.Error(), v1) {
			t.Errorf("SetRole with a missing parent role: err = %v, want an error that does not quote the verifier", err)
		}
		if role().Verifier != v2 {
			t.Errorf("a failed SetRole changed the password: its transaction was not rolled back")
		}
	})

	t.Run("DropRole", func(t *testing.T) {
		if err := c.DropRole(ctx, "archive"); err != nil {
			t.Fatal(err)
		}
		if _, ok := state(t, c).Roles["archive"]; ok {
			t.Errorf("role archive still exists")
		}
		if err := c.DropRole(ctx, "archive"); err != nil {
			t.Errorf("DropRole of a missing role: %v", err)
		}
		if err := c.DropRole(ctx, n.User); err == nil {
			t.Errorf("DropRole of the connected role succeeded")
		}
	})

	t.Run("no secrets in the server log", func(t *testing.T) {
		logs := n.Logs()
		if !strings.Contains(logs, `DROP ROLE IF EXISTS "archive"`) || !strings.Contains(logs, "duration: ") {
			t.Fatalf("the server log shows no statements or durations; the settings did not take:\n%s", logs)
		}
		for what, s := range map[string]string{"password 1": pw1, "password 2": pw2, "verifier 1": v1, "verifier 2": v2} {
			if strings.Contains(logs, s) {
				t.Errorf("the server log holds %s", what)
			}
		}
	})

	t.Run("CreateSlot", func(t *testing.T) {
		for range 2 {
			if err := c.CreateSlot(ctx, "db2"); err != nil {
				t.Fatal(err)
			}
		}
		if diff := cmp.Diff(map[string]bool{"db2": false}, state(t, c).Slots); diff != "" {
			t.Errorf("Slots (-want +got):\n%s", diff)
		}
		if got := n.QueryString("SELECT (restart_lsn IS NOT NULL)::text FROM pg_replication_slots WHERE slot_name = 'db2'"); got != "true" {
			t.Errorf("slot db2 reserves no WAL")
		}
		if err := c.CreateSlot(ctx, "Not-A-Slot"); err == nil {
			t.Errorf("CreateSlot of an invalid name succeeded")
		}
	})

	t.Run("ResetSetting", func(t *testing.T) {
		n.ExecSQL("ALTER SYSTEM SET work_mem = '8MB'")
		if err := c.Reload(ctx); err != nil {
			t.Fatal(err)
		}
		eventually(t, e, c, "work_mem from "+autoConf, func(s *reconcile.DBState) error {
			want := reconcile.Setting{Value: "8MB", Context: "user", SourceFile: e2e.PGDATA + "/" + autoConf}
			if got := s.Settings["work_mem"]; got != want {
				return fmt.Errorf("work_mem = %+v, want %+v", got, want)
			}
			return nil
		})
		if err := c.ResetSetting(ctx, "work_mem"); err != nil {
			t.Fatal(err)
		}
		if err := c.Reload(ctx); err != nil {
			t.Fatal(err)
		}
		eventually(t, e, c, "work_mem's override to be gone", func(s *reconcile.DBState) error {
			if got := s.Settings["work_mem"]; got.Value != "4MB" || strings.HasSuffix(got.SourceFile, autoConf) {
				return fmt.Errorf("work_mem = %+v, want 4MB not from %s", got, autoConf)
			}
			return nil
		})
		if conf := n.ReadFile(autoConf); strings.Contains(conf, "work_mem") {
			t.Errorf("%s still sets work_mem:\n%s", autoConf, conf)
		}
		for _, bad := range []string{"work_mem; DROP ROLE pacs", "", "all", "no_such_parameter"} {
			if err := c.ResetSetting(ctx, bad); err == nil {
				t.Errorf("ResetSetting(%q) succeeded", bad)
			}
		}
	})

	t.Run("closed connection", func(t *testing.T) {
		d, err := connect(t, e, n, "", "")
		if err != nil {
			t.Fatal(err)
		}
		d.Close()
		_, err = d.State(ctx)
		if err == nil || !strings.Contains(err.Error(), n.IP()+":5432") {
			t.Errorf("State on a closed connection: err = %v, want one naming the server", err)
		}
	})
}

// TestE2ERefusedLoginIsAnswer: a running server that refuses the login (a
// wrong password) is told apart from one that does not answer: the error
// wraps reconcile.ErrServerRefused, which the failover supervisor reads as
// "alive"; a port where nothing listens does not.
func TestE2ERefusedLoginIsAnswer(t *testing.T) {
	e := e2e.Require(t)
	n := e.StartNode(e2e.NodeOptions{Name: "db1", Password: "pacs-" + e.RunID})
	n.WaitWritable(90 * time.Second)
	_, err := New().connect(peerCtx(e, n), n.IP()+":5432", n.User, spec.NewSecret("wrong-"+e.RunID, "test"), n.Database)
	if !errors.Is(err, reconcile.ErrServerRefused) {
		t.Errorf("a wrong password: %v; want ErrServerRefused", err)
	}
	if err != nil && strings.Contains(err.Error(), "wrong-"+e.RunID) {
		t.Errorf("the error shows the password: %v", err)
	}
	_, err = New().connect(peerCtx(e, n), n.IP()+":5433", n.User, spec.NewSecret("x", "test"), n.Database)
	if err == nil || errors.Is(err, reconcile.ErrServerRefused) {
		t.Errorf("a port where nothing listens: %v; want an error that is not ErrServerRefused", err)
	}
}
