package spec

import (
	"fmt"
	"net"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/hashicorp/hcl/v2"
)

// checkCluster checks what spans the blocks of one cluster.
// primaryWritten says whether the file has a primary attribute, primaryAttr is
// that attribute when it decoded without error. settingRanges holds the range
// of each value of c.Settings.
func (d *decoder) checkCluster(block, replicationBlock *hcl.Block, primaryWritten bool, primaryAttr *hcl.Attribute, settingRanges map[string]hcl.Range, c *Cluster) {
	if len(c.Nodes) == 0 {
		d.errorf(block.DefRange, "Cluster Has No Nodes", "Cluster %q declares no node block. Add at least one node, such as node \"db1\" { data = \"/var/local/mypacs/db\" }.", c.Name)
		return
	}
	names := make([]string, 0, len(c.Nodes))
	firstNode := map[string]*Node{}
	unique := c.Nodes[:0]
	nodeDecls := map[string]hcl.Range{}
	inCluster := fmt.Sprintf(" in cluster %q", c.Name)
	for _, n := range c.Nodes {
		if !d.firstDeclared(nodeDecls, n.Name, n.DeclRange, "Duplicate Node", "node", inCluster) {
			continue
		}
		firstNode[n.Name] = n
		names = append(names, n.Name)
		unique = append(unique, n)
	}
	c.Nodes = unique // a duplicate is reported once, not again for its container and data
	switch {
	case !primaryWritten && c.Primary == "":
		d.errorf(block.DefRange, "Missing Primary", "Cluster %q has %d nodes and no primary attribute. Add primary = %q (or the name of the node that should accept writes).", c.Name, len(c.Nodes), c.Nodes[0].Name)
	case primaryAttr != nil && firstNode[c.Primary] == nil:
		d.errorf(primaryAttr.Expr.Range(), "Unknown Primary Node", "The primary %q is not a node of cluster %q, whose nodes are %s.%s", c.Primary, c.Name, quoteList(names), didYouMean(c.Primary, names))
	}
	// A replication block with a password attribute that failed has its own diagnostic.
	if len(c.Nodes) > 1 && c.Replication.Password.IsZero() && (replicationBlock == nil || !hasSecretAttr(attributesOf(replicationBlock))) {
		rng := block.DefRange
		if replicationBlock != nil {
			rng = replicationBlock.DefRange
		}
		d.errorf(rng, "Missing Replication Password", "Cluster %q has standbys, so it needs a replication password. Add a replication block with password_file = \"path\" (a file with mode 0600).", c.Name)
	}
	if c.Superuser.Name != "" && c.Replication.User == c.Superuser.Name {
		userWritten := false
		if replicationBlock != nil {
			_, userWritten = attributesOf(replicationBlock)["user"]
		}
		if userWritten {
			d.errorf(c.Replication.UserRange, "Replication User Is the Superuser", "Cluster %q uses %q both as superuser and as replication user. Give the replication user its own name, such as %q, so that a standby's credentials cannot write.", c.Name, c.Superuser.Name, DefaultReplicationUser)
		} else {
			d.errorf(c.Superuser.NameRange, "Replication User Is the Superuser", "The superuser of cluster %q is named %q, which is also the default replication user, so a standby's credentials could write. Give the superuser another name, or set replication.user to a name of its own.", c.Name, c.Superuser.Name)
		}
	}
	roleDecls := map[string]hcl.Range{}
	for _, r := range c.Roles {
		if r.Name == c.Superuser.Name || r.Name == c.Replication.User {
			d.errorf(r.DeclRange, "Role Name Taken", "The role %q is the superuser or replication user of cluster %q, which pacsd keeps itself. Remove this role block.", r.Name, c.Name)
			continue
		}
		d.firstDeclared(roleDecls, r.Name, r.DeclRange, "Duplicate Role", "role", inCluster)
	}
	d.checkNetworkNames(c)
	accessDecls := map[string]hcl.Range{}
	for _, a := range c.Access {
		d.firstDeclared(accessDecls, a.Name, a.DeclRange, "Duplicate Access Rule", "access rule", inCluster)
	}
	d.checkReplicationCapacity(settingRanges, c)
}

// checkReplicationCapacity refuses settings that leave the primary too few
// WAL senders or replication slots for the cluster's standbys. Each standby
// streams through one WAL sender and keeps one physical replication slot on
// the primary; pg_basebackup -X stream, which builds or rebuilds a standby
// (one at a time, on the standby's own slot), holds two WAL senders, one
// more than the standby it replaces. So a cluster of n standbys needs
// max_wal_senders >= n + 1 and max_replication_slots >= n.
//
// Only values written in settings are checked: when settings leave a
// parameter out, pacsd writes max(10, 2 × nodes) for both (see
// pgconf.Params), which is always enough, so PostgreSQL's default of 10 never
// applies. A cluster without standbys is not checked: it starts no WAL
// sender, and adding a standby brings the check with it.
func (d *decoder) checkReplicationCapacity(settingRanges map[string]hcl.Range, c *Cluster) {
	standbys := len(c.Nodes) - 1
	if standbys < 1 {
		return
	}
	have := func(name string) (int, hcl.Range, bool) {
		v, set := c.Settings[name]
		if !set {
			return 0, hcl.Range{}, false
		}
		n, err := strconv.Atoi(v)
		return n, settingRanges[name], err == nil
	}
	counted := fmt.Sprintf("%d standbys", standbys)
	if standbys == 1 {
		counted = "1 standby"
	}
	if n, rng, ok := have("max_wal_senders"); ok && n < standbys+1 {
		d.errorf(rng, "Too Few WAL Senders",
			"Cluster %q has %s, so max_wal_senders must be at least %d, not %d: each standby streams WAL through one WAL sender of the primary, and pg_basebackup needs one more while pacsd builds or rebuilds a standby. Set max_wal_senders = %d or more, or leave it out of settings (pacsd then sets %d).",
			c.Name, counted, standbys+1, n, standbys+1, max(10, 2*len(c.Nodes)))
	}
	if n, rng, ok := have("max_replication_slots"); ok && n < standbys {
		d.errorf(rng, "Too Few Replication Slots",
			"Cluster %q has %s, so max_replication_slots must be at least %d, not %d: pacsd keeps one physical replication slot on the primary for each standby. Set max_replication_slots = %d or more, or leave it out of settings (pacsd then sets %d).",
			c.Name, counted, standbys, n, standbys, max(10, 2*len(c.Nodes)))
	}
}

// checkOpenAccess looks at the access rules written in a cluster block, in
// the order pg_hba.conf holds them (the first rule that matches decides). The
// first rule that admits every database and every user from every address
// (0.0.0.0/0, ::/0 or all) with a password method gets a warning, unless a
// reject rule before it narrows it: anyone who reaches a published port could
// then try passwords for every role. Any other rule whose address is a CIDR of
// prefix length 0 gets the milder warning that it admits every address.
//
// The default rule of a cluster without access blocks (host all all all
// scram-sha-256) is not checked: it is pacsd's documented default, not a
// choice written in the file.
func (d *decoder) checkOpenAccess(c *Cluster) {
	warned, narrowed := false, false
	for _, a := range c.Access {
		everyCIDR := false
		if ip, network, err := net.ParseCIDR(a.Address); err == nil && ip.Equal(network.IP) { // else checkAddress refuses it
			ones, _ := network.Mask.Size()
			everyCIDR = ones == 0
		}
		everyAddress := everyCIDR || a.Address == "all"
		admits := a.Method == "scram-sha-256" || a.Method == "md5"
		switch {
		case everyAddress && admits && a.Database == "all" && a.User == "all" && !warned && !narrowed:
			warned = true
			d.warnf(a.AddressRange, "Access Open to Every Client",
				"The access rule %q admits every database and every user from every address (%q), and no reject rule before it narrows it: anyone who reaches a node's published port can try passwords for every role. An archive on the cluster network %q that connects as the superuser %q needs no access rule (pacsd admits the superuser from the cluster network); any other archive needs only a rule with database = %q, user = %q and the address of its network, such as \"10.1.0.0/16\".",
				a.Name, a.Address, c.Network, c.Superuser.Name, c.Database, c.Superuser.Name)
		case everyCIDR:
			d.warnf(a.AddressRange, "Access Open to Every Address", "The access rule %q admits clients from every address. Limit it to the networks the archive connects from, such as \"10.1.0.0/16\".", a.Name)
		}
		narrowed = narrowed || a.Method == "reject"
	}
}

// networkName is a DNS name pacsd gives on a cluster's network: a client
// alias (node nil), or a node's name or container name.
type networkName struct {
	what string // "primary_alias", "standby_alias", "node name", "container name"
	node *Node
	rng  hcl.Range
}

// nameOf returns the node's name, "" for nil.
func (n *Node) nameOf() string {
	if n == nil {
		return ""
	}
	return n.Name
}

// checkNetworkNames refuses two containers, or a container and a client
// alias, answering to one name on the cluster's network. pacsd gives each
// node's container its node name as an alias and the alias of its role
// (clients.primary_alias or clients.standby_alias, shared by the standbys),
// and Docker resolves the container name too; names are compared without
// regard to case, as DNS does. Two nodes' container names are left to the
// per-engine check of container names; in a cluster of one node, the aliases
// can only ever name that node, so they may equal its names.
func (d *decoder) checkNetworkNames(c *Cluster) {
	given := map[string]networkName{}
	give := func(name string, n networkName) {
		key := strings.ToLower(name)
		first, taken := given[key]
		switch {
		case name == "":
			return
		case !taken:
			given[key] = n
			return
		case first.node != nil && first.node == n.node, first.node != nil && first.what == "container name" && n.what == "container name":
			return
		case first.node == nil && len(c.Nodes) == 1:
			return // the one node is the only container that can ever have the alias
		}
		summary, hint := "", ""
		switch {
		case first.node == nil && n.what == "node name":
			summary, hint = "Alias Clashes with Node Name", fmt.Sprintf("Rename the node, or set clients.%s to another name.", first.what)
		case first.node == nil:
			summary, hint = "Alias Clashes with Container Name", fmt.Sprintf("Choose another container_name, or set clients.%s to another name.", first.what)
		case n.what == "node name":
			summary, hint = "Node Name Clashes with Container Name", "Rename the node, or choose another container_name."
		default:
			summary, hint = "Container Name Clashes with Node Name", "Choose another container_name, or rename the node."
		}
		firstWhat := fmt.Sprintf("the %s of node %q (declared at %s)", first.what, first.node.nameOf(), first.rng)
		switch {
		case first.node == nil && first.rng == c.DeclRange:
			firstWhat = fmt.Sprintf("the client alias %s (its default: clients.%s is not set)", first.what, first.what)
		case first.node == nil:
			firstWhat = fmt.Sprintf("the client alias %s (set at %s)", first.what, first.rng)
		}
		d.errorf(n.rng, summary,
			"The %s %q of node %q is also %s on the network %q of cluster %q, where pacsd gives every node's container its node name and the client alias of its role: the name would resolve to more than one container. %s",
			n.what, name, n.node.Name, firstWhat, c.Network, c.Name, hint)
	}
	give(c.Clients.PrimaryAlias, networkName{what: "primary_alias", rng: c.Clients.PrimaryRange})
	if c.Clients.StandbyAlias != c.Clients.PrimaryAlias { // else reported as a duplicate client alias
		give(c.Clients.StandbyAlias, networkName{what: "standby_alias", rng: c.Clients.StandbyRange})
	}
	for _, n := range c.Nodes {
		give(n.Name, networkName{what: "node name", node: n, rng: n.DeclRange})
		give(n.Container, networkName{what: "container name", node: n, rng: n.ContainerRange})
	}
}

// firstDeclared records the declaration of name in seen, or reports a
// duplicate that names the first declaration; it reports whether name was new.
// what is the kind of thing ("node"), where says where names must be unique
// (" in cluster \"pacs\"", or "" for the whole file).
func (d *decoder) firstDeclared(seen map[string]hcl.Range, name string, rng hcl.Range, summary, what, where string) bool {
	if first, dup := seen[name]; dup {
		d.errorf(rng, summary, "There is already a %s named %q%s, declared at %s. Give each %s its own name, or merge the two blocks.", what, name, where, first, what)
		return false
	}
	seen[name] = rng
	return true
}

// attributesOf returns the attributes written in a block, without applying a schema.
func attributesOf(block *hcl.Block) hcl.Attributes {
	attrs, _ := block.Body.JustAttributes()
	return attrs
}

func quoteList(names []string) string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = fmt.Sprintf("%q", n)
	}
	return strings.Join(q, ", ")
}

// engineName names the Docker engine a node runs on ("" is the local engine).
func engineName(host string) string {
	if host == "" {
		return "the local Docker engine"
	}
	return fmt.Sprintf("host %q", host)
}

// nodeEngines says on which Docker engines a node may run: the normalised
// endpoints of its host block, or those of the local engine.
type nodeEngines struct {
	local []string         // the local engine's endpoints
	hosts map[string]*Host // the host blocks, by name
}

// of returns the keys of the engine node n runs on: the normalised endpoints
// of its host block, of the local engine when it has none, or one key of its
// own for a host that is unknown or whose endpoint is not valid (reported
// elsewhere).
func (e nodeEngines) of(n *Node) []string {
	if n.Host == "" {
		return e.local
	}
	if h := e.hosts[n.Host]; h != nil && h.Engine != "" {
		return []string{h.Engine}
	}
	return []string{"host\x00" + n.Host}
}

// same returns a sentence saying that nodes a and b, which run on one
// engine, name different hosts for it, or "" when they name the same host.
func (e nodeEngines) same(a, b *Node) string {
	switch {
	case a.Host == b.Host:
		return ""
	case a.Host == "" || b.Host == "":
		h := e.hosts[max(a.Host, b.Host)]
		return fmt.Sprintf(" Host %q names %s, the local Docker engine that nodes without host run on.", h.Name, h.Docker)
	}
	return fmt.Sprintf(" Hosts %q and %q name the same Docker engine (%s and %s).", a.Host, b.Host, e.hosts[a.Host].Docker, e.hosts[b.Host].Docker)
}

// checkFile checks what spans clusters and hosts: names, references and host
// resources that must be unique across the whole file. Container names, host
// ports, volumes and data directories must be unique per Docker engine, and
// two host blocks, or a host block and the local engine of nodes without
// host, may name one engine: they are compared by the engine's normalised
// endpoint, not by the host's name.
func (d *decoder) checkFile(f *File) {
	addressRanges := d.takeHostAddressRanges()
	engines := nodeEngines{local: localEngines(), hosts: map[string]*Host{}}
	hostDecls := map[string]hcl.Range{}
	engineHosts := map[string]*Host{}
	var hostNames []string
	for _, h := range f.Hosts {
		if !d.firstDeclared(hostDecls, h.Name, h.DeclRange, "Duplicate Host", "host", "") {
			continue
		}
		engines.hosts[h.Name] = h
		hostNames = append(hostNames, h.Name)
		if h.Engine == "" {
			continue
		}
		if first := engineHosts[h.Engine]; first != nil {
			d.errorf(h.DockerRange, "Duplicate Docker Endpoint",
				"Host %q names the Docker engine %q, which host %q (declared at %s) already names as %q. Two host blocks on one engine would let two nodes share a data directory, a container name or a host port: run the nodes of both on host %q, and remove this host block.", h.Name, h.Docker, first.Name, first.DeclRange, first.Docker, first.Name)
			continue
		}
		engineHosts[h.Engine] = h
	}
	type claim struct {
		rng hcl.Range
		by  string
		n   *Node
	}
	clusterDecls := map[string]hcl.Range{}
	networks := map[string]claim{}
	// Per engine: container names, host ports, data directories, volumes.
	claims := map[string]claim{}
	// take claims what (such as "port\x0015432") on the engine of n for by, or
	// reports that it is taken; it reports whether it was free.
	take := func(n *Node, what string, rng hcl.Range, by, summary, format string, args ...any) bool {
		keys := engines.of(n)
		for _, k := range keys {
			if first, dup := claims[k+"\x00"+what]; dup {
				d.errorf(rng, summary, format+" It is already used by %s, declared at %s.%s", append(args, first.by, first.rng, engines.same(n, first.n))...)
				return false
			}
		}
		for _, k := range keys {
			claims[k+"\x00"+what] = claim{rng, by, n}
		}
		return true
	}
	var dataDirs []claimedDir
	var clusters []*Cluster // the clusters not refused as duplicates
	for _, c := range f.Clusters {
		if !d.firstDeclared(clusterDecls, c.Name, c.DeclRange, "Duplicate Cluster", "cluster", "") {
			continue
		}
		clusters = append(clusters, c)
		if f.EveryHost() && c.Failover.Failsafe {
			if host, _, err := net.SplitHostPort(f.Daemon.Listen); err == nil && !unspecifiedHost(host) {
				d.errorf(c.DeclRange, "Failsafe Needs a Reachable Listen Address",
					"Cluster %q sets failover.failsafe, so while etcd cannot be reached the pacsd of the primary's host keeps its primary only as long as the pacsd of every other host of the cluster confirms it over HTTP, at each host's address and the port of daemon.listen; daemon.listen %q listens on one address only, which the one file of every host cannot give for each (a loopback address is reached by no other host). Listen on all addresses (\"0.0.0.0:9187\"), or remove failsafe.", c.Name, f.Daemon.Listen)
			}
		}
		if lt := c.TLS.Lifetime.Duration; lt >= MinCertLifetime && f.Daemon.Resync.Duration > 0 && lt/3 <= f.Daemon.Resync.Duration {
			d.warnf(c.DeclRange, "Certificates Renewed Late",
				"The node certificates of cluster %q live %s and are renewed once a third of that (%s) is left, but pacsd run looks at the cluster only every %s (daemon.resync) when nothing else happens: a certificate may expire before a pass renews it. Give tls.cert_lifetime at least three times daemon.resync.",
				c.Name, shortDuration(lt), shortDuration(lt/3), shortDuration(f.Daemon.Resync.Duration))
		}
		if first, dup := networks[c.Network]; dup {
			d.errorf(c.NetworkRange, "Duplicate Network", "Cluster %q would use the Docker network %q, which %s already uses (declared at %s). pacsd owns one network per cluster: set network to another name.", c.Name, c.Network, first.by, first.rng)
		} else {
			networks[c.Network] = claim{c.NetworkRange, fmt.Sprintf("cluster %q", c.Name), nil}
		}
		// Counted by host name: nodes on different host blocks replicate
		// through published ports, even when the blocks name one engine.
		hostsUsed := map[string]bool{}
		for _, n := range c.Nodes {
			hostsUsed[n.Host] = true
		}
		// A node's container name is its identity in its TLS certificate
		// (pacsd verifies each server by it) and its name on the cluster
		// network: one per node of the cluster, on every host, and a DNS
		// label of at most 63 bytes.
		names := map[string]*Node{}
		for _, n := range c.Nodes {
			if first, dup := names[n.Container]; dup && first.Host != n.Host {
				d.errorf(n.ContainerRange, "Duplicate Container Name in Cluster",
					"Nodes %q and %q of cluster %q both run in a container named %q, on different hosts. pacsd verifies each node's TLS certificate by its container name, so one node could pass for the other. Give one of them another container_name.", first.Name, n.Name, c.Name, n.Container)
			} else if !dup {
				names[n.Container] = n
			}
			if len(n.Container) > 63 {
				d.errorf(n.ContainerRange, "Container Name Too Long",
					"The container name %q of node %q in cluster %q is %d bytes long; it is the node's name on the network and in its TLS certificate, a DNS label of at most 63 bytes. Set a shorter container_name, or shorten the cluster or node name.", n.Container, n.Name, c.Name, len(n.Container))
			}
		}
		for _, n := range c.Nodes {
			by := fmt.Sprintf("node %q of cluster %q on %s", n.Name, c.Name, engineName(n.Host))
			if h := engines.hosts[n.Host]; h != nil {
				n.Address = h.Address
			}
			if n.Host == "" && f.EveryHost() {
				hint := " Declare a host block with the address of each machine, and name one in the node with host = \"NAME\"."
				if len(hostNames) > 0 {
					hint = fmt.Sprintf(" Add host = \"NAME\" naming one of the host blocks %s.", quoteList(hostNames))
				}
				d.errorf(n.DeclRange, "Node Without Host",
					"Node %q of cluster %q has no host attribute. With pacsd on every host (daemon.etcd), each node names the host whose pacsd runs it: the local Docker engine would mean a different machine for each pacsd.%s", n.Name, c.Name, hint)
			}
			if n.Host != "" && engines.hosts[n.Host] == nil {
				hint := didYouMean(n.Host, hostNames)
				if hint == "" {
					hint = " Declare a host block with that name, or leave host out to use the local Docker engine."
				}
				d.errorf(n.HostRange, "Unknown Host", "Node %q of cluster %q names the host %q, which is not declared.%s", n.Name, c.Name, n.Host, hint)
			}
			engine := engineName(n.Host)
			containerFree := take(n, "container\x00"+n.Container, n.ContainerRange, by, "Duplicate Container Name",
				"The container name %q on %s is taken.", n.Container, engine)
			if n.Port != 0 {
				take(n, fmt.Sprintf("port\x00%d", n.Port), n.PortRange, by, "Duplicate Host Port",
					"The host port %d on %s is taken.", n.Port, engine)
			}
			// A volume named after a taken container name is taken too; that is one mistake, reported once.
			if n.Volume != "" && (containerFree || n.Volume != n.Container+"-data") {
				take(n, "volume\x00"+n.Volume, n.DataRange, by, "Duplicate Volume",
					"The volume %q on %s is taken; two nodes never share data.", n.Volume, engine)
			}
			if n.Data != "" {
				dataDirs = append(dataDirs, claimedDir{n, by})
			}
			switch {
			case n.Host != "" && engines.hosts[n.Host] != nil && n.Port == 0:
				d.errorf(n.DeclRange, "Node on a Host Block Without Port",
					"Node %q of cluster %q runs on host %q, and pacsd reaches the PostgreSQL of a node on a host block at the host's address and the node's published port. Give node %q a port, such as 15432, or leave host out to run it on the local Docker engine.", n.Name, c.Name, n.Host, n.Name)
			case len(hostsUsed) > 1 && (n.Host == "" && !f.EveryHost() || n.Port == 0):
				d.errorf(n.DeclRange, "Node Unreachable from Other Hosts",
					"Cluster %q spans several Docker engines, so its nodes replicate through published ports on host addresses. Give node %q a port, and run it on a host block with an address (a host block may name this machine's engine too).", c.Name, n.Name)
			}
		}
	}
	d.checkDataDirs(dataDirs, engines)
	d.checkHostAddresses(clusters, f.Hosts, engines, addressRanges)
}

type claimedDir struct {
	n  *Node
	by string
}

// checkDataDirs refuses two nodes on one engine whose data directories are the same or nested.
func (d *decoder) checkDataDirs(dirs []claimedDir, engines nodeEngines) {
	for i, a := range dirs {
		for _, b := range dirs[:i] {
			ka, kb := engines.of(a.n), engines.of(b.n)
			if !slices.ContainsFunc(ka, func(k string) bool { return slices.Contains(kb, k) }) {
				continue
			}
			switch {
			case a.n.Data == b.n.Data:
				d.errorf(a.n.DataRange, "Duplicate Data Directory", "The data directory %q on %s is already used by %s, declared at %s; two nodes never share data.%s Give each node its own directory.", a.n.Data, engineName(a.n.Host), b.by, b.n.DataRange, engines.same(a.n, b.n))
			case within(a.n.Data, b.n.Data) || within(b.n.Data, a.n.Data):
				d.errorf(a.n.DataRange, "Nested Data Directories", "The data directory %q on %s and the data directory %q of %s (at %s) lie inside one another.%s Give each node a directory of its own, side by side.", a.n.Data, engineName(a.n.Host), b.n.Data, b.by, b.n.DataRange, engines.same(a.n, b.n))
			}
		}
	}
}

// within reports whether path lies strictly inside dir.
func within(path, dir string) bool {
	rel, err := filepath.Rel(dir, path)
	return err == nil && rel != "." && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator))
}

// hostAddressRange is the Extra of a placeholder diagnostic by which
// decodeHostBlock hands the range of a host's valid address attribute to
// checkFile, which can judge the address only once it knows the clusters
// on the host. checkFile takes every placeholder out of the diagnostics
// (takeHostAddressRanges) before Parse returns them.
type hostAddressRange struct{ host *Host }

// keepHostAddressRange records rng as the range of the address attribute of h.
func (d *decoder) keepHostAddressRange(h *Host, rng hcl.Range) {
	d.diags = append(d.diags, &hcl.Diagnostic{Severity: hcl.DiagInvalid, Subject: rng.Ptr(), Extra: hostAddressRange{h}})
}

// takeHostAddressRanges removes the placeholders of keepHostAddressRange
// from the diagnostics and returns the ranges they hold, by host.
func (d *decoder) takeHostAddressRanges() map[*Host]hcl.Range {
	ranges := map[*Host]hcl.Range{}
	kept := d.diags[:0]
	for _, diag := range d.diags {
		if a, ok := diag.Extra.(hostAddressRange); ok {
			ranges[a.host] = *diag.Subject
			continue
		}
		kept = append(kept, diag)
	}
	clear(d.diags[len(kept):])
	d.diags = kept
	return ranges
}

// checkHostAddresses refuses the host addresses that nodes of a cluster on
// several host blocks cannot replicate through. Such nodes reach each other
// at their hosts' addresses and published ports: a standby's
// primary_conninfo names host=ADDRESS port=PORT of its primary's node,
// pg_hba.conf admits replication from each host's address as a /32 (/128)
// CIDR, and each container publishes its port on its host's address. So a
// host with nodes of such a cluster needs the IP address the other hosts
// reach it at: not a loopback or unspecified address, which names whatever
// machine or container uses it, and not a host name, which pg_hba.conf
// matches only by reverse DNS inside the container (where Docker's DNS does
// not know the hosts). Two nodes of the cluster on different host blocks
// reached at one address and port are refused; two host blocks with one
// address and nodes of one such cluster on different ports get a warning,
// since neither pg_hba.conf nor pacsd, which reach nodes by address, can
// tell the hosts apart.
//
// A cluster on one host block (or none) keeps every address decodeHostBlock
// accepts: its nodes replicate on the cluster network. Duplicate hosts,
// addresses already refused, and two host blocks on one Docker engine
// (refused as a duplicate endpoint, with its duplicate host ports) are
// passed over, so that one mistake gets one diagnostic. ranges holds the
// range of each host's address (takeHostAddressRanges); a host without one
// has no valid address.
func (d *decoder) checkHostAddresses(clusters []*Cluster, hosts []*Host, engines nodeEngines, ranges map[*Host]hcl.Range) {
	usedBy := map[*Host][]string{} // the clusters on several host blocks with nodes on each host
	for _, c := range clusters {
		if !c.SpansHosts() {
			continue
		}
		for _, n := range c.Nodes {
			if h := engines.hosts[n.Host]; h != nil && !slices.Contains(usedBy[h], c.Name) {
				usedBy[h] = append(usedBy[h], c.Name)
			}
		}
	}
	var checked []*Host       // the hosts of usedBy with an address, in file order
	ips := map[*Host]net.IP{} // the address of each host of checked that other hosts can reach it at
	for _, h := range hosts {
		rng, valid := ranges[h]
		if engines.hosts[h.Name] != h || len(usedBy[h]) == 0 || !valid {
			continue
		}
		checked = append(checked, h)
		clusters, have := clusterNames(usedBy[h])
		spans := fmt.Sprintf("%s %s nodes on it and on other host blocks, which replicate through the hosts' addresses and published ports", clusters, have)
		ip := net.ParseIP(h.Address)
		switch {
		case ip == nil && loopbackName(h.Address), ip != nil && (ip.IsLoopback() || ip.IsUnspecified()):
			summary, kind := "Loopback Host Address", "loopback"
			if ip != nil && ip.IsUnspecified() {
				summary, kind = "Unspecified Host Address", "unspecified"
			}
			d.errorf(rng, summary,
				"Host %q has the %s address %q, and %s. From any other host, and inside a container, a connection to %q reaches that machine or container itself, not host %q: a standby would follow itself instead of its primary, and pg_hba.conf would admit replication from no other host. Give the IP address at which the other hosts reach host %q, such as \"10.0.0.12\".",
				h.Name, kind, h.Address, spans, h.Address, h.Name, h.Name)
		case ip == nil:
			d.errorf(rng, "Host Address Is Not an IP Address",
				"Host %q has the address %q, a host name, and %s. pg_hba.conf admits replication from each host's address, and PostgreSQL matches a host name there only by a reverse DNS lookup of the client's address inside the container, where Docker's DNS does not know the hosts' names, so the standbys would be refused. Give the IP address at which the other hosts reach host %q, such as \"10.0.0.12\" (pacsd publishes the ports of its nodes there too).",
				h.Name, h.Address, spans, h.Name)
		default:
			ips[h] = ip
		}
	}
	type hostPair struct{ a, b *Host }
	refused := map[hostPair]bool{} // host pairs with nodes refused for one address and port
	for _, c := range clusters {
		if !c.SpansHosts() {
			continue
		}
		for i, n := range c.Nodes {
			for _, m := range c.Nodes[:i] {
				hn, hm := engines.hosts[n.Host], engines.hosts[m.Host]
				if hn == hm || ips[hn] == nil || ips[hm] == nil || !ips[hn].Equal(ips[hm]) || n.Port != m.Port || n.Port == 0 || sameEngine(engines, n, m) {
					continue
				}
				refused[hostPair{hm, hn}], refused[hostPair{hn, hm}] = true, true
				reached := net.JoinHostPort(ips[hn].String(), strconv.Itoa(n.Port))
				d.errorf(n.PortRange, "Nodes Share an Address and Port",
					"Node %q of cluster %q on host %q and node %q on host %q (declared at %s) are both reached at %s, because hosts %q and %q have the same address: a standby that follows one of them could reach itself or the wrong node, and the two containers would publish one port on one address. Give each host block the address of its own machine, or give node %q another port.",
					n.Name, c.Name, hn.Name, m.Name, hm.Name, m.DeclRange, reached, hm.Name, hn.Name, n.Name)
				break // one diagnostic per node
			}
		}
	}
	for i, b := range checked {
		for _, a := range checked[:i] {
			if ips[a] == nil || ips[b] == nil || !ips[a].Equal(ips[b]) || refused[hostPair{a, b}] || a.Engine != "" && a.Engine == b.Engine {
				continue
			}
			var shared []string
			for _, name := range usedBy[b] {
				if slices.Contains(usedBy[a], name) {
					shared = append(shared, name)
				}
			}
			if len(shared) == 0 {
				continue
			}
			clusters, have := clusterNames(shared)
			d.warnf(ranges[b], "Hosts Share an Address",
				"Hosts %q and %q (declared at %s) both have the address %q, and %s %s nodes on both. pg_hba.conf admits replication by address and pacsd reaches each node at its host's address and port, so neither can tell the two hosts apart: only the nodes' ports keep them apart. If they are two machines, give each host block the address of its own machine; if they are one machine with two Docker engines, keep the ports of their nodes distinct.",
				b.Name, a.Name, a.DeclRange, b.Address, clusters, have)
		}
	}
}

// sameEngine reports whether nodes a and b run on one Docker engine (a
// duplicate host port between them is reported as such).
func sameEngine(engines nodeEngines, a, b *Node) bool {
	kb := engines.of(b)
	return slices.ContainsFunc(engines.of(a), func(k string) bool { return slices.Contains(kb, k) })
}

// clusterNames returns `cluster "a"` and "has", or `clusters "a", "b"` and "have".
func clusterNames(names []string) (string, string) {
	if len(names) == 1 {
		return fmt.Sprintf("cluster %q", names[0]), "has"
	}
	return "clusters " + quoteList(names), "have"
}

// loopbackName reports whether the host name a names the loopback interface
// (localhost, or a name under .localhost, RFC 6761).
func loopbackName(a string) bool {
	a = strings.ToLower(a)
	return a == "localhost" || strings.HasSuffix(a, ".localhost")
}

// unspecifiedHost reports whether a listen address's host is every address
// ("", 0.0.0.0 or ::).
func unspecifiedHost(host string) bool {
	ip := net.ParseIP(host)
	return host == "" || ip != nil && ip.IsUnspecified()
}
