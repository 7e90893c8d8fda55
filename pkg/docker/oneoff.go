package docker

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/pkg/stdcopy"

	"github.com/pacsd/pacsd/pkg/reconcile"
)

// tailLines is how many of the last output lines RunOnce returns.
const tailLines = 20

// maxLine bounds a line of output; longer runs are cut into several lines.
const maxLine = 64 << 10

// RunOnce runs the one-off container o describes to completion: it creates
// it (creating its named volume with o.Labels when missing), places o.Files,
// starts it, passes each line of output to o.Progress as it comes (lines end
// at \n or \r, so progress meters yield one line per update), waits for it to
// exit and removes it, also when ctx is cancelled. code is the exit code,
// tail the last 20 lines of output.
func (r *Runtime) RunOnce(ctx context.Context, o reconcile.OneOff) (code int, tail string, err error) {
	if o.Mount.Volume != "" {
		if err := r.ensureVolume(ctx, o.Mount.Volume, o.Labels); err != nil {
			return -1, "", err
		}
	}
	cfg := &container.Config{Image: o.Image, Cmd: o.Cmd, Labels: o.Labels}
	// Without a network of its own, a one-off gets none: nothing pacsd runs
	// depends on the engine's default bridge.
	hc := &container.HostConfig{NetworkMode: "none"}
	hc.Binds, hc.Mounts = dataMounts(o.Mount, false)
	if o.Network != "" {
		hc.NetworkMode = container.NetworkMode(o.Network)
	}
	return r.run(ctx, o.Name, cfg, hc, nil, o.Files, o.Progress)
}

// oneOffGone bounds how long RemoveOneOffs waits for a killed one-off
// container to stop, and then for its removal.
const oneOffGone = 30 * time.Second

// RemoveOneOffs finds the one-off containers of node in cluster by their
// labels (io.pacsd.cluster, io.pacsd.node and reconcile.IsOneOff), in any
// state: a killed pacsd leaves them running (still writing into the node's
// data), paused or never started, and they block the next one-off by its
// name. Each is thawed when paused, killed with SIGKILL, confirmed no longer
// running, and removed (its volumes stay). It returns the names of those it
// removed, also alongside an error. The node's own container is never
// touched: it is no one-off.
func (r *Runtime) RemoveOneOffs(ctx context.Context, cluster, node string) ([]string, error) {
	list, err := r.nodeList(ctx, cluster, node)
	if err != nil {
		return nil, err
	}
	var removed []string
	for _, c := range list {
		if !reconcile.IsOneOff(c.Labels) {
			continue
		}
		name := short(c.ID)
		if len(c.Names) > 0 {
			name = strings.TrimPrefix(c.Names[0], "/")
		}
		if err := r.removeOneOff(ctx, c.ID, name); err != nil {
			return removed, err
		}
		removed = append(removed, name)
	}
	return removed, nil
}

// nodeList lists every container labelled for node of cluster (its own and
// its one-offs), in any state.
func (r *Runtime) nodeList(ctx context.Context, cluster, node string) ([]container.Summary, error) {
	lctx, cancel := context.WithTimeout(ctx, r.timeouts().Inspect)
	defer cancel()
	list, err := r.cli.ContainerList(lctx, container.ListOptions{All: true, Filters: filters.NewArgs(
		filters.Arg("label", reconcile.LabelCluster+"="+cluster),
		filters.Arg("label", reconcile.LabelNode+"="+node),
	)})
	if err != nil {
		return nil, fmt.Errorf("while listing the containers of node %q in cluster %q: %w", node, cluster, err)
	}
	var mine []container.Summary
	for _, c := range list {
		if c.Labels[reconcile.LabelCluster] == cluster && c.Labels[reconcile.LabelNode] == node {
			mine = append(mine, c)
		}
	}
	return mine, nil
}

// NodeContainers returns the names of the containers labelled as node's own
// in cluster (never its one-offs), whatever they are called now: a container
// renamed by hand, or left under its old name when container_name was
// edited, is still the node's, on the node's data.
func (r *Runtime) NodeContainers(ctx context.Context, cluster, node string) ([]string, error) {
	list, err := r.nodeList(ctx, cluster, node)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, c := range list {
		if reconcile.IsOneOff(c.Labels) {
			continue
		}
		name := c.ID
		if len(c.Names) > 0 {
			name = strings.TrimPrefix(c.Names[0], "/")
		}
		names = append(names, name)
	}
	sort.Strings(names)
	return names, nil
}

// removeOneOff kills the one-off container id, waits until the engine
// reports it stopped, removes it and confirms it is gone.
func (r *Runtime) removeOneOff(ctx context.Context, id, name string) error {
	stillRuns := func(how string) error {
		return fmt.Errorf("one-off container %s %s; it may still write into the node's data: remove it by hand (docker rm -f %s), check the engine's log, then run pacsd again", name, how, name)
	}
	c, err := r.inspect(ctx, id)
	if isNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	if c.State != nil && c.State.Paused {
		cctx, cancel := context.WithTimeout(ctx, r.timeouts().Change)
		err := r.cli.ContainerUnpause(cctx, id)
		cancel()
		if err != nil && !isNotFound(err) {
			return fmt.Errorf("while thawing the paused one-off container %s to kill it: %w", name, err)
		}
	}
	if c.State != nil && (c.State.Running || c.State.Paused || c.State.Restarting) {
		cctx, cancel := context.WithTimeout(ctx, r.timeouts().Change)
		err := r.cli.ContainerKill(cctx, id, "KILL")
		cancel()
		// An error may only mean it stopped in between: the state decides.
		if werr := r.waitStopped(ctx, id); werr != nil {
			if err != nil && !isNotFound(err) {
				return stillRuns(fmt.Sprintf("could not be killed (%v) and %v", err, werr))
			}
			return stillRuns(werr.Error())
		}
	}
	if err := r.ContainerRemove(ctx, id); err != nil {
		return err
	}
	c, err = r.inspectSettled(ctx, id)
	if isNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	return stillRuns("is still there after its removal (state " + c.State.Status + ")")
}

// waitStopped waits up to oneOffGone until container id no longer runs (or
// is gone).
func (r *Runtime) waitStopped(ctx context.Context, id string) error {
	deadline := time.Now().Add(oneOffGone)
	for {
		c, err := r.inspect(ctx, id)
		if isNotFound(err) {
			return nil
		}
		if err != nil {
			return err
		}
		if c.State == nil || (!c.State.Running && !c.State.Paused && !c.State.Restarting) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("still runs %s after SIGKILL (state %s)", oneOffGone, c.State.Status)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("was not seen stopped after SIGKILL: %w", ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// run creates, starts and follows a container to its end, then removes it.
func (r *Runtime) run(ctx context.Context, name string, cfg *container.Config, hc *container.HostConfig, nc *network.NetworkingConfig, files []reconcile.FileWrite, progress func(string)) (int, string, error) {
	id, err := r.create(ctx, name, cfg, hc, nc, files)
	if err != nil {
		return -1, "", err
	}
	defer r.removeQuietly(id)
	what := name
	if what == "" {
		what = short(id)
	}

	// Wait for the next exit, asked before the start so no exit is missed.
	waitC, errC := r.cli.ContainerWait(ctx, id, container.WaitConditionNextExit)
	if err := r.ContainerStart(ctx, id); err != nil {
		return -1, "", err
	}
	t := &tail{max: tailLines}
	sink := func(line string) {
		t.add(line)
		if progress != nil {
			progress(line)
		}
	}
	stdout, stderr := &lineWriter{emit: sink}, &lineWriter{emit: sink}
	logs, err := r.cli.ContainerLogs(ctx, id, container.LogsOptions{ShowStdout: true, ShowStderr: true, Follow: true})
	if err != nil {
		return -1, "", fmt.Errorf("while following the output of container %s: %w", what, err)
	}
	_, err = stdcopy.StdCopy(stdout, stderr, logs)
	logs.Close()
	stdout.Flush()
	stderr.Flush()
	if err != nil {
		return -1, t.String(), fmt.Errorf("while following the output of container %s: %w", what, err)
	}
	select {
	case w := <-waitC:
		if w.Error != nil {
			return -1, t.String(), fmt.Errorf("while waiting for container %s: %s", what, w.Error.Message)
		}
		return int(w.StatusCode), t.String(), nil
	case err := <-errC:
		return -1, t.String(), fmt.Errorf("while waiting for container %s: %w", what, err)
	}
}

// probe runs script with sh in a short-lived container of image with m
// mounted read-only, and returns its output; a non-zero exit is an error.
func (r *Runtime) probe(ctx context.Context, image string, m reconcile.Mount, script string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, r.timeouts().Probe)
	defer cancel()
	cfg := &container.Config{Image: image, Entrypoint: []string{"sh", "-c"}, Cmd: []string{script}, Labels: r.Labels}
	hc := &container.HostConfig{NetworkMode: "none"}
	hc.Binds, hc.Mounts = dataMounts(m, true)
	var out strings.Builder
	code, tail, err := r.run(ctx, "pacsd-probe-"+randomSuffix(), cfg, hc, nil, nil, func(l string) { out.WriteString(l + "\n") })
	if err != nil {
		return "", err
	}
	if code != 0 {
		return "", fmt.Errorf("probe exited with %d: %s", code, tail)
	}
	return out.String(), nil
}

// DataInspect reports what the data location m holds. A volume that does not
// exist is reported without running anything; otherwise a container of image
// is created with m mounted read-only (never creating it) and, without ever
// starting, gives PG_VERSION of reconcile.PGDATA and whether
// reconcile.BuildingMarker is there through the engine's archive API; then
// it is removed. When the engine fails, the result has Unknown set along with
// the error.
func (r *Runtime) DataInspect(ctx context.Context, image string, m reconcile.Mount) (reconcile.DataState, error) {
	what := "host directory " + m.HostDir
	switch {
	case m.Volume != "":
		what = "volume " + m.Volume
		vctx, cancel := context.WithTimeout(ctx, r.timeouts().Inspect)
		_, err := r.cli.VolumeInspect(vctx, m.Volume)
		cancel()
		if isNotFound(err) {
			return reconcile.DataState{}, nil
		}
		if err != nil {
			return reconcile.DataState{Unknown: true}, fmt.Errorf("while inspecting volume %s: %w", m.Volume, err)
		}
	case m.HostDir == "":
		return reconcile.DataState{}, fmt.Errorf("while inspecting data: the mount names neither a volume nor a host directory")
	}
	ctx, cancel := context.WithTimeout(ctx, r.timeouts().Probe)
	defer cancel()
	cfg := &container.Config{Image: image, Entrypoint: []string{"true"}, Labels: r.Labels}
	hc := &container.HostConfig{NetworkMode: "none"}
	hc.Binds, hc.Mounts = dataMounts(m, true)
	id, err := r.create(ctx, "pacsd-probe-"+randomSuffix(), cfg, hc, nil, nil)
	if err != nil {
		if m.HostDir != "" && isMissingBindSource(err) {
			return reconcile.DataState{}, nil
		}
		return reconcile.DataState{Exists: true, Unknown: true}, fmt.Errorf("while inspecting the data in %s: %w", what, err)
	}
	defer r.removeQuietly(id)
	files, err := r.ReadFiles(ctx, id, []string{reconcile.VersionPath, reconcile.BuildingMarker, reconcile.BuildAttemptsPath, reconcile.ControlPath, reconcile.LegacyVersionPath, reconcile.AdoptMarker})
	if err != nil {
		return reconcile.DataState{Exists: true, Unknown: true}, fmt.Errorf("while inspecting the data in %s: %w", what, err)
	}
	st := reconcile.DataState{Exists: true}
	st.Major = leadingNumber(string(files[reconcile.VersionPath]))
	_, st.Partial = files[reconcile.BuildingMarker]
	_, legacy := files[reconcile.LegacyVersionPath]
	_, adopting := files[reconcile.AdoptMarker]
	st.Unadopted = legacy || adopting
	if b, ok := files[reconcile.BuildAttemptsPath]; ok {
		st.BuildAttempts = reconcile.ParseBuildAttempts(b)
	}
	if b, ok := files[reconcile.ControlPath]; ok {
		if ctl, err := reconcile.ParseControl(b); err == nil {
			st.Control = &ctl
		}
	}
	return st, nil
}

// isMissingBindSource reports the engine's refusal to bind a host path that
// does not exist.
func isMissingBindSource(err error) bool {
	return strings.Contains(err.Error(), "bind source path does not exist")
}

// lineWriter cuts a byte stream into lines at \n and \r and passes each
// non-empty line to emit. Flush passes on what is left.
type lineWriter struct {
	emit func(string)
	buf  []byte
}

func (w *lineWriter) Write(p []byte) (int, error) {
	for _, b := range p {
		if b == '\n' || b == '\r' {
			w.Flush()
			continue
		}
		w.buf = append(w.buf, b)
		if len(w.buf) >= maxLine {
			w.Flush()
		}
	}
	return len(p), nil
}

// Flush passes on the unterminated rest of the stream, if any.
func (w *lineWriter) Flush() {
	if len(w.buf) > 0 {
		w.emit(string(w.buf))
		w.buf = w.buf[:0]
	}
}

// tail keeps the last max lines.
type tail struct {
	max   int
	lines []string
}

func (t *tail) add(line string) {
	t.lines = append(t.lines, line)
	if len(t.lines) > t.max {
		t.lines = append(t.lines[:0:0], t.lines[len(t.lines)-t.max:]...)
	}
}

func (t *tail) String() string { return strings.Join(t.lines, "\n") }
