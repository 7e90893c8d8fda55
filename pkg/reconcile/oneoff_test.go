package reconcile

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/pacsd/pacsd/pkg/pgconf"
	"github.com/pacsd/pacsd/pkg/spec"
)

// oneOffRuntime records the one-off containers it is asked to run; the
// acting primary's container runs at a fixed address.
type oneOffRuntime struct {
	Runtime
	ran []OneOff
	// calls lists RemoveOneOffs and RunOnce calls in order.
	calls []string
	// leftovers and removeErr are what RemoveOneOffs returns.
	leftovers []string
	removeErr error
}

func (f *oneOffRuntime) RunOnce(_ context.Context, o OneOff) (int, string, error) {
	f.ran = append(f.ran, o)
	f.calls = append(f.calls, "run "+o.Name)
	return 0, "", nil
}

func (f *oneOffRuntime) RemoveOneOffs(_ context.Context, cluster, node string) ([]string, error) {
	f.calls = append(f.calls, "remove one-offs of "+cluster+"/"+node)
	return f.leftovers, f.removeErr
}

func (f *oneOffRuntime) ContainerInspect(context.Context, string, string, string) (*ContainerState, error) {
	return &ContainerState{Running: true, Addr: "192.0.2.1:5432"}, nil
}

// checkpointDB connects to any server; its connections only run CHECKPOINT.
type checkpointDB struct{}

func (checkpointDB) Connect(context.Context, string, string, spec.Secret, string) (DBConn, error) {
	return checkpointConn{}, nil
}

type checkpointConn struct{ DBConn }

func (checkpointConn) Checkpoint(context.Context) error { return nil }
func (checkpointConn) Close()                           {}

// oneOffValues are the names a one-off script gets from the spec: user
// names, database, the acting primary's container, slot, paths.
type oneOffValues struct {
	superuser, user, database, host, slot, passfile, file, hostDir string
}

// oneOffCluster is a cluster of two nodes whose names come from v, built
// without the parser: the scripts must be safe for any value.
func oneOffCluster(v oneOffValues) *spec.Cluster {
	return &spec.Cluster{
		Name: "pacs", Image: "pacsd-postgres:15", Network: "pacs", Primary: "db1", Database: v.database,
		Superuser:   spec.Credentials{Name: v.superuser, Password: spec.NewSecret("pw", "test")},
		Replication: spec.Replication{User: v.user},
		Nodes:       []*spec.Node{{Name: "db1", Container: v.host}, {Name: "db2", Container: "pacs-db2", Data: v.hostDir}},
	}
}

// runOneOffs runs a base backup and a rewind of db2 with the values v and
// returns the commands of the one-off containers.
func runOneOffs(t *testing.T, v oneOffValues) (backup, rewind []string) {
	t.Helper()
	c := oneOffCluster(v)
	rt := &oneOffRuntime{}
	var log bytes.Buffer
	x := &executor{c: c, d: Deps{DB: checkpointDB{}, Store: testStore, Runtimes: map[string]Runtime{"": rt}}, log: slog.New(slog.NewTextHandler(&log, nil)), acting: "db1"}
	b := &BackupSpec{Image: c.Image, Network: c.Network, Host: v.host, Port: 5432, User: v.user, Slot: v.slot,
		Files:    []FileWrite{{Path: v.file, Content: []byte("x"), Mode: 0o600}, {Path: SignalPath, Mode: 0o600}},
		Passfile: FileWrite{Path: v.passfile, Content: []byte("*:*:*:u:pw\n"), Mode: 0o600, Secret: true},
		RootCA:   FileWrite{Path: SecretsDir + "/ca $(id).crt", Content: []byte("ca"), Mode: 0o600}}
	m := Mount{HostDir: v.hostDir}
	ctx := context.Background()
	if err := x.baseBackup(ctx, rt, Action{Kind: BaseBackup, Node: "db2", Mount: m, Backup: b}); err != nil {
		t.Fatalf("base backup: %v", err)
	}
	rb := *b
	rb.User = v.superuser
	if err := x.rewind(ctx, rt, Action{Kind: Rewind, Node: "db2", Mount: m, Backup: &rb}); err != nil {
		t.Fatalf("rewind: %v", err)
	}
	if len(rt.ran) != 2 {
		t.Fatalf("ran %d one-off containers, want 2", len(rt.ran))
	}
	return rt.ran[0].Cmd, rt.ran[1].Cmd
}

// TestOneOffScriptsHoldNoValues: the scripts of the base backup and the
// rewind run as root with the data mounted; no name from the spec is ever
// part of their text. Each reaches the script as a positional argument, the
// rewind's source server as one libpq connection string quoted in Go.
func TestOneOffScriptsHoldNoValues(t *testing.T) {
	hostile := oneOffValues{
		superuser: `su'x"; touch /var/lib/postgresql/pwned; echo "`,
		user:      `rep$(touch /tmp/pwned)`,
		database:  `a'b"c;d \ $(id)`,
		host:      "db1`id`",
		slot:      `slot;rm -rf /`,
		passfile:  SecretsDir + `/p$(id).pgpass`,
		file:      PGDATA + `/x y;$(id)`,
		hostDir:   `/srv/a b'$(id)`,
	}
	plain := oneOffValues{
		superuser: "pacs", user: "replicator", database: "pacsdb", host: "pacs-db1", slot: "pacsd_pacs_db2",
		passfile: SecretsDir + "/replication.pgpass", file: PGDATA + "/pacsd.conf", hostDir: "/srv/db2",
	}
	backup, rewind := runOneOffs(t, hostile)
	for what, cmd := range map[string][]string{"base backup": backup, "rewind": rewind} {
		if len(cmd) < 4 || cmd[0] != "bash" || cmd[1] != "-c" || cmd[3] != "bash" {
			t.Fatalf("%s: command %q, want bash -c SCRIPT bash ARGS...", what, cmd)
		}
		for _, v := range []string{hostile.superuser, hostile.user, hostile.database, hostile.host, hostile.slot, hostile.passfile, hostile.file, hostile.hostDir, "$(id)", "`id`", "pwned"} {
			if strings.Contains(cmd[2], v) {
				t.Errorf("%s: the script holds the value %q:\n%s", what, v, cmd[2])
			}
		}
	}
	for _, v := range []string{hostile.user, hostile.host, hostile.slot, hostile.passfile, hostile.file} {
		if !slices.Contains(backup[4:], v) {
			t.Errorf("base backup: %q is not one of its arguments %q", v, backup[4:])
		}
	}
	conninfo := "host=" + pgconf.ConninfoValue(hostile.host) + " port=5432 user=" + pgconf.ConninfoValue(hostile.superuser) +
		" dbname=" + pgconf.ConninfoValue(hostile.database) + " sslmode=verify-full sslrootcert=" + pgconf.ConninfoValue(SecretsDir+"/ca $(id).crt")
	if !slices.Contains(rewind[4:], conninfo) {
		t.Errorf("rewind: the source server %q is not one of its arguments %q", conninfo, rewind[4:])
	}
	if want := `host=db1` + "`id`" + ` port=5432 user='su\'x"; touch /var/lib/postgresql/pwned; echo "' dbname='a\'b"c;d \\ $(id)' sslmode=verify-full sslrootcert='/run/pacsd/ca $(id).crt'`; conninfo != want {
		t.Errorf("conninfo %s, want %s", conninfo, want)
	}

	// The script is the same text whatever the values.
	pb, pr := runOneOffs(t, plain)
	if diff := cmp.Diff(pb[2], backup[2]); diff != "" {
		t.Errorf("the base backup's script depends on the values (-plain +hostile):\n%s", diff)
	}
	if diff := cmp.Diff(pr[2], rewind[2]); diff != "" {
		t.Errorf("the rewind's script depends on the values (-plain +hostile):\n%s", diff)
	}
}

// TestOneOffClearsLeftoversFirst: before a one-off container touches a
// node's data, the one-offs a killed pacsd left on that node are removed
// (each logged with cluster, node and container); when that fails, nothing
// runs.
func TestOneOffClearsLeftoversFirst(t *testing.T) {
	c := oneOffCluster(oneOffValues{superuser: "pacs", user: "replicator", database: "pacsdb", host: "pacs-db1"})
	for _, tc := range []struct {
		name      string
		leftovers []string
		removeErr error
		wantCalls []string
		wantErr   string
		wantLog   []string
	}{
		{name: "none left", wantCalls: []string{"remove one-offs of pacs/db2", "run pacs-db2-basebackup"}},
		{name: "one left", leftovers: []string{"pacs-db2-rewind"},
			wantCalls: []string{"remove one-offs of pacs/db2", "run pacs-db2-basebackup"},
			wantLog:   []string{"cluster=pacs", "node=db2", "container=pacs-db2-rewind"}},
		{name: "still runs", leftovers: []string{"pacs-db2-move-aside"}, removeErr: errors.New("container pacs-db2-rewind still runs after SIGKILL"),
			wantCalls: []string{"remove one-offs of pacs/db2"},
			wantErr:   `while removing the one-off containers left behind on node "db2" (they may still write into its data): container pacs-db2-rewind still runs after SIGKILL`,
			wantLog:   []string{"container=pacs-db2-move-aside"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rt := &oneOffRuntime{leftovers: tc.leftovers, removeErr: tc.removeErr}
			var log bytes.Buffer
			x := &executor{c: c, d: Deps{Runtimes: map[string]Runtime{"": rt}}, log: slog.New(slog.NewTextHandler(&log, nil)), acting: "db1"}
			b := &BackupSpec{Host: "pacs-db1", Port: 5432, User: "replicator", Slot: "s", Passfile: FileWrite{Path: SecretsDir + "/replication.pgpass"}}
			err := x.baseBackup(context.Background(), rt, Action{Kind: BaseBackup, Node: "db2", Mount: Mount{Volume: "v"}, Backup: b})
			if diff := cmp.Diff(tc.wantCalls, rt.calls); diff != "" {
				t.Errorf("calls (-want +got):\n%s", diff)
			}
			gotErr := ""
			if err != nil {
				gotErr = err.Error()
			}
			if gotErr != tc.wantErr {
				t.Errorf("error %q, want %q", gotErr, tc.wantErr)
			}
			for _, w := range tc.wantLog {
				if !strings.Contains(log.String(), w) {
					t.Errorf("the log does not say %q: %s", w, log.String())
				}
			}
			for _, o := range rt.ran {
				if !IsOneOff(o.Labels) || o.Labels[LabelCluster] != "pacs" || o.Labels[LabelNode] != "db2" {
					t.Errorf("one-off %s has labels %v: RemoveOneOffs would not find it", o.Name, o.Labels)
				}
			}
		})
	}
	for _, role := range []string{"primary", "standby", ""} {
		if IsOneOff(map[string]string{LabelCluster: "pacs", LabelNode: "db2", LabelRole: role}) {
			t.Errorf("a node's container with role %q is taken for a one-off", role)
		}
	}
}
