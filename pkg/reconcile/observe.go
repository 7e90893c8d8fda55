package reconcile

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/pacsd/pacsd/pkg/certs"
	"github.com/pacsd/pacsd/pkg/spec"
)

// Deps are the adapters Observe and Apply work through.
type Deps struct {
	// Runtimes maps host names of the spec to their engine; "" is the local one.
	Runtimes map[string]Runtime
	DB       Database
	// Matches and Verifier handle SCRAM verifiers (pkg/postgres provides both).
	Matches  PasswordChecker
	Verifier func(password string) (string, error)
	// Progress receives progress lines of image pulls and base backups.
	Progress func(node, line string)
	// Work, when set, receives the same lines with the node's cluster
	// (the operator's view of work in progress).
	Work func(cluster, node, line string)
	// Store keeps the acting primary, the epoch, the last sight of the
	// primary and the cluster's lock (see ClusterStore). Required.
	Store ClusterStore
	// CAs keeps each cluster's certificate authority (the cluster store
	// pacsd runs with); nil: the Store, when it keeps them itself.
	CAs Authorities
	// Hosted is set in the mode "every host" (daemon.etcd): Apply then
	// carries out only what falls to this host's pacsd (see Scope), and a
	// failover's fence is the primary's lease (Hosted.Fenced).
	Hosted *Hosted
	// Events, when set, receives every action carried out, with its
	// result (the event history).
	Events func(Event)
	// Observed, when set, is told what each observation of a pass saw
	// (the operator's view is drawn from it).
	Observed func(c *spec.Cluster, obs *Observed)
	// Light makes Observe look only at containers and servers, for the
	// operator's view: no data inspection of a node without a container
	// (it starts a probe container), no file reads (over SQL or the
	// engine's archive API). Such an observation is never planned from.
	Light bool
}

// lock takes the cluster's lock (see ClusterStore.Lock).
func (d Deps) lock(ctx context.Context, cluster string) (func(), error) {
	if d.Store == nil {
		return nil, fmt.Errorf("cluster %q: no cluster store is configured", cluster)
	}
	return d.Store.Lock(ctx, cluster)
}

func (d Deps) runtime(c *spec.Cluster, host string) (Runtime, error) {
	rt, ok := d.Runtimes[host]
	if !ok || rt == nil {
		if host == "" {
			return nil, fmt.Errorf("cluster %q: no local Docker engine is configured", c.Name)
		}
		return nil, fmt.Errorf("cluster %q: no Docker engine is configured for host %q", c.Name, host)
	}
	return rt, nil
}

// Observe looks at everything cluster c consists of, again, from nothing: on
// each host's engine the cluster network and the image, and for each node its
// container, data, pacsd's files and the server's state. What cannot be
// reached is recorded as unknown: an engine that does not answer marks its
// host's engine and nodes Unreachable, so that the nodes of the other hosts
// are still converged. When no engine answers, or one answers for the
// network and image but fails for a node, it is an error.
func Observe(ctx context.Context, c *spec.Cluster, d Deps) (*Observed, error) {
	obs := &Observed{Nodes: map[string]*NodeState{}, Engines: map[string]*EngineState{}}
	if d.Store == nil {
		return nil, fmt.Errorf("cluster %q: no cluster store is configured", c.Name)
	}
	a, err := d.Authority(ctx, c)
	if err != nil {
		return nil, err
	}
	obs.CA, obs.Now = a.CertPEM(), time.Now()
	if obs.State, err = d.Store.Load(c.Name); errors.Is(err, ErrRecordDamaged) {
		obs.State, obs.RecordError = ClusterState{}, err.Error()
	} else if err != nil {
		return nil, err
	}
	hosts := c.Hosts()
	// Engines, then their nodes, are observed side by side: each is a few
	// engine and SQL calls, and an engine that does not answer takes its
	// timeout while the others are looked at.
	engines := make([]*EngineState, len(hosts))
	states := make([]*NodeState, len(c.Nodes))
	errs := make([]error, len(c.Nodes))
	var wg sync.WaitGroup
	for i, h := range hosts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			engines[i] = observeEngine(ctx, c, h, d)
			if engines[i].Unreachable != "" {
				return
			}
			var nodes sync.WaitGroup
			for j, n := range c.Nodes {
				if n.Host != h {
					continue
				}
				nodes.Add(1)
				go func() {
					defer nodes.Done()
					states[j], errs[j] = ObserveNode(ctx, c, n, d)
				}()
			}
			nodes.Wait()
		}()
	}
	wg.Wait()
	reached := false
	for i, h := range hosts {
		obs.Engines[h] = engines[i]
		reached = reached || engines[i].Unreachable == ""
	}
	for i, n := range c.Nodes {
		if errs[i] != nil {
			// The engine answered, but not about this node: what it is
			// (a second primary?) is not known, so nothing may act on
			// the cluster, as when its one engine does not answer.
			return nil, fmt.Errorf("node %q: %w", n.Name, errs[i])
		}
		if states[i] == nil {
			states[i] = &NodeState{Unreachable: obs.Engines[n.Host].Unreachable, Data: DataState{Unknown: true}}
		}
		obs.Nodes[n.Name] = states[i]
	}
	if !reached {
		var errs []error
		for i, h := range hosts {
			errs = append(errs, fmt.Errorf("%s: %s", engineName(h), engines[i].Unreachable))
		}
		return nil, fmt.Errorf("cluster %q: no Docker engine of the cluster answers: %w", c.Name, errors.Join(errs...))
	}
	return obs, nil
}

// observeEngine looks at the cluster network and the image on host's engine.
func observeEngine(ctx context.Context, c *spec.Cluster, host string, d Deps) *EngineState {
	rt, err := d.runtime(c, host)
	if err != nil {
		return &EngineState{Unreachable: err.Error()}
	}
	e := &EngineState{}
	if e.Network, err = rt.NetworkInspect(ctx, c.Network, c.Name); err != nil {
		return &EngineState{Unreachable: fmt.Sprintf("while inspecting network %q: %v", c.Network, err)}
	}
	if e.Image, err = rt.ImageInspect(ctx, c.Image); err != nil {
		return &EngineState{Unreachable: fmt.Sprintf("while inspecting image %q: %v", c.Image, err)}
	}
	e.ID, _ = rt.EngineID(ctx) // unknown when it does not say: nodes are then placed by host and endpoint
	return e
}

// engineName names the Docker engine of host in messages.
func engineName(host string) string {
	if host == "" {
		return "the local Docker engine"
	}
	return fmt.Sprintf("the Docker engine of host %q", host)
}

// ObserveSQLTimeout bounds what Observe asks a node's server (its state
// and files over one connection).
var ObserveSQLTimeout = 4 * time.Second

// ObserveConnectTimeout bounds Observe's connection to a node's server: a
// server that runs answers at once; a host that went silent never does.
var ObserveConnectTimeout = 1500 * time.Millisecond

// ObserveRemoteConnectTimeout is ObserveConnectTimeout for another host's
// node with pacsd on every host: a powered-off host's report stays in etcd
// until its pacsd's session expires, and every host's pass after a
// failover would wait for its silent server. A server that runs answers on
// a local network in milliseconds; one that answers later only makes this
// host's work that needs it wait a round (this pacsd never acts on it).
var ObserveRemoteConnectTimeout = 500 * time.Millisecond

// ObserveRemoteSQLTimeout is ObserveSQLTimeout for another host's node with
// pacsd on every host: a connection kept open from an earlier pass to a
// host that has since gone silent would hold every pass of this host for
// ObserveSQLTimeout, the one after a failover too.
var ObserveRemoteSQLTimeout = time.Second

// nodeFiles are the files Observe reads from every node's data.
var nodeFiles = []string{HBAPath, ParamsPath, ConfPath, SignalPath, PassfilePath, VersionPath, BuildingMarker, ControlPath, BuildAttemptsPath,
	ServerCertPath, ServerKeyPath, RootCertPath}

// ObserveNode looks at one node: container, data, pacsd's files, server.
func ObserveNode(ctx context.Context, c *spec.Cluster, n *spec.Node, d Deps) (*NodeState, error) {
	rt, err := d.runtime(c, n.Host)
	if err != nil {
		return nil, err
	}
	ns := &NodeState{}
	ct, err := rt.ContainerInspect(ctx, n.Container, c.Name, n.Name)
	if err != nil {
		return nil, fmt.Errorf("while inspecting container %q: %w", n.Container, err)
	}
	ns.Container = ct
	labelled, err := rt.NodeContainers(ctx, c.Name, n.Name)
	if err != nil {
		return nil, err
	}
	for _, name := range labelled {
		if ct == nil || name != ct.Name {
			ns.Strays = append(ns.Strays, name)
		}
	}
	mount := Mount{Volume: n.Volume, HostDir: n.Data}
	if d.Light && (ct == nil || !ct.Owned) {
		ns.Data.Unknown = true
		return ns, nil
	}
	if ct == nil || !ct.Owned {
		if ns.Data, err = rt.DataInspect(ctx, c.Image, mount); err != nil {
			ns.Data.Unknown = true
		}
		return ns, nil
	}
	// A running server gives its files and its state over one connection;
	// the engine's archive API (slow: one request per file) serves a node
	// whose server does not answer.
	var files map[string][]byte
	if ct.Running && !ct.Paused && ct.Addr != "" {
		// Bounded: a server whose host went silent (powered off, cut
		// off) would hold the pass until TCP gives up, minutes later.
		timeout, connTimeout := ObserveSQLTimeout, ObserveConnectTimeout
		if d.remoteAddr(n) != "" {
			timeout, connTimeout = ObserveRemoteSQLTimeout, ObserveRemoteConnectTimeout
		}
		sctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		cctx, ccancel := context.WithTimeout(sctx, connTimeout)
		conn, err := d.connect(cctx, c, n, ct.Addr)
		ccancel()
		if err != nil {
			ns.DBError = err.Error()
		} else {
			defer conn.Close()
			if ns.DB, err = conn.State(sctx); err != nil {
				ns.DB, ns.DBError = nil, err.Error()
			} else if d.Light {
				return ns, nil
			} else if files, err = conn.ReadFiles(sctx, nodeFiles, []string{PassfilePath}); err != nil {
				files = nil
			}
		}
	}
	if d.Light {
		return ns, nil
	}
	if files == nil {
		files, err = rt.ReadFiles(ctx, ct.ID, nodeFiles)
		if errors.Is(err, ErrReportedOnly) {
			// Another host's node whose server does not answer: its data
			// as its host's pacsd reported it.
			if ns.Data, err = rt.DataInspect(ctx, c.Image, mount); err != nil {
				ns.Data = DataState{Unknown: true}
			}
			return ns, nil
		}
		if err != nil {
			return nil, fmt.Errorf("while reading pacsd's files from container %q: %w", n.Container, err)
		}
		if b, ok := files[PassfilePath]; ok {
			sum := sha256.Sum256(b)
			files[PassfilePath] = sum[:]
		}
	}
	_, partial := files[BuildingMarker]
	ns.Data = DataState{Exists: true, Partial: partial}
	if b, ok := files[BuildAttemptsPath]; ok {
		ns.Data.BuildAttempts = ParseBuildAttempts(b)
	}
	if v, ok := files[VersionPath]; ok {
		ns.Data.Major, _ = strconv.Atoi(strings.TrimSpace(string(v)))
	}
	if b, ok := files[ControlPath]; ok {
		if ctl, err := ParseControl(b); err == nil {
			ns.Data.Control = &ctl
		}
	}
	_, signal := files[SignalPath]
	ns.Files = &Files{HBA: files[HBAPath], Params: files[ParamsPath], PostgresConf: files[ConfPath], StandbySignal: signal, PassfileSum: files[PassfilePath],
		ServerCert: files[ServerCertPath], RootCert: files[RootCertPath], KeyMatches: certs.KeyMatches(files[ServerCertPath], files[ServerKeyPath])}
	delete(files, ServerKeyPath)
	return ns, nil
}
