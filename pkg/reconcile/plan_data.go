package reconcile

import (
	"fmt"
	"path/filepath"
	"strconv"
)

// checkDataLocations refuses to act on a node whose data would change place.
// A container keeps the data location it was created on; a file that names
// another one would have the node re-created on the new, maybe empty,
// location, and an empty primary location is initialised as a new, empty
// database. So: a container whose data mount differs from the spec's blocks
// its node, and an acting primary with no container and no data while
// another node holds data of the cluster blocks the acting primary. Moving
// data is the operator's explicit step; the problem says how.
func (p *planner) checkDataLocations(acting string, blocked map[string]bool) {
	for _, n := range p.c.Nodes {
		ns := p.node(n.Name)
		ct := ns.Container
		if blocked[n.Name] || ct == nil || !ct.Owned || ct.Mount == nil {
			continue
		}
		want := Mount{Volume: n.Volume, HostDir: n.Data}
		if sameMount(*ct.Mount, want) {
			continue
		}
		p.problem(n.Name, "Data Location Changed", fmt.Sprintf(
			"container %q holds the node's data on %s but the file names %s; pacsd never re-creates a node with data on another location (its data would stay behind, and a primary would start empty): "+
				"put %s back in the file, or move the data yourself: stop the container ('docker stop %s'), copy the data to the new location keeping owners and modes, remove the container ('docker rm %s'), then apply again",
			ct.Name, ct.Mount.describe(), want.describe(), ct.Mount.attribute(), ct.Name, ct.Name))
		blocked[n.Name] = true
	}
	if blocked[acting] {
		return
	}
	ps := p.node(acting)
	if ps.Container != nil || ps.Data.Major != 0 {
		return
	}
	if ps.Data.Unknown {
		p.problem(acting, "Primary Data Unknown", fmt.Sprintf("%q is the acting primary and has no container, and what %s holds could not be inspected; pacsd does not create a primary on data it has not seen: make its engine answer, then apply again", acting, p.c.Node(acting).Location()))
		blocked[acting] = true
		return
	}
	for _, n := range p.c.Nodes {
		if o := p.node(n.Name); n.Name != acting && o.Unreachable != "" {
			p.problem(acting, "Primary Data Missing", fmt.Sprintf(
				"%q is the acting primary but has no container and %s holds no data, and the Docker engine of host %q, where node %q keeps its data, does not answer (%s); pacsd does not start an empty primary while a node it cannot see may hold the cluster's data: make that engine answer, then apply again",
				acting, p.c.Node(acting).Location(), n.Host, n.Name, o.Unreachable))
			blocked[acting] = true
			return
		}
		if o := p.node(n.Name); n.Name != acting && o.Data.Major != 0 {
			pn := p.c.Node(acting)
			p.problem(acting, "Primary Data Missing", fmt.Sprintf(
				"%q is the acting primary but has no container and %s holds no data, while node %q holds data of the cluster; pacsd does not start an empty primary beside it (the standbys would be rebuilt from it and their data lost): "+
					"if the primary's data was moved, point data or volume of node %q at it; if it is lost, make a standby the primary with 'pacsd failover %s'",
				acting, pn.Location(), n.Name, acting, n.Name))
			blocked[acting] = true
			return
		}
	}
}

// quoteAll quotes each name.
func quoteAll(names []string) []string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = strconv.Quote(n)
	}
	return q
}

// sameMount reports whether two data locations are the same.
func sameMount(a, b Mount) bool {
	if a.Volume != "" || b.Volume != "" {
		return a.Volume == b.Volume && a.HostDir == "" && b.HostDir == ""
	}
	return filepath.Clean(a.HostDir) == filepath.Clean(b.HostDir)
}

// describe names the location for an operator.
func (m Mount) describe() string {
	if m.HostDir != "" {
		return fmt.Sprintf("host directory %q", m.HostDir)
	}
	return fmt.Sprintf("volume %q", m.Volume)
}

// attribute is the node attribute that names the location, as in the file.
func (m Mount) attribute() string {
	if m.HostDir != "" {
		return fmt.Sprintf("data = %q", m.HostDir)
	}
	return fmt.Sprintf("volume = %q", m.Volume)
}
