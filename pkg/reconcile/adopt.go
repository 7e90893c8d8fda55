package reconcile

import (
	"cmp"
	"fmt"
	"path"
	"slices"
	"strconv"
	"strings"

	"github.com/pacsd/pacsd/pkg/pgconf"
	"github.com/pacsd/pacsd/pkg/spec"
)

// 'pacsd adopt' takes over PostgreSQL containers set up by hand the way the
// dcm4chee image's README says: a container per node whose data location
// is mounted as PGDATA itself, a standby made with pg_basebackup -R. This
// file decides (PlanAdopt: what is checked, what is done, in which order);
// adopt_run.go observes and carries it out.

// Paths in a node's data location as pacsd mounts it (at DataMount) that
// tell data not yet in pacsd's layout: PG_VERSION beside PGDATA instead of
// in it, and the marker of a move that adopt began.
const (
	LegacyVersionPath = DataMount + "/PG_VERSION"
	AdoptMarker       = DataMount + "/pacsd-adopting"
	// adoptStaging is the directory the entries of the old PGDATA are moved
	// into, then renamed to PGDATA.
	adoptStaging = DataMount + "/pacsd-adopt.tmp"
)

// KeptSuffix is added to the name of a container that adopt replaced: it
// is stopped, renamed and kept, never removed.
const KeptSuffix = "-pre-pacsd"

// KeptName is the name adopt gives the container it replaced for node n.
func KeptName(n *spec.Node) string { return n.Container + KeptSuffix }

// LegacyContainer is a container as adopt sees it, pacsd's own or not.
type LegacyContainer struct {
	ID, Name, Image string
	Running, Paused bool
	Status          string
	Labels          map[string]string
	// Env holds POSTGRES_USER, POSTGRES_DB and PGDATA as set; SecretEnv
	// the names (never the values) of variables that hold a password.
	Env       map[string]string
	SecretEnv []string
	// RestartPolicy is "no", "always", "unless-stopped" or "on-failure".
	RestartPolicy string
	// Mount is the data location mounted at MountAt (PGDATA or
	// DataMount); nil when neither has a mount.
	Mount   *Mount
	MountAt string
	// IPs are its addresses on every network it is on.
	IPs []string
	// Nested are its mounts inside PGDATA (pg_wal or a tablespace on a
	// disk of its own), which adopt does not take over.
	Nested []string
}

// pacsdOwned reports whether the container carries pacsd's labels of
// node in cluster.
func (l *LegacyContainer) pacsdOwned(cluster, node string) bool {
	return l != nil && l.Labels[LabelCluster] == cluster && l.Labels[LabelNode] == node
}

// LegacyServer is what a node's server says of itself over its container's
// own socket (adopt's checks do not need pacsd's login, TLS or network).
type LegacyServer struct {
	// Version is server_version_num.
	Version    int
	InRecovery bool
	// SystemID is the cluster's system identifier: a standby of a primary
	// has the primary's.
	SystemID string
	// Timeline is the primary's current timeline, or the timeline a
	// standby receives (replays, without a WAL receiver).
	Timeline int64
	// Receiver is the WAL receiver's status ("" when none).
	Receiver string
	// Clients are the addresses of the standbys streaming from it.
	Clients []string
	// Superuser says that POSTGRES_USER is a superuser.
	Superuser bool
	// SuperVerifier is its stored password (never printed).
	SuperVerifier string
	// Replication is the replication user's state: "absent", "true" (it
	// has REPLICATION) or "false".
	Replication string
	// AlterSystem is allow_alter_system (PostgreSQL 17; "on" before).
	AlterSystem string
	// SlotWALKeep is max_slot_wal_keep_size ("-1": slots keep WAL without
	// bound; "" before PostgreSQL 13, which has no bound).
	SlotWALKeep string
	// Taken are the entries of PGDATA whose names adopt's move needs
	// (PGDATA's own name, its staging directory's, its marker's).
	Taken []string
	// Links are PGDATA's entries that are symbolic links (pg_wal made
	// with initdb --waldir, a configuration file kept elsewhere).
	Links []string
	// Tablespaces names the tablespaces other than pg_default and
	// pg_global, "" when none.
	Tablespaces string
}

// adoptNames are the names adopt's move creates in a data location: an
// old PGDATA that holds one of them cannot be moved.
var adoptNames = []string{path.Base(PGDATA), path.Base(adoptStaging), path.Base(AdoptMarker)}

// AdoptNode is what adopt saw of one node.
type AdoptNode struct {
	// Current is the container under the node's container name, nil when
	// there is none; Owned when it is pacsd's own of the node.
	Current *LegacyContainer
	Owned   bool
	// Kept is the container an earlier adopt replaced (KeptName), nil when
	// there is none.
	Kept *LegacyContainer
	// Server is Current's server when it runs and answered, else
	// ServerError says why not ("" when Current does not run).
	Server      *LegacyServer
	ServerError string
	// Data is the node's data location (not looked at when Owned).
	Data DataState
}

// AdoptObserved is what adopt saw of a cluster.
type AdoptObserved struct {
	Nodes map[string]*AdoptNode
	// Images is the cluster's image on each host's engine ("" the local
	// one), nil where it is not.
	Images map[string]*ImageState
}

// AdoptStep is what adopt does to one node, in this order: a slot on the
// primary that keeps the WAL a standby needs while it is replaced; the
// container under the node's name stopped (a checkpoint first, for the
// primary) and renamed aside; the data moved into pacsd's layout; pacsd's
// container created on it and started.
type AdoptStep struct {
	Node    string
	Primary bool
	// Slot is created on the container named SlotOn ("" none).
	Slot, SlotOn string
	// BoundWAL, when set, is given to max_slot_wal_keep_size on SlotOn
	// (ALTER SYSTEM, then a reload) before the slot is made: a primary set
	// up by hand keeps a slot's WAL without bound, and should adopt stop
	// before the standby streams again, the slot would fill its disk.
	// After adoption pacsd.conf sets it and the override is reset.
	BoundWAL string
	// Disarm is a container that an earlier adopt replaced whose restart
	// policy is set to no (the engine would start it again beside pacsd's).
	Disarm string
	// Replace is the container stopped and renamed to KeptName ("" none).
	Replace string
	// Move moves the data into pacsd's layout: the entries of the location
	// into PGDATA below it, renamed on the same file system.
	Move bool
	// Create creates and starts pacsd's container.
	Create bool
	// Location is the node's data location, for messages.
	Location string
}

// Lines are the step's actions, one line each, as plan and adopt print them.
func (s AdoptStep) Lines(c *spec.Cluster) []string {
	n := c.Node(s.Node)
	var out []string
	add := func(sign, text string) { out = append(out, fmt.Sprintf("%s adopt %s: %s", sign, s.Node, text)) }
	if s.BoundWAL != "" {
		add("~", fmt.Sprintf("max_slot_wal_keep_size = %s on %s (ALTER SYSTEM and a reload: the slot below keeps no more WAL than that should adoption stop half-way)", s.BoundWAL, s.SlotOn))
	}
	if s.Slot != "" {
		add("+", fmt.Sprintf("replication slot %s on %s (keeps the WAL the standby needs while it is replaced)", s.Slot, s.SlotOn))
	}
	if s.Disarm != "" {
		add("~", fmt.Sprintf("restart policy of the kept container %s set to no", s.Disarm))
	}
	if s.Replace != "" {
		what := "stop"
		if s.Primary {
			what = "checkpoint, then stop"
		}
		add("~", fmt.Sprintf("%s container %s and rename it %s (kept, never removed; its restart policy set to no)", what, s.Replace, KeptName(n)))
	}
	if s.Move {
		add("~", fmt.Sprintf("move the data in %s into %s below it, pacsd's layout (renames on the same file system: nothing copied, nothing deleted; files the image's postgres user does not own are given to it)", s.Location, strings.TrimPrefix(PGDATA, DataMount+"/")))
	}
	if s.Create {
		role := "a standby"
		if s.Primary {
			role = "the primary"
		}
		add("+", fmt.Sprintf("pacsd's container %s on that data, as %s: pg_hba.conf without trust, pacsd.conf, TLS, no password in its environment", n.Container, role))
	}
	return out
}

// AdoptPlan is what adopt does to a cluster: the nodes' steps, standbys
// first, the primary last; then Apply converges the rest (roles and the
// replication password, slots, ALTER SYSTEM overrides such as
// pg_basebackup -R's primary_conninfo, standbys repointed).
type AdoptPlan struct {
	Steps []AdoptStep
}

// PlanAdopt decides what adopt does to cluster c from what it saw: the
// checks (any problem that is not a warning refuses the whole adoption,
// before anything changes) and the steps. It has no side effects. An
// empty plan with no problems means there is nothing to adopt. A state
// that an interrupted adopt left (a container stopped but not renamed,
// renamed but its data not moved, data half moved, moved but no container
// yet) is planned from where it stands.
func PlanAdopt(c *spec.Cluster, o *AdoptObserved, matches PasswordChecker) (AdoptPlan, []Problem) {
	a := &adopter{c: c, o: o}
	a.plan(matches)
	return AdoptPlan{Steps: a.steps}, a.problems
}

type adopter struct {
	c        *spec.Cluster
	o        *AdoptObserved
	steps    []AdoptStep
	problems []Problem
}

func (a *adopter) problem(node, summary, detail string) {
	a.problems = append(a.problems, Problem{Cluster: a.c.Name, Node: node, Summary: summary, Detail: detail})
}

func (a *adopter) node(name string) *AdoptNode {
	if an := a.o.Nodes[name]; an != nil {
		return an
	}
	return &AdoptNode{}
}

// pending reports whether node an is not pacsd's yet: a container under its
// name that pacsd did not create, or data not in pacsd's layout, or data
// moved by an earlier adopt that has no container yet.
func pending(an *AdoptNode) bool {
	switch {
	case an.Current != nil && !an.Owned:
		return true
	case an.Data.Unadopted:
		return true
	}
	// A base backup that pacsd began there (its marker) is apply's, never
	// adopt's: no container is started on it.
	return an.Current == nil && an.Kept != nil && an.Data.Major != 0 && !an.Data.Partial
}

func (a *adopter) plan(matches PasswordChecker) {
	c := a.c
	if !slices.ContainsFunc(c.Nodes, func(n *spec.Node) bool { return pending(a.node(n.Name)) }) {
		return
	}
	major, ok := a.checkImages()
	if !ok {
		return
	}
	for _, n := range c.Nodes {
		a.checkNode(n, major[n.Host])
	}
	a.checkTopology()
	if p := a.node(c.Primary); p.Server != nil && !p.Owned && matches != nil && !c.Superuser.Password.IsZero() && !matches(p.Server.SuperVerifier, c.Superuser.Password.Reveal()) {
		a.problems = append(a.problems, Problem{Cluster: c.Name, Node: c.Primary, Warning: true, Summary: "Superuser Password Changes",
			Detail: fmt.Sprintf("the password of %q in the database is not the one of the file's superuser block; adoption sets the file's: every client that logs in as %q (the archive) must then use it; to keep the current password, put it in the superuser's password file before adopting", c.Superuser.Name, c.Superuser.Name)})
	}
	if slices.ContainsFunc(a.problems, func(p Problem) bool { return !p.Warning }) {
		return
	}
	primary := c.Node(c.Primary)
	for _, n := range c.Nodes {
		if n.Name != c.Primary {
			a.planNode(n, false, primary)
		}
	}
	a.planNode(primary, true, primary)
}

// checkImages checks the cluster's image on each host: there (adopt
// inspects the data with it and creates pacsd's containers from it), not
// hiding the data, of one PostgreSQL major version. It returns that
// version by host (the tag's where the image does not say).
func (a *adopter) checkImages() (map[string]int, bool) {
	c := a.c
	major := map[string]int{}
	for _, host := range c.Hosts() {
		img := a.o.Images[host]
		on := ""
		if c.SpansHosts() {
			on = " on " + engineName(host)
		}
		switch {
		case img == nil:
			a.problem("", "Image Not Found", fmt.Sprintf("image %s is not on %s; adopt inspects the data with it and creates pacsd's containers from it: build it there ('make image IMAGE=%s') or load it ('docker load'), then adopt again", c.Image, engineName(host), c.Image))
			continue
		case img.HidingVolume() != "":
			a.problem("", "Image Hides The Data", hidingVolumeProblem(c, on, img.HidingVolume()))
			continue
		}
		major[host] = cmp.Or(img.Major, c.ImageMajor)
	}
	if d := majorDiffers(c, major); d != "" {
		a.problem("", "Image Differs Between Hosts", d)
	}
	return major, len(a.problems) == 0
}

// checkNode checks what one node holds against the file.
func (a *adopter) checkNode(n *spec.Node, major int) {
	c, an := a.c, a.node(n.Name)
	want := Mount{Volume: n.Volume, HostDir: n.Data}
	if an.Kept != nil && (an.Kept.Running || an.Kept.Paused) {
		a.problem(n.Name, "Replaced Container Runs", fmt.Sprintf("container %q, which an earlier adopt replaced and kept, runs again; it would run a second server on the node's data: stop it ('docker stop %s'), then adopt again", an.Kept.Name, an.Kept.Name))
		return
	}
	if an.Data.Unknown && !an.Owned {
		a.problem(n.Name, "Data Unknown", fmt.Sprintf("what %s holds could not be inspected; make its Docker engine answer, then adopt again", n.Location()))
		return
	}
	l := an.Current
	if l == nil || an.Owned {
		if an.Current == nil && an.Kept == nil && an.Data.Major == 0 && !an.Data.Unadopted && n.Name == c.Primary {
			a.problem(n.Name, "Primary Not Found", fmt.Sprintf("no container is named %q and %s holds no data, but the file names %q as the primary; set container_name and data of node %q to the container that runs the primary and the directory it mounts", n.Container, n.Location(), n.Name, n.Name))
		}
		return
	}
	if l.Labels[LabelCluster] != "" {
		a.problem(n.Name, "Container Of Another Node", fmt.Sprintf("container %q is pacsd's, of cluster %q node %q; pacsd adopts only containers it did not create: set container_name of node %q to the container to adopt", l.Name, l.Labels[LabelCluster], l.Labels[LabelNode], n.Name))
		return
	}
	if an.Kept != nil {
		a.problem(n.Name, "Kept Container Exists", fmt.Sprintf("container %q exists and so does %q, the name adopt keeps a replaced container under; rename or remove %q (it is not running), then adopt again", l.Name, an.Kept.Name, an.Kept.Name))
		return
	}
	switch {
	case l.Mount == nil:
		a.problem(n.Name, "Data Not Mounted", fmt.Sprintf("container %q mounts nothing at %s or %s, so its data would be lost with it; pacsd adopts only data in a host directory or a volume: move it into one by hand first", l.Name, PGDATA, DataMount))
		return
	case !sameMount(*l.Mount, want):
		a.problem(n.Name, "Data Location Differs", fmt.Sprintf("container %q keeps its data in %s (mounted at %s), but the file gives node %q %s; set %s in node %q", l.Name, l.Mount.describe(), l.MountAt, n.Name, want.describe(), l.Mount.attribute(), n.Name))
		return
	}
	if pg := l.Env["PGDATA"]; pg != "" && pg != PGDATA {
		a.problem(n.Name, "PGDATA Not Supported", fmt.Sprintf("container %q sets PGDATA=%s; adopt takes over data at %s (the image's default) only: move the data there by hand (stop the container first), or let pacsd build this node anew", l.Name, pg, PGDATA))
		return
	}
	if u := cmpOr(l.Env["POSTGRES_USER"], "postgres"); u != c.Superuser.Name {
		a.problem(n.Name, "Superuser Differs", fmt.Sprintf("container %q was made with POSTGRES_USER=%s, but the file's superuser is %q; set name in the superuser block to %q", l.Name, u, c.Superuser.Name, u))
		return
	}
	if db := cmpOr(l.Env["POSTGRES_DB"], cmpOr(l.Env["POSTGRES_USER"], "postgres")); db != c.Database {
		a.problem(n.Name, "Database Differs", fmt.Sprintf("container %q was made with POSTGRES_DB=%s, but the file's database is %q; set database = %q in the cluster block", l.Name, db, c.Database, db))
		return
	}
	if len(l.Nested) > 0 && !an.Owned {
		a.problem(n.Name, "Mounts Inside PGDATA", fmt.Sprintf("container %q mounts %s inside its PGDATA (WAL or a tablespace on a disk of its own); adopt takes over one data location only and would start the server without them: move them into the data directory by hand (the server stopped), then adopt again", l.Name, strings.Join(l.Nested, ", ")))
		return
	}
	if l.Paused {
		a.problem(n.Name, "Container Paused", fmt.Sprintf("container %q is paused; unpause it ('docker unpause %s'), then adopt again", l.Name, l.Name))
		return
	}
	if l.MountAt == PGDATA && !an.Data.Unadopted {
		a.problem(n.Name, "No Data To Adopt", fmt.Sprintf("container %q mounts %s as its PGDATA, but no PG_VERSION is there; it holds no PostgreSQL data directory to adopt", l.Name, l.Mount.describe()))
		return
	}
	if l.MountAt == DataMount && an.Data.Major == 0 {
		a.problem(n.Name, "No Data To Adopt", fmt.Sprintf("container %q mounts %s at %s, but no PG_VERSION is in %s below it: its server keeps its data elsewhere (in the container, or in a volume its image declares at %s), which adopt would not take over; move the data into that location by hand first", l.Name, l.Mount.describe(), DataMount, path.Base(PGDATA), PGDATA))
		return
	}
	if !l.Running {
		// Which node is writable, its timeline, that the standby streams
		// from the primary: only a running server says. A stopped one may
		// be a standby promoted by hand, or a primary left behind; moving
		// and starting it as the file says could lose what the other
		// acknowledged.
		a.problem(n.Name, "Container Not Running", fmt.Sprintf("container %q is %s; adopt checks each node's running server (which one accepts writes, its timeline, that the standby streams from the primary) before it changes anything: start it ('docker start %s'), then adopt again", l.Name, cmpOr(l.Status, "not running"), l.Name))
		return
	}
	s := an.Server
	if s == nil {
		a.problem(n.Name, "Server Not Reachable", fmt.Sprintf("the server in container %q could not be asked over its own socket as %q (%s); make it answer, or stop the container if it must not be checked, then adopt again", l.Name, c.Superuser.Name, an.ServerError))
		return
	}
	if m := s.Version / 10000; major != 0 && m != major {
		a.problem(n.Name, "PostgreSQL Version Mismatch", fmt.Sprintf("container %q runs PostgreSQL %d but image %s runs PostgreSQL %d; adopt never upgrades: upgrade the data with pg_upgrade first, or set image to a PostgreSQL %d image", l.Name, m, c.Image, major, m))
		return
	}
	if !s.Superuser {
		a.problem(n.Name, "Not A Superuser", fmt.Sprintf("role %q in container %q is not a superuser; pacsd needs the file's superuser to be one", c.Superuser.Name, l.Name))
	}
	// What would make the data, once moved, start without a part of it,
	// or the move stop half-way, is refused before anything stops.
	if len(s.Links) > 0 {
		a.problem(n.Name, "Symbolic Links In PGDATA", fmt.Sprintf("in container %q, %s in PGDATA %s symbolic links (WAL made with initdb --waldir, or a file kept elsewhere); adopt takes over one data location only and would start the server without what they point to: with the server stopped, move what they point to into the data directory in their place, start it, then adopt again", l.Name, strings.Join(s.Links, ", "), isAre(len(s.Links))))
	}
	if s.Tablespaces != "" {
		a.problem(n.Name, "Tablespaces Outside PGDATA", fmt.Sprintf("the server in container %q has tablespaces (%s), kept outside its data directory; adopt takes over one data location only and would start the server without them: move their tables and indexes to pg_default ('ALTER TABLE ... SET TABLESPACE pg_default'), drop the tablespaces, then adopt again", l.Name, s.Tablespaces))
	}
	if len(s.Taken) > 0 && l.MountAt == PGDATA {
		a.problem(n.Name, "Name Taken In PGDATA", fmt.Sprintf("%s holds %s beside PostgreSQL's files; adopt moves them into %s below it and never overwrites: rename or move %s out of the data directory, then adopt again", n.Location(), strings.Join(s.Taken, ", "), strings.TrimPrefix(PGDATA, DataMount+"/"), strings.Join(s.Taken, ", ")))
	}
	if alterSystemOff(c, s) {
		a.problem(n.Name, "ALTER SYSTEM Disabled", fmt.Sprintf("the server in container %q runs with allow_alter_system = off; after adopting, pacsd removes ALTER SYSTEM overrides of the parameters it manages (pg_basebackup -R's primary_conninfo among them) with ALTER SYSTEM RESET, which that refuses: set allow_alter_system = on in the cluster's settings (pacsd.conf then sets it), then adopt again", l.Name))
	}
}

// alterSystemOff reports whether ALTER SYSTEM stays refused on server s
// once adopted: the file's setting of allow_alter_system, else the
// server's own.
func alterSystemOff(c *spec.Cluster, s *LegacyServer) bool {
	if v, ok := pgconf.LookupSetting(c.Settings, "allow_alter_system"); ok {
		return v == "off"
	}
	return s.AlterSystem == "off"
}

func isAre(n int) string {
	if n == 1 {
		return "is a"
	}
	return "are"
}

// checkTopology checks the nodes against each other: one writable node, the
// file's primary; one database system; each standby streaming from the
// primary on its timeline.
func (a *adopter) checkTopology() {
	c := a.c
	var writable []string
	ids := map[string][]string{}
	for _, n := range c.Nodes {
		if s := a.node(n.Name).Server; s != nil {
			if !s.InRecovery {
				writable = append(writable, n.Name)
			}
			ids[s.SystemID] = append(ids[s.SystemID], n.Name)
		}
	}
	switch {
	case len(writable) > 1:
		a.problem("", "Two Writable Nodes", fmt.Sprintf("nodes %s all accept writes; adopt takes over one primary only: stop the one that must not be the primary, then adopt again", strings.Join(quoteAll(writable), ", ")))
		return
	case len(writable) == 1 && writable[0] != c.Primary && a.node(c.Primary).Kept != nil && a.node(c.Primary).Current == nil:
		// An adopt stopped the file's primary and did not finish; another
		// node took writes since (promoted by hand). Each may hold
		// acknowledged commits the other lacks.
		p := a.node(c.Primary)
		a.problem(writable[0], "Primary Replaced Half-Way", fmt.Sprintf("an adopt stopped node %q, the file's primary (its container kept as %q), and did not finish; since then node %q (container %q) accepts writes (promoted by hand?): each may hold acknowledged commits the other lacks, and adopt does not choose between them: compare what each holds by hand; adopt goes on once the file's primary is the node that accepts writes and the other is out of the file (its data stays where it is)", c.Primary, p.Kept.Name, writable[0], c.Node(writable[0]).Container))
		return
	case len(writable) == 1 && writable[0] != c.Primary:
		a.problem(writable[0], "Primary Differs", fmt.Sprintf("the file names %q as primary, but node %q (container %q) accepts writes; set primary = %q in the cluster block", c.Primary, writable[0], c.Node(writable[0]).Container, writable[0]))
		return
	}
	if p := a.node(c.Primary); p.Server != nil && p.Server.InRecovery {
		a.problem(c.Primary, "Primary In Recovery", fmt.Sprintf("the file names %q as primary, but its container %q runs a standby; set primary to the node that accepts writes", c.Primary, p.Current.Name))
		return
	}
	if len(ids) > 1 {
		var parts []string
		for id, nodes := range ids {
			parts = append(parts, fmt.Sprintf("%s: %s", strings.Join(quoteAll(nodes), ", "), id))
		}
		slices.Sort(parts)
		a.problem("", "Different Database Systems", fmt.Sprintf("the nodes are not copies of one database (system identifiers %s); declare only the nodes of one primary and its standbys", strings.Join(parts, "; ")))
		return
	}
	p := a.node(c.Primary)
	if p.Server == nil || p.Owned {
		// The primary is stopped (an interrupted adopt) or pacsd's already:
		// a standby left cannot stream from it until it is pacsd's too.
		return
	}
	for _, n := range c.Nodes {
		an := a.node(n.Name)
		if n.Name == c.Primary || an.Owned || an.Server == nil {
			continue
		}
		s := an.Server
		from := slices.ContainsFunc(an.Current.IPs, func(ip string) bool { return slices.Contains(p.Server.Clients, ip) })
		if s.Receiver != "streaming" || !from {
			a.problem(n.Name, "Standby Not Streaming", fmt.Sprintf("container %q does not stream from the primary's container %q (its WAL receiver: %q; the primary streams to %s; its addresses: %s); adopting it could leave it unable to follow: make it stream first, or take node %q out of the file, adopt, then declare it again (pacsd builds it anew; its data is moved aside, never deleted)",
				an.Current.Name, p.Current.Name, s.Receiver, listOr(p.Server.Clients), listOr(an.Current.IPs), n.Name))
			continue
		}
		if s.Timeline != p.Server.Timeline {
			a.problem(n.Name, "Timeline Differs", fmt.Sprintf("container %q receives timeline %d but the primary's container %q is on timeline %d; wait until it follows the primary's timeline, then adopt again", an.Current.Name, s.Timeline, p.Current.Name, p.Server.Timeline))
		}
	}
}

// planNode plans the steps of one node.
func (a *adopter) planNode(n *spec.Node, primary bool, p *spec.Node) {
	an := a.node(n.Name)
	if !pending(an) {
		return
	}
	s := AdoptStep{Node: n.Name, Primary: primary, Location: n.Location(), Create: true}
	if pn := a.node(p.Name); !primary && pn.Current != nil && pn.Current.Running {
		// Also for a standby stopped already (an adopt interrupted): the
		// slot then keeps at least what the primary still has.
		s.Slot, s.SlotOn = pgconf.SlotName(a.c.Name, n.Name), pn.Current.Name
		if !pn.Owned && pn.Server != nil && pn.Server.SlotWALKeep == "-1" {
			s.BoundWAL = a.c.Replication.MaxSlotWAL.String()
		}
	}
	if k := an.Kept; k != nil && k.RestartPolicy != "no" {
		s.Disarm = k.Name
	}
	if l := an.Current; l != nil && !an.Owned {
		s.Replace = l.Name
		s.Move = l.MountAt == PGDATA
	} else {
		s.Move = an.Data.Unadopted
	}
	a.steps = append(a.steps, s)
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func listOr(l []string) string {
	if len(l) == 0 {
		return "none"
	}
	return strings.Join(l, ", ")
}

// adoptMoveScript moves the entries of the data location (the old PGDATA)
// into PGDATA below it, by renames on the same file system, and gives
// the files the image's postgres user does not own to it. Arguments: the
// mount point, the marker, the staging directory, PGDATA. An interrupted
// run is finished by the next: the marker says a move began; entries left
// beside the staging directory are moved into it, PG_VERSION last; the
// staging directory becomes PGDATA in one rename. Nothing is ever
// overwritten or deleted.
const adoptMoveScript = `set -eu
shopt -s dotglob nullglob
mount=$1 marker=$2 staging=$3 pgdata=$4
if [ -e "$mount/PG_VERSION" ] || [ -d "$staging" ]; then
  runuser -u postgres -- touch -- "$marker" 2>/dev/null || { touch -- "$marker"; chown postgres:postgres -- "$marker"; }
  if [ ! -d "$staging" ]; then
    if [ -e "$pgdata" ]; then echo "$pgdata exists beside PG_VERSION in the data location; refusing to move the data over it" >&2; exit 3; fi
    install -d -o postgres -g postgres -m 0700 -- "$staging"
  fi
  n=0
  for e in "$mount"/*; do
    case "$e" in "$staging" | "$marker" | "$mount/PG_VERSION") continue ;; esac
    if [ -e "$staging/${e##*/}" ]; then echo "$staging/${e##*/} exists; refusing to move $e over it" >&2; exit 3; fi
    mv -T -- "$e" "$staging/${e##*/}"
    n=$((n + 1))
  done
  if [ -e "$mount/PG_VERSION" ]; then mv -T -- "$mount/PG_VERSION" "$staging/PG_VERSION"; n=$((n + 1)); fi
  if [ -e "$pgdata" ]; then echo "$pgdata exists; refusing to rename $staging over it" >&2; exit 3; fi
  mv -T -- "$staging" "$pgdata"
  echo "moved $n entries into $pgdata"
fi
if [ ! -s "$pgdata/PG_VERSION" ]; then echo "$pgdata holds no PG_VERSION after the move; nothing more was changed" >&2; exit 3; fi
others=$(find "$mount" -xdev \! -user postgres | wc -l)
if [ "$others" -gt 0 ]; then
  from=$(find "$mount" -xdev \! -user postgres -printf '%U:%G\n' | sort -u | head -5 | paste -sd, -)
  find "$mount" -xdev \! -user postgres -exec chown -h postgres:postgres {} +
  echo "gave $others files owned by $from to postgres ($(id -u postgres):$(id -g postgres))"
fi
chown postgres:postgres -- "$mount" "$pgdata"
chmod 0700 -- "$pgdata"
rm -f -- "$marker"
`

// adoptedLine is what the move script says it moved or chowned, for the
// report.
func adoptedLine(line string) bool {
	return strings.HasPrefix(line, "moved ") || strings.HasPrefix(line, "gave ")
}

// slotSQL creates a physical slot that reserves WAL at once, unless it
// exists. name is a slot name of pgconf.SlotName (lower case letters,
// digits, underscores).
func slotSQL(name string) string {
	q := "'" + name + "'"
	return "SELECT pg_create_physical_replication_slot(" + q + ", true) WHERE NOT EXISTS (SELECT 1 FROM pg_replication_slots WHERE slot_name = " + q + ")"
}

// legacyServerSQL reads a LegacyServer in one row, fields separated by |.
// replUser is an SQL literal.
func legacyServerSQL(replUser string) string {
	return "SELECT concat_ws('|', current_setting('server_version_num'), pg_is_in_recovery()::text, " +
		"(SELECT system_identifier FROM pg_control_system())::text, " +
		"CASE WHEN pg_is_in_recovery() THEN coalesce((SELECT received_tli FROM pg_stat_wal_receiver), (SELECT timeline_id FROM pg_control_checkpoint()))::text " +
		"ELSE ('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::bigint::text END, " +
		"coalesce((SELECT status FROM pg_stat_wal_receiver), ''), " +
		"coalesce((SELECT string_agg(host(client_addr), ',' ORDER BY 1) FROM pg_stat_replication WHERE state = 'streaming' AND client_addr IS NOT NULL), ''), " +
		"(SELECT rolsuper::text FROM pg_roles WHERE rolname = current_user), " +
		"coalesce((SELECT rolreplication::text FROM pg_roles WHERE rolname = " + replUser + "), 'absent'), " +
		"coalesce((SELECT rolpassword FROM pg_authid WHERE rolname = current_user), ''), " +
		"coalesce(current_setting('allow_alter_system', true), 'on'), " +
		"coalesce(current_setting('max_slot_wal_keep_size', true), ''), " +
		"coalesce((SELECT string_agg(e, ',' ORDER BY 1) FROM pg_ls_dir('.') e WHERE e IN (" + namesSQL(adoptNames) + ")), ''), " +
		// Last: tablespace names may hold the separator.
		"coalesce((SELECT string_agg(quote_ident(spcname::text), ', ' ORDER BY 1) FROM pg_tablespace WHERE spcname NOT IN ('pg_default', 'pg_global')), ''))"
}

// legacyFields is how many fields legacyServerSQL's row has.
const legacyFields = 13

// namesSQL lists names (letters, digits, '.', '-', '_' only) as SQL literals.
func namesSQL(names []string) string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = "'" + n + "'"
	}
	return strings.Join(q, ", ")
}

// parseLegacyServer reads legacyServerSQL's row.
func parseLegacyServer(out string) (*LegacyServer, error) {
	f := strings.SplitN(strings.TrimSpace(out), "|", legacyFields)
	if len(f) != legacyFields {
		return nil, fmt.Errorf("unexpected answer (%d fields)", len(f))
	}
	v, err := strconv.Atoi(f[0])
	if err != nil {
		return nil, fmt.Errorf("unexpected server_version_num %q", f[0])
	}
	tl, err := strconv.ParseInt(f[3], 10, 64)
	if err != nil {
		return nil, fmt.Errorf("unexpected timeline %q", f[3])
	}
	s := &LegacyServer{Version: v, InRecovery: f[1] == "true", SystemID: f[2], Timeline: tl, Receiver: f[4],
		Superuser: f[6] == "true", Replication: f[7], SuperVerifier: f[8], AlterSystem: f[9], SlotWALKeep: f[10], Tablespaces: f[12]}
	if f[5] != "" {
		s.Clients = strings.Split(f[5], ",")
	}
	if f[11] != "" {
		s.Taken = strings.Split(f[11], ",")
	}
	return s, nil
}
