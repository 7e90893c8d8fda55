package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/pkg/stdcopy"

	"github.com/pacsd/pacsd/internal/e2e"
	"github.com/pacsd/pacsd/pkg/reconcile"
)

// auditSecret is one configured password and the forms it is searched in.
type auditSecret struct {
	what  string // "the viewer's old password"
	value string // as configured (the file's content without its newline)
	// mark is a part of value without any character that an encoding
	// (JSON, SQL or shell quoting, libpq's passfile) changes: found in any
	// encoding of the password.
	mark string
}

// forms returns the ways value may be written down: as it is, escaped in
// JSON (logs, events, /status), quoted as an SQL literal (server logs),
// and its distinctive part.
func (s auditSecret) forms() [][2]string {
	js, _ := json.Marshal(s.value)
	return [][2]string{
		{"as written", s.value},
		{"escaped as in JSON", string(js[1 : len(js)-1])},
		{"quoted as in SQL", strings.ReplaceAll(s.value, "'", "''")},
		{"its distinctive part " + s.mark, s.mark},
	}
}

// auditText is one text searched: where it came from and what it holds.
type auditText struct{ where, text string }

// audit collects every text pacsd and the servers produced, and searches
// them for every configured password.
type audit struct {
	secrets []auditSecret
	mu      sync.Mutex
	texts   []auditText
}

func (a *audit) add(where, text string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.texts = append(a.texts, auditText{where, text})
}

// findings returns, for every text that holds a password in any of its
// forms, where, which password, in which form, and the text around it
// with the password masked.
func (a *audit) findings() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []string
	for _, tx := range a.texts {
		for _, s := range a.secrets {
			for _, f := range s.forms() {
				i := strings.Index(tx.text, f[1])
				if i < 0 {
					continue
				}
				lo, hi := max(0, i-120), min(len(tx.text), i+len(f[1])+120)
				around := tx.text[lo:hi]
				for _, g := range s.forms() {
					around = strings.ReplaceAll(around, g[1], "[PASSWORD]")
				}
				out = append(out, fmt.Sprintf("%s: %s (%s), at byte %d: …%q…", tx.where, s.what, f[0], i, around))
				break // one finding per text and password
			}
		}
	}
	return out
}

// size is how many texts and bytes were collected.
func (a *audit) size() (int, int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	n := 0
	for _, tx := range a.texts {
		n += len(tx.text)
	}
	return len(a.texts), n
}

// inspectRecorder polls the engine every 100 ms for the containers of a
// cluster, the one-off containers (base backup, rewind) included, and keeps
// every distinct `docker inspect` of each, and the output of the one-offs
// while they run.
type inspectRecorder struct {
	stop chan struct{}
	done chan struct{}

	mu       sync.Mutex
	inspects map[string]auditText // by container ID and hash of the JSON
	sockets  []string             // containers that mount the Docker socket
	oneOffs  map[string]string    // name -> io.pacsd.one-off value
	oneOffLg map[string]string    // name -> its output, as last read
	errs     []string
	polls    int
}

func startInspectRecorder(e *e2e.Env, cluster string) *inspectRecorder {
	r := &inspectRecorder{stop: make(chan struct{}), done: make(chan struct{}),
		inspects: map[string]auditText{}, oneOffs: map[string]string{}, oneOffLg: map[string]string{}}
	f := filters.NewArgs(filters.Arg("label", reconcile.LabelCluster+"="+cluster))
	go func() {
		defer close(r.done)
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			r.poll(e, f)
			select {
			case <-r.stop:
				r.poll(e, f) // what is there at the end, too
				return
			case <-tick.C:
			}
		}
	}()
	return r
}

func (r *inspectRecorder) poll(e *e2e.Env, f filters.Args) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cs, err := e.Docker.ContainerList(ctx, container.ListOptions{All: true, Filters: f})
	r.mu.Lock()
	r.polls++
	if err != nil && len(r.errs) < 20 {
		r.errs = append(r.errs, "list: "+err.Error())
	}
	r.mu.Unlock()
	for _, c := range cs {
		in, err := e.Docker.ContainerInspect(ctx, c.ID)
		if err != nil {
			continue // gone between the list and the inspect (a one-off that ended)
		}
		b, err := json.Marshal(in)
		if err != nil {
			r.mu.Lock()
			r.errs = append(r.errs, "marshal: "+err.Error())
			r.mu.Unlock()
			continue
		}
		sum := sha256.Sum256(b)
		key := in.ID + fmt.Sprintf("-%x", sum[:8])
		name := strings.TrimPrefix(in.Name, "/")
		what := in.Config.Labels[reconcile.LabelOneOff]
		var logs string
		if what != "" {
			if rc, err := e.Docker.ContainerLogs(ctx, in.ID, container.LogsOptions{ShowStdout: true, ShowStderr: true}); err == nil {
				var out bytes.Buffer
				_, _ = stdcopy.StdCopy(&out, &out, rc)
				rc.Close()
				logs = out.String()
			}
		}
		r.mu.Lock()
		// Nothing pacsd creates mounts the Docker socket.
		for _, m := range in.Mounts {
			if strings.Contains(m.Source, "docker.sock") || strings.Contains(m.Destination, "docker.sock") {
				r.sockets = append(r.sockets, name+" mounts "+m.Source+" at "+m.Destination)
			}
		}
		if _, ok := r.inspects[key]; !ok {
			r.inspects[key] = auditText{"docker inspect of container " + name + " (" + in.ID[:12] + ", " + in.State.Status + ")", string(b)}
		}
		if what != "" {
			r.oneOffs[name] = what
			if len(logs) >= len(r.oneOffLg[name]) {
				r.oneOffLg[name] = logs
			}
		}
		r.mu.Unlock()
	}
}

// finish stops the polling and adds what it recorded to a.
func (r *inspectRecorder) finish(a *audit) {
	close(r.stop)
	<-r.done
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, tx := range r.inspects {
		a.add(tx.where, tx.text)
	}
	for name, logs := range r.oneOffLg {
		a.add("output of one-off container "+name+" while it ran", logs)
	}
}

// auditStopProcess stops pacsd run with SIGTERM and waits for it; it must
// exit 0.
func auditStopProcess(t *testing.T, p *process) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-p.exited:
		p.exited <- err
		if err != nil {
			t.Errorf("pacsd run after SIGTERM: %v", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("pacsd run did not stop within a minute of SIGTERM")
	}
}

// auditSweepNode adds to a the server log of node's container and every
// file pacsd placed in it (PGDATA's top level, its log directory, the data
// mount's top level, /run/pacsd), except the files that must hold a
// password (superuser.password, pacsd.pgpass) and server.key; when modes
// is set it checks the modes of PGDATA and pacsd's files and what
// pacsd.pgpass holds.
func auditSweepNode(t *testing.T, tp *topology, a *audit, node, when string, modes bool) {
	t.Helper()
	n := tp.node(node)
	logs := n.Logs()
	a.add(fmt.Sprintf("server log (docker logs) of %s, %s", tp.container(node), when), logs)
	// Statements come as "statement: " (simple protocol, psql) or
	// "execute <name>: " (extended protocol, pacsd's pgx connections).
	stmts, durations := strings.Count(logs, "statement: ")+strings.Count(logs, "execute "), strings.Count(logs, "duration: ")
	if stmts == 0 || durations == 0 {
		t.Errorf("node %s: the server log shows %d statements and %d durations (log_statement = all or log_min_duration_statement = 0 did not take): the search of it proves nothing", node, stmts, durations)
	}
	list, code := n.Exec("root", "sh", "-c", "find "+reconcile.DataMount+" "+reconcile.PGDATA+" -maxdepth 1 -type f; "+
		"find "+reconcile.PGDATA+"/log "+reconcile.PGDATA+"/pg_log "+reconcile.SecretsDir+" -type f 2>/dev/null; true")
	if code != 0 {
		t.Fatalf("node %s: listing pacsd's files: %s", node, list)
	}
	files := strings.Fields(list)
	sort.Strings(files)
	var searched []string
	for _, f := range files {
		switch filepath.Base(f) {
		case "superuser.password", "server.key":
			continue
		case "pacsd.pgpass":
			// The replication passfile must hold the replication password.
			out, _ := n.Exec("root", "cat", f)
			if want := "*:*:*:replicator:" + tp.replPW + "\n"; out != want {
				t.Errorf("node %s: %s holds %d bytes, not the replication passfile (*:*:*:replicator:<replication password>)", node, f, len(out))
			}
			continue
		}
		out, code := n.Exec("root", "cat", f)
		if code != 0 {
			t.Errorf("node %s: reading %s: exit %d: %s", node, f, code, out)
			continue
		}
		a.add(fmt.Sprintf("file %s in %s, %s", f, tp.container(node), when), out)
		searched = append(searched, f)
	}
	t.Logf("node %s, %s: searched the server log (%d bytes, %d statements and %d durations logged) and %d files: %s", node, when, len(logs), stmts, durations, len(searched), strings.Join(searched, " "))
	if !modes {
		return
	}
	want := [][2]string{
		{reconcile.PGDATA, "700"},
		{reconcile.HBAPath, "600"},
		{reconcile.ParamsPath, "600"},
		{reconcile.PassfilePath, "600"},
		{reconcile.PGDATA + "/server.key", "600"},
		{reconcile.PGDATA + "/server.crt", "600"},
	}
	for _, w := range want {
		out, code := n.Exec("root", "stat", "-c", "%a", w[0])
		if got := strings.TrimSpace(out); code != 0 || got != w[1] {
			t.Errorf("node %s: mode of %s: %s (exit %d), want %s", node, w[0], got, code, w[1])
		}
	}
	// pacsd's secrets in /run/pacsd: readable by their owner alone.
	out, _ := n.Exec("root", "sh", "-c", "find "+reconcile.SecretsDir+" -type f -exec stat -c '%a %n' {} + 2>/dev/null; true")
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		if mode, file, ok := strings.Cut(l, " "); ok && len(mode) == 3 && mode[1:] != "00" {
			t.Errorf("node %s: %s has mode %s: readable or writable by group or others", node, file, mode)
		}
	}
	t.Logf("node %s: modes in %s:\n%s", node, reconcile.SecretsDir, out)
}

// auditStateDir adds every file of the state directory to a and checks
// the modes: the directory (and any below it) 0700, every file 0600 but the
// clusters' CA certificates (ca-*.crt, public) 0644.
func auditStateDir(t *testing.T, a *audit, dir string) {
	t.Helper()
	var names []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		mode := fi.Mode().Perm()
		rel, _ := filepath.Rel(dir, p)
		switch {
		case d.IsDir():
			if mode != 0o700 {
				t.Errorf("state directory %s: mode %#o, want 0700", p, mode)
			}
			return nil
		case strings.HasPrefix(d.Name(), "ca-") && strings.HasSuffix(d.Name(), ".crt"):
			if mode != 0o644 {
				t.Errorf("state file %s (a CA certificate): mode %#o, want 0644", rel, mode)
			}
		default:
			if mode != 0o600 {
				t.Errorf("state file %s: mode %#o, want 0600", rel, mode)
			}
		}
		if !fi.Mode().IsRegular() {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		a.add("state directory file "+rel, string(b))
		names = append(names, fmt.Sprintf("%s (%#o)", rel, mode))
		return nil
	})
	if err != nil {
		t.Fatalf("while reading the state directory %s: %v", dir, err)
	}
	t.Logf("state directory %s: searched %s", dir, strings.Join(names, ", "))
}

// TestE2EAuditSecrets is the audit, end to end: with log_statement = 'all'
// and log_min_duration_statement = 0 on every node, pacsd converges a
// primary and two standbys, sets a changed role password, switches over,
// fails over (pacsd run, the acting primary killed) and rebuilds a standby
// whose data is gone; then every configured password (the superuser's, the
// replication role's, the viewer's old and new one, the latter two with
// shell and SQL metacharacters) is searched for, as written, escaped as in
// JSON, quoted as in SQL and by a distinctive part of it, in:
//
//   - pacsd's stdout and stderr: apply, plan (text and --json), switchover,
//     pause, resume, status (text and --json, with the daemon and without),
//     events (text and --json, with the daemon and without), and the
//     whole output of the `pacsd run` process;
//   - the event history: `pacsd events`, the daemon's /events, and the
//     state directory's event files;
//   - the daemon's /status and /metrics;
//   - `docker inspect` of every container of the cluster, the one-offs
//     (base backup, rewind) included, recorded every 100 ms while they run,
//     and the one-offs' output;
//   - every server log (docker logs of each node's container; the standby
//     that is rebuilt is swept before its container is removed);
//   - every file pacsd wrote: the state directory, and in each node's
//     container the top level of PGDATA and of the data mount, PGDATA's log
//     directory and /run/pacsd, except /run/pacsd/superuser.password (the
//     image's POSTGRES_PASSWORD_FILE) and pacsd.pgpass (the replication
//     passfile: it must hold the replication password) and server.key.
//
// Nothing may be found. The modes are checked too: PGDATA 0700; pg_hba.conf,
// pacsd.conf, pacsd.pgpass, server.key, server.crt 0600; /run/pacsd's files
// not readable by group or others; the state directory 0700, its files 0600
// but the CA certificate 0644.
func TestE2EAuditSecrets(t *testing.T) {
	e := e2e.Require(t)
	began := time.Now()
	tp := newTopology(t, e, "db1", "db2", "db3")
	id := e.RunID
	su := auditSecret{"the superuser's password", "supw-" + id + "-K9Ln", "supw-" + id + "-K9Ln"}
	repl := auditSecret{"the replication password", "rppw-" + id + "-T4wz", "rppw-" + id + "-T4wz"}
	viewerOld := auditSecret{"the viewer's old password", `it's "q" $(id) ;\ vopw-` + id + "-Zq2x", "vopw-" + id + "-Zq2x"}
	viewerNew := auditSecret{"the viewer's new password", "vnpw-" + id + "-Hm7c `whoami` 'x'' \"y\" %s \\", "vnpw-" + id + "-Hm7c"}
	tp.pacsPW, tp.replPW = su.value, repl.value
	tp.secret(t, "pacs.password", su.value)
	tp.secret(t, "replicator.password", repl.value)
	tp.extra = `  settings = {
    log_statement              = "all"
    log_min_duration_statement = 0
  }
  failover {
    automatic = true
    after     = "2s"
    max_lag   = "16MB"
  }
`
	tp.addViewer(t, viewerOld.value)
	a := &audit{secrets: []auditSecret{su, repl, viewerOld, viewerNew}}

	// One file for every command and the daemon: its own listen address
	// and the test's state directory.
	tp.noDaemon = true
	r := &daemonRun{tp: tp, path: filepath.Join(tp.dir, "pacs-run.hcl"), stateDir: filepath.Join(tp.dir, "state"), listen: freePort(t), resync: "2s"}
	r.save(t, "")

	// docker inspect of every container of the cluster, every 100 ms, from
	// before the first container exists to the end.
	rec := startInspectRecorder(e, tp.name)
	recFinished := false
	defer func() {
		if !recFinished {
			close(rec.stop)
			<-rec.done
		}
	}()

	// cli runs pacsd on the file and keeps what it printed (stdout and
	// stderr) for the search; ok lists the exit codes that mean success.
	cli := func(ok []int, args ...string) (string, string) {
		t.Helper()
		code, stdout, stderr := runCLI(t, nil, append(args, "-f", r.path)...)
		a.add(fmt.Sprintf("stdout of pacsd %s", strings.Join(args, " ")), stdout)
		a.add(fmt.Sprintf("stderr of pacsd %s", strings.Join(args, " ")), stderr)
		if !slices.Contains(ok, code) {
			t.Fatalf("pacsd %s: exit %d\n%s%s", strings.Join(args, " "), code, stdout, stderr)
		}
		return stdout, stderr
	}
	okOnly, planned := []int{exitOK}, []int{exitOK, exitPending}

	// 1. Converge from nothing.
	cli(planned, "plan")
	cli(planned, "plan", "--json")
	cli(okOnly, "apply")
	cli(planned, "plan", "--json")
	tp.checkStreaming(t)
	viewer := func(pw string) error { return tp.as("db1", "viewer", pw).TryExecSQL("SELECT 1") }
	if err := viewer(viewerOld.value); err != nil {
		t.Fatalf("viewer cannot log in with its password: %v", err)
	}
	t.Logf("converged: %.1fs", time.Since(began).Seconds())

	// 2. The viewer's password changed in its file.
	tp.secret(t, "viewer.password", viewerNew.value)
	cli(planned, "plan")
	cli(planned, "plan", "--json")
	cli(okOnly, "apply")
	if err := viewer(viewerNew.value); err != nil {
		t.Fatalf("viewer cannot log in with its new password: %v", err)
	}
	if err := viewer(viewerOld.value); err == nil {
		t.Fatal("viewer still logs in with its old password")
	}

	// 3. Switchover to db2 on the command line; db1 rejoins by pg_rewind.
	if out, errOut := cli(okOnly, "switchover", "db2"); !strings.Contains(out, `"db2" is the primary`) {
		t.Fatalf("pacsd switchover db2 said:\n%s%s", out, errOut)
	}
	waitFor(t, 2*time.Minute, "db2 primary, db1 and db3 streaming from it", func() error {
		p, err := onePrimary(tp)
		if err == nil && p != "db2" {
			err = fmt.Errorf("%s is the primary", p)
		}
		return err
	})
	t.Logf("switched over to db2: %.1fs", time.Since(began).Seconds())

	// 4. Failover: pacsd run (a process of its own) with automatic
	// failover; the acting primary db2 is killed.
	p := startProcess(t, r.path)
	r.waitReady(t, 2*time.Minute)
	r.watching(t, tp, "db2")
	if err := e.Docker.ContainerKill(e.Ctx(time.Minute), tp.container("db2"), "KILL"); err != nil {
		t.Fatal(err)
	}
	var acting string
	waitFor(t, 2*time.Minute, "a standby promoted in place of db2, every other node streaming from it (db2 rewound)", func() error {
		p.running(t)
		n, err := onePrimary(tp)
		if err == nil && n == "db2" {
			err = errors.New("db2 is still the primary")
		}
		acting = n
		return err
	})
	t.Logf("failed over from db2 to %s: %.1fs", acting, time.Since(began).Seconds())

	// 5. Rebuild: with the cluster paused, a standby's container and data
	// volume are removed; resumed, pacsd builds it again with pg_basebackup.
	standby := "db1"
	if acting == "db1" {
		standby = "db3"
	}
	cli(okOnly, "pause", tp.name)
	waitFor(t, 30*time.Second, "the pause in /status", func() error {
		st, err := r.status()
		if err != nil {
			return err
		}
		if cs := st.Clusters[tp.name]; cs == nil || !cs.Paused {
			return errors.New("not paused in /status")
		}
		return nil
	})
	auditSweepNode(t, tp, a, standby, "before its data was removed", false)
	ctx := e.Ctx(time.Minute)
	if err := e.Docker.ContainerRemove(ctx, tp.container(standby), container.RemoveOptions{Force: true}); err != nil {
		t.Fatal(err)
	}
	if err := e.Docker.VolumeRemove(ctx, tp.container(standby)+"-data", true); err != nil {
		t.Fatal(err)
	}
	cli(okOnly, "resume", tp.name)
	waitFor(t, 2*time.Minute, standby+" rebuilt and streaming", func() error {
		p.running(t)
		c, err := e.Docker.ContainerInspect(e.Ctx(time.Minute), tp.container(standby))
		if err != nil {
			return err
		}
		if !c.State.Running {
			return fmt.Errorf("%s is %s", standby, c.State.Status)
		}
		return tp.node(standby).Streaming()
	})
	tp.primary = acting // what runs; the file is not saved again
	tp.checkStreaming(t)
	t.Logf("rebuilt %s: %.1fs", standby, time.Since(began).Seconds())

	// What the daemon serves, and the commands that ask it.
	r.settled(t)
	for _, path := range []string{"/status", "/events", "/events?cluster=" + tp.name, "/metrics"} {
		code, body, err := r.get(path)
		if err != nil || code != 200 {
			t.Fatalf("GET %s: %d %v\n%s", path, code, err, body)
		}
		a.add("the daemon's "+path, body)
	}
	cli(okOnly, "status")
	cli(okOnly, "status", "--json")
	cli(okOnly, "events")
	out, _ := cli(okOnly, "events", tp.name, "--json")
	var events []reconcile.Event
	if err := json.Unmarshal([]byte(out), &events); err != nil {
		t.Fatalf("pacsd events --json: %v\n%s", err, out)
	}
	kinds := map[string]int{}
	for _, ev := range events {
		kinds[ev.Kind]++
	}
	t.Logf("the event history: %d events, by kind %v", len(events), kinds)
	for _, kind := range []string{"set-role", "base-backup", "rewind", "switchover", "failover"} {
		if kinds[kind] == 0 {
			t.Errorf("the event history has no %q event: a step did not happen as the test means it", kind)
		}
	}

	// The daemon stopped: status observes directly, events reads the state directory.
	auditStopProcess(t, p)
	a.add("stdout and stderr of pacsd run", p.log.String())
	cli(okOnly, "status")
	cli(okOnly, "status", "--json")
	cli(okOnly, "events", "--json")

	// The containers' inspects and the one-offs' output.
	recFinished = true
	rec.finish(a)
	rec.mu.Lock()
	seen := map[string]int{}
	for _, what := range rec.oneOffs {
		seen[what]++
	}
	if len(rec.sockets) > 0 {
		t.Errorf("containers that mount the Docker socket: %v", rec.sockets)
	}
	t.Logf("inspect recorder: %d polls, %d distinct inspects, one-offs seen %v (%v); errors %v", rec.polls, len(rec.inspects), seen, rec.oneOffs, rec.errs)
	rec.mu.Unlock()
	for _, what := range []string{"basebackup", "rewind"} {
		if seen[what] == 0 {
			t.Errorf("no %s one-off was seen while it ran: their docker inspect was not searched", what)
		}
	}

	// The nodes' files and server logs, with their modes.
	for _, n := range tp.nodes {
		auditSweepNode(t, tp, a, n, "at the end", true)
	}
	// The state directory.
	auditStateDir(t, a, r.stateDir)

	// The search itself finds each password in each of its forms.
	control, planted := &audit{secrets: a.secrets}, 0
	for _, s := range a.secrets {
		for _, f := range s.forms() {
			control.add("control: "+s.what+" "+f[0], `{"x":"`+f[1]+`"}`)
			planted++
		}
	}
	if got, want := len(control.findings()), planted; got != want {
		t.Fatalf("the search finds %d of %d planted passwords", got, want)
	}

	texts, size := a.size()
	found := a.findings()
	t.Logf("searched %d texts (%d bytes) for %d passwords in %d forms each; %d findings; %.1fs in all",
		texts, size, len(a.secrets), len(su.forms()), len(found), time.Since(began).Seconds())
	for _, f := range found {
		t.Errorf("password found: %s", f)
	}
}
