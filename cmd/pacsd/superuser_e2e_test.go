package main

import (
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/events"
	"github.com/docker/docker/api/types/filters"

	"github.com/pacsd/pacsd/internal/e2e"
)

// TestE2ESuperuserResetQuiet proves that the superuser's password, reset
// over the container's socket after it was changed by hand, and the
// replication role's, set over TCP, leave no trace of a password or verifier
// where an operator or a log shipper would find one: the server log with
// every statement and its duration logged, and the commands pacsd ran in the
// container (Docker's exec events, which is also what ps shows).
func TestE2ESuperuserResetQuiet(t *testing.T) {
	e := e2e.Require(t)
	tp := newTopology(t, e, "db1")
	tp.extra = `  settings = {
    log_statement              = "all"
    log_min_duration_statement = 0
  }`
	tp.write(t)
	tp.apply(t)
	db1 := tp.node("db1")
	if out, code := db1.Exec("postgres", "psql", "-XAtq", "-U", "pacs", "-d", "pacsdb", "-c", "ALTER ROLE pacs PASSWORD 'changed-by-hand'"); code != 0 {
		t.Fatalf("changing the superuser's password by hand: %s", out)
	}
	if err := db1.TryExecSQL("SELECT 1"); err == nil {
		t.Fatal("the superuser still logs in with the file's password after it was changed by hand")
	}
	tp.wantPlan(t, "set-role/")
	began := time.Now()
	tp.apply(t)
	if err := db1.TryExecSQL("SELECT 1"); err != nil {
		t.Fatalf("the superuser's password was not put back: %v", err)
	}
	ended := time.Now()

	secrets := map[string]string{"the superuser's password": tp.pacsPW, "the replication password": tp.replPW}
	for _, role := range []string{"pacs", "replicator"} {
		v := db1.QueryString("SELECT rolpassword FROM pg_authid WHERE rolname = $1", role)
		if !strings.HasPrefix(v, "SCRAM-SHA-256$") {
			t.Fatalf("role %s has no SCRAM verifier: %q", role, v)
		}
		secrets["the verifier of "+role] = v
		// Its keys alone are what a login needs.
		_, keys, _ := strings.Cut(strings.TrimPrefix(v, "SCRAM-SHA-256$"), "$")
		stored, server, _ := strings.Cut(keys, ":")
		secrets["the StoredKey of "+role], secrets["the ServerKey of "+role] = stored, server
	}

	logs := db1.Logs()
	if !strings.Contains(logs, "statement: ") || !strings.Contains(logs, "duration: ") {
		t.Fatalf("the server log shows no statements or durations; the settings did not take:\n%s", logs)
	}
	if !strings.Contains(logs, "changed-by-hand") {
		t.Fatalf("the server log does not show the statement run by hand; log_statement = 'all' did not take:\n%s", logs)
	}
	for what, s := range secrets {
		if strings.Contains(logs, s) {
			t.Errorf("the server log holds %s", what)
		}
	}

	// What pacsd ran in the container, as the engine reports it.
	ctx := e.Ctx(30 * time.Second)
	msgs, errs := e.Docker.Events(ctx, events.ListOptions{
		Since:   began.Format(time.RFC3339Nano),
		Until:   ended.Add(time.Second).Format(time.RFC3339Nano),
		Filters: filters.NewArgs(filters.Arg("container", db1.ID), filters.Arg("type", "container")),
	})
	var execs []string
	for done := false; !done; {
		select {
		case m, ok := <-msgs:
			if !ok {
				done = true
				break
			}
			// (The test's own change by hand is not pacsd's.)
			if strings.HasPrefix(string(m.Action), "exec_") && !strings.Contains(string(m.Action), "changed-by-hand") {
				execs = append(execs, string(m.Action))
			}
		case err := <-errs:
			if err != nil && !strings.Contains(err.Error(), "EOF") {
				t.Fatalf("while reading the engine's events: %v", err)
			}
			done = true
		}
	}
	if !strings.Contains(strings.Join(execs, "\n"), "psql") {
		t.Fatalf("the engine reports no psql run in the container; the reset did not go over the socket:\n%s", strings.Join(execs, "\n"))
	}
	for _, x := range execs {
		for what, s := range secrets {
			if strings.Contains(x, s) {
				t.Errorf("a command pacsd ran in the container holds %s: %.80s...", what, x)
			}
		}
		if strings.Contains(strings.ToUpper(x), "PASSWORD") {
			t.Errorf("a command pacsd ran in the container sets a password on its command line: %.80s...", x)
		}
	}
	if out, code := db1.Exec("root", "ls", "-A", "/run/pacsd"); code != 0 || strings.Contains(out, "set-role") {
		t.Errorf("the script that set the password is left in the container (exit %d): %s", code, out)
	}
	tp.converged(t)
}
