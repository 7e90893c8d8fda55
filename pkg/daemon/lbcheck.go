package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/pacsd/pacsd/pkg/reconcile"
	"github.com/pacsd/pacsd/pkg/spec"
)

// lbCheckTimeout bounds one load balancer's check: a server that runs
// answers in milliseconds, and a check that hangs holds the balancer's.
var lbCheckTimeout = time.Second

// LBAnswer is the body of a load balancer's check (/primary, /replica,
// /read-write, /read-only); the status (200 or 503) is the answer.
type LBAnswer struct {
	Cluster string `json:"cluster"`
	Node    string `json:"node"`
	Check   string `json:"check"`
	OK      bool   `json:"ok"`
	// Role is "primary", "replica" or "" (see reconcile.NodeRole); Why
	// says why it is neither.
	Role   string `json:"role"`
	Acting string `json:"acting,omitempty"`
	Why    string `json:"why,omitempty"`
}

// serveCheck answers a load balancer's check of one node: 200 when it
// passes, 503 when it does not (the body says why), 404 when the request
// names no node of the file, or one of several. The node is ?node=NAME
// (and &cluster=NAME when several clusters have a node of that name);
// with pacsd on every host, without node, this host's own node (Patroni's
// shape: one check port per server).
func (d *Daemon) serveCheck(w http.ResponseWriter, r *http.Request, check string) {
	snap := d.snap.Load()
	if snap == nil {
		http.Error(w, "pacsd has not loaded its file yet", http.StatusServiceUnavailable)
		return
	}
	host := ""
	if d.hosted != nil {
		host = d.hosted.co.Host()
	}
	c, n, err := checkedNode(snap.file, r.URL.Query().Get("cluster"), r.URL.Query().Get("node"), host)
	if err != nil {
		http.Error(w, err.Error(), http.StatusNotFound)
		return
	}
	a := LBAnswer{Cluster: c.Name, Node: n.Name, Check: check}
	ctx, cancel := context.WithTimeout(r.Context(), lbCheckTimeout)
	defer cancel()
	// With pacsd on every host and automatic failover, a node may run as
	// the primary only under its host's lease: this pacsd's own, or, for
	// another host's node, the lease as etcd shows it.
	leased := func() bool { return true }
	lease := d.hosted != nil && c.Failover.Automatic
	switch {
	case lease && n.Host == host:
		leased = func() bool { return d.hosted.mayRunPrimary(c.Name, n.Name) }
	case lease:
		leased = func() bool {
			node, on, err := d.hosted.co.LeaseHolder(ctx, c.Name)
			return err == nil && node == n.Name && on == n.Host
		}
	}
	var acting error
	if lease && n.Host == host && leased() {
		// While this pacsd holds the lease for its node, the record names
		// no other primary (it changes only while no lease is held): it
		// need not be read, and etcd that does not answer (failsafe)
		// changes nothing.
		a.Acting = n.Name
	} else {
		var st reconcile.ClusterState
		if st, acting = snap.deps.Store.Load(c.Name); acting == nil {
			a.Acting, acting = reconcile.ActingPrimary(c, st, nil)
		}
	}
	h, herr := reconcile.Health(ctx, c, n, snap.deps)
	// The lease is looked at after the server: one lost meanwhile counts.
	a.Role, a.Why = reconcile.NodeRole(n.Name, a.Acting, leased(), h, herr)
	if acting != nil && a.Role != "replica" {
		// A standby that streams is one without the record; a primary
		// is not.
		a.Role, a.Acting = "", ""
		a.Why = "the acting primary is not known: " + acting.Error()
	}
	a.OK = reconcile.CheckPasses(check, a.Role)
	w.Header().Set("Content-Type", "application/json")
	if !a.OK {
		w.WriteHeader(http.StatusServiceUnavailable)
	}
	_ = json.NewEncoder(w).Encode(a)
}

// errNoNode says that a check names no node of the file.
var errNoNode = errors.New("no such node")

// checkedNode finds the node a check asks about: node in cluster (any
// cluster when ""), or, without node, the one node of host (pacsd on every
// host: host is this pacsd's). It has no side effects.
func checkedNode(f *spec.File, cluster, node, host string) (*spec.Cluster, *spec.Node, error) {
	var found []*spec.Cluster
	var nodes []*spec.Node
	for _, c := range f.Clusters {
		if cluster != "" && c.Name != cluster {
			continue
		}
		for _, n := range c.Nodes {
			if node == n.Name || node == "" && host != "" && n.Host == host {
				found, nodes = append(found, c), append(nodes, n)
			}
		}
	}
	switch {
	case len(nodes) == 1:
		return found[0], nodes[0], nil
	case node == "" && host == "":
		return nil, nil, fmt.Errorf("%w: name the node, ?node=NAME (and &cluster=NAME when several clusters have one of that name)", errNoNode)
	case node == "" && len(nodes) == 0:
		return nil, nil, fmt.Errorf("%w: host %q runs no node of the file's clusters%s", errNoNode, host, forCluster(cluster))
	case node == "":
		return nil, nil, fmt.Errorf("%w: host %q runs several nodes%s; name one, ?node=NAME", errNoNode, host, forCluster(cluster))
	case len(nodes) == 0:
		return nil, nil, fmt.Errorf("%w: the file declares no node %q%s", errNoNode, node, forCluster(cluster))
	}
	return nil, nil, fmt.Errorf("%w: several clusters have a node %q; name one, &cluster=NAME", errNoNode, node)
}

func forCluster(cluster string) string {
	if cluster == "" {
		return ""
	}
	return fmt.Sprintf(" in cluster %q", cluster)
}
