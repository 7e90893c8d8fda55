package reconcile

import (
	"cmp"
	"fmt"
	"path"

	"github.com/pacsd/pacsd/pkg/pgconf"
	"github.com/pacsd/pacsd/pkg/spec"
)

// planStandby plans a standby: its data (a base backup when empty), its
// container and its files.
func (p *planner) planStandby(n *spec.Node, ns *NodeState) {
	c := p.c
	want := ContainerSpecFor(c, n, false)
	if a := ns.Data.BuildAttempts; a >= MaxBuildAttempts && (ns.Data.Partial || ns.Data.Major == 0) {
		// Never a loop of builds, each leaving a copy of partial data aside.
		p.warn(n.Name, "Base Backup Failed Repeatedly", fmt.Sprintf(
			"%d base backups of the node into %s began and did not finish; pacsd builds it no more, so that partial copies do not fill the disk: find the cause in pacsd's log (disk space, the network, the primary's slot or pg_hba.conf), "+
				"then remove %s from that location (for example: docker run --rm -v %s:%s --entrypoint rm %s %s) and pacsd builds it again",
			a, n.Location(), path.Base(BuildAttemptsPath), cmp.Or(n.Data, n.Volume), DataMount, c.Image, BuildAttemptsPath))
		return
	}
	if p.primaryUnseen && (ns.Data.Major == 0 || ns.Data.Partial || ns.Container != nil && !ns.Container.Running && ns.Data.Control != nil && ns.Data.Control.WasPrimary()) {
		p.warn(n.Name, "Standby Waits for the Primary", fmt.Sprintf("node %q needs a base backup or a rewind from the acting primary %q, whose Docker engine does not answer; it is built when that engine answers again", n.Name, p.acting))
		return
	}
	ns = p.planMoveAside(n, ns, want.Mount)
	if ns.Container != nil && !ns.Container.Running && ns.Data.Control != nil && ns.Data.Control.WasPrimary() && ns.Data.Major != 0 {
		p.planRejoin(n, ns, want)
		return
	}
	if p.diverged(ns) {
		p.add(Action{Kind: Fence, Class: ClassRebuild, Node: n.Name, Target: n.Container, phase: phaseStopDiverged,
			Reason: fmt.Sprintf("it does not stream (WAL receiver %q) and reports timeline %d, behind the acting primary's %d: it is stopped, rewound (pg_rewind changes nothing when it has not gone past the fork) and started to follow", ns.DB.Receiver, ns.DB.Timeline, p.node(p.acting).DB.Timeline)})
		p.planRejoin(n, ns, want)
		return
	}
	if ns.Data.Major == 0 {
		if ns.Container != nil {
			p.add(Action{Kind: RemoveContainer, Class: ClassRebuild, Node: n.Name, Target: ns.Container.Name, Reason: "its data is empty", phase: phaseSwitch})
		}
		p.add(Action{Kind: BaseBackup, Class: ClassRebuild, Node: n.Name, Target: n.Location(), Mount: want.Mount,
			Reason: "the standby has no data", Backup: p.backupSpec(n, c.Replication.User, SecretsDir+"/replication.pgpass", pgconf.Passfile(c))})
		p.add(Action{Kind: CreateContainer, Node: n.Name, Target: want.Name, Container: &want, Reason: "the node has no container", phase: phaseStandbys})
		p.add(Action{Kind: StartContainer, Node: n.Name, Target: want.Name, Reason: "the container was created", phase: phaseStandbys})
		return
	}
	p.planContainer(n, ns, false, phaseStandbys)
	if ns.Container != nil && ns.Container.Running {
		p.planOverrides(n, ns)
	}
}

// backupSpec says how a one-off container reaches the acting primary as user
// (with a passfile placed at passfilePath) and which of pacsd's files it puts
// into PGDATA when it is done, standby.signal among them.
func (p *planner) backupSpec(n *spec.Node, user, passfilePath string, passfile []byte) *BackupSpec {
	host, port := Reach(p.c, n.Name, p.acting)
	return &BackupSpec{Image: p.c.Image, Network: p.c.Network, Host: host, Port: port,
		User: user, Slot: pgconf.SlotName(p.c.Name, n.Name), Files: append(pacsdFiles(NodeFiles(p.c, n.Name, p.acting), true), certFiles(p.c, n, p.obs.CA, PGDATA)...),
		Passfile: FileWrite{Path: passfilePath, Content: passfile, Mode: 0o600, Secret: true},
		RootCA:   FileWrite{Path: SecretsDir + "/" + pgconf.RootCertFile, Content: p.obs.CA, Mode: 0o600}}
}

// planRejoin rewinds a stopped node's data to follow the acting primary,
// gives it a standby's aliases and starts it; the rewind puts pacsd's files
// and standby.signal in place first.
func (p *planner) planRejoin(n *spec.Node, ns *NodeState, want ContainerSpec) {
	p.planRewind(n, ns, want.Mount)
	p.planAliases(n, ns.Container, want.Aliases, phaseRebuild)
	p.add(Action{Kind: StartContainer, Class: ClassRebuild, Node: n.Name, Target: ns.Container.Name, Reason: "it rejoins as a standby", phase: phaseStandbys})
}

// diverged reports a running standby that may not follow the acting primary:
// it does not stream and reports an older timeline. It may have replayed
// past the point where the acting primary's timeline forked, or its WAL
// receiver may not make the switch (a connection that still holds its slot
// on the new primary was seen under load). What a standby without a WAL
// receiver reports as its timeline can lag (its last restartpoint's), so it
// is not compared with the timeline history: the standby is stopped and
// rewound, which changes nothing when nothing diverged, and started again.
func (p *planner) diverged(ns *NodeState) bool {
	a := p.node(p.acting).DB
	return ns.Container != nil && ns.Container.Running && ns.DB != nil && ns.DB.InRecovery &&
		ns.DB.Receiver != "streaming" && a != nil && !a.InRecovery && ns.DB.Timeline > 0 && ns.DB.Timeline < a.Timeline
}

// planRewind makes a former primary's data follow the acting primary with
// pg_rewind, as the superuser. When the rewind fails, its marker stays and
// the next pass moves the data aside and builds the standby again.
func (p *planner) planRewind(n *spec.Node, ns *NodeState, m Mount) {
	c := p.c
	pass := pgconf.SuperuserPassfile(c)
	p.add(Action{Kind: Rewind, Class: ClassRebuild, Node: n.Name, Target: n.Location(), Mount: m, phase: phaseRebuild,
		Reason: fmt.Sprintf("its data went its own way (%s); it is rewound to follow %q", rewindWhy(ns), p.acting),
		Backup: p.backupSpec(n, c.Superuser.Name, SecretsDir+"/superuser.pgpass", pass)})
}

func rewindWhy(ns *NodeState) string {
	if ctl := ns.Data.Control; ctl != nil && ctl.WasPrimary() {
		return fmt.Sprintf("last run as a primary: %s, timeline %d", ctl.State, ctl.Timeline)
	}
	if ns.DB != nil {
		return fmt.Sprintf("a standby on timeline %d that cannot follow", ns.DB.Timeline)
	}
	return "it cannot follow"
}

// MaxBuildAttempts is how many base backups of one node may begin and not
// finish before pacsd stops building it (see BuildAttemptsPath).
const MaxBuildAttempts = 3
