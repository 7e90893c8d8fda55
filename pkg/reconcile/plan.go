package reconcile

import (
	"bytes"
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"maps"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/pacsd/pacsd/pkg/pgconf"
	"github.com/pacsd/pacsd/pkg/spec"
)

// MaxBuildAttempts is how many base backups of one node may begin and not
// finish before pacsd stops building it (see BuildAttemptsPath).
const MaxBuildAttempts = 3

// Problem is something Plan refuses to act on, such as a name clash with an
// object pacsd does not own. It says what is wrong, where, and what to do.
type Problem struct {
	Cluster, Node string
	Summary       string
	Detail        string
	// Warning marks a problem that does not stop Apply, such as the spec's
	// primary differing from the acting one after a failover.
	Warning bool
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

// Paths of pacsd's files in PGDATA.
const (
	HBAPath      = PGDATA + "/pg_hba.conf"
	ParamsPath   = PGDATA + "/pacsd.conf"
	ConfPath     = PGDATA + "/postgresql.conf"
	SignalPath   = PGDATA + "/standby.signal"
	PassfilePath = PGDATA + "/pacsd.pgpass"
	VersionPath  = PGDATA + "/PG_VERSION"
	// superuserPasswordPath is where POSTGRES_PASSWORD_FILE points.
	superuserPasswordPath = SecretsDir + "/superuser.password"
	initScriptPath        = "/docker-entrypoint-initdb.d/00-pacsd.sh"
	initFilesDir          = SecretsDir + "/init"
)

// phases orders actions: Apply runs them in this order.
var phases = map[Kind]int{
	Fence: 0, CreateNetwork: 1, PullImage: 2, Switchover: 3, MoveAside: 3, Promote: 4,
	// containers of the primary: 4; files, overrides and slots: 5; reloads: 6
	// (before any slow step, so that repointed standbys follow at once)
	WriteFile: 5, ResetSetting: 5, CreateSlot: 5, Reload: 6, SetRole: 7, DropRole: 7,
	BaseBackup: 9, Rewind: 9, SetAliases: 10,
	// containers of standbys: 10; restarts: 11 for standbys, 12 for the primary
	Restart: 11,
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
	switch {
	case p.obs.Network == nil:
		p.add(Action{Kind: CreateNetwork, Target: c.Network, Reason: "the cluster network does not exist"})
	case !p.obs.Network.Owned:
		p.problem("", "Network Not Owned", fmt.Sprintf("a network named %q exists but pacsd did not create it; remove or rename it, or set network in the cluster block", c.Network))
		return
	}
	major := c.ImageMajor
	if p.obs.Image == nil {
		p.add(Action{Kind: PullImage, Target: c.Image, Reason: "the image is not on the engine"})
	} else if p.obs.Image.Major != 0 {
		major = p.obs.Image.Major
	}

	cur, err := CurrentState(c, p.obs.State, p.obs)
	if err != nil {
		p.problem("", "Acting Primary Unknown", err.Error())
		return
	}
	p.state = cur
	acting := cur.Acting
	if c.Node(acting) == nil {
		p.problem(acting, "Acting Primary Not Declared", fmt.Sprintf("node %q is the acting primary (epoch %d) but the file no longer declares it; declare it again, or switch over to a declared node first", acting, p.state.Epoch))
		return
	}
	p.acting = acting
	blocked := map[string]bool{}
	for _, n := range c.Nodes {
		ns := p.node(n.Name)
		if ns.Container != nil && !ns.Container.Owned {
			p.problem(n.Name, "Container Not Owned", fmt.Sprintf("a container named %q exists but pacsd did not create it for this node; remove or rename it, or set container_name", n.Container))
			blocked[n.Name] = true
			continue
		}
		if len(ns.Strays) > 0 {
			p.problem(n.Name, "Container Renamed", fmt.Sprintf("container %s is labelled as node %q's own but the file names the node's container %q (renamed by hand, or container_name edited); pacsd never runs a second container on a node's data: stop it and rename it back ('docker rename %s %s'), or remove it if it is not needed ('docker rm')", strings.Join(quoteAll(ns.Strays), ", "), n.Name, n.Container, ns.Strays[0], n.Container))
			blocked[n.Name] = true
			continue
		}
		if major != 0 && ns.Data.Major != 0 && ns.Data.Major != major {
			p.problem(n.Name, "PostgreSQL Version Mismatch", fmt.Sprintf("the data in %s was made by PostgreSQL %d but image %s runs PostgreSQL %d; upgrade the data with pg_upgrade or use an image of version %d", n.Location(), ns.Data.Major, c.Image, major, ns.Data.Major))
			blocked[n.Name] = true
		}
	}
	p.checkDataLocations(acting, blocked)
	if blocked[acting] {
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
	p.planContainer(primary, pState, true, 4)
	p.planDatabase(primary, pState, standbys)
	for _, n := range standbys {
		if !blocked[n.Name] {
			p.planStandby(n, p.node(n.Name))
		}
	}
}

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
			p.add(Action{Kind: WriteFile, Node: n.Name, Target: SignalPath, phase: 3, File: &FileWrite{Path: SignalPath, Content: []byte{}, Mode: 0o600},
				Reason: "it last ran as a primary and has no standby.signal; a start would bring it back writable beside the acting primary"})
		}
		confirmed := len(o.Strays) == 0 && (o.Container == nil || !o.Container.Running || (o.DB != nil && o.DB.InRecovery))
		if !confirmed {
			p.problem(primary.Name, "Primary In Recovery", fmt.Sprintf("%q is the acting primary but in recovery, and node %q cannot be confirmed a standby or stopped (%s); pacsd does not promote while another node might accept writes", primary.Name, n.Name, dbWhy(o)))
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

// planContainer plans the data, container and files of one node. phase is
// the phase of its container actions (4 for the primary, 10 for standbys).
func (p *planner) planContainer(n *spec.Node, ns *NodeState, primary bool, phase int) {
	want := ContainerSpecFor(p.c, n, primary)
	files := NodeFiles(p.c, n.Name, p.acting)
	ns = p.planMoveAside(n, ns, want.Mount)
	ct := ns.Container
	switch {
	case ct == nil:
		reason := "the node has no container"
		switch {
		case primary && ns.Data.Major == 0:
			want.Files = append(want.Files, initFiles(files)...)
		case ns.Data.Major != 0:
			// Data that is there already: pacsd's files go in with the
			// container, before its first start.
			want.Files = append(want.Files, pacsdFiles(files, !primary)...)
			reason += "; it is created on the data that is there, with pacsd's files in it"
		}
		p.add(Action{Kind: CreateContainer, Node: n.Name, Target: want.Name, Container: &want, Reason: reason, phase: phase})
		p.add(Action{Kind: StartContainer, Node: n.Name, Target: want.Name, Reason: "the container was created", phase: phase})
		return
	case ct.Labels[LabelConfig] != want.Labels[LabelConfig] || p.obs.Network == nil:
		why := "its configuration differs from the spec (" + configDiff(ct.Labels, want.Labels) + ")"
		if p.obs.Network == nil {
			why = "the cluster network was removed; a container cannot start on a network that is gone"
		}
		p.add(Action{Kind: RemoveContainer, Class: ClassRecreate, Node: n.Name, Target: ct.Name, Reason: why, phase: phase})
		p.add(Action{Kind: CreateContainer, Class: ClassRecreate, Node: n.Name, Target: want.Name, Container: &want, Reason: "re-created with the spec's configuration", phase: phase})
		p.planFiles(n, ns, files, primary, phase, true)
		p.add(Action{Kind: StartContainer, Class: ClassRecreate, Node: n.Name, Target: want.Name, Reason: "the container was re-created", phase: phase})
		return
	case !ct.Running:
		p.planFiles(n, ns, files, primary, phase, true)
		p.add(Action{Kind: StartContainer, Class: ClassRestart, Node: n.Name, Target: ct.Name, Reason: "the container is " + ct.Status, phase: phase})
		return
	}
	p.planAliases(n, ct, want.Aliases, 10)
	p.planFiles(n, ns, files, primary, 5, false)
}

// planAliases gives an existing container the DNS aliases its role calls for
// (the primary alias follows the acting primary).
func (p *planner) planAliases(n *spec.Node, ct *ContainerState, want []string, phase int) {
	w := slices.Sorted(slices.Values(want))
	if ct == nil || slices.Equal(ct.Aliases, w) {
		return
	}
	p.add(Action{Kind: SetAliases, Node: n.Name, Target: ct.Name, Aliases: w, phase: phase,
		Reason: fmt.Sprintf("its aliases on network %q are %v, its role calls for %v", p.c.Network, ct.Aliases, w)})
}

// planMoveAside moves partial data (an interrupted base backup) aside, never
// deleting it, and returns the state the rest of the plan must assume.
func (p *planner) planMoveAside(n *spec.Node, ns *NodeState, m Mount) *NodeState {
	if !ns.Data.Partial {
		return ns
	}
	if ns.Container != nil {
		p.add(Action{Kind: RemoveContainer, Class: ClassRebuild, Node: n.Name, Target: ns.Container.Name, Reason: "its data is a partial base backup", phase: 3})
	}
	p.add(Action{Kind: MoveAside, Class: ClassRebuild, Node: n.Name, Target: n.Location(), Mount: m,
		Reason: "the data is a partial base backup; it is kept aside, never started"})
	return &NodeState{}
}

// planFiles compares pacsd's files with what is in PGDATA and writes those
// that differ; for a running node it then reloads or restarts.
func (p *planner) planFiles(n *spec.Node, ns *NodeState, want map[string][]byte, primary bool, phase int, beforeStart bool) {
	have := ns.Files
	if have == nil {
		have = &Files{}
	}
	write := func(path string, content []byte, secret bool, reason string) {
		p.add(Action{Kind: WriteFile, Node: n.Name, Target: path, Reason: reason, phase: phase,
			File: &FileWrite{Path: path, Content: content, Mode: 0o600, Secret: secret}})
	}
	var changed []string
	if !bytes.Equal(have.HBA, want[HBAPath]) {
		write(HBAPath, want[HBAPath], false, differs(have.HBA))
		changed = append(changed, "pg_hba.conf")
	}
	if !bytes.Equal(have.Params, want[ParamsPath]) {
		write(ParamsPath, want[ParamsPath], false, differs(have.Params))
		changed = append(changed, paramNames(have.Params, want[ParamsPath])...)
	}
	if sum := sha256.Sum256(want[PassfilePath]); !bytes.Equal(have.PassfileSum, sum[:]) {
		write(PassfilePath, want[PassfilePath], true, differs(have.PassfileSum))
		changed = append(changed, "primary_conninfo")
	}
	if have.PostgresConf != nil {
		if conf, ch := pgconf.EnsureInclude(have.PostgresConf); ch {
			write(ConfPath, conf, false, "the line that includes pacsd.conf is missing or edited")
			changed = append(changed, "include")
		}
	}
	if !primary && !have.StandbySignal {
		write(SignalPath, []byte{}, false, "a standby needs standby.signal")
		changed = append(changed, "standby.signal")
	}
	if beforeStart || len(changed) == 0 && !pendingRestart(ns.DB) {
		return
	}
	if needsRestart(changed, ns.DB) {
		reason := "the server reports settings pending a restart"
		if len(changed) > 0 {
			reason = "changes take effect only at start: " + strings.Join(changed, ", ")
		}
		p.add(Action{Kind: Restart, Class: ClassRestart, Node: n.Name, Target: n.Container, phase: restartPhase(primary), Reason: reason})
		return
	}
	p.add(Action{Kind: Reload, Class: ClassReload, Node: n.Name, Target: n.Container, Reason: "changed: " + strings.Join(changed, ", ")})
}

// restartPhase restarts standbys before the primary.
func restartPhase(primary bool) int {
	if primary {
		return 12
	}
	return 11
}

func differs(have []byte) string {
	if have == nil {
		return "missing or not readable without a container"
	}
	return "differs from the spec"
}

// needsRestart reports whether any changed name is a postmaster-context
// parameter (or a file that only a start reads), or the server says so.
func needsRestart(changed []string, db *DBState) bool {
	if pendingRestart(db) {
		return true
	}
	for _, name := range changed {
		switch name {
		case "standby.signal", "include":
			return true
		}
		if prm, ok := spec.LookupParam(name); ok && prm.Context == "postmaster" {
			return true
		}
	}
	return false
}

func pendingRestart(db *DBState) bool {
	if db == nil {
		return false
	}
	for _, s := range db.Settings {
		if s.PendingRestart {
			return true
		}
	}
	return false
}

// paramNames returns the names whose lines differ between two pacsd.conf files.
func paramNames(old, new []byte) []string {
	a, b := parseConf(old), parseConf(new)
	var out []string
	for k, v := range b {
		if a[k] != v {
			out = append(out, k)
		}
	}
	for k := range a {
		if _, ok := b[k]; !ok {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}

// parseConf reads "name = value" lines, ignoring comments and blank lines.
func parseConf(b []byte) map[string]string {
	m := map[string]string{}
	for _, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			continue
		}
		m[strings.ToLower(strings.TrimSpace(k))] = strings.TrimSpace(v)
	}
	return m
}

// planOverrides resets every ALTER SYSTEM override of a parameter pacsd
// writes into node n's pacsd.conf (on a standby, primary_conninfo and
// primary_slot_name among them: an override there stops it streaming), then
// reloads it unless a reload or restart is planned already.
func (p *planner) planOverrides(n *spec.Node, ns *NodeState) {
	if ns.DB == nil {
		return
	}
	managed := parseConf(NodeFiles(p.c, n.Name, p.acting)[ParamsPath])
	var names []string
	for name, s := range ns.DB.Settings {
		if _, ok := managed[name]; ok && strings.HasSuffix(s.SourceFile, "postgresql.auto.conf") {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	for _, name := range names {
		p.add(Action{Kind: ResetSetting, Class: ClassReload, Node: n.Name, Target: name, Reason: "ALTER SYSTEM overrides a parameter pacsd manages"})
	}
	if len(names) > 0 && !slices.ContainsFunc(p.actions, func(a Action) bool { return a.Node == n.Name && (a.Kind == Reload || a.Kind == Restart) }) {
		p.add(Action{Kind: Reload, Class: ClassReload, Node: n.Name, Target: n.Container, Reason: "ALTER SYSTEM overrides were reset"})
	}
}

// planDatabase plans what the primary's server must hold: no ALTER SYSTEM
// override of a parameter pacsd writes, the roles, and one slot per standby.
func (p *planner) planDatabase(primary *spec.Node, ns *NodeState, standbys []*spec.Node) {
	c := p.c
	db := ns.DB
	p.planOverrides(primary, ns)
	roles := []struct {
		r        RoleSpec
		password spec.Secret
		absent   bool
	}{
		{RoleSpec{Name: c.Superuser.Name, Login: true, Superuser: true}, c.Superuser.Password, false},
		{RoleSpec{Name: c.Replication.User, Login: true, Replication: true}, c.Replication.Password, false},
	}
	if len(c.Nodes) < 2 && c.Replication.Password.IsZero() {
		roles = roles[:1]
	}
	for _, r := range c.Roles {
		roles = append(roles, struct {
			r        RoleSpec
			password spec.Secret
			absent   bool
		}{RoleSpec{Name: r.Name, Login: r.Login, MemberOf: r.MemberOf}, r.Password, r.Ensure == "absent"})
	}
	if db == nil && authFailed(ns.DBError) {
		r := roles[0].r
		p.add(Action{Kind: SetRole, Node: primary.Name, Target: r.Name, Role: &r, Password: c.Superuser.Password, Local: true, phase: 4,
			Reason: "pacsd cannot log in: the superuser's password differs from the spec; it is reset over the container's own socket"})
		roles = roles[1:]
	}
	for _, want := range roles {
		reason := p.roleReason(db, want.r, want.password)
		switch {
		case want.absent:
			if db == nil {
				continue
			}
			if _, ok := db.Roles[want.r.Name]; ok {
				p.add(Action{Kind: DropRole, Node: primary.Name, Target: want.r.Name, Reason: `declared with ensure = "absent"`})
			}
		case reason != "":
			r := want.r
			p.add(Action{Kind: SetRole, Node: primary.Name, Target: r.Name, Role: &r, Password: want.password, Reason: reason})
		}
	}
	for _, n := range standbys {
		slot := pgconf.SlotName(c.Name, n.Name)
		if db == nil {
			p.add(Action{Kind: CreateSlot, Node: primary.Name, Target: slot, Reason: "standby " + n.Name + " needs a replication slot"})
			continue
		}
		if _, ok := db.Slots[slot]; !ok {
			p.add(Action{Kind: CreateSlot, Node: primary.Name, Target: slot, Reason: "standby " + n.Name + " has no replication slot"})
		}
	}
}

// authFailed reports a login refused for its password (SQLSTATE 28P01).
func authFailed(dbError string) bool {
	return strings.Contains(dbError, "28P01") || strings.Contains(dbError, "password authentication failed")
}

// roleReason says why role r must be set, "" when it is as the spec says.
func (p *planner) roleReason(db *DBState, r RoleSpec, password spec.Secret) string {
	if db == nil {
		return "the primary is new or not reachable yet"
	}
	have, ok := db.Roles[r.Name]
	if !ok {
		return "the role does not exist"
	}
	var diffs []string
	if have.Login != r.Login {
		diffs = append(diffs, "login")
	}
	if have.Replication != r.Replication {
		diffs = append(diffs, "replication")
	}
	if have.Superuser != r.Superuser {
		diffs = append(diffs, "superuser")
	}
	for _, m := range r.MemberOf {
		if !slices.Contains(have.MemberOf, m) {
			diffs = append(diffs, "member of "+m)
		}
	}
	if !password.IsZero() && (p.matches == nil || !p.matches(have.Verifier, password.Reveal())) {
		diffs = append(diffs, "password")
	}
	if len(diffs) == 0 {
		return ""
	}
	return "differs: " + strings.Join(diffs, ", ")
}

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
	ns = p.planMoveAside(n, ns, want.Mount)
	if ns.Container != nil && !ns.Container.Running && ns.Data.Control != nil && ns.Data.Control.WasPrimary() && ns.Data.Major != 0 {
		p.planRejoin(n, ns, want)
		return
	}
	if p.diverged(ns) {
		p.add(Action{Kind: Fence, Class: ClassRebuild, Node: n.Name, Target: n.Container, phase: 8,
			Reason: fmt.Sprintf("it does not stream (WAL receiver %q) and reports timeline %d, behind the acting primary's %d: it is stopped, rewound (pg_rewind changes nothing when it has not gone past the fork) and started to follow", ns.DB.Receiver, ns.DB.Timeline, p.node(p.acting).DB.Timeline)})
		p.planRejoin(n, ns, want)
		return
	}
	if ns.Data.Major == 0 {
		if ns.Container != nil {
			p.add(Action{Kind: RemoveContainer, Class: ClassRebuild, Node: n.Name, Target: ns.Container.Name, Reason: "its data is empty", phase: 3})
		}
		p.add(Action{Kind: BaseBackup, Class: ClassRebuild, Node: n.Name, Target: n.Location(), Mount: want.Mount,
			Reason: "the standby has no data", Backup: p.backupSpec(n, c.Replication.User, SecretsDir+"/replication.pgpass", pgconf.Passfile(c))})
		p.add(Action{Kind: CreateContainer, Node: n.Name, Target: want.Name, Container: &want, Reason: "the node has no container", phase: 10})
		p.add(Action{Kind: StartContainer, Node: n.Name, Target: want.Name, Reason: "the container was created", phase: 10})
		return
	}
	p.planContainer(n, ns, false, 10)
	if ns.Container != nil && ns.Container.Running {
		p.planOverrides(n, ns)
	}
}

// pacsdFiles are the files pacsd keeps in a node's PGDATA, from files (see
// NodeFiles), standby.signal among them for a standby.
func pacsdFiles(files map[string][]byte, standby bool) []FileWrite {
	paths := []string{HBAPath, ParamsPath, PassfilePath}
	if standby {
		paths = append(paths, SignalPath)
	}
	placed := make([]FileWrite, len(paths))
	for i, path := range paths {
		placed[i] = FileWrite{Path: path, Content: files[path], Mode: 0o600, Secret: path == PassfilePath}
	}
	return placed
}

// backupSpec says how a one-off container reaches the acting primary as user
// (with a passfile placed at passfilePath) and which of pacsd's files it puts
// into PGDATA when it is done, standby.signal among them.
func (p *planner) backupSpec(n *spec.Node, user, passfilePath string, passfile []byte) *BackupSpec {
	return &BackupSpec{Image: p.c.Image, Network: p.c.Network, Host: p.c.Node(p.acting).Container, Port: 5432,
		User: user, Slot: pgconf.SlotName(p.c.Name, n.Name), Files: pacsdFiles(NodeFiles(p.c, n.Name, p.acting), true),
		Passfile: FileWrite{Path: passfilePath, Content: passfile, Mode: 0o600, Secret: true}}
}

// planRejoin rewinds a stopped node's data to follow the acting primary,
// gives it a standby's aliases and starts it; the rewind puts pacsd's files
// and standby.signal in place first.
func (p *planner) planRejoin(n *spec.Node, ns *NodeState, want ContainerSpec) {
	p.planRewind(n, ns, want.Mount)
	p.planAliases(n, ns.Container, want.Aliases, 9)
	p.add(Action{Kind: StartContainer, Class: ClassRebuild, Node: n.Name, Target: ns.Container.Name, Reason: "it rejoins as a standby", phase: 10})
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
	p.add(Action{Kind: Rewind, Class: ClassRebuild, Node: n.Name, Target: n.Location(), Mount: m, phase: 9,
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

// NodeFiles returns the content of pacsd's files in PGDATA for node of c when
// acting is the primary, keyed by path (standby.signal is empty content,
// present only for standbys).
func NodeFiles(c *spec.Cluster, node, acting string) map[string][]byte {
	primary := node == acting
	up := pgconf.Upstream{}
	if !primary {
		up = pgconf.Upstream{Host: c.Node(acting).Container, Port: 5432, SlotName: pgconf.SlotName(c.Name, node), Passfile: PassfilePath}
	}
	m := map[string][]byte{
		HBAPath:      pgconf.HBA(c, node, nil),
		ParamsPath:   pgconf.Params(c, node, up),
		PassfilePath: pgconf.Passfile(c),
	}
	if !primary {
		m[SignalPath] = []byte{}
	}
	return m
}

// initFiles are placed into a new primary's container so that its first
// initialisation installs pacsd's files before the server's first real start:
// no restart is needed for parameters.
func initFiles(files map[string][]byte) []FileWrite {
	script := "#!/bin/sh\n# Placed by pacsd: installs pacsd's files at the first initialisation.\nset -e\n" +
		"for f in pg_hba.conf pacsd.conf pacsd.pgpass; do\n" +
		"  install -m 0600 \"" + initFilesDir + "/$f\" \"$PGDATA/$f\"\n" +
		"done\n" +
		"grep -qxF \"" + pgconf.IncludeLine + "\" \"$PGDATA/postgresql.conf\" || echo \"" + pgconf.IncludeLine + "\" >> \"$PGDATA/postgresql.conf\"\n"
	return []FileWrite{
		{Path: initFilesDir + "/pg_hba.conf", Content: files[HBAPath], Mode: 0o600},
		{Path: initFilesDir + "/pacsd.conf", Content: files[ParamsPath], Mode: 0o600},
		{Path: initFilesDir + "/pacsd.pgpass", Content: files[PassfilePath], Mode: 0o600, Secret: true},
		{Path: initScriptPath, Content: []byte(script), Mode: 0o755},
	}
}

// ContainerSpecFor returns the container node n of c must run in. Its
// LabelConfig digest covers everything but the files placed before start, so
// a changed digest means the container must be re-created.
func ContainerSpecFor(c *spec.Cluster, n *spec.Node, primary bool) ContainerSpec {
	role, alias := "standby", c.Clients.StandbyAlias
	if primary {
		role, alias = "primary", c.Clients.PrimaryAlias
	}
	aliases := []string{n.Name}
	if alias != "" {
		aliases = append(aliases, alias)
	}
	restart := "unless-stopped"
	if c.Failover.Automatic {
		restart = "no"
	}
	cs := ContainerSpec{
		Name:  n.Container,
		Image: c.Image,
		Env: []string{
			"POSTGRES_USER=" + c.Superuser.Name,
			"POSTGRES_DB=" + c.Database,
			"POSTGRES_PASSWORD_FILE=" + superuserPasswordPath,
			"PGDATA=" + PGDATA,
		},
		Network:       c.Network,
		Aliases:       aliases,
		Mount:         Mount{Volume: n.Volume, HostDir: n.Data},
		Port:          n.Port,
		RestartPolicy: restart,
		Files:         []FileWrite{{Path: superuserPasswordPath, Content: []byte(c.Superuser.Password.Reveal()), Mode: 0o600, Secret: true}},
	}
	cs.Labels = map[string]string{LabelCluster: c.Name, LabelNode: n.Name, LabelRole: role}
	cs.Labels[LabelConfig] = configDigest(cs)
	return cs
}

// configDigest is a short digest of a container's configuration, and its parts
// in clear so a difference can be named.
func configDigest(cs ContainerSpec) string {
	h := sha256.New()
	for _, part := range configParts(cs) {
		fmt.Fprintf(h, "%s\x00", part)
	}
	return hex.EncodeToString(h.Sum(nil))[:16]
}

func configParts(cs ContainerSpec) []string {
	return []string{
		"image=" + cs.Image,
		"env=" + strings.Join(cs.Env, ","),
		"cmd=" + strings.Join(cs.Cmd, " "),
		"network=" + cs.Network,
		"volume=" + cs.Mount.Volume,
		"data=" + cs.Mount.HostDir,
		"port=" + strconv.Itoa(cs.Port),
		"restart=" + cs.RestartPolicy,
	}
}

// configDiff names what differs between the labels of a container and the
// desired ones, as far as labels tell.
func configDiff(have, want map[string]string) string {
	if have[LabelRole] != want[LabelRole] {
		return "role " + have[LabelRole] + " -> " + want[LabelRole]
	}
	return "configuration digest " + have[LabelConfig] + " -> " + want[LabelConfig]
}
