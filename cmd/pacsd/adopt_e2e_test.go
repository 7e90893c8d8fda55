package main

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/go-connections/nat"

	"github.com/pacsd/pacsd/internal/e2e"
	"github.com/pacsd/pacsd/pkg/reconcile"
)

// seedInstall is the dcm4chee image's README done by hand, as an operator
// does it today: a master and a slave container, data in host directories
// mounted as PGDATA, the superuser's password in the environment, a trust
// line for replication, a standby made with pg_basebackup -R -X stream.
type seedInstall struct {
	master, slave       string // container names
	masterDir, slaveDir string
	masterPort          int
	slavePort           int
	// mountAt is where the containers mount their directory: PGDATA (the
	// README's way), or its parent.
	mountAt string
}

// seedPassword is the superuser's password of the README (pacs/pacsword),
// the one the archive application logs in with.
const seedPassword = "pacsword"

// buildSeed sets up the seed's installation on the default bridge network
// with the run's labels (the harness removes the containers, renamed or not).
func buildSeed(t *testing.T, e *e2e.Env) *seedInstall {
	t.Helper()
	return buildSeedOf(t, e, true, reconcile.PGDATA)
}

// buildSeedOf is buildSeed, with the master only unless withStandby, its
// directory mounted at mountAt.
func buildSeedOf(t *testing.T, e *e2e.Env, withStandby bool, mountAt string) *seedInstall {
	t.Helper()
	dir := t.TempDir()
	// The containers go before their directories (cleanups run last
	// registered first): a running server would write into a directory
	// being removed.
	t.Cleanup(func() { removeContainers(e, "e2e"+e.RunID) })
	s := &seedInstall{master: e.Name("mypostgres-master"), slave: e.Name("mypostgres-slave"),
		masterDir: filepath.Join(dir, "db"), slaveDir: filepath.Join(dir, "slave_db"),
		masterPort: publishPort(t), slavePort: publishPort(t), mountAt: mountAt}
	began := time.Now()
	// 1. docker run --name mypostgres-master -p 15432:5432 -e POSTGRES_DB=pacsdb -e POSTGRES_USER=pacs
	//    -e POSTGRES_PASSWORD=pacsword -v /var/local/mypacs/db:/var/lib/postgresql/data -d dcm4che/postgres-dcm4chee
	s.run(t, e, s.master, s.masterDir, s.masterPort, nil, container.RestartPolicyUnlessStopped)
	master := s.node(t, e, s.master)
	master.WaitWritable(2 * time.Minute)
	if !withStandby {
		return s
	}
	// 2. Replication opened, with the modern equivalents of the removed settings.
	appendFile(t, filepath.Join(s.masterDir, "pg_hba.conf"), "host replication replicator 0.0.0.0/0 trust\n")
	appendFile(t, filepath.Join(s.masterDir, "postgresql.conf"), "wal_level = replica\nmax_wal_senders = 3\nhot_standby = on\n")
	// 3. docker restart mypostgres-master
	if err := e.Docker.ContainerRestart(e.Ctx(2*time.Minute), s.master, container.StopOptions{}); err != nil {
		t.Fatal(err)
	}
	master.WaitWritable(2 * time.Minute)
	// 4. CREATE USER replicator REPLICATION LOGIN PASSWORD 'replpass'
	if out, code := master.Exec("postgres", "psql", "-U", "pacs", "-d", "pacsdb", "-c", "CREATE USER replicator REPLICATION LOGIN PASSWORD 'replpass';"); code != 0 {
		t.Fatalf("creating the replication user: %s", out)
	}
	master.ExecSQL("CREATE TABLE seed_rows (id int PRIMARY KEY)")
	master.ExecSQL("INSERT INTO seed_rows SELECT generate_series(1, 1000)")
	// 5. pg_basebackup into the slave's directory (as root, like su -c), -X
	//    stream instead of -x, -R instead of recovery.conf.
	ip := master.IP()
	out, code := s.once(t, e, []string{"pg_basebackup", "-h", "db", "-D", reconcile.PGDATA, "-U", "replicator", "-P", "-v", "-X", "stream", "-R"},
		s.slaveDir+":"+reconcile.PGDATA, "db:"+ip)
	if code != 0 {
		t.Fatalf("pg_basebackup: exit %d\n%s", code, out)
	}
	// 7. chmod 700 /var/local/mypacs/slave_db
	if err := os.Chmod(s.slaveDir, 0o700); err != nil {
		t.Fatal(err)
	}
	// 8. docker run --name mypostgres-slave -p 25432:5432 ... --add-host=db:<master ip>
	//    (--restart always here, unless-stopped for the master: what sites add)
	s.run(t, e, s.slave, s.slaveDir, s.slavePort, []string{"db:" + ip}, container.RestartPolicyAlways)
	s.node(t, e, s.slave).WaitStreaming(2 * time.Minute)
	t.Logf("the seed's installation built by hand in %.1fs", time.Since(began).Seconds())
	return s
}

// removeContainers removes the run's containers and those of cluster.
func removeContainers(e *e2e.Env, cluster string) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for _, f := range []filters.Args{filters.NewArgs(filters.Arg("label", e2e.LabelRun+"="+e.RunID)), filters.NewArgs(filters.Arg("label", reconcile.LabelCluster+"="+cluster))} {
		cs, err := e.Docker.ContainerList(ctx, container.ListOptions{All: true, Filters: f})
		if err != nil {
			e.T.Logf("cleanup: %v", err)
			continue
		}
		for _, c := range cs {
			if err := e.Docker.ContainerRemove(ctx, c.ID, container.RemoveOptions{Force: true}); err != nil {
				e.T.Logf("cleanup: while removing container %s: %v", c.ID[:12], err)
			}
		}
	}
}

// run is 'docker run -d' of the README for one node.
func (s *seedInstall) run(t *testing.T, e *e2e.Env, name, dir string, port int, hosts []string, restart container.RestartPolicyMode) {
	t.Helper()
	ctx := e.Ctx(2 * time.Minute)
	p := nat.Port("5432/tcp")
	c, err := e.Docker.ContainerCreate(ctx, &container.Config{
		Image: e.Image, Labels: e.Labels(), ExposedPorts: nat.PortSet{p: {}},
		Env: []string{"POSTGRES_DB=pacsdb", "POSTGRES_USER=pacs", "POSTGRES_PASSWORD=" + seedPassword},
	}, &container.HostConfig{
		Binds:        []string{dir + ":" + s.mountAt},
		PortBindings: nat.PortMap{p: {{HostPort: strconv.Itoa(port)}}},
		ExtraHosts:   hosts,
		// Left to itself, the engine would start the replaced container
		// again beside pacsd's at its next start: adopt sets it to no.
		RestartPolicy: container.RestartPolicy{Name: restart},
	}, nil, nil, name)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Docker.ContainerStart(ctx, c.ID, container.StartOptions{}); err != nil {
		t.Fatal(err)
	}
}

// once is 'docker run --rm' of the image as root with a bind and an extra host.
func (s *seedInstall) once(t *testing.T, e *e2e.Env, cmd []string, bind, host string) (string, int) {
	t.Helper()
	ctx := e.Ctx(5 * time.Minute)
	c, err := e.Docker.ContainerCreate(ctx, &container.Config{Image: e.Image, Labels: e.Labels(), Cmd: cmd},
		&container.HostConfig{Binds: []string{bind}, ExtraHosts: []string{host}}, nil, nil, e.Name("once-"+strconv.FormatInt(time.Now().UnixNano(), 36)))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = e.Docker.ContainerRemove(context.Background(), c.ID, container.RemoveOptions{Force: true}) }()
	if err := e.Docker.ContainerStart(ctx, c.ID, container.StartOptions{}); err != nil {
		t.Fatal(err)
	}
	waitC, errC := e.Docker.ContainerWait(ctx, c.ID, container.WaitConditionNotRunning)
	var code int
	select {
	case r := <-waitC:
		code = int(r.StatusCode)
	case err := <-errC:
		t.Fatal(err)
	}
	logs, _ := e.Docker.ContainerLogs(ctx, c.ID, container.LogsOptions{ShowStdout: true, ShowStderr: true})
	var b strings.Builder
	if logs != nil {
		buf := make([]byte, 64<<10)
		n, _ := logs.Read(buf)
		b.Write(buf[:n])
		logs.Close()
	}
	return b.String(), code
}

// node is a harness handle on the container now named name, reached on
// the network it is on: the default bridge before adoption, the cluster's
// after. Nil when no container has the name.
func (s *seedInstall) node(t *testing.T, e *e2e.Env, name string) *e2e.Node {
	c, err := e.Docker.ContainerInspect(context.Background(), name)
	if err != nil || c.NetworkSettings == nil {
		return nil
	}
	network := "bridge"
	if cl := c.Config.Labels[reconcile.LabelCluster]; cl != "" {
		network = cl
	}
	// By ID: a container renamed meanwhile is still found.
	n := e.Container(c.ID, network, "pacs", seedPassword, "pacsdb")
	n.Name = name
	return n
}

// nodes are the handles on the seed's containers that exist now.
func (s *seedInstall) nodes(t *testing.T, e *e2e.Env) func() []*e2e.Node {
	return func() []*e2e.Node {
		var out []*e2e.Node
		for _, name := range []string{s.master, s.slave} {
			if n := s.node(t, e, name); n != nil {
				out = append(out, n)
			}
		}
		return out
	}
}

// topology declares the seed's installation as the file for adopt names it.
func (s *seedInstall) topology(t *testing.T, e *e2e.Env) *topology {
	t.Helper()
	return s.topologyOf(t, e, "db1", "db2")
}

// topologyOf declares nodes of the seed's installation (db1 the master,
// db2 the slave).
func (s *seedInstall) topologyOf(t *testing.T, e *e2e.Env, nodes ...string) *topology {
	t.Helper()
	tp := newTopology(t, e, nodes...)
	tp.pacsPW = seedPassword // the archive keeps logging in with it
	tp.secret(t, "pacs.password", tp.pacsPW)
	tp.nodeBody = map[string]string{
		"db1": fmt.Sprintf("\n    container_name = %q\n    data = %q\n    port = %d\n  ", s.master, s.masterDir, s.masterPort),
		"db2": fmt.Sprintf("\n    container_name = %q\n    data = %q\n    port = %d\n  ", s.slave, s.slaveDir, s.slavePort),
	}
	tp.write(t)
	return tp
}

// publishPort is a port no one listens on now, to publish a node on.
func publishPort(t *testing.T) int {
	t.Helper()
	addr := freePort(t)
	p, err := strconv.Atoi(addr[strings.LastIndex(addr, ":")+1:])
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func appendFile(t *testing.T, path, text string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(text); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// adoptCLI runs pacsd adopt with args on tp's file and fails the test
// unless it exits with want.
func adoptCLI(t *testing.T, tp *topology, want int, args ...string) (string, string) {
	t.Helper()
	start := time.Now()
	code, stdout, stderr := runCLI(t, nil, append([]string{"adopt", "-f", tp.path}, args...)...)
	t.Logf("pacsd adopt %s: exit %d in %.1fs\n%s", strings.Join(args, " "), code, time.Since(start).Seconds(), stdout)
	if os.Getenv("PACSD_E2E_DUMP") != "" {
		t.Logf("stderr:\n%s", stderr)
	}
	if code != want {
		t.Fatalf("pacsd adopt %v: exit %d, want %d\n%s%s", args, code, want, stdout, stderr)
	}
	for _, secret := range []string{tp.pacsPW, tp.replPW, "replpass"} {
		if strings.Contains(stdout+stderr, secret) {
			t.Fatalf("pacsd adopt printed a password:\n%s%s", stdout, stderr)
		}
	}
	return stdout, stderr
}

// adopted checks what adoption must leave: the standby streaming through
// its slot, plan in sync, no password in docker inspect, host lines
// without trust, the old containers kept and stopped, every seed row on
// the standby, and a second adopt doing nothing.
func (s *seedInstall) adopted(t *testing.T, e *e2e.Env, tp *topology) {
	t.Helper()
	primary, standby := s.node(t, e, s.master), s.node(t, e, s.slave)
	if primary == nil || standby == nil || primary.Network != tp.name || standby.Network != tp.name {
		t.Fatalf("after adopt: the containers are not pacsd's on network %s: %+v %+v", tp.name, primary, standby)
	}
	standby.WaitStreaming(time.Minute)
	slot := "pacsd_" + tp.name + "_db2"
	e.Eventually(time.Minute, "the standby's slot to be active", func() error {
		if got := primary.QueryString("SELECT coalesce((SELECT active::text FROM pg_replication_slots WHERE slot_name = $1), 'missing')", slot); got != "true" {
			return fmt.Errorf("slot %s: %s", slot, got)
		}
		return nil
	})
	if got := primary.QueryString("SELECT coalesce((SELECT state FROM pg_stat_replication), 'none')"); got != "streaming" {
		t.Errorf("pg_stat_replication on the primary: %s, want streaming", got)
	}
	standby.WaitRow(time.Minute, "SELECT count(*) = 1000 FROM seed_rows")
	if code, actions := tp.plan(t); code != exitOK || len(actions) != 0 {
		t.Errorf("pacsd plan after adopt: exit %d, actions %+v; want in sync", code, actions)
	}
	for _, name := range []string{s.master, s.slave} {
		c, err := e.Docker.ContainerInspect(e.Ctx(time.Minute), name)
		if err != nil {
			t.Fatal(err)
		}
		env := strings.Join(c.Config.Env, "\n")
		if strings.Contains(env, "POSTGRES_PASSWORD=") || strings.Contains(env, seedPassword) || strings.Contains(env, tp.replPW) {
			t.Errorf("docker inspect %s shows a password in the environment:\n%s", name, env)
		}
		kept, err := e.Docker.ContainerInspect(e.Ctx(time.Minute), name+reconcile.KeptSuffix)
		if err != nil {
			t.Errorf("the replaced container %s%s: %v, want it kept", name, reconcile.KeptSuffix, err)
		} else if p := kept.HostConfig.RestartPolicy.Name; kept.State.Running || p != "" && p != "no" {
			t.Errorf("the replaced container %s%s: running %v, restart policy %q; want it stopped, restart policy no", name, reconcile.KeptSuffix, kept.State.Running, p)
		}
	}
	if hba := primary.ReadFile("pg_hba.conf"); hbaHostTrust(hba) {
		t.Errorf("pg_hba.conf trusts a host line:\n%s", hba)
	}
	// The replication role takes the file's password (the seed's was replpass).
	if got := primary.QueryString("SELECT count(*)::text FROM pg_stat_replication WHERE usename = 'replicator'"); got != "1" {
		t.Errorf("the standby does not stream as replicator: %s", got)
	}
	out, _ := adoptCLI(t, tp, exitOK)
	if !strings.Contains(out, "nothing to adopt") || !strings.Contains(out, "(0 actions)") {
		t.Errorf("a second adopt did something:\n%s", out)
	}
	// An operator starts the kept master again: the engine refuses while
	// pacsd's container publishes the same port; else it finds no
	// PG_VERSION where it mounts PGDATA, the entrypoint refuses the
	// directory and it exits. The data and pacsd's primary are untouched.
	kept := s.master + reconcile.KeptSuffix
	ctx := e.Ctx(2 * time.Minute)
	if err := e.Docker.ContainerStart(ctx, kept, container.StartOptions{}); err != nil {
		if !strings.Contains(err.Error(), "port is already allocated") {
			t.Fatal(err)
		}
		t.Logf("starting the kept master: %v", err)
	}
	e.Eventually(time.Minute, "the kept master to exit", func() error {
		c, err := e.Docker.ContainerInspect(ctx, kept)
		if err != nil {
			return err
		}
		if c.State.Running {
			return fmt.Errorf("it runs")
		}
		return nil
	})
	if _, err := os.Stat(filepath.Join(s.masterDir, "PG_VERSION")); err == nil {
		t.Errorf("the kept master wrote a PG_VERSION beside pacsd's PGDATA")
	}
	primary.WaitWritable(time.Minute)
	if code, actions := tp.plan(t); code != exitOK || len(actions) != 0 {
		t.Errorf("pacsd plan after the kept master was started: exit %d, actions %+v; want in sync", code, actions)
	}
}

// TestE2EAdopt builds the seed's installation by hand, writes rows with the
// writer, and adopts it while the writer runs: no acknowledged commit lost,
// never two writable nodes, the write gap measured (by pacsd and by the
// writer), the standby streaming through its slot, plan in sync, no
// password in docker inspect, a second adopt a no-op. Before, apply
// refuses naming adopt, plan shows adopt's steps and adopt --dry-run
// changes nothing.
func TestE2EAdopt(t *testing.T) {
	e := e2e.Require(t)
	s := buildSeed(t, e)
	tp := s.topology(t, e)

	code, stdout, stderr := runCLI(t, nil, "apply", "-f", tp.path)
	if code != exitProblem || !strings.Contains(stderr, "pacsd adopt") {
		t.Errorf("pacsd apply before adopt: exit %d, want %d naming 'pacsd adopt'\n%s%s", code, exitProblem, stdout, stderr)
	}
	code, stdout, stderr = runCLI(t, nil, "plan", "-f", tp.path)
	if code != exitPending || !strings.Contains(stdout, "adopt db2: stop container "+s.slave) || !strings.Contains(stdout, "adopt db1: checkpoint, then stop container "+s.master) {
		t.Errorf("pacsd plan before adopt: exit %d, want %d with adopt's steps\n%s%s", code, exitPending, stdout, stderr)
	}
	// A file that does not match what runs: refused, nothing changed.
	right := tp.nodeBody["db2"]
	tp.nodeBody["db2"] = strings.Replace(right, s.slaveDir, s.slaveDir+"-elsewhere", 1)
	tp.write(t)
	_, refused := adoptCLI(t, tp, exitProblem)
	if !strings.Contains(refused, "Data Location Differs") || !strings.Contains(refused, `data = "`+s.slaveDir+`"`) || !strings.Contains(refused, "nothing was changed") {
		t.Errorf("adopt with another data location for db2 said:\n%s", refused)
	}
	tp.nodeBody["db2"] = right
	tp.write(t)
	dry, _ := adoptCLI(t, tp, exitOK, "--dry-run")
	if !strings.Contains(dry, "nothing was changed") || !strings.Contains(dry, "stop container "+s.slave) {
		t.Errorf("adopt --dry-run said:\n%s", dry)
	}
	if _, err := os.Stat(filepath.Join(s.masterDir, "PG_VERSION")); err != nil {
		t.Errorf("adopt --dry-run changed the master's data: %v", err)
	}
	if c, err := e.Docker.ContainerInspect(e.Ctx(time.Minute), s.slave); err != nil || !c.State.Running || c.Config.Labels[reconcile.LabelCluster] != "" {
		t.Errorf("adopt --dry-run changed the slave's container: %v", err)
	}

	nodes := s.nodes(t, e)
	probe := e.StartProbe(nodes)
	w := e.StartWriter(func() []*e2e.Node {
		if n := s.node(t, e, s.master); n != nil {
			return []*e2e.Node{n}
		}
		return nil
	}, "adopt_writes")
	e.Eventually(30*time.Second, "the writer's first commits", func() error {
		if w.Acked() < 50 {
			return fmt.Errorf("%d commits acknowledged", w.Acked())
		}
		return nil
	})
	out, _ := adoptCLI(t, tp, exitOK)
	m := regexp.MustCompile(`the primary took no writes for ([0-9.]+m?s)`).FindStringSubmatch(out)
	if m == nil {
		t.Errorf("adopt did not print the write gap:\n%s", out)
	}
	for _, want := range []string{"docker rm " + s.master + reconcile.KeptSuffix, "docker rm " + s.slave + reconcile.KeptSuffix, "moved ", "adopted and converged", "max_slot_wal_keep_size = 4GB set on " + s.master} {
		if !strings.Contains(out, want) {
			t.Errorf("adopt's report does not say %q:\n%s", want, out)
		}
	}
	acked := w.Acked()
	e.Eventually(30*time.Second, "commits after adoption", func() error {
		if w.Acked() < acked+50 {
			return fmt.Errorf("%d commits acknowledged after adopt", w.Acked()-acked)
		}
		return nil
	})
	r := w.Stop()
	t.Log(r.String())
	probe.Check(t)
	r.CheckNoLoss(t, s.node(t, e, s.master))
	// The standby, adopted first and repointed at pacsd's primary, holds
	// them too once it replayed the last.
	standby := s.node(t, e, s.slave)
	standby.WaitRow(time.Minute, "SELECT EXISTS (SELECT 1 FROM adopt_writes WHERE seq = $1)", r.Acked[len(r.Acked)-1])
	r.CheckNoLoss(t, standby)
	if len(m) == 2 {
		t.Logf("write gap: %s by pacsd (stop until pacsd's container took writes), %s by the writer (longest time between two acknowledged commits)", m[1], r.LongestGap.Round(time.Millisecond))
	}
	s.adopted(t, e, tp)
}

// TestE2EAdoptFinishesInterrupted: an adopt that stopped half-way (the
// slave's container stopped and renamed, its data half moved, and owned by
// another uid, as under the official image's postgres user) leaves a
// state apply refuses, naming adopt; a second adopt finishes it, gives the
// files to the image's postgres user and says so.
func TestE2EAdoptFinishesInterrupted(t *testing.T) {
	e := e2e.Require(t)
	s := buildSeed(t, e)
	tp := s.topology(t, e)
	ctx := e.Ctx(2 * time.Minute)
	if err := e.Docker.ContainerStop(ctx, s.slave, container.StopOptions{Signal: "SIGINT"}); err != nil {
		t.Fatal(err)
	}
	if err := e.Docker.ContainerRename(ctx, s.slave, s.slave+reconcile.KeptSuffix); err != nil {
		t.Fatal(err)
	}
	// The move as a killed adopt leaves it: the marker, the staging
	// directory, some entries in it, the rest (PG_VERSION among them) not.
	for _, step := range [][2]string{{"pacsd-adopting", ""}, {"pacsd-adopt.tmp", ""}, {"base", "pacsd-adopt.tmp/base"}, {"global", "pacsd-adopt.tmp/global"}} {
		p := filepath.Join(s.slaveDir, step[0])
		switch {
		case step[1] != "":
			if err := os.Rename(p, filepath.Join(s.slaveDir, step[1])); err != nil {
				t.Fatal(err)
			}
		case strings.HasSuffix(step[0], ".tmp"):
			if err := os.Mkdir(p, 0o700); err != nil {
				t.Fatal(err)
			}
		default:
			if err := os.WriteFile(p, nil, 0o600); err != nil {
				t.Fatal(err)
			}
		}
	}
	uid, _ := e.PostgresIDs()
	other := 999 // the official image's postgres user
	if uid == other {
		other = 998
	}
	if err := filepath.WalkDir(s.slaveDir, func(p string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, other, other)
	}); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr := runCLI(t, nil, "apply", "-f", tp.path)
	if code != exitProblem || !strings.Contains(stderr, "Data Not Adopted") || !strings.Contains(stderr, "pacsd adopt") {
		t.Errorf("pacsd apply on a half-moved standby: exit %d, want %d naming Data Not Adopted and 'pacsd adopt'\n%s%s", code, exitProblem, stdout, stderr)
	}
	out, _ := adoptCLI(t, tp, exitOK)
	if want := fmt.Sprintf("owned by %d:%d to postgres (%d:", other, other, uid); !strings.Contains(out, want) {
		t.Errorf("adopt does not report the files it gave to postgres (%q):\n%s", want, out)
	}
	// Renamed before its restart policy was set (the seed's slave restarts
	// always): the engine would start it again beside pacsd's.
	if want := "restart policy of the kept container " + s.slave + reconcile.KeptSuffix + " set to no (was always)"; !strings.Contains(out, want) {
		t.Errorf("adopt does not say %q:\n%s", want, out)
	}
	var st syscall.Stat_t
	if err := syscall.Stat(filepath.Join(s.slaveDir, "data", "PG_VERSION"), &st); err != nil || int(st.Uid) != uid {
		t.Errorf("the standby's PG_VERSION after adopt: %v, owner %d, want %d", err, st.Uid, uid)
	}
	for _, gone := range []string{"PG_VERSION", "pacsd-adopting", "pacsd-adopt.tmp"} {
		if _, err := os.Lstat(filepath.Join(s.slaveDir, gone)); err == nil {
			t.Errorf("%s is still beside the standby's PGDATA after adopt", gone)
		}
	}
	s.adopted(t, e, tp)
}

// TestE2EAdoptRefusesBeforeStop: what would start the adopted data without
// a part of it (WAL or a file behind a symbolic link, a tablespace), stop
// the move half-way (an entry named data in the old PGDATA), keep pacsd
// from removing pg_basebackup -R's overrides (allow_alter_system = off,
// PostgreSQL 17), or hide the data (an image declaring VOLUME at PGDATA,
// as the official ones do) is refused before anything stops: the master
// still runs under its name, its data where it was, and apply refuses an
// image that hides the data before it creates anything.
func TestE2EAdoptRefusesBeforeStop(t *testing.T) {
	e := e2e.Require(t)
	s := buildSeedOf(t, e, false, reconcile.PGDATA)
	tp := s.topologyOf(t, e, "db1")
	master := s.node(t, e, s.master)
	untouched := func(what string) {
		t.Helper()
		c, err := e.Docker.ContainerInspect(e.Ctx(time.Minute), s.master)
		if err != nil || !c.State.Running || c.Config.Labels[reconcile.LabelCluster] != "" {
			t.Fatalf("%s: the master's container is not the one set up by hand, running: %v", what, err)
		}
		if _, err := os.Stat(filepath.Join(s.masterDir, "PG_VERSION")); err != nil {
			t.Fatalf("%s: the master's data was moved: %v", what, err)
		}
		master.WaitWritable(time.Minute)
	}
	refused := func(what string, says ...string) {
		t.Helper()
		_, stderr := adoptCLI(t, tp, exitProblem)
		for _, want := range append(says, "nothing was changed") {
			if !strings.Contains(stderr, want) {
				t.Errorf("%s: adopt does not say %q:\n%s", what, want, stderr)
			}
		}
		untouched(what)
	}
	root := func(cmd ...string) {
		t.Helper()
		if out, code := master.Exec("root", cmd...); code != 0 {
			t.Fatalf("%v: exit %d: %s", cmd, code, out)
		}
	}

	// An entry named data in the old PGDATA: the move would stop half-way.
	taken := filepath.Join(s.masterDir, "data")
	if err := os.Mkdir(taken, 0o755); err != nil {
		t.Fatal(err)
	}
	refused("an entry named data", "Name Taken In PGDATA", "rename or move data out of the data directory")
	if err := os.Remove(taken); err != nil {
		t.Fatal(err)
	}

	// A symbolic link in PGDATA (as pg_wal is after initdb --waldir).
	root("ln", "-s", "/etc/postgresql-common", reconcile.PGDATA+"/conf.d")
	refused("a symbolic link", "Symbolic Links In PGDATA", "conf.d in PGDATA is a symbolic link")
	root("rm", reconcile.PGDATA+"/conf.d")

	// A tablespace outside PGDATA.
	root("install", "-d", "-o", "postgres", "-g", "postgres", "-m", "0700", "/srv/fast disk")
	master.ExecSQL(`CREATE TABLESPACE "fast disk" LOCATION '/srv/fast disk'`)
	refused("a tablespace", "Tablespaces Outside PGDATA", `"fast disk"`)
	master.ExecSQL(`DROP TABLESPACE "fast disk"`)

	if e.ImageMajor() >= 17 {
		appendFile(t, filepath.Join(s.masterDir, "postgresql.conf"), "allow_alter_system = off\n")
		master.ExecSQL("SELECT pg_reload_conf()")
		e.Eventually(30*time.Second, "allow_alter_system off", func() error {
			if got := master.QueryString("SHOW allow_alter_system"); got != "off" {
				return fmt.Errorf("allow_alter_system is %s", got)
			}
			return nil
		})
		refused("allow_alter_system off", "ALTER SYSTEM Disabled", "set allow_alter_system = on in the cluster's settings")
		tp.extra = "  settings = {\n    allow_alter_system = \"on\"\n  }\n"
		tp.write(t)
		if code, stdout, stderr := runCLI(t, nil, "adopt", "--dry-run", "-f", tp.path); code != exitOK || strings.Contains(stdout+stderr, "ALTER SYSTEM Disabled") {
			t.Errorf("adopt --dry-run with allow_alter_system on in the file: exit %d\n%s%s", code, stdout, stderr)
		}
		tp.extra = ""
	}

	// An image declaring VOLUME at PGDATA, as the official ones do.
	ctx := e.Ctx(2 * time.Minute)
	base, err := e.Docker.ContainerCreate(ctx, &container.Config{Image: e.Image, Labels: e.Labels(), Entrypoint: []string{"true"}}, nil, nil, nil, e.Name("volume-base"))
	if err != nil {
		t.Fatal(err)
	}
	hiding := fmt.Sprintf("pacsd-e2e-volume-%s:%d", e.RunID, e.ImageMajor()) // the tag says the major version
	_, err = e.Docker.ContainerCommit(ctx, base.ID, container.CommitOptions{Reference: hiding, Changes: []string{"VOLUME " + reconcile.PGDATA}})
	_ = e.Docker.ContainerRemove(ctx, base.ID, container.RemoveOptions{Force: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_, _ = e.Docker.ImageRemove(context.Background(), hiding, image.RemoveOptions{Force: true})
	})
	tp.image = hiding
	tp.write(t)
	refused("an image with VOLUME at PGDATA", "Image Hides The Data", "declares VOLUME "+reconcile.PGDATA)
	fresh := newTopology(t, e, "db1", "db2")
	fresh.image = hiding
	fresh.write(t)
	code, stdout, stderr := runCLI(t, nil, "apply", "-f", fresh.path)
	if code != exitProblem || !strings.Contains(stderr, "Image Hides The Data") {
		t.Errorf("apply with an image declaring VOLUME at PGDATA: exit %d, want %d naming Image Hides The Data\n%s%s", code, exitProblem, stdout, stderr)
	}
	cs, err := e.Docker.ContainerList(ctx, container.ListOptions{All: true, Filters: filters.NewArgs(filters.Arg("label", reconcile.LabelCluster+"="+fresh.name))})
	if err != nil || len(cs) != 0 {
		t.Errorf("apply with an image that hides the data made %d containers (%v)", len(cs), err)
	}
}

// TestE2EAdoptParentMount adopts a primary whose container mounts the
// parent of PGDATA (no move): its rows kept, pacsd's container on the
// same data, plan in sync, and the report says never to start the kept
// container again (it would run a second server on that data).
func TestE2EAdoptParentMount(t *testing.T) {
	e := e2e.Require(t)
	s := buildSeedOf(t, e, false, reconcile.DataMount)
	tp := s.topologyOf(t, e, "db1")
	master := s.node(t, e, s.master)
	master.ExecSQL("CREATE TABLE seed_rows (id int PRIMARY KEY)")
	master.ExecSQL("INSERT INTO seed_rows SELECT generate_series(1, 1000)")
	out, _ := adoptCLI(t, tp, exitOK)
	for _, want := range []string{"container " + s.master + reconcile.KeptSuffix + " is kept", "never start it again", "adopted and converged"} {
		if !strings.Contains(out, want) {
			t.Errorf("adopt's report does not say %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "moved ") {
		t.Errorf("adopt moved data that was in pacsd's layout already:\n%s", out)
	}
	primary := s.node(t, e, s.master)
	if primary == nil || primary.Network != tp.name {
		t.Fatalf("after adopt: the container is not pacsd's on network %s: %+v", tp.name, primary)
	}
	primary.WaitWritable(time.Minute)
	if got := primary.QueryString("SELECT count(*)::text FROM seed_rows"); got != "1000" {
		t.Errorf("after adopt: %s seed rows, want 1000", got)
	}
	if code, actions := tp.plan(t); code != exitOK || len(actions) != 0 {
		t.Errorf("pacsd plan after adopt: exit %d, actions %+v; want in sync", code, actions)
	}
}
