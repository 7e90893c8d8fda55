package main

import (
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pacsd/pacsd/internal/e2e"
)

// TestE2EConninfo checks the URLs of `pacsd conninfo` against a real
// cluster of two nodes: psql, in a container on the cluster network as the
// archive's would be, lands with the read-write URI on the primary and with
// the read-only URI on the standby; after `pacsd switchover` the same
// read-write URI lands on the new primary, the read-only one on the old
// primary, now a standby; and with the standby stopped the read-only URI
// still lands on the primary.
func TestE2EConninfo(t *testing.T) {
	e := e2e.Require(t)
	tp := newTopology(t, e, "db1", "db2")
	tp.apply(t)
	tp.checkStreaming(t)

	// The CA certificate goes where the URIs name it, here and in psql's
	// container (psqlLands).
	caFile := filepath.Join(t.TempDir(), "pacs-ca.crt")
	code, stdout, stderr := runCLI(t, nil, "conninfo", "-f", tp.path, "--ca-file", caFile)
	if code != exitOK || stderr != "" {
		t.Fatalf("pacsd conninfo: exit %d\n%s%s", code, stdout, stderr)
	}
	if strings.Contains(stdout, tp.pacsPW) {
		t.Fatalf("pacsd conninfo printed the superuser's password:\n%s", stdout)
	}
	rw := urlLine(t, stdout, "postgresql://", "target_session_attrs=read-write")
	ro := urlLine(t, stdout, "postgresql://", "target_session_attrs=prefer-standby")
	hosts := tp.container("db1") + ":5432," + tp.container("db2") + ":5432"
	if want := "postgresql://pacs@" + hosts + "/pacsdb?sslmode=verify-full&sslrootcert=" + escapeURLPart(caFile) + "&target_session_attrs=read-write"; rw != want {
		t.Fatalf("pacsd conninfo: read-write URI %q, want %q", rw, want)
	}
	var info conninfo
	if code, js, stderr := runCLI(t, nil, "conninfo", "--json", "-f", tp.path, "--ca-file", caFile); code != exitOK || json.Unmarshal([]byte(js), &info) != nil {
		t.Fatalf("pacsd conninfo --json: exit %d\n%s%s", code, js, stderr)
	}
	if info.ReadWrite.LibPQ != rw || info.ReadOnly.LibPQ != ro {
		t.Fatalf("pacsd conninfo --json gives other URIs than its text: %+v; text: %q, %q", info, rw, ro)
	}
	t.Logf("read-write: %s\nread-only:  %s", rw, ro)

	// A node's address on the cluster network changes when pacsd moves the
	// client aliases (it connects the container again): read it each time.
	lands := func(step, uri, node string, recovery bool) {
		t.Helper()
		ip := map[string]string{"db1": tp.node("db1").IP(), "db2": tp.node("db2").IP()}
		want := fmt.Sprintf("%t %s", recovery, ip[node])
		if got := psqlLands(t, tp, uri); got != want {
			t.Fatalf("%s: psql with %s reached a server answering %q (pg_is_in_recovery, address); want %q, node %s (addresses %v)", step, uri, got, want, node, ip)
		}
	}
	lands("before the switchover", rw, "db1", false)
	lands("before the switchover", ro, "db2", true)

	out := tp.applyOutput(t, "switchover", "db2")
	if !strings.Contains(out, `"db2" is the primary`) {
		t.Fatalf("pacsd switchover db2 said:\n%s", out)
	}
	tp.primary = "db2" // what runs; the file still names db1, listed first
	tp.node("db2").WaitWritable(30 * time.Second)
	tp.checkStreaming(t)
	lands("after the switchover to db2", rw, "db2", false)
	lands("after the switchover to db2", ro, "db1", true)

	// Only the primary left: reads still work.
	tp.node("db1").Stop()
	lands("with the standby db1 stopped", ro, "db2", false)
}

// urlLine returns the one URL of out that starts with prefix and holds part.
func urlLine(t *testing.T, out, prefix, part string) string {
	t.Helper()
	var found []string
	for _, f := range strings.Fields(out) {
		if strings.HasPrefix(f, prefix) && strings.Contains(f, part) {
			found = append(found, f)
		}
	}
	if len(found) != 1 {
		t.Fatalf("pacsd conninfo printed %d URLs starting %q with %q, want 1:\n%s", len(found), prefix, part, out)
	}
	return found[0]
}

// psqlLands runs psql with uri in a one-off container of the test image on
// the cluster's network (where the archive's container would be), the
// superuser's password in that container's environment only, and returns
// what the server it reached answers: "pg_is_in_recovery() address".
func psqlLands(t *testing.T, tp *topology, uri string) string {
	t.Helper()
	var files []e2e.File
	if u, err := url.Parse(uri); err == nil && u.Query().Get("sslrootcert") != "" {
		ca := u.Query().Get("sslrootcert")
		pem, err := os.ReadFile(ca)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, e2e.File{Path: ca, Content: pem, Mode: 0o644})
	}
	out, errOut, exit := tp.psql(t, files, []string{"PGPASSWORD=" + tp.pacsPW, "PGCONNECT_TIMEOUT=10"},
		"-X", "-q", "-A", "-t", "-d", uri, "-c", "SELECT pg_is_in_recovery()::text || ' ' || host(inet_server_addr())")
	if exit != 0 {
		t.Fatalf("psql with %s on network %s: exit %d\n%s%s", uri, tp.name, exit, out, errOut)
	}
	return out
}
