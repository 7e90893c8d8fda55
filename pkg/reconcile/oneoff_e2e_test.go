package reconcile_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/jackc/pgx/v5"

	"github.com/pacsd/pacsd/internal/e2e"
	"github.com/pacsd/pacsd/pkg/certs"
	"github.com/pacsd/pacsd/pkg/docker"
	"github.com/pacsd/pacsd/pkg/pgconf"
	"github.com/pacsd/pacsd/pkg/postgres"
	"github.com/pacsd/pacsd/pkg/reconcile"
	"github.com/pacsd/pacsd/pkg/spec"
)

// oneOffBed is a primary of the harness and a cluster spec around it whose
// one-off jobs run through the real Docker runtime and PostgreSQL adapter.
type oneOffBed struct {
	e       *e2e.Env
	primary *e2e.Node
	c       *spec.Cluster
	d       reconcile.Deps
	log     bytes.Buffer
}

// newOneOffBed starts a primary that accepts replication connections with a
// password and keeps wal_log_hints on (pg_rewind needs it).
func newOneOffBed(t *testing.T) *oneOffBed {
	t.Helper()
	e := e2e.Require(t)
	b := &oneOffBed{e: e}
	b.primary = e.StartNode(e2e.NodeOptions{Name: "p", Password: "pacs-pw"})
	b.primary.WaitWritable(90 * time.Second)
	b.primary.AppendPGDATA("pg_hba.conf", "host replication all samenet scram-sha-256\n")
	b.primary.ExecSQL("ALTER SYSTEM SET wal_log_hints = on")
	b.primary.Restart()
	b.primary.WaitWritable(90 * time.Second)

	rt, err := docker.New("", nil, "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rt.Close() })
	rt.Labels = e.Labels()
	b.c = &spec.Cluster{
		Name: "c-" + e.RunID, Image: e.Image, Network: e.Network, Primary: "p", Database: "pacsdb",
		Superuser: spec.Credentials{Name: "pacs", Password: spec.NewSecret("pacs-pw", "test")},
		Nodes:     []*spec.Node{{Name: "p", Container: e.Name("p")}, {Name: "s", Container: e.Name("s")}},
	}
	e.Own(reconcile.LabelCluster, b.c.Name)
	b.d = reconcile.Deps{Runtimes: map[string]reconcile.Runtime{"": rt}, DB: postgres.New(), CAs: envAuthority{e.CA()}}
	return b
}

// envAuthority gives every cluster the run's CA, which signed the
// certificates of the nodes StartNode starts.
type envAuthority struct{ a *certs.Authority }

func (e envAuthority) Authority(context.Context, string) (*certs.Authority, error) { return e.a, nil }

// rootCA places the run's CA certificate for a one-off to verify the
// primary with.
func (b *oneOffBed) rootCA() reconcile.FileWrite {
	return reconcile.FileWrite{Path: reconcile.SecretsDir + "/pacsd-ca.crt", Content: b.e.CA().CertPEM(), Mode: 0o600}
}

// replicationRole creates a replication role named user with password pw and
// a slot for the standby, and makes it the cluster's replication user.
func (b *oneOffBed) replicationRole(user, pw, slot string) {
	b.primary.ExecSQL("CREATE ROLE " + pgx.Identifier{user}.Sanitize() + " REPLICATION LOGIN PASSWORD '" + pw + "'")
	b.primary.ExecSQL("SELECT pg_create_physical_replication_slot($1)", slot)
	b.c.Replication = spec.Replication{User: user, Password: spec.NewSecret(pw, "test")}
}

// backup builds the standby's data in vol as the replication user.
func (b *oneOffBed) backup(t *testing.T, vol, slot string) error {
	t.Helper()
	a := reconcile.Action{Kind: reconcile.BaseBackup, Node: "s", Mount: reconcile.Mount{Volume: vol}, Backup: &reconcile.BackupSpec{
		Image: b.c.Image, Network: b.c.Network, Host: b.c.Node("p").Container, Port: 5432, User: b.c.Replication.User, Slot: slot,
		Files:    []reconcile.FileWrite{{Path: reconcile.SignalPath, Mode: 0o600}},
		Passfile: reconcile.FileWrite{Path: reconcile.SecretsDir + "/replication.pgpass", Content: pgconf.Passfile(b.c), Mode: 0o600, Secret: true},
		RootCA:   b.rootCA(),
	}}
	return reconcile.RunOneOffAction(b.e.Ctx(5*time.Minute), b.c, b.d, "p", slog.New(slog.NewTextHandler(&b.log, nil)), a)
}

// dataMountList lists the top of the data location vol (the mount point).
func (b *oneOffBed) dataMountList(t *testing.T, vol string) []string {
	t.Helper()
	out, code, err := b.e.RunOnce("ls", []string{"ls", "-A", reconcile.DataMount}, []string{vol + ":" + reconcile.DataMount})
	if err != nil || code != 0 {
		t.Fatalf("while listing %s in volume %s: exit %d, %v: %s", reconcile.DataMount, vol, code, err, out)
	}
	return strings.Fields(out)
}

// checkNothingRan fails the test when a command hidden in a name was run:
// each such name touches a file "pwned" in the data's mount point.
func (b *oneOffBed) checkNothingRan(t *testing.T, vol string) {
	t.Helper()
	for _, f := range b.dataMountList(t, vol) {
		if f == "pwned" {
			t.Errorf("a command hidden in a name was run as root in the one-off container: %s/pwned exists in volume %s", reconcile.DataMount, vol)
		}
	}
}

// TestE2EOneOffHostileNames: a base backup as a replication user, and a
// rewind as a superuser into a database, whose names hold shell
// metacharacters and commands work on the real engine and server, and no
// command hidden in a name runs.
func TestE2EOneOffHostileNames(t *testing.T) {
	b := newOneOffBed(t)

	t.Run("base backup", func(t *testing.T) {
		vol := b.e.Volume("s1-data")
		b.replicationRole(`rep$(touch /var/lib/postgresql/pwned)`, "repl-pw", "hostile_s1")
		err := b.backup(t, vol, "hostile_s1")
		b.checkNothingRan(t, vol)
		if err != nil {
			t.Fatalf("base backup as %q: %v", b.c.Replication.User, err)
		}
		have := strings.Join(b.dataMountList(t, vol), " ")
		if have != "data" {
			t.Errorf("volume %s holds %q after the base backup; want data alone (no marker left)", vol, have)
		}
	})

	t.Run("rewind", func(t *testing.T) {
		vol := b.e.Volume("s2-data")
		b.replicationRole("replicator", "repl-pw", "plain_s2")
		if err := b.backup(t, vol, "plain_s2"); err != nil {
			t.Fatalf("base backup: %v", err)
		}
		// pg_rewind needs a target that was shut down cleanly: run the
		// standby once.
		s := b.e.StartNode(e2e.NodeOptions{Name: "s", Volume: vol, Password: "pacs-pw"})
		b.e.Eventually(90*time.Second, "the standby to answer", func() error {
			return s.TryQueryRow("SELECT 1", []any{new(int)})
		})
		s.Stop()

		su := `su'x"; touch /var/lib/postgresql/pwned; echo "`
		db := `a'b"c;d \ $(touch /var/lib/postgresql/pwned)`
		b.primary.ExecSQL("CREATE ROLE " + pgx.Identifier{su}.Sanitize() + " SUPERUSER LOGIN PASSWORD 'su-pw'")
		b.primary.ExecSQL("CREATE DATABASE " + pgx.Identifier{db}.Sanitize())
		b.c.Superuser = spec.Credentials{Name: su, Password: spec.NewSecret("su-pw", "test")}
		b.c.Database = db
		a := reconcile.Action{Kind: reconcile.Rewind, Node: "s", Mount: reconcile.Mount{Volume: vol}, Backup: &reconcile.BackupSpec{
			Image: b.c.Image, Network: b.c.Network, Host: b.c.Node("p").Container, Port: 5432, User: su,
			Files:    []reconcile.FileWrite{{Path: reconcile.SignalPath, Mode: 0o600}},
			Passfile: reconcile.FileWrite{Path: reconcile.SecretsDir + "/superuser.pgpass", Content: pgconf.SuperuserPassfile(b.c), Mode: 0o600, Secret: true},
			RootCA:   b.rootCA(),
		}}
		err := reconcile.RunOneOffAction(b.e.Ctx(5*time.Minute), b.c, b.d, "p", slog.New(slog.NewTextHandler(&b.log, nil)), a)
		b.checkNothingRan(t, vol)
		if err != nil {
			t.Fatalf("rewind as %q into database %q: %v", su, db, err)
		}
		if have := strings.Join(b.dataMountList(t, vol), " "); have != "data" {
			t.Errorf("volume %s holds %q after the rewind; want data alone (no marker left)", vol, have)
		}
	})
}

// TestE2EBaseBackupKeepsMountPoint: a node's host directory (data = "/srv")
// is the mount point of its data; a base backup changes only the data
// directory inside it, never the directory's own owner or mode. A host
// directory the image's postgres user cannot enter is refused with a message
// that names it and the permission it needs, and is left as it was.
func TestE2EBaseBackupKeepsMountPoint(t *testing.T) {
	b := newOneOffBed(t)
	b.replicationRole("replicator", "repl-pw", "mount_s")
	// The engine is this machine's: it binds the test's directories.
	backupInto := func(dir string) error {
		t.Helper()
		a := reconcile.Action{Kind: reconcile.BaseBackup, Node: "s", Mount: reconcile.Mount{HostDir: dir}, Backup: &reconcile.BackupSpec{
			Image: b.c.Image, Network: b.c.Network, Host: b.c.Node("p").Container, Port: 5432, User: b.c.Replication.User, Slot: "mount_s",
			Files:    []reconcile.FileWrite{{Path: reconcile.SignalPath, Mode: 0o600}},
			Passfile: reconcile.FileWrite{Path: reconcile.SecretsDir + "/replication.pgpass", Content: pgconf.Passfile(b.c), Mode: 0o600, Secret: true},
			RootCA:   b.rootCA(),
		}}
		return reconcile.RunOneOffAction(b.e.Ctx(5*time.Minute), b.c, b.d, "p", slog.New(slog.NewTextHandler(&b.log, nil)), a)
	}
	ownerMode := func(path string) string {
		t.Helper()
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		st := fi.Sys().(*syscall.Stat_t)
		return fmt.Sprintf("%d:%d %o", st.Uid, st.Gid, fi.Mode().Perm())
	}
	mountDir := func(mode os.FileMode) string {
		t.Helper()
		dir := filepath.Join(t.TempDir(), "srv")
		if err := os.Mkdir(dir, mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(dir, mode); err != nil { // past the umask
			t.Fatal(err)
		}
		t.Cleanup(func() { // the data inside belongs to the container's postgres
			if _, _, err := b.e.RunOnce("rm", []string{"sh", "-c", "rm -rf " + reconcile.DataMount + "/*"}, []string{dir + ":" + reconcile.DataMount}); err != nil {
				t.Logf("while emptying %s: %v", dir, err)
			}
		})
		return dir
	}

	t.Run("mode 0755", func(t *testing.T) {
		dir := mountDir(0o755)
		before := ownerMode(dir)
		if err := backupInto(dir); err != nil {
			t.Fatalf("base backup into host directory %s: %v", dir, err)
		}
		if after := ownerMode(dir); after != before {
			t.Errorf("the base backup changed the host directory %s itself: owner and mode %s, were %s", dir, after, before)
		}
		uid, _ := b.e.PostgresIDs()
		if got, want := ownerMode(filepath.Join(dir, "data")), fmt.Sprintf("%d:", uid); !strings.HasPrefix(got, want) || !strings.HasSuffix(got, " 700") {
			t.Errorf("the data directory inside %s: owner and mode %s, want postgres's (uid %d) and 700", dir, got, uid)
		}
		if _, err := os.Stat(filepath.Join(dir, "data", "PG_VERSION")); err != nil {
			t.Errorf("no complete data directory in %s: %v", dir, err)
		}
	})

	t.Run("mode 0700", func(t *testing.T) {
		dir := mountDir(0o700)
		before := ownerMode(dir)
		err := backupInto(dir)
		if after := ownerMode(dir); after != before {
			t.Errorf("the base backup changed the host directory %s itself: owner and mode %s, were %s", dir, after, before)
		}
		if err == nil {
			t.Fatalf("base backup into host directory %s (mode 0700, owned by root): no error; want a refusal", dir)
		}
		t.Logf("refused: %v", err)
		for _, want := range []string{dir, "700", "cannot enter", "chmod o+x"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("the error does not say %q: %v", want, err)
			}
		}
		if entries, _ := os.ReadDir(dir); len(entries) != 0 {
			t.Errorf("the refused base backup left %d entries in %s (first %s); want none", len(entries), dir, entries[0].Name())
		}
	})
}

// TestE2EBaseBackupAfterLeftover: a base backup that a killed pacsd left
// running (it still writes into the node's data and holds the name of the
// next one) is killed and removed before the next base backup, which then
// builds the data; the log names the container removed.
func TestE2EBaseBackupAfterLeftover(t *testing.T) {
	b := newOneOffBed(t)
	b.replicationRole("replicator", "repl-pw", "leftover_s")
	vol := b.e.Volume("s-data")
	name := b.c.Node("s").Container + "-basebackup"
	labels := b.e.Labels()
	labels[reconcile.LabelCluster], labels[reconcile.LabelNode], labels[reconcile.LabelRole] = b.c.Name, "s", "basebackup"
	ctx := b.e.Ctx(time.Minute)
	c, err := b.e.Docker.ContainerCreate(ctx,
		&container.Config{Image: b.e.Image, Entrypoint: []string{"sh", "-c", "while true; do date > " + reconcile.DataMount + "/leftover; sleep 0.05; done"}, Labels: labels},
		&container.HostConfig{NetworkMode: "none", Binds: []string{vol + ":" + reconcile.DataMount}}, nil, nil, name)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.e.Docker.ContainerStart(ctx, c.ID, container.StartOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := b.backup(t, vol, "leftover_s"); err != nil {
		t.Fatalf("base backup after a leftover one: %v\n%s", err, b.log.String())
	}
	if !strings.Contains(b.log.String(), "container="+name) {
		t.Errorf("the log does not name the leftover container %s:\n%s", name, b.log.String())
	}
	if _, err := b.e.Docker.ContainerInspect(ctx, c.ID); err == nil {
		t.Errorf("the leftover container %s is still there", name)
	}
	if have := strings.Join(b.dataMountList(t, vol), " "); have != "data leftover" {
		t.Errorf("volume %s holds %q after the base backup; want the data and the leftover's file, no marker", vol, have)
	}
}
