package docker

import (
	"archive/tar"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/client"
	"github.com/docker/docker/pkg/stdcopy"
	"github.com/jackc/pgx/v5"

	"github.com/pacsd/pacsd/internal/e2e"
	"github.com/pacsd/pacsd/pkg/reconcile"
)

const (
	pwFile   = reconcile.SecretsDir + "/superuser.password"
	password = "s3cret-e2e"
)

// newRuntime returns a Runtime on the test's engine whose probes carry the
// run's labels.
func newRuntime(t *testing.T, e *e2e.Env) *Runtime {
	t.Helper()
	r, err := New("", nil, "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Close() })
	r.Labels = e.Labels()
	r.StopGrace = 20 * time.Second
	return r
}

// labels returns the run's labels plus cluster and node labels.
func labels(e *e2e.Env, node string) map[string]string {
	l := e.Labels()
	l[reconcile.LabelCluster] = "c-" + e.RunID
	l[reconcile.LabelNode] = node
	return l
}

// stat returns owner and mode of path in a container, through the archive API
// (running or not).
func stat(t *testing.T, r *Runtime, id, path string) (uid, gid int, mode int64) {
	t.Helper()
	rc, _, err := r.cli.CopyFromContainer(context.Background(), id, path)
	if err != nil {
		t.Fatalf("while reading %s: %v", path, err)
	}
	defer rc.Close()
	h, err := tar.NewReader(rc).Next()
	if err != nil {
		t.Fatalf("while reading %s: %v", path, err)
	}
	return h.Uid, h.Gid, h.Mode & 0o7777
}

// checkFiles writes files and reads them back, checking content, owner and mode.
func checkFiles(t *testing.T, r *Runtime, id string, o owner, files []reconcile.FileWrite) {
	t.Helper()
	ctx := context.Background()
	if err := r.WriteFiles(ctx, id, files); err != nil {
		t.Fatal(err)
	}
	var paths []string
	for _, f := range files {
		paths = append(paths, f.Path)
	}
	got, err := r.ReadFiles(ctx, id, append(paths, reconcile.PGDATA+"/no-such-file"))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(files) {
		t.Errorf("ReadFiles returned %d files, want %d (a missing one is absent)", len(got), len(files))
	}
	for _, f := range files {
		if string(got[f.Path]) != string(f.Content) {
			t.Errorf("%s: read %q, wrote %q", f.Path, got[f.Path], f.Content)
		}
		want := f.Mode
		if want == 0 {
			want = 0o600
		}
		if uid, gid, mode := stat(t, r, id, f.Path); uid != o.uid || gid != o.gid || mode != want {
			t.Errorf("%s: owner %d:%d mode %o, want %d:%d mode %o", f.Path, uid, gid, mode, o.uid, o.gid, want)
		}
	}
}

func TestE2EContainerLifecycle(t *testing.T) {
	e := e2e.Require(t)
	r := newRuntime(t, e)
	ctx := e.Ctx(5 * time.Minute)
	cluster := "c-" + e.RunID

	// Networks: the harness's is not the cluster's; one created here is.
	if n, err := r.NetworkInspect(ctx, e.Name("absent"), cluster); err != nil || n != nil {
		t.Fatalf("absent network: got %+v, %v", n, err)
	}
	if n, err := r.NetworkInspect(ctx, e.Network, cluster); err != nil || n == nil || n.Owned {
		t.Fatalf("foreign network: got %+v, %v; want present, not owned", n, err)
	}
	netName := e.Name("cluster")
	if err := r.NetworkCreate(ctx, netName, labels(e, "")); err != nil {
		t.Fatal(err)
	}
	if n, err := r.NetworkInspect(ctx, netName, cluster); err != nil || n == nil || !n.Owned {
		t.Fatalf("own network: got %+v, %v; want owned", n, err)
	}

	// Create: the password file is there before the first start.
	vol := e.Name("n1-data")
	name := e.Name("n1")
	id, err := r.ContainerCreate(ctx, reconcile.ContainerSpec{
		Name:          name,
		Image:         e.Image,
		Labels:        labels(e, "n1"),
		Env:           []string{"POSTGRES_USER=pacs", "POSTGRES_DB=pacsdb", "POSTGRES_PASSWORD_FILE=" + pwFile},
		Network:       netName,
		Aliases:       []string{"n1"},
		Mount:         reconcile.Mount{Volume: vol},
		RestartPolicy: "no",
		Files:         []reconcile.FileWrite{{Path: pwFile, Content: []byte(password), Mode: 0o400, Secret: true}},
	})
	if err != nil {
		t.Fatal(err)
	}
	o, err := r.postgresOwner(ctx, e.Image, "")
	if err != nil {
		t.Fatal(err)
	}
	if uid, _, mode := stat(t, r, id, pwFile); uid != o.uid || mode != 0o400 {
		t.Errorf("password file: uid %d mode %o, want %d 400", uid, mode, o.uid)
	}
	if uid, _, mode := stat(t, r, id, reconcile.SecretsDir); uid != o.uid || mode != 0o700 {
		t.Errorf("%s: uid %d mode %o, want %d 700", reconcile.SecretsDir, uid, mode, o.uid)
	}
	if uid, _, _ := stat(t, r, id, "/run"); uid != 0 {
		t.Errorf("/run changed owner to %d", uid)
	}
	st, err := r.ContainerInspect(ctx, name, cluster, "n1")
	if err != nil || st == nil || !st.Owned || st.Running || st.Addr != "" || st.Status != "created" {
		t.Fatalf("created container: got %+v, %v", st, err)
	}
	if st, err := r.ContainerInspect(ctx, name, cluster, "n2"); err != nil || st == nil || st.Owned {
		t.Errorf("other node's name: got %+v, %v; want present, not owned", st, err)
	}
	if st, err := r.ContainerInspect(ctx, e.Name("absent"), cluster, "n1"); err != nil || st != nil {
		t.Errorf("absent container: got %+v, %v", st, err)
	}

	// Start: PostgreSQL answers on Addr with the placed password.
	if err := r.ContainerStart(ctx, id); err != nil {
		t.Fatal(err)
	}
	st, err = r.ContainerInspect(ctx, name, cluster, "n1")
	if err != nil || !st.Running || !st.Owned || !strings.HasSuffix(st.Addr, ":5432") {
		t.Fatalf("running container: got %+v, %v", st, err)
	}
	waitSQL(t, r, id, st.Addr)

	// Files on a running container: atomic writes owned by postgres.
	checkFiles(t, r, id, o, []reconcile.FileWrite{
		{Path: reconcile.PGDATA + "/pacsd.conf", Content: []byte("# managed by pacsd\nwal_log_hints = on\n"), Mode: 0o640},
		{Path: reconcile.SecretsDir + "/sub/dir/passfile", Content: []byte("*:*:*:replicator:x\n")},
	})
	checkFiles(t, r, id, o, []reconcile.FileWrite{ // replaced, with the default mode
		{Path: reconcile.PGDATA + "/pacsd.conf", Content: []byte("# managed by pacsd\n")},
	})
	if out, _, _ := r.exec(ctx, id, "0:0", "sh", "-c", "ls -a "+reconcile.PGDATA+" | grep pacsd-tmp || true"); strings.TrimSpace(out) != "" {
		t.Errorf("temporary files left behind: %s", out)
	}

	// Stop with SIGINT: a fast shutdown, exit code 0.
	if err := r.ContainerStop(ctx, id, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	st, err = r.ContainerInspect(ctx, name, cluster, "n1")
	if err != nil || st.Running || st.Addr != "" || st.Status != "exited" {
		t.Fatalf("stopped container: got %+v, %v", st, err)
	}
	if c, _ := r.cli.ContainerInspect(ctx, id); c.State.ExitCode != 0 {
		t.Errorf("exit code after stop: %d, want 0 (fast shutdown)", c.State.ExitCode)
	}

	// Files on a stopped container.
	checkFiles(t, r, id, o, []reconcile.FileWrite{
		{Path: reconcile.PGDATA + "/standby.signal", Content: nil},
		{Path: reconcile.PGDATA + "/pacsd.conf", Content: []byte("# stopped\n"), Mode: 0o644},
	})

	// Remove keeps the volume and its data.
	if err := r.ContainerRemove(ctx, id); err != nil {
		t.Fatal(err)
	}
	if err := r.ContainerRemove(ctx, id); err != nil {
		t.Errorf("removing an absent container: %v", err)
	}
	if st, err := r.ContainerInspect(ctx, name, cluster, "n1"); err != nil || st != nil {
		t.Errorf("removed container: got %+v, %v", st, err)
	}
	if err := r.ContainerStop(ctx, id, time.Second); err != nil {
		t.Errorf("stopping an absent container: %v", err)
	}
	ds, err := r.DataInspect(ctx, e.Image, reconcile.Mount{Volume: vol})
	ctl := ds.Control
	ds.Control = nil
	if err != nil || ds != (reconcile.DataState{Exists: true, Major: e.ImageMajor()}) {
		t.Errorf("data after removal: got %+v, %v; want an initialised cluster", ds, err)
	}
	// Its control file tells a stopped node's timeline (the acting primary
	// is rebuilt from timelines when its record is lost).
	if ctl == nil || ctl.Timeline != 1 || ctl.State != reconcile.DBShutdowned {
		t.Errorf("control file of the removed container's data: got %+v; want shut down on timeline 1", ctl)
	}
}

// waitSQL waits until PostgreSQL at addr accepts the superuser's password.
func waitSQL(t *testing.T, r *Runtime, id, addr string) {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	dsn := fmt.Sprintf("postgres://pacs:%s@%s/pacsdb?sslmode=disable&connect_timeout=3", password, addr)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		conn, err := pgx.Connect(ctx, dsn)
		if err == nil {
			var one int
			err = conn.QueryRow(ctx, "SELECT 1").Scan(&one)
			_ = conn.Close(ctx)
		}
		cancel()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			var logs strings.Builder
			if rc, lerr := r.cli.ContainerLogs(context.Background(), id, container.LogsOptions{ShowStdout: true, ShowStderr: true}); lerr == nil {
				_, _ = stdcopy.StdCopy(&logs, &logs, rc)
				rc.Close()
			}
			t.Fatalf("PostgreSQL at %s did not accept the password: %v\n%s", addr, err, logs.String())
		}
		time.Sleep(500 * time.Millisecond)
	}
}

func TestE2ERunOnce(t *testing.T) {
	e := e2e.Require(t)
	r := newRuntime(t, e)
	ctx := e.Ctx(5 * time.Minute)

	var progress []string
	script := `cat /run/pacsd/in.txt; printf '1/3\r2/3\r3/3\n'; for i in $(seq 1 30); do echo line $i; done; sleep 1; echo oops >&2; exit 3`
	code, tail, err := r.RunOnce(ctx, reconcile.OneOff{
		Name:     e.Name("once"),
		Image:    e.Image,
		Network:  e.Network,
		Labels:   e.Labels(),
		Cmd:      []string{"sh", "-c", script},
		Files:    []reconcile.FileWrite{{Path: "/run/pacsd/in.txt", Content: []byte("hello from a placed file\n")}},
		Progress: func(l string) { progress = append(progress, l) },
	})
	if err != nil {
		t.Fatal(err)
	}
	if code != 3 {
		t.Errorf("exit code %d, want 3", code)
	}
	if len(progress) != 35 || progress[0] != "hello from a placed file" || progress[1] != "1/3" || progress[3] != "3/3" {
		t.Errorf("progress lines: %q", progress)
	}
	lines := strings.Split(tail, "\n")
	if len(lines) != tailLines || lines[len(lines)-1] != "oops" || lines[0] != "line 12" {
		t.Errorf("tail: %q", tail)
	}
	assertGone(t, e, e.Name("once"))

	// Cancelled: the container goes all the same.
	cctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	_, _, err = r.RunOnce(cctx, reconcile.OneOff{Name: e.Name("cancelled"), Image: e.Image, Labels: e.Labels(), Cmd: []string{"sleep", "60"}})
	if err == nil {
		t.Error("RunOnce with a cancelled context returned no error")
	}
	assertGone(t, e, e.Name("cancelled"))
}

// assertGone checks that no container of the run is named name.
func assertGone(t *testing.T, e *e2e.Env, name string) {
	t.Helper()
	cs, err := e.Docker.ContainerList(context.Background(), container.ListOptions{All: true,
		Filters: filters.NewArgs(filters.Arg("name", "^/"+name+"$"))})
	if err != nil {
		t.Fatal(err)
	}
	if len(cs) != 0 {
		t.Errorf("container %s is still there (%s)", name, cs[0].State)
	}
}

func TestE2EDataInspect(t *testing.T) {
	e := e2e.Require(t)
	r := newRuntime(t, e)
	ctx := e.Ctx(5 * time.Minute)
	check := func(what string, m reconcile.Mount, want reconcile.DataState) {
		t.Helper()
		got, err := r.DataInspect(ctx, e.Image, m)
		if err != nil || got != want {
			t.Errorf("%s: got %+v, %v; want %+v", what, got, err, want)
		}
	}
	check("missing volume", reconcile.Mount{Volume: e.Name("absent")}, reconcile.DataState{})
	empty := e.Volume("empty")
	check("empty volume", reconcile.Mount{Volume: empty}, reconcile.DataState{Exists: true})
	check("empty volume, again (the probe filled nothing in)", reconcile.Mount{Volume: empty}, reconcile.DataState{Exists: true})

	partial := reconcile.Mount{Volume: e.Name("partial")}
	code, tail, err := r.RunOnce(ctx, reconcile.OneOff{
		Image: e.Image, Labels: e.Labels(), Mount: partial,
		Cmd: []string{"sh", "-c", "mkdir -p " + reconcile.PGDATA + " && echo 15 > " + reconcile.PGDATA + "/PG_VERSION && touch " + reconcile.BuildingMarker},
	})
	if err != nil || code != 0 {
		t.Fatalf("preparing a partial data directory: exit %d, %v: %s", code, err, tail)
	}
	check("partial volume", partial, reconcile.DataState{Exists: true, Major: 15, Partial: true})

	check("missing host directory", reconcile.Mount{HostDir: "/nonexistent-" + e.Name("dir")}, reconcile.DataState{})

	// The engine's two "not found" of the archive API: a container that is
	// gone must read as an error, a path missing in a container as absent.
	if _, _, err := r.cli.CopyFromContainer(ctx, e.Name("gone"), reconcile.VersionPath); !isNotFound(err) || !isNoSuchContainer(err) {
		t.Errorf("archive of an absent container: got %v, want the engine's No such container", err)
	}
	if _, err := r.ReadFiles(ctx, e.Name("gone"), []string{reconcile.VersionPath}); err == nil {
		t.Error("ReadFiles of an absent container: no error")
	}
	if r.cli.DaemonHost() == client.DefaultDockerHost { // the engine sees this machine's directories
		check("empty host directory", reconcile.Mount{HostDir: t.TempDir()}, reconcile.DataState{Exists: true})
	}
}

func TestE2EImage(t *testing.T) {
	e := e2e.Require(t)
	r := newRuntime(t, e)
	ctx := e.Ctx(3 * time.Minute)
	img, err := r.ImageInspect(ctx, e.Image)
	if want := e.ImageMajor(); err != nil || img == nil || img.Major != want || img.ID == "" {
		t.Fatalf("ImageInspect(%s): got %+v, %v; want major %d", e.Image, img, err, want)
	}
	if img, err := r.ImageInspect(ctx, "pacsd-postgres:absent-"+e.RunID); err != nil || img != nil {
		t.Errorf("absent image: got %+v, %v", img, err)
	}
	err = r.ImagePull(ctx, "pacsd-postgres:absent-"+e.RunID, func(l string) { t.Log("pull:", l) })
	if err == nil || !strings.Contains(err.Error(), "missing locally and could not be pulled") || !strings.Contains(err.Error(), "make image") {
		t.Errorf("pulling an image no registry has: got %v", err)
	}
	t.Log(err)
}

func TestE2EEvents(t *testing.T) {
	e := e2e.Require(t)
	r := newRuntime(t, e)
	ctx := e.Ctx(2 * time.Minute)
	evs, errs := r.Events(ctx, "c-"+e.RunID)
	name := e.Name("ev")
	id, err := r.ContainerCreate(ctx, reconcile.ContainerSpec{Name: name, Image: e.Image, Labels: labels(e, "ev"), Cmd: []string{"true"}})
	if err != nil {
		t.Fatal(err)
	}
	// A foreign container (no cluster label) makes no event.
	if _, _, err := r.RunOnce(ctx, reconcile.OneOff{Image: e.Image, Labels: e.Labels(), Cmd: []string{"true"}}); err != nil {
		t.Fatal(err)
	}
	if err := r.ContainerRemove(ctx, id); err != nil {
		t.Fatal(err)
	}
	var got []string
	for len(got) < 2 {
		select {
		case ev := <-evs:
			if ev.ID != id || ev.Node != "ev" || ev.Name != name {
				t.Fatalf("unexpected event %+v", ev)
			}
			got = append(got, ev.Action)
		case err := <-errs:
			t.Fatal(err)
		case <-ctx.Done():
			t.Fatalf("events so far: %v", got)
		}
	}
	if got[0] != "create" || got[1] != "destroy" {
		t.Errorf("events: %v, want [create destroy]", got)
	}
}

// TestE2EEngineID: the engine's ID is what docker info says, the same for
// two Runtimes on one engine, whatever the endpoint's spelling.
func TestE2EEngineID(t *testing.T) {
	e := e2e.Require(t)
	a, err := newRuntime(t, e).EngineID(context.Background())
	if err != nil || a == "" {
		t.Fatalf("EngineID: %q, %v; want the engine's ID", a, err)
	}
	other, err := New("unix://"+strings.TrimPrefix(e.Docker.DaemonHost(), "unix://"), nil, "")
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	b, err := other.EngineID(context.Background())
	info, ierr := e.Docker.Info(context.Background())
	if err != nil || ierr != nil || b != a || info.ID != a {
		t.Errorf("EngineID through another Runtime: %q (%v), first %q, docker info %q (%v); want all equal", b, err, a, info.ID, ierr)
	}
}
