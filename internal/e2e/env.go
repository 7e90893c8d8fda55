package e2e

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/volume"
	"github.com/docker/docker/client"
)

const (
	// LabelRun marks every object the harness creates; its value is the run id.
	LabelRun = "io.pacsd.e2e"
	// DefaultImage is the local PostgreSQL image built by image/build.sh.
	DefaultImage = "pacsd-postgres:15"
	// apiTimeout bounds every single Docker API call of the harness.
	apiTimeout = 60 * time.Second
)

// Enabled reports whether end-to-end tests were asked for (PACSD_E2E=1).
func Enabled() bool { return os.Getenv("PACSD_E2E") == "1" }

// Env is one test's view of the engine: a Docker client, the image under test,
// a private network, and a run id that labels everything it creates.
type Env struct {
	T       testing.TB
	Docker  *client.Client
	Image   string
	RunID   string
	Network string // name of the private network created for this test

	pgUID, pgGID int
	// host is the test host whose engine Docker is, nil for the machine's.
	host *TestHost
	// owned are further label filters ("key=value") whose objects cleanup removes.
	owned []string
}

// Require returns an Env for an end-to-end test. Without PACSD_E2E=1 the test
// is skipped with a message saying how to enable it. With PACSD_E2E=1 a missing
// engine or image fails the test. The network and every object created through
// the Env are removed when the test ends.
func Require(t testing.TB) *Env {
	t.Helper()
	if !Enabled() {
		t.Skip("end-to-end test: set PACSD_E2E=1 (or run 'make test') to run it against a Docker engine")
	}
	cli, err := client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
	if err != nil {
		t.Fatalf("while connecting to the Docker engine: %v; run 'bash scripts/engine.sh'", err)
	}
	t.Cleanup(func() { _ = cli.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), apiTimeout)
	defer cancel()
	if _, err := cli.Ping(ctx); err != nil {
		t.Fatalf("no Docker engine answers (%v); run 'bash scripts/engine.sh' (as root it starts one)", err)
	}
	img := os.Getenv("PACSD_IMAGE")
	if img == "" {
		img = DefaultImage
	}
	if _, err := cli.ImageInspect(ctx, img); err != nil {
		t.Fatalf("image %s is missing (%v); build it with 'make image'", img, err)
	}
	e := &Env{T: t, Docker: cli, Image: img, RunID: newRunID()}
	t.Cleanup(e.cleanup)
	openFaultBook(t)
	e.Network = e.Name("net")
	if _, err := cli.NetworkCreate(ctx, e.Network, network.CreateOptions{Driver: "bridge", Labels: e.Labels()}); err != nil {
		t.Fatalf("while creating network %s: %v", e.Network, err)
	}
	return e
}

func newRunID() string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// Name returns a Docker object name unique to this run: pacsd-e2e-<run>-<suffix>.
func (e *Env) Name(suffix string) string { return "pacsd-e2e-" + e.RunID + "-" + suffix }

// Labels returns the labels every object of this run carries.
func (e *Env) Labels() map[string]string { return map[string]string{LabelRun: e.RunID} }

// Ctx returns a context bounded by d, cancelled when the test ends.
func (e *Env) Ctx(d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	e.T.Cleanup(cancel)
	return ctx
}

func (e *Env) filter() filters.Args {
	return filters.NewArgs(filters.Arg("label", LabelRun+"="+e.RunID))
}

// Own makes cleanup also remove every container, volume and network labelled
// key=value, such as the objects pacsd creates for a cluster of this run
// (io.pacsd.cluster=<name>). Name such clusters after the run id.
func (e *Env) Own(key, value string) { e.owned = append(e.owned, key+"="+value) }

// cleanup removes, by label, the containers, volumes and networks of this run
// and those it was told to Own.
func (e *Env) cleanup() {
	e.cleanupFilter(e.filter())
	for _, l := range e.owned {
		e.cleanupFilter(filters.NewArgs(filters.Arg("label", l)))
	}
}

// cleanupFilter removes what matches f; it reports what it could not remove
// but never stops half-way.
func (e *Env) cleanupFilter(f filters.Args) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*apiTimeout)
	defer cancel()
	if cs, err := e.Docker.ContainerList(ctx, container.ListOptions{All: true, Filters: f}); err == nil {
		for _, c := range cs {
			if c.State == "paused" {
				_ = e.Docker.ContainerUnpause(ctx, c.ID)
			}
			if err := e.Docker.ContainerRemove(ctx, c.ID, container.RemoveOptions{Force: true, RemoveVolumes: true}); err != nil {
				e.T.Logf("cleanup: while removing container %s: %v", c.ID[:12], err)
			}
		}
	} else {
		e.T.Logf("cleanup: while listing containers: %v", err)
	}
	if vs, err := e.Docker.VolumeList(ctx, volume.ListOptions{Filters: f}); err == nil {
		for _, v := range vs.Volumes {
			if err := e.Docker.VolumeRemove(ctx, v.Name, true); err != nil {
				e.T.Logf("cleanup: while removing volume %s: %v", v.Name, err)
			}
		}
	}
	if ns, err := e.Docker.NetworkList(ctx, network.ListOptions{Filters: f}); err == nil {
		for _, n := range ns {
			if err := e.Docker.NetworkRemove(ctx, n.ID); err != nil {
				e.T.Logf("cleanup: while removing network %s: %v", n.Name, err)
			}
		}
	}
}

// Volume creates a named volume of this run and returns its name.
func (e *Env) Volume(suffix string) string {
	e.T.Helper()
	name := e.Name(suffix)
	if _, err := e.Docker.VolumeCreate(e.Ctx(apiTimeout), volume.CreateOptions{Name: name, Labels: e.Labels()}); err != nil {
		e.T.Fatalf("while creating volume %s: %v", name, err)
	}
	return name
}

// ImageMajor returns the PostgreSQL major version the image under test
// declares in its label io.pacsd.pg-major (image/build.sh sets it), so a test
// can check that its servers really run that image. The test fails when the
// image declares none.
func (e *Env) ImageMajor() int {
	e.T.Helper()
	img, err := e.Docker.ImageInspect(e.Ctx(apiTimeout), e.Image)
	if err != nil {
		e.T.Fatalf("while inspecting image %s: %v", e.Image, err)
	}
	var label string
	if img.Config != nil {
		label = img.Config.Labels["io.pacsd.pg-major"]
	}
	n, err := strconv.Atoi(label)
	if err != nil || n <= 0 {
		e.T.Fatalf("image %s declares no PostgreSQL major version (label io.pacsd.pg-major is %q); build it with image/build.sh", e.Image, label)
	}
	return n
}

// PostgresIDs returns the uid and gid of the postgres user inside the image,
// so files copied into containers can be owned by it.
func (e *Env) PostgresIDs() (uid, gid int) {
	e.T.Helper()
	if e.pgUID != 0 {
		return e.pgUID, e.pgGID
	}
	out, code, err := e.RunOnce("ids", []string{"id", "-u", "postgres"}, nil)
	if err != nil || code != 0 {
		e.T.Fatalf("while reading the postgres uid of %s: exit %d: %v: %s", e.Image, code, err, out)
	}
	e.pgUID, _ = strconv.Atoi(strings.TrimSpace(out))
	out, _, _ = e.RunOnce("gids", []string{"id", "-g", "postgres"}, nil)
	e.pgGID, _ = strconv.Atoi(strings.TrimSpace(out))
	if e.pgUID == 0 {
		e.T.Fatalf("image %s has no postgres user", e.Image)
	}
	return e.pgUID, e.pgGID
}

// RunOnce runs cmd in a one-off container of the image on this run's network
// and returns its combined output and exit code. files are copied into the
// container before it starts (see File).
func (e *Env) RunOnce(suffix string, cmd []string, mounts []string, files ...File) (string, int, error) {
	ctx := e.Ctx(10 * time.Minute)
	name := e.Name("once-" + suffix + "-" + newRunID())
	c, err := e.Docker.ContainerCreate(ctx,
		&container.Config{Image: e.Image, Cmd: cmd, Labels: e.Labels()},
		&container.HostConfig{Binds: mounts, NetworkMode: container.NetworkMode(e.Network)},
		nil, nil, name)
	if err != nil {
		return "", -1, fmt.Errorf("while creating one-off container %s: %w", name, err)
	}
	defer func() {
		_ = e.Docker.ContainerRemove(context.Background(), c.ID, container.RemoveOptions{Force: true})
	}()
	for _, f := range files {
		if err := e.copyFile(ctx, c.ID, f); err != nil {
			return "", -1, err
		}
	}
	if err := e.Docker.ContainerStart(ctx, c.ID, container.StartOptions{}); err != nil {
		return "", -1, fmt.Errorf("while starting one-off container %s: %w", name, err)
	}
	waitC, errC := e.Docker.ContainerWait(ctx, c.ID, container.WaitConditionNotRunning)
	var code int
	select {
	case w := <-waitC:
		code = int(w.StatusCode)
	case err := <-errC:
		return "", -1, fmt.Errorf("while waiting for one-off container %s: %w", name, err)
	}
	out, err := e.logs(ctx, c.ID)
	return out, code, err
}
