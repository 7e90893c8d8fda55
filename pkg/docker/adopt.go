package docker

import (
	"cmp"
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/mount"

	"github.com/pacsd/pacsd/pkg/reconcile"
)

// The adapter of 'pacsd adopt' (reconcile.AdoptRuntime): containers that
// pacsd did not create, seen and renamed, never removed.

// LegacyInspect returns the container named name as adopt sees it, nil when
// there is none. Only the names of its environment variables that hold
// secrets are kept, never their values.
func (r *Runtime) LegacyInspect(ctx context.Context, name string) (*reconcile.LegacyContainer, error) {
	c, cname, err := r.inspectNamed(ctx, name)
	if err != nil || cname == "" {
		return nil, err
	}
	l := &reconcile.LegacyContainer{ID: c.ID, Name: cname, Env: map[string]string{}}
	if c.Config != nil {
		l.Image, l.Labels = c.Config.Image, c.Config.Labels
		l.Env, l.SecretEnv = legacyEnv(c.Config.Env)
	}
	if s := c.State; s != nil {
		l.Running, l.Paused, l.Status = s.Running, s.Paused, s.Status
	}
	if c.HostConfig != nil {
		l.RestartPolicy = cmp.Or(string(c.HostConfig.RestartPolicy.Name), "no")
	}
	for _, m := range c.Mounts {
		if strings.HasPrefix(m.Destination, reconcile.PGDATA+"/") {
			l.Nested = append(l.Nested, m.Destination) // pg_wal or a tablespace on a disk of its own
		}
		if m.Destination != reconcile.PGDATA && m.Destination != reconcile.DataMount {
			continue
		}
		if l.MountAt == reconcile.PGDATA {
			// Mounted at both: the server keeps its data in the one at
			// PGDATA (an image's VOLUME there hides the parent's data/).
			continue
		}
		l.MountAt = m.Destination
		switch m.Type {
		case mount.TypeVolume:
			l.Mount = &reconcile.Mount{Volume: m.Name}
		case mount.TypeBind:
			l.Mount = &reconcile.Mount{HostDir: m.Source}
		}
	}
	if c.NetworkSettings != nil {
		for _, ep := range c.NetworkSettings.Networks {
			if ep != nil && ep.IPAddress != "" {
				l.IPs = append(l.IPs, ep.IPAddress)
			}
		}
		sort.Strings(l.IPs)
	}
	return l, nil
}

// legacyEnv keeps the variables adopt checks (POSTGRES_USER, POSTGRES_DB,
// PGDATA) with their values, and the names of those that hold a secret
// (POSTGRES_PASSWORD and the like) without.
func legacyEnv(env []string) (map[string]string, []string) {
	keep := map[string]string{}
	var secret []string
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		switch {
		case k == "POSTGRES_USER" || k == "POSTGRES_DB" || k == "PGDATA":
			keep[k] = v
		case strings.Contains(k, "PASSWORD") && !strings.HasSuffix(k, "_FILE"):
			secret = append(secret, k)
		}
	}
	sort.Strings(secret)
	return keep, secret
}

// ContainerRename gives container id the name name.
func (r *Runtime) ContainerRename(ctx context.Context, id, name string) error {
	ctx, cancel := context.WithTimeout(ctx, r.timeouts().Change)
	defer cancel()
	if err := r.cli.ContainerRename(ctx, id, name); err != nil {
		return fmt.Errorf("while renaming container %s to %s: %w", short(id), name, err)
	}
	return nil
}

// ContainerNoRestart sets container id's restart policy to "no", so that
// neither the engine nor a reboot starts it again.
func (r *Runtime) ContainerNoRestart(ctx context.Context, id string) error {
	ctx, cancel := context.WithTimeout(ctx, r.timeouts().Change)
	defer cancel()
	if _, err := r.cli.ContainerUpdate(ctx, id, container.UpdateConfig{RestartPolicy: container.RestartPolicy{Name: container.RestartPolicyDisabled}}); err != nil {
		return fmt.Errorf("while setting the restart policy of container %s to no: %w", short(id), err)
	}
	return nil
}
