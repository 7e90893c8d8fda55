package reconcile

import (
	"fmt"
	"maps"
	"sort"
	"strconv"
	"strings"

	"github.com/pacsd/pacsd/pkg/spec"
)

// Problem is something Plan refuses to act on, such as a name clash with an
// object pacsd does not own. It says what is wrong, where, and what to do.
type Problem struct {
	Cluster, Node string
	Summary       string
	Detail        string
	// Warning marks a problem that does not stop Apply, such as the spec's
	// primary differing from the acting one after a failover.
	Warning bool
	// NodeOnly marks a problem that keeps Apply off Node only (its host's
	// engine does not answer): Plan plans nothing for that node, Apply
	// carries out the rest and then fails with the problem.
	NodeOnly bool
}

// Error returns the problem as one sentence naming cluster and node.
func (p Problem) Error() string {
	where := "cluster " + strconv.Quote(p.Cluster)
	if p.Node != "" {
		where += ", node " + strconv.Quote(p.Node)
	}
	return fmt.Sprintf("%s: %s: %s", where, p.Summary, p.Detail)
}

// PasswordChecker reports whether a stored SCRAM verifier was made from
// password. It must be pure; pkg/postgres provides VerifierMatches.
type PasswordChecker func(verifier string, password string) bool

// runPhase orders actions: Apply runs them phase by phase, in this order;
// within a phase, in the order Plan added them.
type runPhase int

// The phases; 0 is not one: Plan.add gives an action without a phase its
// kind's (phases).
const (
	// phaseFence stops a node that runs as a second primary before
	// anything else happens.
	phaseFence runPhase = iota + 1
	phaseNetwork
	phaseImage
	// phaseSwitch: a switchover, data moved aside, containers on empty or
	// partial data removed, standby.signal for a stopped old primary.
	phaseSwitch
	// phasePrimary: a promotion, the primary's container, its superuser.
	phasePrimary
	// phaseCerts: a running node's new TLS certificate, and its reload,
	// before any SQL on it.
	phaseCerts
	// phaseFiles: pacsd's files, ALTER SYSTEM overrides reset, slots.
	phaseFiles
	// phaseReload comes before any slow step, so that repointed standbys
	// follow at once.
	phaseReload
	phaseRoles
	// phaseStopDiverged stops a standby that must be rewound.
	phaseStopDiverged
	// phaseRebuild: base backups, rewinds, a rejoining node's aliases.
	phaseRebuild
	// phaseStandbys: the standbys' containers, and every node's aliases.
	phaseStandbys
	// Restarts: standbys before the primary, unless the change lowers a
	// parameter a standby must not run lower than its primary
	// (hotStandbyParams): then the primary first.
	phaseRestartPrimaryFirst
	phaseRestartStandbys
	phaseRestartPrimary
)

// majorDiffers says how the PostgreSQL major version of the cluster's
// image differs between hosts (major: by host, 0 or absent when not
// known), "" when it does not.
func majorDiffers(c *spec.Cluster, major map[string]int) string {
	first := ""
	for _, host := range c.Hosts() {
		switch m := major[host]; {
		case m == 0:
		case first == "":
			first = host
		case m != major[first]:
			return fmt.Sprintf("image %s runs PostgreSQL %d on %s but PostgreSQL %d on %s; a standby replicates only from a primary of the same major version: give the image the same content on every host (remove it where it differs, and pacsd pulls or you load the right one)", c.Image, major[first], engineName(first), m, engineName(host))
		}
	}
	return ""
}

// phases is the phase of each kind of action, unless Plan says otherwise.
var phases = map[Kind]runPhase{
	Fence: phaseFence, CreateNetwork: phaseNetwork, PullImage: phaseImage, Switchover: phaseSwitch, MoveAside: phaseSwitch, Promote: phasePrimary,
	WriteFile: phaseFiles, ResetSetting: phaseFiles, CreateSlot: phaseFiles, Reload: phaseReload, SetRole: phaseRoles, DropRole: phaseRoles,
	BaseBackup: phaseRebuild, Rewind: phaseRebuild, SetAliases: phaseStandbys,
	Restart: phaseRestartStandbys,
}

// Plan returns the ordered actions that bring cluster c from what obs saw to
// what the spec says, and the problems that keep it from acting on some
// objects. It has no side effects: same inputs, same plan.
//
// Only objects pacsd owns (by label) are ever changed; a clash is a Problem.
// Roles the spec does not declare are ignored; a role is dropped only when it
// is declared with ensure = "absent".
func Plan(c *spec.Cluster, obs *Observed, matches PasswordChecker) ([]Action, []Problem) {
	p := &planner{c: c, obs: obs, matches: matches, nodes: maps.Clone(obs.Nodes)}
	p.plan()
	sort.SliceStable(p.actions, func(i, j int) bool { return p.actions[i].phase < p.actions[j].phase })
	return p.actions, p.problems
}

type planner struct {
	c      *spec.Cluster
	obs    *Observed
	acting string // the node that is the primary now
	// state is the cluster's state as it acts on it (CurrentState): the
	// record, or one rebuilt from the nodes.
	state ClusterState
	// primaryUnseen is set while the acting primary's engine does not
	// answer: nothing that needs the primary is planned.
	primaryUnseen bool
	// nodes starts as obs.Nodes; the plan replaces entries (never edits
	// them) where an earlier action changes what later ones must assume.
	nodes    map[string]*NodeState
	matches  PasswordChecker
	actions  []Action
	problems []Problem
}

func (p *planner) add(a Action) {
	a.Cluster = p.c.Name
	if a.phase == 0 {
		a.phase = phases[a.Kind]
	}
	p.actions = append(p.actions, a)
}

func (p *planner) problem(node, summary, detail string) {
	p.problems = append(p.problems, Problem{Cluster: p.c.Name, Node: node, Summary: summary, Detail: detail})
}

// nodeProblem is a problem that keeps Apply off node only (see
// Problem.NodeOnly).
func (p *planner) nodeProblem(node, summary, detail string) {
	p.problems = append(p.problems, Problem{Cluster: p.c.Name, Node: node, Summary: summary, Detail: detail, NodeOnly: true})
}

func (p *planner) warn(node, summary, detail string) {
	p.problems = append(p.problems, Problem{Cluster: p.c.Name, Node: node, Summary: summary, Detail: detail, Warning: true})
}

func (p *planner) node(name string) *NodeState {
	if ns := p.nodes[name]; ns != nil {
		return ns
	}
	return &NodeState{}
}

func (p *planner) plan() {
	c := p.c
	// The PostgreSQL major version of the image on each host's engine (the
	// tag's when the engine does not say, or has no image yet).
	major := map[string]int{}
	blocked := map[string]bool{}
	for _, host := range p.c.Hosts() {
		e := p.obs.Engine(host)
		on := ""
		if c.SpansHosts() {
			on = " on " + engineName(host)
		}
		switch {
		case e.Unreachable != "":
			for _, n := range c.Nodes {
				if n.Host == host {
					blocked[n.Name] = true
				}
			}
			continue
		case e.Network == nil:
			p.add(Action{Kind: CreateNetwork, Host: host, Target: c.Network, Reason: "the cluster network does not exist" + on})
		case !e.Network.Owned:
			p.problem("", "Network Not Owned", fmt.Sprintf("a network named %q exists%s but pacsd did not create it; remove or rename it, or set network in the cluster block", c.Network, on))
			return
		}
		if v := e.Image.HidingVolume(); v != "" {
			p.problem("", "Image Hides The Data", hidingVolumeProblem(c, on, v))
			return
		}
		major[host] = c.ImageMajor
		if e.Image == nil {
			p.add(Action{Kind: PullImage, Host: host, Target: c.Image, Reason: "the image is not on the engine" + on})
		} else if e.Image.Major != 0 {
			major[host] = e.Image.Major
		}
	}
	if d := majorDiffers(c, major); d != "" {
		p.problem("", "Image Differs Between Hosts", d)
		return
	}
	for _, n := range c.Nodes {
		ns := p.node(n.Name)
		// A container of the node on the engine the file names is the node
		// (a host block renamed or respelled), unless the engines' IDs
		// are known and differ: then it is a stale copy.
		id := p.obs.Engine(n.Host).ID
		if where := moved(p.obs.State, n, id); where != "" && ns.Unreachable == "" && (ns.Container == nil || !ns.Container.Owned || otherEngine(p.obs.State.Placed[n.Name], id)) {
			p.problem(n.Name, "Node Moved", fmt.Sprintf("node %q was last seen on %s, where its container (perhaps a primary) and its data may still be, but the file now puts it on %s; pacsd never runs a node away from its data: put its host back in the file; to move it, switch over to another node first if it is the primary, remove it from the file and apply (pacsd forgets where it ran), remove its container on the old host, then declare it on the new one (it is built again as a standby); if it never moved (its engine was reinstalled and says another ID), stop pacsd and remove the node's entry under \"placed\" in cluster-%s.json in daemon.state_dir", n.Name, where, engineName(n.Host), p.c.Name))
			blocked[n.Name] = true
			continue
		}
		if ns.Unreachable != "" {
			blocked[n.Name] = true
			p.nodeProblem(n.Name, "Engine Unreachable", fmt.Sprintf("%s could not be asked about node %q (%s); pacsd acts on the nodes of the other hosts and leaves this one alone until its engine answers: check that the host is up and its engine reachable from this machine", engineName(n.Host), n.Name, ns.Unreachable))
		}
	}

	cur, err := CurrentState(c, p.obs.State, p.obs)
	if err != nil {
		p.problem("", "Acting Primary Unknown", err.Error())
		return
	}
	p.state = cur
	acting := cur.Acting
	if p.obs.State.Acting == "" && p.anyContainer() {
		damaged, keep := "", ""
		if p.obs.RecordError != "" {
			damaged = " (its record is damaged: " + p.obs.RecordError + ")"
		}
		if cur.Keep != "" {
			keep = fmt.Sprintf("; the file's %q is kept from starting a switchover back", cur.Keep)
		}
		p.warn("", "Record Rebuilt", fmt.Sprintf("pacsd keeps no record of the acting primary%s; the nodes name %q as the acting primary: the next apply records it, epoch %d%s", damaged, acting, cur.Epoch, keep))
	}
	if c.Node(acting) == nil {
		p.problem(acting, "Acting Primary Not Declared", fmt.Sprintf("node %q is the acting primary (epoch %d) but the file no longer declares it; declare it again, or switch over to a declared node first", acting, p.state.Epoch))
		return
	}
	p.acting = acting
	for _, n := range c.Nodes {
		ns := p.node(n.Name)
		if ns.Container != nil && !ns.Container.Owned {
			p.problem(n.Name, "Container Not Owned", fmt.Sprintf("a container named %q exists but pacsd did not create it for this node; if it is the node's PostgreSQL, set up by hand (the image's README), take it over with 'pacsd adopt' (its data kept, nothing deleted); otherwise remove or rename it, or set container_name", n.Container))
			blocked[n.Name] = true
			continue
		}
		if ns.Data.Unadopted {
			p.problem(n.Name, "Data Not Adopted", fmt.Sprintf("%s holds PostgreSQL data in the layout of a container set up by hand (PG_VERSION directly in it), or a move into pacsd's layout that 'pacsd adopt' began; pacsd neither starts nor builds a node on it: run 'pacsd adopt' to finish taking it over", n.Location()))
			blocked[n.Name] = true
			continue
		}
		if len(ns.Strays) > 0 {
			p.problem(n.Name, "Container Renamed", fmt.Sprintf("container %s is labelled as node %q's own but the file names the node's container %q (renamed by hand, or container_name edited); pacsd never runs a second container on a node's data: stop it and rename it back ('docker rename %s %s'), or remove it if it is not needed ('docker rm')", strings.Join(quoteAll(ns.Strays), ", "), n.Name, n.Container, ns.Strays[0], n.Container))
			blocked[n.Name] = true
			continue
		}
		if m := major[n.Host]; m != 0 && ns.Data.Major != 0 && ns.Data.Major != m {
			p.problem(n.Name, "PostgreSQL Version Mismatch", fmt.Sprintf("the data in %s was made by PostgreSQL %d but image %s runs PostgreSQL %d there; upgrade the data with pg_upgrade or use an image of version %d", n.Location(), ns.Data.Major, c.Image, m, ns.Data.Major))
			blocked[n.Name] = true
		}
	}
	p.checkDataLocations(acting, blocked)
	if blocked[acting] {
		if p.node(acting).Unreachable != "" {
			p.planWithoutPrimary(blocked)
		}
		return
	}
	// Never two primaries: a node other than the acting primary that accepts
	// writes is stopped before anything else happens.
	for _, n := range c.Nodes {
		ns := p.node(n.Name)
		if n.Name == acting || ns.DB == nil || ns.DB.InRecovery {
			continue
		}
		p.add(Action{Kind: Fence, Class: ClassRestart, Node: n.Name, Target: n.Container,
			Reason: fmt.Sprintf("it runs as a primary but %q is the acting primary; it is stopped, then rejoins as a standby", acting)})
		fenced := *ns
		ct := *ns.Container
		ct.Running, ct.Status, ct.Addr = false, "exited", ""
		fenced.Container, fenced.DB = &ct, nil
		if fenced.Data.Control == nil || !fenced.Data.Control.WasPrimary() {
			fenced.Data.Control = &Control{State: DBShutdowned}
		}
		p.nodes[n.Name] = &fenced
	}
	if c.Primary != acting && c.Primary != p.state.Keep {
		p.planSwitchover(acting, c.Primary)
		return
	}
	if c.Primary != acting {
		p.warn(acting, "Primary Differs From Spec", fmt.Sprintf("the file names %q as primary but %q acts as primary since epoch %d (a failover or a switchover by command); pacsd never switches back by itself: edit primary to %q, or run 'pacsd switchover %s'", c.Primary, acting, p.state.Epoch, acting, c.Primary))
	}

	primary := c.Node(acting)
	standbys := []*spec.Node{}
	for _, n := range c.Nodes {
		if n.Name != acting {
			standbys = append(standbys, n)
		}
	}
	pState := p.node(primary.Name)
	if pState.DB != nil && pState.DB.InRecovery {
		p.planPromote(primary, pState)
		pState = p.node(primary.Name)
	}
	down := pState.Container != nil && pState.Container.Owned && (!pState.Container.Running || pState.Container.Paused)
	if c.Failover.Automatic && down && p.standbyRuns(acting) {
		verb := "start"
		if pState.Container.Paused {
			verb = "unpause"
		}
		p.warn(primary.Name, "Primary Down", fmt.Sprintf("the primary's container %q is %s; with automatic failover pacsd's daemon fails over or, when no standby qualifies, says why; %s it by hand ('docker %s %s') only when no standby has been promoted", primary.Container, pState.Container.Status, verb, verb, primary.Container))
		return
	}
	if down && pState.Container.Paused {
		// Whatever pacsd asked of a frozen server would hang until it timed out.
		p.warn(primary.Name, "Primary Paused", fmt.Sprintf("the primary's container %q is paused; pacsd does not act on the cluster while its primary is frozen: unpause it ('docker unpause %s')", primary.Container, primary.Container))
		return
	}
	p.planContainer(primary, pState, true, phasePrimary)
	p.planDatabase(primary, pState, standbys)
	for _, n := range standbys {
		if !blocked[n.Name] {
			p.planStandby(n, p.node(n.Name))
		}
	}
}

// planWithoutPrimary plans the standbys that can be reached while the acting
// primary's engine does not answer: their containers, files and settings are
// kept as the spec says, pointing at the acting primary. Nothing that needs
// the primary (a base backup, a rewind, a switchover) and nothing that could
// make a second primary (a promotion, a fence of a writable node) is planned:
// whether the primary still takes writes cannot be seen.
func (p *planner) planWithoutPrimary(blocked map[string]bool) {
	p.primaryUnseen = true
	if p.c.Primary != p.acting && p.c.Primary != p.state.Keep {
		p.warn(p.c.Primary, "Switchover Waits", fmt.Sprintf("the file names %q as primary, but the acting primary %q cannot be asked (%s); the switchover waits until its engine answers", p.c.Primary, p.acting, dbWhy(p.node(p.acting))))
	}
	for _, n := range p.c.Nodes {
		if n.Name == p.acting || blocked[n.Name] {
			continue
		}
		if ns := p.node(n.Name); ns.DB != nil && !ns.DB.InRecovery {
			p.problem(n.Name, "Second Primary Unconfirmed", fmt.Sprintf("node %q accepts writes while the acting primary %q cannot be asked (%s); pacsd neither stops nor follows it until the acting primary's engine answers: if %q was promoted by hand, record it with 'pacsd failover %s --confirm-fenced'", n.Name, p.acting, dbWhy(p.node(p.acting)), n.Name, n.Name))
			return
		}
	}
	for _, n := range p.c.Nodes {
		if n.Name != p.acting && !blocked[n.Name] {
			p.planStandby(n, p.node(n.Name))
		}
	}
}

// anyContainer reports whether a node of the cluster has a container.
func (p *planner) anyContainer() bool {
	for _, n := range p.c.Nodes {
		if p.node(n.Name).Container != nil {
			return true
		}
	}
	return false
}
