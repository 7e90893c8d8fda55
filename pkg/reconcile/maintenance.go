package reconcile

import (
	"fmt"
	"slices"
	"strings"

	"github.com/pacsd/pacsd/pkg/spec"
)

// The maintenance commands an operator asks for ('pacsd restart', 'pacsd
// reinit', 'pacsd failover'): which node goes next, whether it may, and
// which host's pacsd carries a command out with pacsd on every host. The
// functions of this file have no side effects; maintain.go carries their
// decisions out.

// RefusedError is the error of a maintenance command refused before it
// changed anything: the cluster is not healthy enough, or the node is not
// one the command can act on. It says why and what to do.
type RefusedError struct{ Why string }

func (e *RefusedError) Error() string { return e.Why }

func refused(format string, args ...any) error {
	return &RefusedError{Why: fmt.Sprintf(format, args...)}
}

// Here is where a maintenance command is carried out with pacsd on every
// host: the host of the pacsd that carries it out, and whether that pacsd
// holds the primary's lease for the acting primary (with automatic
// failover, a primary is stopped or started only under its lease). Nil
// with one controller, which drives every host's engine.
type Here struct {
	Host   string
	MayRun bool
}

// RestartQuery is what an operator asked of a restart.
type RestartQuery struct {
	// Whole is set when every node of the cluster is restarted: every node
	// must be healthy before each one is restarted, so that each one can be
	// seen back before the next.
	Whole bool
	// WasActing is the acting primary when the restart began: a restart of
	// several nodes stops when another node acts meanwhile (a failover).
	// "" checks nothing.
	WasActing string
	// Switchover hands the acting primary's role over to a standby that
	// qualifies (as 'pacsd switchover' does) instead of restarting it in
	// place: writes stop for a switchover's time, not a restart's.
	Switchover bool
	// AcceptCommitWait restarts a standby whose restart makes every commit
	// wait (synchronous replication, and no other standby streams).
	AcceptCommitWait bool
	// By says who asked, for the event history ("pacsd restart on HOST").
	By string
}

// RestartStep is how one node is restarted.
type RestartStep struct {
	Node string
	// Primary is set when Node is the acting primary.
	Primary bool
	// SwitchTo is the standby the primary's role is handed to (a restart
	// with Switchover); "" restarts Node in place.
	SwitchTo string
}

// RestartOrder returns the nodes asked for in the order a restart takes
// them: the standbys in the order of the file, then the acting primary,
// last, once every standby is back. Names the cluster does not declare are
// left out. It has no side effects.
func RestartOrder(c *spec.Cluster, acting string, asked []string) []string {
	var order []string
	for _, n := range c.Nodes {
		if n.Name != acting && slices.Contains(asked, n.Name) {
			order = append(order, n.Name)
		}
	}
	if c.Node(acting) != nil && slices.Contains(asked, acting) {
		order = append(order, acting)
	}
	return order
}

// RestartCheck decides how node of c is restarted now, from obs and the
// acting primary, or why it is not (a *RefusedError): the acting primary
// must take writes (a standby restarted beside a lost primary could not be
// seen back, and a lost primary is failover's, not restart's); with
// q.Whole, every standby must stream; a standby must run and be one (a
// node that takes writes beside the acting primary is fenced by a pass,
// not restarted); with synchronous replication, a standby that is the only
// one streaming is restarted only with q.AcceptCommitWait, since every
// commit waits while it is down; a primary switched over needs a standby
// that qualifies (SwitchoverTarget); with pacsd on every host (here), the
// node must be on here's host and a primary under its lease. It has no
// side effects.
func RestartCheck(c *spec.Cluster, obs *Observed, acting, node string, q RestartQuery, here *Here) (RestartStep, error) {
	n := c.Node(node)
	if n == nil {
		return RestartStep{}, refused("cluster %q has no node %q; name one of its nodes, or the cluster", c.Name, node)
	}
	if q.WasActing != "" && acting != q.WasActing {
		return RestartStep{}, refused("cluster %q: the acting primary changed from %q to %q since the restart began (a failover or a switchover); the restart stops here and restarts nothing more: see 'pacsd status' and 'pacsd events', then restart what is left by name", c.Name, q.WasActing, acting)
	}
	if here != nil && n.Host != here.Host {
		return RestartStep{}, refused("cluster %q, node %q: it runs on host %q, and only the pacsd of that host restarts it, not the pacsd of host %q", c.Name, node, n.Host, here.Host)
	}
	ns := nodeOf(obs, node)
	if ns.Unreachable != "" {
		return RestartStep{}, refused("cluster %q, node %q: its Docker engine does not answer (%s); nothing was restarted", c.Name, node, ns.Unreachable)
	}
	p := nodeOf(obs, acting)
	if p.DB == nil || p.DB.InRecovery {
		return RestartStep{}, refused("cluster %q: the acting primary %q does not take writes now (%s); pacsd restarts nothing while the cluster is not healthy: see 'pacsd status', let a pass repair it ('pacsd apply', or the daemon), or fail over ('pacsd failover NODE')", c.Name, acting, dbWhy(p))
	}
	if q.Whole {
		var sick []string
		for _, o := range c.Nodes {
			if o.Name == acting {
				continue
			}
			if os := nodeOf(obs, o.Name); !streams(os) {
				sick = append(sick, fmt.Sprintf("%q (%s)", o.Name, dbWhy(os)))
			}
		}
		if len(sick) > 0 {
			return RestartStep{}, refused("cluster %q: a restart of the whole cluster needs every standby streaming from %q first, so that each one restarted is seen back before the next, but %s does not; nothing more was restarted: let pacsd repair it first ('pacsd plan' says what a pass would do), or restart nodes one by one with 'pacsd restart NODE'", c.Name, acting, strings.Join(sick, ", "))
		}
	}
	if node == acting {
		if here != nil && c.Failover.Automatic && !here.MayRun {
			return RestartStep{}, refused("cluster %q, node %q: it is the acting primary, and this host's pacsd does not hold its lease in etcd, so it neither stops nor starts it: check that etcd answers from host %q", c.Name, node, here.Host)
		}
		if !q.Switchover {
			return RestartStep{Node: node, Primary: true}, nil
		}
		to := SwitchoverTarget(c, obs, acting)
		if to == "" {
			return RestartStep{}, refused("cluster %q, node %q: it is the acting primary, and no standby streams from it, so its role cannot be handed over; nothing was restarted: restart it in place (without --switchover: writes are refused while it restarts), or bring a standby back first", c.Name, node)
		}
		return RestartStep{Node: node, Primary: true, SwitchTo: to}, nil
	}
	switch {
	case ns.Container == nil:
		return RestartStep{}, refused("cluster %q, node %q: it has no container; a restart restarts a node that runs: 'pacsd apply' (or the daemon's next pass) creates it", c.Name, node)
	case !ns.Container.Running || ns.Container.Paused:
		return RestartStep{}, refused("cluster %q, node %q: its container is %s; a restart restarts a node that runs: 'pacsd apply' (or the daemon's next pass) starts it", c.Name, node, ns.Container.Status)
	case ns.DB != nil && !ns.DB.InRecovery:
		return RestartStep{}, refused("cluster %q, node %q: it takes writes although %q is the acting primary; a pass fences it ('pacsd apply', or the daemon), a restart does not", c.Name, node, acting)
	}
	if why := commitsWait(c, p, acting, node); why != "" && !q.AcceptCommitWait {
		return RestartStep{}, refused("cluster %q, node %q: %s while it restarts; nothing was restarted: bring another standby back first, or run 'pacsd restart %s --accept-commit-wait' to restart it anyway", c.Name, node, why, node)
	}
	return RestartStep{Node: node}, nil
}

// commitsWait says why every commit waits while node, a standby, is down,
// "" when none does: replication is synchronous, and node is the only
// standby streaming from the acting primary p (a commit is acknowledged
// once one standby has it).
func commitsWait(c *spec.Cluster, p *NodeState, acting, node string) string {
	if !c.Replication.Synchronous || p.DB == nil || !slices.Contains(p.DB.Streaming, node) {
		return ""
	}
	if others := slices.DeleteFunc(slices.Clone(p.DB.Streaming), func(s string) bool { return s == node || c.Node(s) == nil }); len(others) > 0 {
		return ""
	}
	return fmt.Sprintf("replication is synchronous, so a commit waits until a standby has it, and %q is the only standby streaming from %q: every commit waits (none is lost, none is acknowledged)", node, acting)
}

// SwitchoverTarget chooses the standby that takes the acting primary's role
// in a restart with switchover: one that streams from the acting primary;
// of those the file's primary (so that what runs matches the file again),
// else, with synchronous replication, one the primary waits for, else the
// one that replayed the most WAL, else the first declared. "" when none
// streams. The switchover itself makes sure the target has everything the
// old primary wrote before it is promoted. It has no side effects.
func SwitchoverTarget(c *spec.Cluster, obs *Observed, acting string) string {
	p := nodeOf(obs, acting)
	// rank orders the candidates: the file's primary, then one the
	// primary waits for, then the most WAL replayed.
	rank := func(name string) []uint64 {
		r := make([]uint64, 3)
		if name == c.Primary {
			r[0] = 1
		}
		if c.Replication.Synchronous && p.DB != nil && slices.Contains(p.DB.SyncStandbys, name) {
			r[1] = 1
		}
		r[2] = received(nodeOf(obs, name).DB)
		return r
	}
	best := ""
	for _, n := range c.Nodes {
		if n.Name == acting || !streams(nodeOf(obs, n.Name)) {
			continue
		}
		if best == "" || slices.Compare(rank(n.Name), rank(best)) > 0 {
			best = n.Name
		}
	}
	return best
}

// streams reports whether a node is a standby whose WAL receiver streams.
func streams(ns *NodeState) bool {
	return ns.Unreachable == "" && ns.Container != nil && ns.Container.Running && ns.DB != nil && ns.DB.InRecovery && ns.DB.Receiver == "streaming"
}

// nodeOf returns what obs saw of node; an empty state when nothing was.
func nodeOf(obs *Observed, node string) *NodeState {
	if ns := obs.Nodes[node]; ns != nil {
		return ns
	}
	return &NodeState{}
}

// ReinitCheck decides whether node of c may be rebuilt now ('pacsd
// reinit': its data moved aside, a fresh base backup from the acting
// primary), or why not (a *RefusedError): never the acting primary (its
// data is the cluster's), never a node that takes writes, and only while
// the acting primary takes writes (it is the source) and what the node's
// data location holds is known, on the location the file names; with
// synchronous replication, the only standby streaming only with
// acceptCommitWait (every commit waits until it is rebuilt). With pacsd on
// every host (here), only the pacsd of the node's host rebuilds it. It has
// no side effects.
func ReinitCheck(c *spec.Cluster, obs *Observed, acting, node string, acceptCommitWait bool, here *Here) error {
	n := c.Node(node)
	if n == nil {
		return refused("cluster %q has no node %q; name one of its standbys", c.Name, node)
	}
	if node == acting {
		other := "NODE"
		for _, o := range c.Nodes {
			if o.Name != acting {
				other = o.Name
				break
			}
		}
		return refused("cluster %q, node %q: it is the acting primary; reinit rebuilds a standby from the primary and never touches the primary's data; nothing was changed: hand its role over first ('pacsd switchover %s', or 'pacsd restart %s --switchover'), then 'pacsd reinit %s'", c.Name, node, other, node, node)
	}
	if here != nil && n.Host != here.Host {
		return refused("cluster %q, node %q: it runs on host %q, and only the pacsd of that host rebuilds it, not the pacsd of host %q", c.Name, node, n.Host, here.Host)
	}
	ns := nodeOf(obs, node)
	if ns.Unreachable != "" {
		return refused("cluster %q, node %q: its Docker engine does not answer (%s); nothing was changed", c.Name, node, ns.Unreachable)
	}
	p := nodeOf(obs, acting)
	if p.DB == nil || p.DB.InRecovery {
		return refused("cluster %q, node %q: the fresh base backup is taken from the acting primary %q, which does not take writes now (%s); nothing was changed: bring the primary back, or fail over, first", c.Name, node, acting, dbWhy(p))
	}
	if why := commitsWait(c, p, acting, node); why != "" && !acceptCommitWait {
		return refused("cluster %q, node %q: %s until it is rebuilt and streams again (for as long as its base backup takes); nothing was changed: bring another standby back first, or run 'pacsd reinit %s --accept-commit-wait' to rebuild it anyway", c.Name, node, why, node)
	}
	if ns.DB != nil && !ns.DB.InRecovery {
		return refused("cluster %q, node %q: it takes writes although %q is the acting primary, so its data may hold writes no other node has; nothing was changed: a pass fences it ('pacsd apply', or the daemon), then look at its data before you rebuild it", c.Name, node, acting)
	}
	if ns.Data.Unknown {
		return refused("cluster %q, node %q: what %s holds could not be inspected; nothing was changed: make its Docker engine answer, then try again", c.Name, node, n.Location())
	}
	want := Mount{Volume: n.Volume, HostDir: n.Data}
	if ct := ns.Container; ct != nil && ct.Mount != nil && !sameMount(*ct.Mount, want) {
		return refused("cluster %q, node %q: its container holds the node's data on %s but the file names %s; nothing was changed: 'pacsd plan' says how to go on", c.Name, node, ct.Mount.describe(), want.describe())
	}
	return nil
}

// Commands carried out by one host's pacsd, with pacsd on every host.
const (
	CommandRestart  = "restart"
	CommandReinit   = "reinit"
	CommandFailover = "failover"
)

// RequestHost decides which host's pacsd carries out a maintenance command
// on node of c with pacsd on every host, where each pacsd drives its own
// host's engine only: a restart or a rebuild, the node's host; a failover
// (the acting primary, acting, is lost), the host that can fence the old
// primary: the holder of the primary's lease (leaseHost), else the old
// primary's own host while its pacsd reports; else, with automatic
// failover, the leader (leader is true), which takes an expired lease as
// the fence, as the automatic failover does. reporting holds the hosts
// whose pacsd reports to etcd now. An error (a *RefusedError) says why no
// pacsd can. It has no side effects.
func RequestHost(c *spec.Cluster, command, node, acting, leaseHost string, reporting map[string]bool) (host string, leader bool, err error) {
	n := c.Node(node)
	if n == nil {
		return "", false, refused("cluster %q has no node %q", c.Name, node)
	}
	switch command {
	case CommandRestart, CommandReinit:
		if !reporting[n.Host] {
			return "", false, refused("cluster %q, node %q: no pacsd of host %q reports to etcd (it does not run there, or does not reach etcd), and only that pacsd can %s the node; nothing was done: start it there ('systemctl start pacsd'), then try again", c.Name, node, n.Host, command)
		}
		return n.Host, false, nil
	case CommandFailover:
		old := c.Node(acting)
		switch {
		case old == nil:
			return "", false, refused("cluster %q: the acting primary %q is not declared in the file", c.Name, acting)
		case leaseHost != "":
			return leaseHost, false, nil
		case reporting[old.Host]:
			return old.Host, false, nil
		case c.Failover.Automatic:
			return "", true, nil
		}
		return "", false, refused("cluster %q: the acting primary %q runs on host %q, whose pacsd does not report to etcd; with failover.automatic = false no lease bounds how long that primary may still take writes, and only the pacsd of its host can fence it; nothing was done: start pacsd on host %q ('systemctl start pacsd'), then try again", c.Name, acting, old.Host, old.Host)
	}
	return "", false, refused("unknown command %q", command)
}
