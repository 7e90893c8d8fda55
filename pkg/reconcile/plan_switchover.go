package reconcile

import (
	"fmt"
	"strconv"

	"github.com/pacsd/pacsd/pkg/spec"
)

// standbyRuns reports whether a node other than acting has a running
// container. When none has (an engine or host restart stopped everything),
// there is nothing to fail over to and the acting primary is started again.
func (p *planner) standbyRuns(acting string) bool {
	for _, n := range p.c.Nodes {
		if ns := p.node(n.Name); n.Name != acting && ns.Container != nil && ns.Container.Running {
			return true
		}
	}
	return false
}

// planSwitchover plans a switchover from the acting primary to the node the
// spec names, when that node can take over: it streams from the primary.
func (p *planner) planSwitchover(from, to string) {
	target := p.node(to)
	cur := p.node(from)
	switch {
	case cur.DB == nil || cur.DB.InRecovery:
		p.problem(to, "Switchover Not Possible", fmt.Sprintf("the file names %q as primary, but the acting primary %q does not accept writes now (%s); pacsd does not switch over without it; bring it back, or let automatic failover act", to, from, dbWhy(cur)))
	case target.DB == nil || !target.DB.InRecovery || target.DB.Receiver != "streaming":
		p.problem(to, "Switchover Not Possible", fmt.Sprintf("the file names %q as primary, but it is not a standby streaming from %q (%s); wait until it streams (pacsd plan shows why), or edit primary back to %q", to, from, dbWhy(target), from))
	default:
		p.add(Action{Kind: Switchover, Class: ClassSwitchover, Node: to, From: from, Target: from + " -> " + to,
			Reason: "the file names " + to + " as primary"})
	}
}

// dbWhy says in a few words what is known of a node's server.
func dbWhy(ns *NodeState) string {
	switch {
	case ns.Unreachable != "":
		return "its Docker engine does not answer: " + ns.Unreachable
	case ns.Container == nil:
		return "it has no container"
	case !ns.Container.Running:
		return "its container is " + ns.Container.Status
	case ns.DB == nil && ns.DBError != "":
		return "its server does not answer: " + ns.DBError
	case ns.DB == nil:
		return "its server does not answer"
	case ns.DB.InRecovery:
		return "it is in recovery, WAL receiver " + strconv.Quote(ns.DB.Receiver)
	}
	return "it accepts writes"
}

// summaryPrimaryInRecovery is the problem of an acting primary in recovery
// that planPromote may not promote.
const summaryPrimaryInRecovery = "Primary In Recovery"

// planPromote promotes the acting primary when it is still in recovery (pacsd
// stopped between recording it and promoting it), but only when no other node
// could be a primary: each is confirmed a standby or not running.
func (p *planner) planPromote(primary *spec.Node, ns *NodeState) {
	for _, n := range p.c.Nodes {
		if n.Name == primary.Name {
			continue
		}
		o := p.node(n.Name)
		if o.Container != nil && !o.Container.Running && o.Files != nil && !o.Files.StandbySignal && o.Data.Control != nil && o.Data.Control.WasPrimary() {
			// A stopped former primary without standby.signal (a fence that
			// could not place it) gets it before anything is promoted.
			p.add(Action{Kind: WriteFile, Node: n.Name, Target: SignalPath, phase: phaseSwitch, File: &FileWrite{Path: SignalPath, Content: []byte{}, Mode: 0o600},
				Reason: "it last ran as a primary and has no standby.signal; a start would bring it back writable beside the acting primary"})
		}
		// An old primary whose engine does not answer counts only when an
		// operator confirmed it stopped ('pacsd failover --confirm-fenced').
		confirmed := o.Unreachable != "" && n.Name == p.state.Confirmed ||
			o.Unreachable == "" && len(o.Strays) == 0 && (o.Container == nil || !o.Container.Running || (o.DB != nil && o.DB.InRecovery))
		if !confirmed {
			p.problem(primary.Name, summaryPrimaryInRecovery, fmt.Sprintf("%q is the acting primary but in recovery, and node %q cannot be confirmed a standby or stopped (%s); pacsd does not promote while another node might accept writes", primary.Name, n.Name, dbWhy(o)))
			return
		}
	}
	p.add(Action{Kind: Promote, Class: ClassSwitchover, Node: primary.Name, Target: primary.Container,
		Reason: fmt.Sprintf("it is the acting primary (epoch %d) but still in recovery; every other node is a standby or stopped", p.state.Epoch)})
	db := *ns.DB
	db.InRecovery = false
	promoted := *ns
	promoted.DB = &db
	p.nodes[primary.Name] = &promoted
}
