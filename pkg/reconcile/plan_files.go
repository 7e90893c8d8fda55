package reconcile

import (
	"bytes"
	"crypto/sha256"
	"encoding/pem"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/pacsd/pacsd/pkg/certs"
	"github.com/pacsd/pacsd/pkg/pgconf"
	"github.com/pacsd/pacsd/pkg/spec"
)

// Paths of pacsd's files in PGDATA.
const (
	HBAPath      = PGDATA + "/pg_hba.conf"
	ParamsPath   = PGDATA + "/pacsd.conf"
	ConfPath     = PGDATA + "/postgresql.conf"
	SignalPath   = PGDATA + "/standby.signal"
	PassfilePath = PGDATA + "/pacsd.pgpass"
	VersionPath  = PGDATA + "/PG_VERSION"
	// superuserPasswordPath is where POSTGRES_PASSWORD_FILE points.
	superuserPasswordPath = SecretsDir + "/superuser.password"
	initScriptPath        = "/docker-entrypoint-initdb.d/00-pacsd.sh"
	initFilesDir          = SecretsDir + "/init"
)

// planFiles compares pacsd's files with what is in PGDATA and writes those
// that differ; for a running node it then reloads or restarts.
func (p *planner) planFiles(n *spec.Node, ns *NodeState, want map[string][]byte, primary bool, phase runPhase, beforeStart bool) {
	have := ns.Files
	if have == nil {
		have = &Files{}
	}
	// A running server pacsd cannot log in to over TLS (one that does not
	// speak it yet, or presents a certificate pacsd refuses) gets its files
	// and a reload over its container's socket before any SQL of the pass.
	unreached := !beforeStart && ns.DB == nil && tlsFailed(ns.DBError) && ns.Container != nil && ns.Container.Running && !ns.Container.Paused
	if unreached {
		phase = phaseCerts
	}
	write := func(path string, content []byte, secret bool, reason string) {
		p.add(Action{Kind: WriteFile, Node: n.Name, Target: path, Reason: reason, phase: phase,
			File: &FileWrite{Path: path, Content: content, Mode: 0o600, Secret: secret}})
	}
	var changed []string
	if !bytes.Equal(have.HBA, want[HBAPath]) {
		write(HBAPath, want[HBAPath], false, differs(have.HBA))
		changed = append(changed, "pg_hba.conf")
	}
	if !bytes.Equal(have.Params, want[ParamsPath]) {
		write(ParamsPath, want[ParamsPath], false, differs(have.Params))
		changed = append(changed, paramNames(have.Params, want[ParamsPath])...)
	}
	if sum := sha256.Sum256(want[PassfilePath]); !bytes.Equal(have.PassfileSum, sum[:]) {
		write(PassfilePath, want[PassfilePath], true, differs(have.PassfileSum))
		changed = append(changed, "primary_conninfo")
	}
	if have.PostgresConf != nil {
		if conf, ch := pgconf.EnsureInclude(have.PostgresConf); ch {
			write(ConfPath, conf, false, "the line that includes pacsd.conf is missing or edited")
			changed = append(changed, "include")
		}
	}
	var served []byte
	if ns.DB != nil {
		served = ns.DB.ServedCert
	}
	certChanged := p.planCerts(n, have, served, phase, beforeStart || unreached)
	if !primary && !have.StandbySignal {
		write(SignalPath, []byte{}, false, "a standby needs standby.signal")
		changed = append(changed, "standby.signal")
	}
	if unreached && !needsRestart(changed, nil) {
		reason := "pacsd cannot log in to it over TLS (" + ns.DBError + "); the files in place take effect"
		if all := append(changed, certChanged...); len(all) > 0 {
			reason = "changed: " + strings.Join(all, ", ") + "; reloaded before pacsd logs in to it"
		}
		p.add(Action{Kind: Reload, Class: ClassReload, Node: n.Name, Target: n.Container, Reason: reason, phase: phaseCerts,
			Repoint: !primary && slices.Contains(changed, "primary_conninfo")})
		return
	}
	if beforeStart || len(changed) == 0 && !pendingRestart(ns.DB) {
		return
	}
	if needsRestart(changed, ns.DB) {
		reason := "the server reports settings pending a restart"
		if len(changed) > 0 {
			reason = "changes take effect only at start: " + strings.Join(changed, ", ")
		}
		phase, low := restartPhase(primary), lowered(ns.DB, want[ParamsPath])
		switch {
		case len(low) > 0 && primary:
			phase = phaseRestartPrimaryFirst
			reason += "; before the standbys, as it lowers " + strings.Join(low, ", ") + " (a standby does not start with less than its primary)"
		case len(low) > 0:
			reason += "; once it has replayed the primary's restart with the lower " + strings.Join(low, ", ")
		}
		p.add(Action{Kind: Restart, Class: ClassRestart, Node: n.Name, Target: n.Container, phase: phase, Reason: reason, CatchUp: len(low) > 0 && !primary})
		return
	}
	p.add(Action{Kind: Reload, Class: ClassReload, Node: n.Name, Target: n.Container, Reason: "changed: " + strings.Join(changed, ", "),
		Repoint: !primary && slices.Contains(changed, "primary_conninfo")})
}

// tlsFailed reports a login that failed for TLS: the server does not speak
// it, or its certificate was refused.
func tlsFailed(dbError string) bool {
	return strings.Contains(dbError, "server refused TLS") || strings.Contains(dbError, "tls: ") || strings.Contains(dbError, "x509: ")
}

// planCerts issues node n a server certificate when the one in its PGDATA
// is missing, not the cluster CA's, does not name every way n is reached,
// is due for renewal or does not match its key; writes the CA's
// certificate when it differs; and reloads a server that presents another
// certificate than the one in place (served: a renewal whose reload
// failed). A running server is reloaded at once
// (phaseCerts, before any SQL of the pass: a server that still presents
// a certificate pacsd refuses is reloaded over its container's socket);
// before a start, or when the caller reloads (noReload), the files go in
// phase and no reload is added. It returns what changed.
func (p *planner) planCerts(n *spec.Node, have *Files, served []byte, phase runPhase, noReload bool) []string {
	if !noReload {
		phase = phaseCerts
	}
	files := certFiles(p.c, n, p.obs.CA, PGDATA)
	ok, why := certs.Check(have.ServerCert, p.obs.CA, files[0].Issue.Names, p.obs.Now, certLifetime(p.c))
	if ok && !have.KeyMatches {
		ok, why = false, "server.key is not the key of the certificate"
	}
	var changed []string
	if !ok {
		p.add(Action{Kind: WriteFile, Node: n.Name, Target: files[0].Path, Reason: "a new server certificate: " + why, phase: phase, File: &files[0]})
		changed = append(changed, "server certificate")
	}
	if !bytes.Equal(have.RootCert, p.obs.CA) {
		p.add(Action{Kind: WriteFile, Node: n.Name, Target: files[1].Path, Reason: "the cluster's CA certificate " + differs(have.RootCert), phase: phase, File: &files[1]})
		changed = append(changed, "CA certificate")
	}
	reason := "changed: " + strings.Join(changed, ", ")
	if len(changed) == 0 && ok && served != nil && !servesFile(served, have.ServerCert) {
		// The certificate in place was written, and its reload failed.
		reason = "the server presents another certificate than server.crt"
	} else if len(changed) == 0 {
		return nil
	}
	if !noReload {
		p.add(Action{Kind: Reload, Class: ClassReload, Node: n.Name, Target: n.Container, Reason: reason, phase: phaseCerts})
	}
	return changed
}

// servesFile reports whether served (DER) is the certificate of certPEM.
func servesFile(served, certPEM []byte) bool {
	b, _ := pem.Decode(certPEM)
	return b != nil && bytes.Equal(b.Bytes, served)
}

// restartPhase restarts standbys before the primary.
// hotStandbyParams are the parameters a standby must run with at least
// the values of its primary: with less, it does not start (PostgreSQL
// compares them with those the primary wrote into its WAL).
var hotStandbyParams = []string{"max_connections", "max_locks_per_transaction", "max_prepared_transactions", "max_wal_senders", "max_worker_processes"}

// lowered returns the hotStandbyParams that params (a pacsd.conf) sets
// lower than the server db runs with. A parameter pacsd.conf leaves to
// postgresql.conf is not compared.
func lowered(db *DBState, params []byte) []string {
	if db == nil {
		return nil
	}
	want := parseConf(params)
	var out []string
	for _, name := range hotStandbyParams {
		v, err1 := strconv.Atoi(strings.Trim(want[name], "'"))
		now, err2 := strconv.Atoi(db.Settings[name].Value)
		if err1 == nil && err2 == nil && v < now {
			out = append(out, name)
		}
	}
	return out
}

func restartPhase(primary bool) runPhase {
	if primary {
		return phaseRestartPrimary
	}
	return phaseRestartStandbys
}

func differs(have []byte) string {
	if have == nil {
		return "missing or not readable without a container"
	}
	return "differs from the spec"
}

// needsRestart reports whether any changed name is a postmaster-context
// parameter (or a file that only a start reads), or the server says so.
func needsRestart(changed []string, db *DBState) bool {
	if pendingRestart(db) {
		return true
	}
	for _, name := range changed {
		switch name {
		case "standby.signal", "include":
			return true
		}
		if prm, ok := spec.LookupParam(name); ok && prm.Context == "postmaster" {
			return true
		}
	}
	return false
}

func pendingRestart(db *DBState) bool {
	if db == nil {
		return false
	}
	for _, s := range db.Settings {
		if s.PendingRestart {
			return true
		}
	}
	return false
}

// paramNames returns the names whose lines differ between two pacsd.conf files.
func paramNames(old, new []byte) []string {
	a, b := parseConf(old), parseConf(new)
	var out []string
	for k, v := range b {
		if a[k] != v {
			out = append(out, k)
		}
	}
	for k := range a {
		if _, ok := b[k]; !ok {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}

// parseConf reads "name = value" lines, ignoring comments and blank lines.
func parseConf(b []byte) map[string]string {
	m := map[string]string{}
	for _, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			continue
		}
		m[strings.ToLower(strings.TrimSpace(k))] = strings.TrimSpace(v)
	}
	return m
}

// planOverrides resets every ALTER SYSTEM override of a parameter pacsd
// writes into node n's pacsd.conf (on a standby, primary_conninfo and
// primary_slot_name among them: an override there stops it streaming), then
// reloads it unless a reload or restart is planned already.
func (p *planner) planOverrides(n *spec.Node, ns *NodeState) {
	if ns.DB == nil {
		return
	}
	managed := parseConf(NodeFiles(p.c, n.Name, p.acting)[ParamsPath])
	var names []string
	for name, s := range ns.DB.Settings {
		if _, ok := managed[name]; ok && strings.HasSuffix(s.SourceFile, "postgresql.auto.conf") {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	for _, name := range names {
		p.add(Action{Kind: ResetSetting, Class: ClassReload, Node: n.Name, Target: name, Reason: "ALTER SYSTEM overrides a parameter pacsd manages"})
	}
	if len(names) > 0 && !slices.ContainsFunc(p.actions, func(a Action) bool { return a.Node == n.Name && (a.Kind == Reload || a.Kind == Restart) }) {
		p.add(Action{Kind: Reload, Class: ClassReload, Node: n.Name, Target: n.Container, Reason: "ALTER SYSTEM overrides were reset"})
	}
}

// pacsdFiles are the files pacsd keeps in a node's PGDATA, from files (see
// NodeFiles), standby.signal among them for a standby.
func pacsdFiles(files map[string][]byte, standby bool) []FileWrite {
	paths := []string{HBAPath, ParamsPath, PassfilePath}
	if standby {
		paths = append(paths, SignalPath)
	}
	placed := make([]FileWrite, len(paths))
	for i, path := range paths {
		placed[i] = FileWrite{Path: path, Content: files[path], Mode: 0o600, Secret: path == PassfilePath}
	}
	return placed
}

// NodeFiles returns the content of pacsd's files in PGDATA for node of c when
// acting is the primary, keyed by path (standby.signal is empty content,
// present only for standbys).
func NodeFiles(c *spec.Cluster, node, acting string) map[string][]byte {
	primary := node == acting
	up := pgconf.Upstream{}
	if !primary {
		host, port := Reach(c, node, acting)
		up = pgconf.Upstream{Host: host, Port: port, SlotName: pgconf.SlotName(c.Name, node), Passfile: PassfilePath, RootCert: RootCertPath}
	}
	m := map[string][]byte{
		HBAPath:      pgconf.HBA(c, node, hostPeers(c)),
		ParamsPath:   pgconf.Params(c, node, up),
		PassfilePath: pgconf.Passfile(c),
	}
	if !primary {
		m[SignalPath] = []byte{}
	}
	return m
}

// Reach says where the PostgreSQL of node to is reached from node from (a
// standby's primary_conninfo, a base backup's or a rewind's source): on one
// host, by container name and port 5432 on the cluster network; across hosts,
// at to's host address and published port. No side effects.
func Reach(c *spec.Cluster, from, to string) (host string, port int) {
	f, t := c.Node(from), c.Node(to)
	switch {
	case t == nil:
		return "", 0
	case f != nil && f.Host != t.Host:
		return t.Address, t.Port
	}
	return t.Container, 5432
}

// hostPeers are the addresses replication and pacsd's superuser may connect
// from besides the cluster network (samenet): for a cluster that spans
// hosts, the address of every host of its nodes (a container reaching
// another host's published port is seen there with its host's address).
func hostPeers(c *spec.Cluster) []string {
	if !c.SpansHosts() {
		return nil
	}
	var peers []string
	for _, n := range c.Nodes {
		peers = append(peers, n.Address)
	}
	return peers
}

// initFiles are placed into a new primary's container so that its first
// initialisation installs pacsd's files before the server's first real start:
// no restart is needed for parameters.
func initFiles(files map[string][]byte) []FileWrite {
	script := "#!/bin/sh\n# Placed by pacsd: installs pacsd's files at the first initialisation.\nset -e\n" +
		"for f in pg_hba.conf pacsd.conf pacsd.pgpass " + pgconf.ServerCertFile + " " + pgconf.ServerKeyFile + " " + pgconf.RootCertFile + "; do\n" +
		"  install -m 0600 \"" + initFilesDir + "/$f\" \"$PGDATA/$f\"\n" +
		"done\n" +
		"grep -qxF \"" + pgconf.IncludeLine + "\" \"$PGDATA/postgresql.conf\" || echo \"" + pgconf.IncludeLine + "\" >> \"$PGDATA/postgresql.conf\"\n"
	return []FileWrite{
		{Path: initFilesDir + "/pg_hba.conf", Content: files[HBAPath], Mode: 0o600},
		{Path: initFilesDir + "/pacsd.conf", Content: files[ParamsPath], Mode: 0o600},
		{Path: initFilesDir + "/pacsd.pgpass", Content: files[PassfilePath], Mode: 0o600, Secret: true},
		{Path: initScriptPath, Content: []byte(script), Mode: 0o755},
	}
}
