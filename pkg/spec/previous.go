package spec

import (
	"fmt"

	"github.com/hashicorp/hcl/v2"
)

// CheckAgainstPrevious returns the diagnostics of changes from prev (the last
// spec pacsd acted on) to next (a new, valid spec) that pacsd must refuse:
// moving a node's data to another directory, volume or host, and removing the
// node that is the acting primary of its cluster (or its whole cluster).
// acting maps a cluster name to the name of its acting primary node as observed
// (which may differ from prev's primary after a failover); clusters not in the
// map have no known acting primary. prev may be nil (no previous spec).
//
// It is pure: no side effects, no I/O. The check of an image's major version
// against an existing data directory needs the data directory and is done where
// it is observed.
func CheckAgainstPrevious(prev, next *File, acting map[string]string) hcl.Diagnostics {
	var diags hcl.Diagnostics
	if prev == nil || next == nil {
		return nil
	}
	nextClusters := map[string]*Cluster{}
	for _, c := range next.Clusters {
		nextClusters[c.Name] = c
	}
	for _, pc := range prev.Clusters {
		nc := nextClusters[pc.Name]
		actingName, hasActing := acting[pc.Name]
		if nc == nil {
			if hasActing {
				diags = append(diags, &hcl.Diagnostic{
					Severity: hcl.DiagError,
					Summary:  "Acting Primary Removed",
					Detail: fmt.Sprintf("Cluster %q was removed from the file, but its node %q is running as the acting primary. pacsd does not remove a running primary: put the cluster back. To retire it, stop the archive, then stop its containers yourself and remove the cluster once nothing depends on it.",
						pc.Name, actingName),
				})
			}
			continue
		}
		for _, pn := range pc.Nodes {
			nn := nc.Node(pn.Name)
			if nn == nil {
				if hasActing && actingName == pn.Name {
					diags = append(diags, &hcl.Diagnostic{
						Severity: hcl.DiagError,
						Summary:  "Acting Primary Removed",
						Detail: fmt.Sprintf("Node %q of cluster %q was removed from the file, but it is running as the acting primary. Switch over to another node first (set primary, or run pacsd switchover), then remove it.",
							pn.Name, pc.Name),
						Subject: nc.DeclRange.Ptr(),
					})
				}
				continue
			}
			if pn.Data != nn.Data || pn.Volume != nn.Volume || pn.Host != nn.Host {
				subject := nn.DataRange
				if pn.Data == nn.Data && pn.Volume == nn.Volume {
					subject = nn.HostRange // only the host moved
				}
				diags = append(diags, &hcl.Diagnostic{
					Severity: hcl.DiagError,
					Summary:  "Data Location Changed",
					Detail: fmt.Sprintf("Node %q of cluster %q keeps its data in %s; this file moves it to %s. pacsd never moves or re-creates a node's data on its own. Put the previous location back; to move the data, stop pacsd, move it yourself, then change the file.",
						nn.Name, nc.Name, pn.Location(), nn.Location()),
					Subject: subject.Ptr(),
				})
			}
		}
	}
	return diags
}
