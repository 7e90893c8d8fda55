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
	st, err := snap.deps.Store.Load(c.Name)
	if err == nil {
		a.Acting, err = reconcile.ActingPrimary(c, st, nil)
	}
	leased := true
	if d.hosted != nil && c.Failover.Automatic && n.Host == host {
		leased = d.hosted.mayRunPrimary(c.Name, n.Name)
		if err != nil && leased {
			// etcd does not answer, and this pacsd still holds the lease
			// (renewed lately, or kept in failsafe): its node is the
			// acting primary.
			a.Acting, err = n.Name, nil
		}
	}
	if err != nil {
		a.Why = "the acting primary is not known: " + err.Error()
	} else {
		h, herr := reconcile.Health(ctx, c, n, snap.deps)
		a.Role, a.Why = reconcile.NodeRole(n.Name, a.Acting, leased, h, herr)
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
