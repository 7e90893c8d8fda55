package state

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/pacsd/pacsd/pkg/reconcile"
)

// ErrNotThisHost is matched by the error of every call of a Remote that
// would change something: in the mode "every host" only a host's own pacsd
// acts on its engine.
var ErrNotThisHost = errors.New("only that host's own pacsd acts on its engine")

// Remote is another host's engine as the pacsd of this host sees it in the
// mode "every host": through the reports that host's pacsd keeps in etcd
// (Etcd.PutReport), never through its Docker API. It answers what Observe
// and the failover ask (containers, data, network, image, engine ID), with
// each running container's address as the other hosts reach it (the host's
// address and the published port); when the host's pacsd reports nothing
// (stopped, or cut off from etcd), every call fails as for an engine that
// does not answer. Everything that would change the engine fails with
// ErrNotThisHost.
type Remote struct {
	E    *Etcd
	Host string
}

var _ reconcile.Runtime = (*Remote)(nil)

// report returns the host's report on cluster ("" any cluster: the first).
func (r *Remote) reports(ctx context.Context) (map[string]reconcile.HostReport, error) {
	reps, err := r.E.Reports(ctx, r.Host)
	if err != nil {
		return nil, err
	}
	if len(reps) == 0 {
		return nil, fmt.Errorf("the pacsd of host %q reports nothing in etcd (it is stopped, or cut off from etcd): start it ('systemctl start pacsd' on that host) or check its network", r.Host)
	}
	return reps, nil
}

func (r *Remote) report(ctx context.Context, cluster string) (reconcile.HostReport, error) {
	reps, err := r.reports(ctx)
	if err != nil {
		return reconcile.HostReport{}, err
	}
	rep, ok := reps[cluster]
	if !ok {
		return reconcile.HostReport{}, fmt.Errorf("the pacsd of host %q reports nothing on cluster %q yet (it has not observed it: its file may differ from this host's)", r.Host, cluster)
	}
	if rep.Engine.Unreachable != "" {
		return reconcile.HostReport{}, fmt.Errorf("the pacsd of host %q reports that its own Docker engine does not answer (%s)", r.Host, rep.Engine.Unreachable)
	}
	return rep, nil
}

// NetworkInspect returns the cluster network as the host reported it.
func (r *Remote) NetworkInspect(ctx context.Context, name, cluster string) (*reconcile.NetworkState, error) {
	rep, err := r.report(ctx, cluster)
	if err != nil {
		return nil, err
	}
	return rep.Engine.Network, nil
}

// ImageInspect returns the image as the host reported it.
func (r *Remote) ImageInspect(ctx context.Context, ref string) (*reconcile.ImageState, error) {
	reps, err := r.reports(ctx)
	if err != nil {
		return nil, err
	}
	for _, c := range sortedClusters(reps) {
		if rep := reps[c]; rep.Image == ref && rep.Engine.Unreachable == "" {
			return rep.Engine.Image, nil
		}
	}
	return nil, fmt.Errorf("the pacsd of host %q reports nothing on image %q", r.Host, ref)
}

// ContainerInspect returns a node's container as the host reported it.
func (r *Remote) ContainerInspect(ctx context.Context, name, cluster, node string) (*reconcile.ContainerState, error) {
	rep, err := r.report(ctx, cluster)
	if err != nil {
		return nil, err
	}
	nr, ok := rep.Nodes[node]
	if !ok {
		return nil, fmt.Errorf("the pacsd of host %q reports nothing on node %q (its file may differ from this host's)", r.Host, node)
	}
	if nr.Container == nil || nr.Container.Name != name {
		return nil, nil
	}
	ct := *nr.Container
	return &ct, nil
}

// NodeContainers returns the node's labelled containers as reported.
func (r *Remote) NodeContainers(ctx context.Context, cluster, node string) ([]string, error) {
	rep, err := r.report(ctx, cluster)
	if err != nil {
		return nil, err
	}
	nr, ok := rep.Nodes[node]
	if !ok {
		return nil, fmt.Errorf("the pacsd of host %q reports nothing on node %q (its file may differ from this host's)", r.Host, node)
	}
	return append([]string(nil), nr.Containers...), nil
}

// DataInspect returns the data location as reported.
func (r *Remote) DataInspect(ctx context.Context, image string, m reconcile.Mount) (reconcile.DataState, error) {
	reps, err := r.reports(ctx)
	if err != nil {
		return reconcile.DataState{}, err
	}
	for _, c := range sortedClusters(reps) {
		for _, nr := range reps[c].Nodes {
			if nr.Mount == m {
				return nr.Data, nil
			}
		}
	}
	return reconcile.DataState{}, fmt.Errorf("the pacsd of host %q reports nothing on data %+v", r.Host, m)
}

// EngineID returns the engine's ID as reported.
func (r *Remote) EngineID(ctx context.Context) (string, error) {
	reps, err := r.reports(ctx)
	if err != nil {
		return "", err
	}
	for _, c := range sortedClusters(reps) {
		if id := reps[c].Engine.ID; id != "" {
			return id, nil
		}
	}
	return "", nil
}

func sortedClusters(reps map[string]reconcile.HostReport) []string {
	cs := make([]string, 0, len(reps))
	for c := range reps {
		cs = append(cs, c)
	}
	sort.Strings(cs)
	return cs
}

func (r *Remote) refuse(what string) error {
	return fmt.Errorf("while %s on host %q: %w", what, r.Host, ErrNotThisHost)
}

// NetworkCreate fails: see ErrNotThisHost.
func (r *Remote) NetworkCreate(context.Context, string, map[string]string) error {
	return r.refuse("creating a network")
}

// ImagePull fails: see ErrNotThisHost.
func (r *Remote) ImagePull(context.Context, string, func(string)) error {
	return r.refuse("pulling an image")
}

// ContainerCreate fails: see ErrNotThisHost.
func (r *Remote) ContainerCreate(context.Context, reconcile.ContainerSpec) (string, error) {
	return "", r.refuse("creating a container")
}

// ContainerStart fails: see ErrNotThisHost.
func (r *Remote) ContainerStart(context.Context, string) error {
	return r.refuse("starting a container")
}

// ContainerStop fails: see ErrNotThisHost.
func (r *Remote) ContainerStop(context.Context, string, time.Duration) error {
	return r.refuse("stopping a container")
}

// ContainerRemove fails: see ErrNotThisHost.
func (r *Remote) ContainerRemove(context.Context, string) error {
	return r.refuse("removing a container")
}

// NetworkAliases fails: see ErrNotThisHost.
func (r *Remote) NetworkAliases(context.Context, string, string, []string) error {
	return r.refuse("setting aliases")
}

// ReadFiles fails with reconcile.ErrReportedOnly: the files of another
// host's nodes are read over SQL, or their data taken as reported.
func (r *Remote) ReadFiles(context.Context, string, []string) (map[string][]byte, error) {
	return nil, fmt.Errorf("while reading files on host %q: %w", r.Host, reconcile.ErrReportedOnly)
}

// WriteFiles fails: see ErrNotThisHost.
func (r *Remote) WriteFiles(context.Context, string, []reconcile.FileWrite) error {
	return r.refuse("writing files")
}

// Exec fails: see ErrNotThisHost.
func (r *Remote) Exec(context.Context, string, string, []string) (string, int, error) {
	return "", 0, r.refuse("running a command")
}

// RunOnce fails: see ErrNotThisHost.
func (r *Remote) RunOnce(context.Context, reconcile.OneOff) (int, string, error) {
	return 0, "", r.refuse("running a one-off container")
}

// RemoveOneOffs fails: see ErrNotThisHost.
func (r *Remote) RemoveOneOffs(context.Context, string, string) ([]string, error) {
	return nil, r.refuse("removing one-off containers")
}
