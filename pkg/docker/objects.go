package docker

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/api/types/mount"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/volume"
	"github.com/docker/docker/pkg/jsonmessage"
	"github.com/docker/go-connections/nat"

	"github.com/pacsd/pacsd/pkg/reconcile"
)

// pgPort is the port PostgreSQL listens on inside every container.
const pgPort = "5432"

// labelPGMajor is the image label that declares its PostgreSQL major version.
const labelPGMajor = "io.pacsd.pg-major"

// NetworkInspect returns the network named name, nil when there is none. Owned
// is set when it carries io.pacsd.cluster=cluster.
func (r *Runtime) NetworkInspect(ctx context.Context, name, cluster string) (*reconcile.NetworkState, error) {
	ctx, cancel := context.WithTimeout(ctx, r.timeouts().Inspect)
	defer cancel()
	n, err := r.cli.NetworkInspect(ctx, name, network.InspectOptions{})
	if isNotFound(err) || (err == nil && n.Name != name) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("while inspecting network %s: %w", name, err)
	}
	r.rememberNetwork(n.ID, n.Labels)
	return &reconcile.NetworkState{ID: n.ID, Owned: n.Labels[reconcile.LabelCluster] == cluster}, nil
}

// NetworkCreate creates a bridge network named name carrying labels.
func (r *Runtime) NetworkCreate(ctx context.Context, name string, labels map[string]string) error {
	ctx, cancel := context.WithTimeout(ctx, r.timeouts().Change)
	defer cancel()
	if _, err := r.cli.NetworkCreate(ctx, name, network.CreateOptions{Driver: "bridge", Labels: labels}); err != nil {
		return fmt.Errorf("while creating network %s: %w", name, err)
	}
	return nil
}

func (r *Runtime) rememberNetwork(id string, labels map[string]string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.netTags[id] = labels
}

// networkLabels returns the labels of the network with id, from the cache
// when known (a network's labels never change), nil when it cannot be seen.
func (r *Runtime) networkLabels(ctx context.Context, id string) map[string]string {
	r.mu.Lock()
	l, ok := r.netTags[id]
	r.mu.Unlock()
	if ok {
		return l
	}
	ctx, cancel := context.WithTimeout(ctx, r.timeouts().Inspect)
	defer cancel()
	n, err := r.cli.NetworkInspect(ctx, id, network.InspectOptions{})
	if err != nil {
		return nil
	}
	r.rememberNetwork(n.ID, n.Labels)
	return n.Labels
}

// ImageInspect returns the image ref, nil when the engine does not have it.
// Major comes from the image's label io.pacsd.pg-major, else its environment
// variable PG_MAJOR, else the leading number of ref's tag, else 0.
func (r *Runtime) ImageInspect(ctx context.Context, ref string) (*reconcile.ImageState, error) {
	ctx, cancel := context.WithTimeout(ctx, r.timeouts().Inspect)
	defer cancel()
	img, err := r.cli.ImageInspect(ctx, ref)
	if isNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("while inspecting image %s: %w", ref, err)
	}
	var labels map[string]string
	var env, volumes []string
	if img.Config != nil {
		labels, env = img.Config.Labels, img.Config.Env
		for v := range img.Config.Volumes {
			volumes = append(volumes, v)
		}
		sort.Strings(volumes)
	}
	return &reconcile.ImageState{ID: img.ID, Major: imageMajor(ref, labels, env), Volumes: volumes}, nil
}

// imageMajor is the PostgreSQL major version an image declares (see ImageInspect).
func imageMajor(ref string, labels map[string]string, env []string) int {
	if n := leadingNumber(labels[labelPGMajor]); n > 0 {
		return n
	}
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "PG_MAJOR="); ok {
			if n := leadingNumber(v); n > 0 {
				return n
			}
		}
	}
	return leadingNumber(refTag(ref))
}

// refTag returns the tag of an image reference ("" when it has none).
func refTag(ref string) string {
	ref, _, _ = strings.Cut(ref, "@")
	name := ref[strings.LastIndex(ref, "/")+1:]
	_, tag, _ := strings.Cut(name, ":")
	return tag
}

// refName returns the repository of an image reference without registry,
// tag or digest: "pacsd-postgres" for "pacsd-postgres:15".
func refName(ref string) string {
	ref, _, _ = strings.Cut(ref, "@")
	name := ref[strings.LastIndex(ref, "/")+1:]
	name, _, _ = strings.Cut(name, ":")
	return name
}

// leadingNumber returns the number s starts with, 0 when none.
func leadingNumber(s string) int {
	i := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	n, _ := strconv.Atoi(s[:i])
	return n
}

// ImagePull pulls ref, reporting each progress message of the engine as a
// line. When the image cannot be had (no registry reachable, unknown image)
// the error says that it is missing locally and how to provide it.
func (r *Runtime) ImagePull(ctx context.Context, ref string, progress func(string)) error {
	ctx, cancel := context.WithTimeout(ctx, r.timeouts().Pull)
	defer cancel()
	err := r.pull(ctx, ref, progress)
	if err == nil {
		return nil
	}
	hint := "make the registry reachable, or load the image with 'docker load'"
	if refName(ref) == "pacsd-postgres" {
		hint = "build it on this host with 'make image' (see image/README.md)"
	}
	return fmt.Errorf("while pulling image %s: it is missing locally and could not be pulled: %w; %s", ref, err, hint)
}

func (r *Runtime) pull(ctx context.Context, ref string, progress func(string)) error {
	rc, err := r.cli.ImagePull(ctx, ref, image.PullOptions{})
	if err != nil {
		return err
	}
	defer rc.Close()
	dec := json.NewDecoder(rc)
	for {
		var m jsonmessage.JSONMessage
		if err := dec.Decode(&m); errors.Is(err, io.EOF) {
			return nil
		} else if err != nil {
			return err
		}
		if m.Error != nil {
			return m.Error
		}
		if line := pullLine(m); line != "" && progress != nil {
			progress(line)
		}
	}
}

// pullLine renders one message of a pull stream as one line.
func pullLine(m jsonmessage.JSONMessage) string {
	line := m.Status
	if m.ID != "" {
		line = m.ID + ": " + line
	}
	if p := m.Progress; p != nil && p.Total > 0 {
		line += fmt.Sprintf(" %d/%d bytes", p.Current, p.Total)
	}
	return line
}

// ContainerInspect returns the container named name (or with ID name), nil
// when there is none. Owned is set when it carries io.pacsd.cluster=cluster
// and io.pacsd.node=node. Addr is set while it runs: on a local engine its
// address on its cluster network (a network carrying io.pacsd.cluster, else
// any) with port 5432; on a remote engine the host address with the host port
// published for 5432/tcp.
func (r *Runtime) ContainerInspect(ctx context.Context, name, cluster, node string) (*reconcile.ContainerState, error) {
	c, cname, err := r.inspectNamed(ctx, name)
	if err != nil || cname == "" {
		return nil, err
	}
	st := &reconcile.ContainerState{ID: c.ID, Name: cname}
	if c.Config != nil {
		st.Labels = c.Config.Labels
	}
	st.Owned = st.Labels[reconcile.LabelCluster] == cluster && st.Labels[reconcile.LabelNode] == node
	if s := c.State; s != nil {
		st.Running, st.Paused, st.Status = s.Running, s.Paused, s.Status
	}
	st.Mount = dataMountOf(c.Mounts)
	if c.HostConfig != nil {
		st.RestartPolicy = cmp.Or(string(c.HostConfig.RestartPolicy.Name), "no")
	}
	if c.NetworkSettings != nil {
		st.Aliases = clusterAliases(c.ID, c.NetworkSettings.Networks, func(id string) bool { return r.networkLabels(ctx, id)[reconcile.LabelCluster] == cluster })
	}
	if st.Running && c.NetworkSettings != nil {
		st.Addr = containerAddr(r.hostAddress, c.NetworkSettings.Ports, c.NetworkSettings.Networks,
			func(id string) bool { return r.networkLabels(ctx, id)[reconcile.LabelCluster] != "" })
	}
	return st, nil
}

// inspectNamed inspects the container named name (or with ID name) and
// returns it with its name; "" when there is none.
func (r *Runtime) inspectNamed(ctx context.Context, name string) (container.InspectResponse, string, error) {
	c, err := r.inspectSettled(ctx, name)
	if isNotFound(err) {
		return c, "", nil
	}
	if err != nil {
		return c, "", err
	}
	cname := strings.TrimPrefix(c.Name, "/")
	if cname != name && c.ID != name {
		return c, "", nil // name matched only a prefix of another container's ID
	}
	return c, cname, nil
}

// clusterAliases returns the sorted network aliases of a container on the
// network for which clusterNet is true, without the engine's own alias (the
// container's short ID, its first 12 hex digits; an alias such as "db" is a
// prefix of some IDs and stays); nil when it is not attached to such a
// network.
// isShortID reports whether alias is the engine's alias of the container id.
func isShortID(id, alias string) bool { return len(alias) == 12 && strings.HasPrefix(id, alias) }

func clusterAliases(id string, nets map[string]*network.EndpointSettings, clusterNet func(id string) bool) []string {
	for _, ep := range nets {
		if ep == nil || !clusterNet(ep.NetworkID) {
			continue
		}
		var out []string
		for _, a := range ep.Aliases {
			if !isShortID(id, a) {
				out = append(out, a)
			}
		}
		sort.Strings(out)
		return out
	}
	return nil
}

// NetworkAliases gives the container exactly aliases on network netName: it is
// disconnected and connected again, which is the only way the engine changes
// aliases (its connections on that network break for a moment).
func (r *Runtime) NetworkAliases(ctx context.Context, id, netName string, aliases []string) error {
	cctx, cancel := context.WithTimeout(ctx, r.timeouts().Change)
	defer cancel()
	if err := r.cli.NetworkDisconnect(cctx, netName, id, true); err != nil && !isNotFound(err) && !strings.Contains(err.Error(), "is not connected") {
		return fmt.Errorf("while disconnecting container %s from network %s: %w", short(id), netName, err)
	}
	if err := r.cli.NetworkConnect(cctx, netName, id, &network.EndpointSettings{Aliases: aliases}); err != nil {
		return fmt.Errorf("while connecting container %s to network %s with aliases %v: %w", short(id), netName, aliases, err)
	}
	return nil
}

// removalWait bounds how long inspectSettled waits for a container that is
// being removed.
const removalWait = 10 * time.Second

// inspectSettled inspects a container and, while the engine is removing it
// (`docker rm -f` in progress), inspects it again until it is gone: a
// container on its way out is reported absent, never as one whose files
// cannot be read.
func (r *Runtime) inspectSettled(ctx context.Context, id string) (container.InspectResponse, error) {
	deadline := time.Now().Add(removalWait)
	for {
		c, err := r.inspect(ctx, id)
		if err != nil || c.State == nil || c.State.Status != "removing" {
			return c, err
		}
		if time.Now().After(deadline) {
			return c, fmt.Errorf("while inspecting container %s: it has been in removal for %s; check the engine's log (journalctl -u docker)", short(id), removalWait)
		}
		select {
		case <-ctx.Done():
			return c, fmt.Errorf("while waiting for container %s to be removed: %w", short(id), ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// inspect returns the engine's view of a container, bounded by Inspect.
func (r *Runtime) inspect(ctx context.Context, id string) (container.InspectResponse, error) {
	ctx, cancel := context.WithTimeout(ctx, r.timeouts().Inspect)
	defer cancel()
	c, err := r.cli.ContainerInspect(ctx, id)
	if err != nil && !isNotFound(err) {
		err = fmt.Errorf("while inspecting container %s: %w", short(id), err)
	}
	return c, err
}

// containerAddr chooses how to reach PostgreSQL in a running container. With
// a hostAddress (remote engine) it is the published host port of 5432/tcp;
// otherwise the container's IP on the first network, by name, for which
// clusterNet is true, else on the first network with an IP.
func containerAddr(hostAddress string, ports nat.PortMap, nets map[string]*network.EndpointSettings, clusterNet func(id string) bool) string {
	if hostAddress != "" {
		for _, b := range ports[nat.Port(pgPort+"/tcp")] {
			if b.HostPort != "" {
				return net.JoinHostPort(hostAddress, b.HostPort)
			}
		}
		return ""
	}
	names := make([]string, 0, len(nets))
	for n, ep := range nets {
		if ep != nil && ep.IPAddress != "" {
			names = append(names, n)
		}
	}
	if len(names) == 0 {
		return ""
	}
	sort.Strings(names)
	for _, n := range names {
		if clusterNet(nets[n].NetworkID) {
			return net.JoinHostPort(nets[n].IPAddress, pgPort)
		}
	}
	return net.JoinHostPort(nets[names[0]].IPAddress, pgPort)
}

// ContainerCreate creates (does not start) the container c describes, creating
// its named volume with c.Labels when missing, and places c.Files into it
// before returning. A container whose files could not be placed is removed
// again. PostgreSQL's port is published when c.Port > 0, on c.PortAddress or on
// every host address.
func (r *Runtime) ContainerCreate(ctx context.Context, c reconcile.ContainerSpec) (string, error) {
	if c.Mount.Volume != "" {
		if err := r.ensureVolume(ctx, c.Mount.Volume, c.Labels); err != nil {
			return "", err
		}
	}
	hostname := c.Name
	if len(c.Aliases) > 0 {
		hostname = c.Aliases[0]
	}
	grace := int(r.StopGrace / time.Second)
	if grace <= 0 {
		grace = int(DefaultStopGrace / time.Second)
	}
	cfg := &container.Config{
		Image:       c.Image,
		Hostname:    hostname,
		Env:         c.Env,
		Cmd:         c.Cmd,
		Labels:      c.Labels,
		StopSignal:  "SIGINT",
		StopTimeout: &grace,
	}
	hc := &container.HostConfig{RestartPolicy: container.RestartPolicy{Name: container.RestartPolicyMode(c.RestartPolicy)}}
	hc.Binds, hc.Mounts = dataMounts(c.Mount, false)
	if c.Port > 0 {
		p := nat.Port(pgPort + "/tcp")
		cfg.ExposedPorts = nat.PortSet{p: {}}
		hc.PortBindings = nat.PortMap{p: {{HostIP: cmp.Or(c.PortAddress, "0.0.0.0"), HostPort: strconv.Itoa(c.Port)}}}
	}
	var nc *network.NetworkingConfig
	hc.NetworkMode = "none" // unless it names a network: never the default bridge
	if c.Network != "" {
		hc.NetworkMode = container.NetworkMode(c.Network)
		nc = &network.NetworkingConfig{EndpointsConfig: map[string]*network.EndpointSettings{c.Network: {Aliases: c.Aliases}}}
	}
	return r.create(ctx, c.Name, cfg, hc, nc, c.Files)
}

// create creates a container and places files into it; on any failure the
// container is removed again.
func (r *Runtime) create(ctx context.Context, name string, cfg *container.Config, hc *container.HostConfig, nc *network.NetworkingConfig, files []reconcile.FileWrite) (string, error) {
	cctx, cancel := context.WithTimeout(ctx, r.timeouts().Change)
	resp, err := r.cli.ContainerCreate(cctx, cfg, hc, nc, nil, name)
	cancel()
	if err != nil {
		return "", fmt.Errorf("while creating container %s from image %s: %w", name, cfg.Image, err)
	}
	if len(files) == 0 {
		return resp.ID, nil
	}
	if err := r.placeFiles(ctx, resp.ID, cfg.Image, false, files); err != nil {
		r.removeQuietly(resp.ID)
		return "", fmt.Errorf("while preparing container %s: %w", name, err)
	}
	return resp.ID, nil
}

// dataMounts mounts m at reconcile.DataMount. A host directory is bound the
// classic way (the engine creates it when missing) unless probe is set; a
// probe mounts read-only and changes nothing: a missing host directory fails
// the creation instead of being created, an empty volume is not filled with
// the image's files.
func dataMounts(m reconcile.Mount, probe bool) (binds []string, mounts []mount.Mount) {
	switch {
	case m.Volume != "":
		mt := mount.Mount{Type: mount.TypeVolume, Source: m.Volume, Target: reconcile.DataMount, ReadOnly: probe}
		if probe {
			mt.VolumeOptions = &mount.VolumeOptions{NoCopy: true}
		}
		return nil, []mount.Mount{mt}
	case m.HostDir != "" && probe:
		return nil, []mount.Mount{{Type: mount.TypeBind, Source: m.HostDir, Target: reconcile.DataMount, ReadOnly: true}}
	case m.HostDir != "":
		return []string{m.HostDir + ":" + reconcile.DataMount}, nil
	}
	return nil, nil
}

// dataMountOf returns the data location mounted at reconcile.DataMount among
// a container's mounts, nil when there is none.
func dataMountOf(mounts []container.MountPoint) *reconcile.Mount {
	for _, m := range mounts {
		if m.Destination != reconcile.DataMount {
			continue
		}
		switch m.Type {
		case mount.TypeVolume:
			return &reconcile.Mount{Volume: m.Name}
		case mount.TypeBind:
			return &reconcile.Mount{HostDir: m.Source}
		}
	}
	return nil
}

// ensureVolume creates the named volume with labels unless it exists.
func (r *Runtime) ensureVolume(ctx context.Context, name string, labels map[string]string) error {
	ctx, cancel := context.WithTimeout(ctx, r.timeouts().Change)
	defer cancel()
	_, err := r.cli.VolumeInspect(ctx, name)
	if err == nil {
		return nil
	}
	if !isNotFound(err) {
		return fmt.Errorf("while inspecting volume %s: %w", name, err)
	}
	if _, err := r.cli.VolumeCreate(ctx, volume.CreateOptions{Name: name, Labels: labels}); err != nil {
		return fmt.Errorf("while creating volume %s: %w", name, err)
	}
	return nil
}

// ContainerStart starts a created or stopped container.
func (r *Runtime) ContainerStart(ctx context.Context, id string) error {
	ctx, cancel := context.WithTimeout(ctx, r.timeouts().Change)
	defer cancel()
	if err := r.cli.ContainerStart(ctx, id, container.StartOptions{}); err != nil {
		return fmt.Errorf("while starting container %s: %w", short(id), err)
	}
	return nil
}

// ContainerStop sends SIGINT (PostgreSQL's fast shutdown) and kills the
// container when it has not stopped after timeout. A container that does not
// exist counts as stopped. Engines older than API 1.42 ignore the signal
// option and send the container's stop signal, which ContainerCreate sets to
// SIGINT.
func (r *Runtime) ContainerStop(ctx context.Context, id string, timeout time.Duration) error {
	secs := int((timeout + time.Second - 1) / time.Second)
	ctx, cancel := context.WithTimeout(ctx, timeout+r.timeouts().Change)
	defer cancel()
	err := r.cli.ContainerStop(ctx, id, container.StopOptions{Signal: "SIGINT", Timeout: &secs})
	if err != nil && !isNotFound(err) {
		return fmt.Errorf("while stopping container %s: %w", short(id), err)
	}
	return nil
}

// ContainerRemove removes a container, never its volumes. A running or paused
// container is killed first (stop it before for a clean shutdown); one that
// does not exist counts as removed.
func (r *Runtime) ContainerRemove(ctx context.Context, id string) error {
	ctx, cancel := context.WithTimeout(ctx, r.timeouts().Change)
	defer cancel()
	err := r.cli.ContainerRemove(ctx, id, container.RemoveOptions{Force: true})
	if err != nil && !isNotFound(err) {
		return fmt.Errorf("while removing container %s: %w", short(id), err)
	}
	return nil
}

// removeQuietly removes a container of pacsd's own making (a probe, a
// one-off, a half-prepared container) with a fresh context, so that it goes
// even when the caller's context was cancelled.
func (r *Runtime) removeQuietly(id string) {
	_ = r.ContainerRemove(context.Background(), id)
}
