package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/pkg/stdcopy"
	"github.com/jackc/pgx/v5"

	"github.com/pacsd/pacsd/internal/e2e"
	"github.com/pacsd/pacsd/pkg/certs"
	"github.com/pacsd/pacsd/pkg/state"
)

// TestE2ETLS: with pacsd's defaults every connection of a cluster is TLS.
// Every WAL sender on the primary and pacsd's own connections are
// encrypted (pg_stat_ssl); a replication connection without TLS, or over
// TLS without the password, is refused and one with both is taken; a
// standby refuses a primary whose certificate does not carry the name it
// dials, and streams again once pacsd has put the right certificate back;
// and with cert_lifetime = "1m" pacsd renews every node's certificate
// with a reload, never a restart, while a writer keeps committing.
func TestE2ETLS(t *testing.T) {
	e := e2e.Require(t)
	tp := newTopology(t, e, "db1", "db2", "db3")
	tp.extra = "  tls {\n    cert_lifetime = \"1m\"\n  }\n"
	tp.write(t)
	tp.apply(t)
	tp.checkStreaming(t)
	primary := tp.node("db1")

	// Every WAL sender and every connection of pacsd is encrypted.
	if got := primary.QueryString(`SELECT count(*) FILTER (WHERE s.ssl)::text || '/' || count(*)::text
		FROM pg_stat_replication r JOIN pg_stat_ssl s USING (pid)`); got != "2/2" {
		t.Errorf("WAL senders over TLS on the primary: %s, want 2/2", got)
	}
	if got := primary.QueryString(`SELECT count(*) FILTER (WHERE s.ssl AND s.version IN ('TLSv1.2', 'TLSv1.3'))::text || '/' || count(*)::text
		FROM pg_stat_activity a JOIN pg_stat_ssl s USING (pid) WHERE a.application_name IN ('db2', 'db3')`); got != "2/2" {
		t.Errorf("standbys' connections over TLS 1.2 or later: %s, want 2/2", got)
	}

	// Replication without TLS, or without the password: refused.
	host := tp.container("db1")
	caFile := "/tmp/pacsd-ca.crt"
	ca := tp.authority(t).CertPEM()
	repl := func(conninfo, password string) (string, int64) {
		out, errOut, code := tp.psql(t, []e2e.File{{Path: caFile, Content: ca, Mode: 0o644}}, []string{"PGPASSWORD=" + password},
			"-X", "-A", "-t", "-d", conninfo, "-c", "IDENTIFY_SYSTEM")
		return out + errOut, code
	}
	base := "host=" + host + " user=replicator replication=true dbname=replication connect_timeout=10"
	if out, code := repl(base+" sslmode=disable", tp.replPW); code == 0 || !strings.Contains(out, "no encryption") {
		t.Errorf("replication without TLS: exit %d, %q; want refused (no pg_hba.conf entry, no encryption)", code, out)
	}
	if out, code := repl(base+" sslmode=verify-full sslrootcert="+caFile, "wrong-"+tp.replPW); code == 0 || !strings.Contains(out, "password authentication failed") {
		t.Errorf("replication over TLS with a wrong password: exit %d, %q; want refused", code, out)
	}
	if out, code := repl(base+" sslmode=verify-full sslrootcert="+caFile, tp.replPW); code != 0 {
		t.Errorf("replication over TLS with the password, the certificate verified: exit %d, %q; want it taken", code, out)
	}

	// A primary whose certificate names another host: the standbys refuse it.
	cert, key, err := tp.authority(t).Issue([]string{"someone-else"}, time.Now(), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	primary.WriteFile("server.key", key, 0o600)
	primary.WriteFile("server.crt", cert, 0o600)
	primary.ExecSQL("SELECT pg_reload_conf()")
	time.Sleep(time.Second)
	primary.ExecSQL("SELECT pg_terminate_backend(pid) FROM pg_stat_replication")
	refused := func() error {
		logs := tp.node("db2").Logs()
		if !strings.Contains(logs, `server certificate for "someone-else" does not match host name`) {
			return fmt.Errorf("db2's log does not say that it refused the certificate")
		}
		return nil
	}
	if err := e2e.Poll(30*time.Second, refused); err != nil {
		t.Errorf("db2 after the primary's certificate was replaced: %v", err)
	}
	if got := primary.QueryString("SELECT count(*)::text FROM pg_stat_replication"); got != "0" {
		t.Errorf("standbys streaming from a primary with another host's certificate: %s, want 0", got)
	}
	if !tp.plansCert(t, "db1", "does not name") {
		t.Errorf("pacsd plan does not give db1 a certificate with its name back")
	}
	tp.apply(t)
	tp.checkStreaming(t)

	// Renewal: a reload, not a restart, while a writer commits.
	w := e.StartWriter(tp.nodesOf(), "tls_writes")
	started := map[string]string{}
	serials := map[string]string{}
	for _, n := range tp.nodes {
		started[n] = tp.startedAt(t, n)
		serials[n] = tp.servedSerial(t, n)
	}
	time.Sleep(45 * time.Second) // past two thirds of cert_lifetime
	for _, n := range tp.nodes {
		// Due ("expires ... and is renewed"), or expired already when the
		// first apply issued it longer ago than the lifetime.
		if !tp.plansCert(t, n, "the certificate expire") {
			t.Errorf("pacsd plan after 45 s of a 1 minute lifetime does not renew %s's certificate", n)
		}
	}
	tp.apply(t)
	tp.checkStreaming(t)
	time.Sleep(2 * time.Second)
	r := w.Stop()
	for _, n := range tp.nodes {
		if got := tp.startedAt(t, n); got != started[n] {
			t.Errorf("%s was restarted for its new certificate (started %s, now %s); want a reload", n, started[n], got)
		}
		if got := tp.servedSerial(t, n); got == serials[n] {
			t.Errorf("%s still serves its old certificate (serial %s) after the renewal", n, got)
		}
	}
	if r.Errors > 0 || len(r.Acked) == 0 {
		t.Errorf("writer during the renewal: %d acknowledged, %d errors %v; want commits and no error", len(r.Acked), r.Errors, r.ErrorSamples)
	}
	t.Logf("writer: %d commits, longest gap %s", len(r.Acked), r.LongestGap)

	// A primary running without TLS (a cluster pacsd converged before it
	// managed TLS, or ssl turned off by hand and the server restarted):
	// pacsd cannot log in over TCP, writes its files and reloads the server
	// over the container's socket, and the cluster streams over TLS again.
	conf := strings.Replace(primary.ReadFile("pacsd.conf"), "ssl = on", "ssl = off", 1)
	primary.WriteFile("pacsd.conf", []byte(conf), 0o600)
	primary.WriteFile("pg_hba.conf", []byte(strings.ReplaceAll(primary.ReadFile("pg_hba.conf"), "hostssl", "host   ")), 0o600)
	primary.Restart()
	primary.WaitWritable(60 * time.Second)
	if got := primary.QueryString("SHOW ssl"); got != "off" {
		t.Fatalf("the primary restarted with ssl = off shows ssl %s", got)
	}
	tp.apply(t)
	if got := primary.QueryString("SHOW ssl"); got != "on" {
		t.Errorf("after pacsd apply the primary shows ssl %s, want on", got)
	}
	tp.checkStreaming(t)
	tp.writeAndRead(t, "tls-back-"+e.RunID)
	tp.servedSerial(t, "db1")
}

// plansCert reports whether pacsd plan issues node a new server
// certificate for a reason that says why.
func (tp *topology) plansCert(t *testing.T, node, why string) bool {
	t.Helper()
	_, actions := tp.plan(t)
	for _, a := range actions {
		if a.Node == node && a.Kind == "write-file" && strings.HasSuffix(a.Target, "/server.crt") && strings.Contains(a.Reason, why) {
			return true
		}
	}
	t.Logf("pacsd plan: %+v", actions)
	return false
}

// authority is the cluster's CA as pacsd keeps it in the state directory.
func (tp *topology) authority(t *testing.T) *certs.Authority {
	t.Helper()
	a, err := (&state.Store{Dir: filepath.Join(tp.dir, "state")}).Authority(context.Background(), tp.name)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// startedAt is when node's container last started.
func (tp *topology) startedAt(t *testing.T, node string) string {
	t.Helper()
	c, err := tp.docker(node).ContainerInspect(context.Background(), tp.container(node))
	if err != nil {
		t.Fatal(err)
	}
	return c.State.StartedAt
}

// servedSerial is the serial of the certificate node's server presents,
// verified with the cluster's CA for the node's container name.
func (tp *topology) servedSerial(t *testing.T, node string) string {
	t.Helper()
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(tp.authority(t).CertPEM())
	n := tp.node(node)
	cfg, err := pgx.ParseConfig(n.DSN("", ""))
	if err != nil {
		t.Fatal(err)
	}
	cfg.TLSConfig = &tls.Config{RootCAs: pool, ServerName: tp.container(node)}
	cfg.Fallbacks = nil
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		t.Fatalf("node %s: a connection verified with the cluster's CA: %v", node, err)
	}
	defer conn.Close(ctx)
	tc, ok := conn.PgConn().Conn().(*tls.Conn)
	if !ok {
		t.Fatalf("node %s: the connection is not TLS", node)
	}
	return tc.ConnectionState().PeerCertificates[0].SerialNumber.String()
}

// psql runs psql with args in a one-off container of the test image on the
// cluster's network (where the archive's container would be), with files
// placed and env set, and returns its stdout, stderr and exit code.
func (tp *topology) psql(t *testing.T, files []e2e.File, env []string, args ...string) (stdout, stderr string, exit int64) {
	t.Helper()
	e := tp.e
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	name := e.Name(fmt.Sprintf("psql-%d", time.Now().UnixNano()))
	c, err := e.Docker.ContainerCreate(ctx,
		&container.Config{Image: e.Image, Cmd: append([]string{"psql"}, args...), Env: env, Labels: e.Labels()},
		&container.HostConfig{NetworkMode: container.NetworkMode(tp.name)}, nil, nil, name)
	if err != nil {
		t.Fatalf("while creating the psql container %s on network %s: %v", name, tp.name, err)
	}
	defer func() {
		if err := e.Docker.ContainerRemove(context.Background(), c.ID, container.RemoveOptions{Force: true}); err != nil {
			t.Errorf("while removing the psql container %s: %v", name, err)
		}
	}()
	for _, f := range files {
		if err := e.CopyFile(ctx, c.ID, f); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.Docker.ContainerStart(ctx, c.ID, container.StartOptions{}); err != nil {
		t.Fatalf("while starting the psql container %s: %v", name, err)
	}
	waitC, errC := e.Docker.ContainerWait(ctx, c.ID, container.WaitConditionNotRunning)
	select {
	case w := <-waitC:
		exit = w.StatusCode
	case err := <-errC:
		t.Fatalf("while waiting for the psql container %s: %v", name, err)
	}
	logs, err := e.Docker.ContainerLogs(ctx, c.ID, container.LogsOptions{ShowStdout: true, ShowStderr: true})
	if err != nil {
		t.Fatalf("while reading the output of the psql container %s: %v", name, err)
	}
	defer logs.Close()
	var out, errOut bytes.Buffer
	if _, err := stdcopy.StdCopy(&out, &errOut, logs); err != nil {
		t.Fatalf("while reading the output of the psql container %s: %v", name, err)
	}
	return strings.TrimSpace(out.String()), errOut.String(), exit
}
