package spec

import (
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"net/url"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"
)

var fileSchema = &hcl.BodySchema{
	Blocks: []hcl.BlockHeaderSchema{
		{Type: "cluster", LabelNames: []string{"name"}},
		{Type: "host", LabelNames: []string{"name"}},
		{Type: "daemon"},
	},
}

var clusterSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{
		{Name: "image", Required: true},
		{Name: "network"},
		{Name: "primary"},
		{Name: "database", Required: true},
		{Name: "settings"},
	},
	Blocks: []hcl.BlockHeaderSchema{
		{Type: "superuser"},
		{Type: "replication"},
		{Type: "access", LabelNames: []string{"name"}},
		{Type: "role", LabelNames: []string{"name"}},
		{Type: "clients"},
		{Type: "failover"},
		{Type: "tls"},
		{Type: "node", LabelNames: []string{"name"}},
	},
}

var superuserSchema = &hcl.BodySchema{
	Attributes: append([]hcl.AttributeSchema{{Name: "name", Required: true}}, secretAttrs...),
}

var replicationSchema = &hcl.BodySchema{
	Attributes: append([]hcl.AttributeSchema{{Name: "user"}, {Name: "synchronous"}, {Name: "max_slot_wal"}}, secretAttrs...),
}

var accessSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{{Name: "database"}, {Name: "user"}, {Name: "address", Required: true}, {Name: "method"}, {Name: "ssl"}},
}

var roleSchema = &hcl.BodySchema{
	Attributes: append([]hcl.AttributeSchema{{Name: "login"}, {Name: "member_of"}, {Name: "ensure"}}, secretAttrs...),
}

var clientsSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{{Name: "primary_alias"}, {Name: "standby_alias"}},
}

var failoverSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{{Name: "automatic"}, {Name: "max_lag"}, {Name: "after"}, {Name: "ttl"}, {Name: "failsafe"}},
}

var nodeSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{{Name: "port"}, {Name: "data"}, {Name: "volume"}, {Name: "host"}, {Name: "container_name"}},
}

var hostSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{{Name: "docker", Required: true}, {Name: "address", Required: true}},
	Blocks:     []hcl.BlockHeaderSchema{{Type: "tls"}, {Type: "ssh"}},
}

// everyHostHostSchema is hostSchema with pacsd on every host (daemon.etcd),
// where docker is optional: each pacsd drives its own host's engine, by
// default the one of its environment.
var everyHostHostSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{{Name: "docker"}, {Name: "address", Required: true}},
	Blocks:     hostSchema.Blocks,
}

var sshSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{{Name: "identity_file"}, {Name: "known_hosts"}},
}

var tlsSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{{Name: "ca", Required: true}, {Name: "cert", Required: true}, {Name: "key", Required: true}},
}

var daemonSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{{Name: "listen"}, {Name: "state_dir"}, {Name: "resync"}, {Name: "token_file"}},
	Blocks:     []hcl.BlockHeaderSchema{{Type: "etcd"}, {Type: "tls"}},
}

var etcdSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{{Name: "endpoints", Required: true}, {Name: "prefix"}},
	Blocks:     []hcl.BlockHeaderSchema{{Type: "tls"}},
}

var (
	// namePattern is what cluster, node and host names may look like: they become
	// parts of container names, DNS aliases and replication slot names.
	namePattern = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,47}$`)
	// dockerNamePattern is what Docker accepts for container, volume and network
	// names (2 characters at least), bounded in length.
	dockerNamePattern = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]{1,127}$`)
	// aliasPattern is a DNS label.
	aliasPattern = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)
)

// checkName reports a diagnostic when a block label is not a valid name.
func (d *decoder) checkName(block *hcl.Block, what string) bool {
	name := block.Labels[0]
	if namePattern.MatchString(name) {
		return true
	}
	d.errorf(block.LabelRanges[0], "Invalid Name",
		"The %s name %q is not valid. Use 1 to 48 lower-case letters, digits, \"-\" or \"_\", starting with a letter or digit: the name becomes part of container names and DNS aliases.", what, name)
	return false
}

// single returns the first block of type typ and reports every further one as a duplicate.
func (d *decoder) single(blocks hcl.Blocks, typ, where string) *hcl.Block {
	var first *hcl.Block
	for _, b := range blocks {
		if b.Type != typ {
			continue
		}
		if first == nil {
			first = b
			continue
		}
		name := titleCase(typ)
		if typ == "tls" || typ == "ssh" {
			name = strings.ToUpper(typ)
		}
		d.errorf(b.DefRange, fmt.Sprintf("Duplicate %s Block", name),
			"%s may hold only one %s block; the first is at %s. Merge the two blocks into one.", where, typ, first.DefRange)
	}
	return first
}

// decodeFile decodes the top level of the topology file.
func (d *decoder) decodeFile(body hcl.Body) *File {
	file := &File{Hosts: []*Host{}, Daemon: Daemon{Listen: DefaultListen, StateDir: DefaultStateDir, Resync: Duration{DefaultResync}}}
	content := d.content(body, fileSchema)
	// The daemon block first: whether it has an etcd block (pacsd on every
	// host) changes what host and failover blocks must say.
	if b := d.single(content.Blocks, "daemon", "The topology file"); b != nil {
		d.decodeDaemonBlock(b, &file.Daemon)
	}
	d.everyHost = file.Daemon.Etcd != nil
	for _, b := range content.Blocks {
		switch b.Type {
		case "cluster":
			if c := d.decodeClusterBlock(b); c != nil {
				file.Clusters = append(file.Clusters, c)
			}
		case "host":
			if h := d.decodeHostBlock(b); h != nil {
				file.Hosts = append(file.Hosts, h)
			}
		}
	}
	d.checkStateDirApart(file)
	return file
}

// checkStateDirApart refuses a state directory that is a node's data
// directory, lies inside one or holds one: pacsd's record and keys would
// sit in PostgreSQL's data (a base backup copies them, a rebuild moves them
// aside), or the commands that create the state directory would change the
// owner and mode of PostgreSQL's.
func (d *decoder) checkStateDirApart(file *File) {
	state := filepath.Clean(file.Daemon.StateDir)
	if !filepath.IsAbs(state) {
		return
	}
	for _, c := range file.Clusters {
		for _, n := range c.Nodes {
			if n.Data == "" || !filepath.IsAbs(n.Data) {
				continue
			}
			data := filepath.Clean(n.Data)
			if pathWithin(state, data) || pathWithin(data, state) {
				d.errorf(n.DataRange, "State Directory Overlaps Data",
					"The data directory %s of node %q and pacsd's state directory %s (daemon.state_dir) overlap. Give each a directory of its own, such as %q for the state.", data, n.Name, state, DefaultStateDir)
			}
		}
	}
}

// pathWithin reports whether path is dir or below it (both clean and absolute).
func pathWithin(path, dir string) bool {
	return path == dir || strings.HasPrefix(path, strings.TrimSuffix(dir, "/")+"/")
}

// decodeClusterBlock decodes a cluster block and the blocks inside it.
func (d *decoder) decodeClusterBlock(block *hcl.Block) *Cluster {
	c := &Cluster{
		Name:         block.Labels[0],
		Network:      block.Labels[0],
		NetworkRange: block.DefRange,
		Superuser:    Credentials{NameRange: block.DefRange},
		Replication:  Replication{User: DefaultReplicationUser, MaxSlotWAL: DefaultMaxSlotWAL, UserRange: block.DefRange},
		Settings:     map[string]string{},
		Roles:        []*Role{},
		Clients:      Clients{PrimaryAlias: DefaultPrimaryAlias, StandbyAlias: DefaultStandbyAlias, PrimaryRange: block.DefRange, StandbyRange: block.DefRange},
		Failover:     Failover{MaxLag: DefaultMaxLag, After: Duration{DefaultFailoverAfter}, TTL: Duration{DefaultFailoverTTL}},
		TLS:          PostgresTLS{Lifetime: Duration{DefaultCertLifetime}},
		DeclRange:    block.DefRange,
	}
	d.checkName(block, "cluster")
	where := fmt.Sprintf("Cluster %q", c.Name)
	content := d.content(block.Body, clusterSchema)

	if attr := d.str(content.Attributes, "image", &c.Image); attr != nil {
		d.checkImage(attr, c)
	}
	if attr := d.str(content.Attributes, "network", &c.Network); attr != nil {
		c.NetworkRange = attr.Expr.Range()
		if !dockerNamePattern.MatchString(c.Network) {
			d.errorf(attr.Expr.Range(), "Invalid Network Name", "The network name %q is not valid for Docker. Use 2 to 128 letters, digits, \"_\", \".\" or \"-\", starting with a letter or digit.", c.Network)
		}
	}
	primaryAttr := d.str(content.Attributes, "primary", &c.Primary)
	_, primaryWritten := content.Attributes["primary"]
	if attr := d.str(content.Attributes, "database", &c.Database); attr != nil {
		d.checkIdentifier(attr.Expr.Range(), c.Database, "database")
	}
	settingRanges := map[string]hcl.Range{}
	if attr, ok := content.Attributes["settings"]; ok {
		settingRanges = d.decodeSettings(attr, c)
	}

	if b := d.single(content.Blocks, "superuser", where); b != nil {
		d.decodeSuperuserBlock(b, c)
	} else {
		d.errorf(block.DefRange, "Missing Superuser Block",
			"Cluster %q has no superuser block. Add one with the name and password_file of the superuser (POSTGRES_USER and POSTGRES_PASSWORD_FILE of the image).", c.Name)
	}
	replicationBlock := d.single(content.Blocks, "replication", where)
	if replicationBlock != nil {
		d.decodeReplicationBlock(replicationBlock, c)
	}
	if b := d.single(content.Blocks, "clients", where); b != nil {
		d.decodeClientsBlock(b, c)
	}
	if b := d.single(content.Blocks, "failover", where); b != nil {
		d.decodeFailoverBlock(b, c)
	}
	if b := d.single(content.Blocks, "tls", where); b != nil {
		d.decodePostgresTLSBlock(b, c)
	}
	for _, b := range content.Blocks {
		switch b.Type {
		case "access":
			if a := d.decodeAccessBlock(b); a != nil {
				c.Access = append(c.Access, a)
			}
		case "role":
			if r := d.decodeRoleBlock(b, c); r != nil {
				c.Roles = append(c.Roles, r)
			}
		case "node":
			if n := d.decodeNodeBlock(b, c); n != nil {
				c.Nodes = append(c.Nodes, n)
			}
		}
	}
	d.checkOpenAccess(c) // before the default rule is added: only written rules are checked
	if len(c.Access) == 0 {
		c.Access = []*Access{{Name: "default", Database: "all", User: "all", Address: "all", Method: DefaultAccessMethod, SSL: true, DeclRange: block.DefRange, AddressRange: block.DefRange}}
	}
	if !primaryWritten && len(c.Nodes) == 1 {
		c.Primary = c.Nodes[0].Name
	}
	if primaryWritten && primaryAttr == nil {
		c.Primary = "" // its own diagnostic says what is wrong
	}
	d.checkCluster(block, replicationBlock, primaryWritten, primaryAttr, settingRanges, c)
	return c
}

// checkImage refuses an image whose tag names a PostgreSQL major version pacsd does not support.
func (d *decoder) checkImage(attr *hcl.Attribute, c *Cluster) {
	if strings.TrimSpace(c.Image) == "" {
		d.errorf(attr.Expr.Range(), "Empty Image", "The image of cluster %q is empty. Name a PostgreSQL image, such as \"dcm4che/postgres-dcm4chee:17.4-34\".", c.Name)
		return
	}
	if major, ok := ImageMajor(c.Image); ok {
		c.ImageMajor = major
		if major < MinMajorVersion {
			d.errorf(attr.Expr.Range(), "Unsupported PostgreSQL Version",
				"The image %q runs PostgreSQL %d; pacsd supports PostgreSQL %d and newer (recovery.conf, wal_keep_segments and pg_basebackup -x of older versions are gone). Use a newer image, and upgrade existing data with pg_upgrade first.", c.Image, major, MinMajorVersion)
		}
	}
}

// identifierPattern is what a PostgreSQL role or database name may look like
// in the file. It is stricter than PostgreSQL: these names reach pg_hba.conf,
// connection strings, the passfile and the commands of one-off containers, so
// they hold no character any of those could read as syntax.
var identifierPattern = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// reservedRoleNames are role names PostgreSQL refuses in CREATE ROLE.
var reservedRoleNames = []string{"public", "none", "current_user", "session_user", "current_role"}

// checkIdentifier refuses a PostgreSQL user or database name that cannot work
// or is not of the safe form identifierPattern describes.
func (d *decoder) checkIdentifier(rng hcl.Range, name, what string) bool {
	switch {
	case name == "":
		d.errorf(rng, "Empty Name", "The %s name is empty. Give a name.", what)
	case len(name) > 63:
		d.errorf(rng, "Name Too Long", "The %s name %q is longer than 63 bytes, which PostgreSQL would cut short. Use a shorter name.", what, name)
	case !identifierPattern.MatchString(name):
		d.errorf(rng, "Invalid Name", "The %s name %q is not allowed. Use 1 to 63 ASCII letters, digits and \"_\", starting with a letter or \"_\", such as \"pacs_reader\".", what, name)
	default:
		return true
	}
	return false
}

// checkRoleName checks a name pacsd creates as a role (superuser, replication
// user, role block): an identifier that PostgreSQL does not reserve.
func (d *decoder) checkRoleName(rng hcl.Range, name, what string) bool {
	if !d.checkIdentifier(rng, name, what) {
		return false
	}
	switch {
	case strings.HasPrefix(name, "pg_"):
		d.errorf(rng, "Reserved Role Name", "The %s name %q starts with \"pg_\", which PostgreSQL reserves for its own roles. Choose another name.", what, name)
	case slices.Contains(reservedRoleNames, strings.ToLower(name)):
		d.errorf(rng, "Reserved Role Name", "The %s name %q is reserved by PostgreSQL. Choose another name.", what, name)
	default:
		return true
	}
	return false
}

// decodeSuperuserBlock decodes the superuser block (POSTGRES_USER and its password).
func (d *decoder) decodeSuperuserBlock(block *hcl.Block, c *Cluster) {
	content := d.content(block.Body, superuserSchema)
	c.Superuser.NameRange = block.DefRange
	if attr := d.str(content.Attributes, "name", &c.Superuser.Name); attr != nil {
		c.Superuser.NameRange = attr.Expr.Range()
		d.checkRoleName(attr.Expr.Range(), c.Superuser.Name, "superuser")
	}
	owner := fmt.Sprintf("the superuser of cluster %q", c.Name)
	pw, ok := d.decodeSecret(content.Attributes, owner)
	c.Superuser.Password = pw
	if !ok && !hasSecretAttr(content.Attributes) {
		d.errorf(block.DefRange, "Missing Password", "The superuser block of cluster %q has no password. Add password_file = \"path\" (a file with mode 0600), or password = env(\"NAME\").", c.Name)
	}
}

func hasSecretAttr(attrs hcl.Attributes) bool {
	_, pw := attrs["password"]
	_, pf := attrs["password_file"]
	return pw || pf
}

// decodeReplicationBlock decodes the replication block.
func (d *decoder) decodeReplicationBlock(block *hcl.Block, c *Cluster) {
	content := d.content(block.Body, replicationSchema)
	c.Replication.UserRange = block.DefRange
	if attr := d.str(content.Attributes, "user", &c.Replication.User); attr != nil {
		c.Replication.UserRange = attr.Expr.Range()
		d.checkRoleName(attr.Expr.Range(), c.Replication.User, "replication user")
	}
	d.boolean(content.Attributes, "synchronous", &c.Replication.Synchronous)
	d.size(content.Attributes, "max_slot_wal", &c.Replication.MaxSlotWAL)
	c.Replication.Password, _ = d.decodeSecret(content.Attributes, fmt.Sprintf("the replication user of cluster %q", c.Name))
}

// decodeSettings decodes the settings map through the parameter catalogue.
// It returns the range of each value it kept in c.Settings, by the
// parameter's name as c.Settings spells it.
func (d *decoder) decodeSettings(attr *hcl.Attribute, c *Cluster) map[string]hcl.Range {
	ranges := map[string]hcl.Range{}
	pairs, diags := hcl.ExprMap(attr.Expr)
	if diags.HasErrors() {
		d.errorf(attr.Expr.Range(), "Invalid Settings", "settings must be a map of PostgreSQL parameter names to values, written like settings = { shared_buffers = \"256MB\" }.")
		return ranges
	}
	seen := map[string]hcl.Range{}
	for _, pair := range pairs {
		d.attr = "settings"
		kv, diags := pair.Key.Value(d.ctx)
		d.diags = append(d.diags, diags...)
		if diags.HasErrors() {
			continue
		}
		if kv.IsNull() || kv.Type() != cty.String {
			d.errorf(pair.Key.Range(), "Invalid Parameter Name", "A settings key must be a parameter name, such as shared_buffers.")
			continue
		}
		name, keyRange := kv.AsString(), pair.Key.Range()
		if first, dup := seen[strings.ToLower(name)]; dup {
			d.errorf(keyRange, "Duplicate Setting", "The parameter %q is already set at %s. Keep one of the two.", name, first)
			continue
		}
		seen[strings.ToLower(name)] = keyRange
		if controlledBy, managed := ManagedParam(name); managed {
			if controlledBy != "" {
				d.errorf(keyRange, "Parameter Managed by pacsd", "pacsd sets %s itself from %s. Remove it from settings and set %s instead.", name, controlledBy, controlledBy)
			} else {
				d.errorf(keyRange, "Parameter Managed by pacsd", "pacsd sets %s itself, because replication, failover or the container layout depend on it. Remove it from settings.", name)
			}
			continue
		}
		p, ok := LookupParam(name)
		if !ok {
			hint := " Check the spelling against the PostgreSQL documentation (Server Configuration)."
			if s := SuggestParam(name); s != "" {
				hint = fmt.Sprintf(" Did you mean %q?", s)
			}
			d.errorf(keyRange, "Unknown Parameter", "PostgreSQL has no parameter named %q.%s", name, hint)
			continue
		}
		if p.Removed != "" {
			d.errorf(keyRange, "Removed Parameter", "The parameter %s %s. Remove it from settings.", p.Name, p.Removed)
			continue
		}
		d.attr = "settings." + p.Name
		v, diags := pair.Value.Value(d.ctx)
		d.diags = append(d.diags, diags...)
		if diags.HasErrors() || !v.IsWhollyKnown() {
			continue
		}
		if v.IsNull() || !(v.Type() == cty.String || v.Type() == cty.Number || v.Type() == cty.Bool) {
			d.errorf(pair.Value.Range(), "Invalid Parameter Value", "The value of %s must be a string, a number or true/false.", p.Name)
			continue
		}
		normalized, problem := CheckParamValue(p, v)
		if problem != "" {
			d.errorf(pair.Value.Range(), "Invalid Parameter Value", "%s", problem)
			continue
		}
		c.Settings[p.Name] = normalized
		ranges[p.Name] = pair.Value.Range()
	}
	return ranges
}

// allowedMethods are the pg_hba methods an access rule may use.
var allowedMethods = []string{"scram-sha-256", "md5", "cert", "reject"}

// decodeAccessBlock decodes one client pg_hba rule.
func (d *decoder) decodeAccessBlock(block *hcl.Block) *Access {
	a := &Access{Name: block.Labels[0], Database: "all", User: "all", Method: DefaultAccessMethod, SSL: true, DeclRange: block.DefRange, AddressRange: block.DefRange}
	content := d.content(block.Body, accessSchema)
	if attr := d.str(content.Attributes, "database", &a.Database); attr != nil && d.checkIdentifier(attr.Expr.Range(), a.Database, "database") && a.Database == "replication" {
		d.errorf(attr.Expr.Range(), "Replication Access Is Managed by pacsd",
			"pacsd writes the replication rules of pg_hba.conf itself, for the replication user and the addresses of the cluster's nodes only. Remove this access rule.")
	}
	if attr := d.str(content.Attributes, "user", &a.User); attr != nil {
		d.checkIdentifier(attr.Expr.Range(), strings.TrimPrefix(a.User, "+"), "user") // "+role": members of role, as pg_hba.conf reads it
	}
	if attr := d.str(content.Attributes, "address", &a.Address); attr != nil {
		a.AddressRange = attr.Expr.Range()
		d.checkAddress(attr.Expr.Range(), a)
	}
	if attr := d.str(content.Attributes, "method", &a.Method); attr != nil && !slices.Contains(allowedMethods, a.Method) {
		rng := attr.Expr.Range()
		switch a.Method {
		case "trust":
			d.errorf(rng, "Trust Authentication Refused", "The method trust lets every client from %q connect without a password. Use scram-sha-256.", a.Address)
		case "password":
			d.errorf(rng, "Clear-Text Password Authentication Refused", "The method password sends passwords in clear text over the network. Use scram-sha-256.")
		default:
			d.errorf(rng, "Unsupported Authentication Method", "The method %q is not accepted on an access rule. Use one of %s.%s", a.Method, strings.Join(allowedMethods, ", "), didYouMean(a.Method, allowedMethods))
		}
	}
	if attr := d.boolean(content.Attributes, "ssl", &a.SSL); attr != nil && !a.SSL && a.Method == "cert" {
		d.errorf(attr.Expr.Range(), "Certificate Authentication Needs TLS", "Access rule %q uses the method cert, which checks the client's TLS certificate, so it matches TLS connections only. Remove ssl = false, or use scram-sha-256.", a.Name)
	}
	return a
}

// checkAddress checks the address of an access rule: a CIDR, all, samehost or samenet.
func (d *decoder) checkAddress(rng hcl.Range, a *Access) {
	switch a.Address {
	case "all":
		return
	case "samehost", "samenet":
		return
	}
	if ip := net.ParseIP(a.Address); ip != nil {
		bits := 32
		if ip.To4() == nil {
			bits = 128
		}
		d.errorf(rng, "Invalid CIDR Address", "The address %q has no prefix length. Write %s/%d for this one address, or give the network, such as \"10.1.0.0/16\".", a.Address, a.Address, bits)
		return
	}
	ip, network, err := net.ParseCIDR(a.Address)
	if err != nil {
		d.errorf(rng, "Invalid CIDR Address", "The address %q is not a CIDR such as \"10.1.0.0/16\" or \"fd00::/8\". Write a CIDR, or one of all, samehost and samenet.", a.Address)
		return
	}
	if !ip.Equal(network.IP) {
		d.errorf(rng, "Invalid CIDR Address", "The address %q has bits set after its prefix length. Write the network %q, or %s/%d for the one address.", a.Address, network.String(), ip, 8*len(network.Mask))
	}
	// An address open to everyone is warned about by checkOpenAccess.
}

// decodeRoleBlock decodes an extra role.
func (d *decoder) decodeRoleBlock(block *hcl.Block, c *Cluster) *Role {
	r := &Role{Name: block.Labels[0], Ensure: "present", MemberOf: []string{}, DeclRange: block.DefRange}
	d.checkRoleName(block.LabelRanges[0], r.Name, "role")
	content := d.content(block.Body, roleSchema)
	d.boolean(content.Attributes, "login", &r.Login)
	if attr := d.stringList(content.Attributes, "member_of", &r.MemberOf); attr != nil {
		for _, m := range r.MemberOf {
			d.checkIdentifier(attr.Expr.Range(), m, "member_of role")
		}
	}
	if attr := d.str(content.Attributes, "ensure", &r.Ensure); attr != nil && r.Ensure != "present" && r.Ensure != "absent" {
		d.errorf(attr.Expr.Range(), "Invalid Ensure Value", "The ensure attribute must be \"present\" or \"absent\", not %q.%s", r.Ensure, didYouMean(r.Ensure, []string{"present", "absent"}))
	}
	r.Password, _ = d.decodeSecret(content.Attributes, fmt.Sprintf("role %q of cluster %q", r.Name, c.Name))
	return r
}

// decodeClientsBlock decodes the Docker DNS aliases for the archive.
func (d *decoder) decodeClientsBlock(block *hcl.Block, c *Cluster) {
	content := d.content(block.Body, clientsSchema)
	for name, dst := range map[string]struct {
		alias *string
		rng   *hcl.Range
	}{"primary_alias": {&c.Clients.PrimaryAlias, &c.Clients.PrimaryRange}, "standby_alias": {&c.Clients.StandbyAlias, &c.Clients.StandbyRange}} {
		attr := d.str(content.Attributes, name, dst.alias)
		if attr == nil {
			continue
		}
		*dst.rng = attr.Expr.Range()
		if *dst.alias != "" && !aliasPattern.MatchString(*dst.alias) {
			d.errorf(attr.Expr.Range(), "Invalid Alias", "The alias %q is not a DNS name. Use lower-case letters, digits and \"-\", such as \"db\"; an empty string means no alias.", *dst.alias)
		}
	}
	if p, s := c.Clients.PrimaryAlias, c.Clients.StandbyAlias; p != "" && p == s {
		// Point at standby_alias, or at primary_alias when standby_alias keeps its default.
		rng, fix := c.Clients.StandbyRange, fmt.Sprintf("Give the standbys another alias, such as %q.", p+"-ro")
		if _, set := content.Attributes["standby_alias"]; !set {
			rng, fix = c.Clients.PrimaryRange, fmt.Sprintf("%q is the default standby_alias: choose another primary_alias, or set standby_alias too.", s)
		}
		d.errorf(rng, "Duplicate Client Alias", "The aliases primary_alias and standby_alias are both %q. %s", p, fix)
	}
}

// decodeFailoverBlock decodes the failover policy. ttl and failsafe are
// about the primary's lease in etcd: written without a daemon.etcd block they
// get a warning, since one pacsd that drives every host holds no lease.
func (d *decoder) decodeFailoverBlock(block *hcl.Block, c *Cluster) {
	content := d.content(block.Body, failoverSchema)
	d.boolean(content.Attributes, "automatic", &c.Failover.Automatic)
	d.size(content.Attributes, "max_lag", &c.Failover.MaxLag)
	d.duration(content.Attributes, "after", &c.Failover.After)
	if attr := d.duration(content.Attributes, "ttl", &c.Failover.TTL); attr != nil {
		d.checkFailoverTTL(attr.Expr.Range(), c)
	}
	failsafeAttr := d.boolean(content.Attributes, "failsafe", &c.Failover.Failsafe)
	if !d.everyHost {
		for _, name := range []string{"ttl", "failsafe"} {
			if attr, ok := content.Attributes[name]; ok {
				what := "the lease the pacsd of the primary's host holds in etcd"
				if name == "failsafe" {
					what = "what the pacsd of the primary's host does when etcd cannot be reached"
				}
				d.warnf(attr.NameRange, "Failover Setting Without Etcd",
					"failover.%s of cluster %q only matters with pacsd on every host (daemon.etcd): it is %s. This file has no etcd block in its daemon block, so one pacsd drives every host, holds no lease and ignores %s. Remove it, or add an etcd block to the daemon block to run pacsd on every host.",
					name, c.Name, what, name)
			}
		}
	} else if failsafeAttr != nil && c.Failover.Failsafe && !c.Failover.Automatic {
		d.warnf(failsafeAttr.NameRange, "Failsafe Without Automatic Failover",
			"failsafe = true in cluster %q changes nothing, because automatic failover is off (failover.automatic is false): failsafe only keeps the primary running while etcd cannot be reached, where it would otherwise be fenced so that another host may promote a standby, and without automatic failover no host promotes by itself. Set automatic = true, or remove failsafe.", c.Name)
	}
}

// checkFailoverTTL refuses a lease outside MinFailoverTTL..MaxFailoverTTL.
func (d *decoder) checkFailoverTTL(rng hcl.Range, c *Cluster) {
	ttl := c.Failover.TTL.Duration
	why := fmt.Sprintf("pacsd renews the primary's lease every ttl/5 (%s here) and fences its primary when it has not renewed the lease for half the ttl (%s here)", shortDuration(ttl/5), shortDuration(ttl/2))
	switch {
	case ttl < MinFailoverTTL:
		d.errorf(rng, "Failover TTL Too Short",
			"The failover ttl of cluster %q is %s, below %s: %s, so one slow etcd round trip or a short pause of the host would fence a healthy primary. Use %q or more (the default is %q).",
			c.Name, shortDuration(ttl), shortDuration(MinFailoverTTL), why, shortDuration(MinFailoverTTL), shortDuration(DefaultFailoverTTL))
	case ttl > MaxFailoverTTL:
		d.errorf(rng, "Failover TTL Too Long",
			"The failover ttl of cluster %q is %s, above %s: %s, and a standby is promoted only after the old lease has expired, so a cluster whose primary's host is lost could take no writes for up to %s. Use %q or less (the default is %q).",
			c.Name, shortDuration(ttl), shortDuration(MaxFailoverTTL), why, shortDuration(ttl), shortDuration(MaxFailoverTTL), shortDuration(DefaultFailoverTTL))
	}
}

// shortDuration writes d as time.Duration does, without its trailing zero
// units: "10m", not "10m0s".
func shortDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// decodeNodeBlock decodes one node.
func (d *decoder) decodeNodeBlock(block *hcl.Block, c *Cluster) *Node {
	n := &Node{Name: block.Labels[0], DeclRange: block.DefRange, DataRange: block.DefRange, ContainerRange: block.DefRange, PortRange: block.DefRange, HostRange: block.DefRange}
	d.checkName(block, "node")
	n.Container = c.Name + "-" + n.Name
	content := d.content(block.Body, nodeSchema)
	attrs := content.Attributes
	if attr := d.str(attrs, "container_name", &n.Container); attr != nil {
		n.ContainerRange = attr.Expr.Range()
	}
	if attr := attrs["container_name"]; attr != nil && !dockerNamePattern.MatchString(n.Container) {
		d.errorf(attr.Expr.Range(), "Invalid Container Name", "The container name %q is not valid for Docker. Use 2 to 128 letters, digits, \"_\", \".\" or \"-\", starting with a letter or digit.", n.Container)
	}
	if attr := d.integer(attrs, "port", &n.Port); attr != nil {
		n.PortRange = attr.Expr.Range()
		if n.Port < 1 || n.Port > 65535 {
			d.errorf(attr.Expr.Range(), "Invalid Port", "The port %d is outside 1-65535. Give the host port to publish PostgreSQL on, such as 15432, or leave port out.", n.Port)
		}
	}
	if attr := d.str(attrs, "host", &n.Host); attr != nil {
		n.HostRange = attr.Expr.Range()
	}
	dataAttr := d.str(attrs, "data", &n.Data)
	volumeAttr := d.str(attrs, "volume", &n.Volume)
	switch {
	case dataAttr != nil && volumeAttr != nil:
		d.errorf(volumeAttr.NameRange, "Conflicting Data Location", "Node %q sets both data (a host directory) and volume (a named volume). Keep one: the node keeps its data in one place.", n.Name)
	case dataAttr != nil:
		n.DataRange = dataAttr.Expr.Range()
		d.checkDataPath(dataAttr, n)
	case volumeAttr != nil:
		n.DataRange = volumeAttr.Expr.Range()
		if !dockerNamePattern.MatchString(n.Volume) {
			d.errorf(volumeAttr.Expr.Range(), "Invalid Volume Name", "The volume name %q is not valid for Docker. Use 2 to 128 letters, digits, \"_\", \".\" or \"-\", starting with a letter or digit.", n.Volume)
		}
	default:
		n.Volume = n.Container + "-data"
	}
	return n
}

// checkDataPath resolves a node's data directory against the topology file.
func (d *decoder) checkDataPath(attr *hcl.Attribute, n *Node) {
	switch {
	case strings.TrimSpace(n.Data) == "":
		d.errorf(attr.Expr.Range(), "Empty Data Directory", "The data directory of node %q is empty. Give a host directory, such as \"/var/local/mypacs/db\", or use volume.", n.Name)
	case !filepath.IsAbs(n.Data) && n.Host != "":
		d.errorf(attr.Expr.Range(), "Relative Data Directory on Remote Host", "Node %q runs on host %q, where a path relative to this file means nothing. Give an absolute directory on that host, such as \"/var/local/mypacs/db\".", n.Name, n.Host)
	case filepath.Clean(d.resolve(n.Data)) == "/":
		d.errorf(attr.Expr.Range(), "Invalid Data Directory", "The data directory of node %q is the root directory. Give a directory of its own, such as \"/var/local/mypacs/db\".", n.Name)
	default:
		n.Data = d.resolve(n.Data)
	}
}

// decodeHostBlock decodes a remote Docker engine.
func (d *decoder) decodeHostBlock(block *hcl.Block) *Host {
	h := &Host{Name: block.Labels[0], DeclRange: block.DefRange, DockerRange: block.DefRange}
	d.checkName(block, "host")
	schema := hostSchema
	if d.everyHost {
		schema = everyHostHostSchema
	}
	content := d.content(block.Body, schema)
	_, dockerWritten := content.Attributes["docker"] // only pacsd on every host may leave it out
	dockerAttr := d.str(content.Attributes, "docker", &h.Docker)
	endpoint, err := url.Parse(h.Docker)
	var sshEndpoint *SSHEndpoint // a valid ssh:// endpoint
	isSSH := dockerAttr != nil && strings.HasPrefix(h.Docker, "ssh://")
	if dockerAttr != nil {
		h.DockerRange = dockerAttr.Expr.Range()
		switch {
		case isSSH:
			if e, err := ParseSSHEndpoint(h.Docker); err != nil {
				d.errorf(dockerAttr.Expr.Range(), "Invalid SSH Endpoint",
					"The Docker endpoint %q cannot be used: %s. Write ssh://USER@HOST[:PORT][/path/to/docker.sock], such as ssh://pacsd@10.0.0.12 (port 22 and the engine's socket /var/run/docker.sock when left out).", redactedURL(h.Docker), err)
				dockerAttr = nil
			} else {
				sshEndpoint = &e
			}
		case err != nil || endpoint.Scheme == "unix" && (endpoint.Host != "" || endpoint.Path == "") || endpoint.Scheme == "tcp" && endpoint.Hostname() == "" ||
			endpoint.Scheme != "unix" && endpoint.Scheme != "tcp" || dockerEngine(h.Docker, false) == "":
			// dockerEngine reads the endpoint as the Docker client does
			// (url.Parse accepts "UNIX://", the client does not).
			d.errorf(dockerAttr.Expr.Range(), "Invalid Docker Endpoint", "The Docker endpoint %q is not understood. Write unix:///path/to/docker.sock, tcp://address:port with a tls block, or ssh://user@host.", h.Docker)
			dockerAttr = nil
		}
	}
	if attr := d.str(content.Attributes, "address", &h.Address); attr != nil {
		if validHostAddress(h.Address) {
			d.keepHostAddressRange(h, attr.Expr.Range())
		} else {
			d.errorf(attr.Expr.Range(), "Invalid Host Address", "The address %q is not an IP address or host name. Give where other hosts reach this host's published ports, such as \"10.0.0.12\", without a port.", h.Address)
		}
	}
	if b := d.single(content.Blocks, "tls", fmt.Sprintf("Host %q", h.Name)); b != nil {
		h.TLS = d.decodeTLSBlock(b, "the Docker engine")
		switch {
		case !dockerWritten && d.everyHost: // else docker is reported missing
			d.errorf(b.DefRange, "TLS Needs a tcp:// Endpoint", "Host %q has a tls block but no docker attribute, so its pacsd drives the Docker engine of its environment (DOCKER_HOST, with DOCKER_CERT_PATH for TLS, else %s) and would not use the tls block. Remove the tls block, or add docker = \"tcp://ADDRESS:2376\" for the engine the certificates belong to.", h.Name, DefaultDockerEndpoint)
		case isSSH:
			d.errorf(b.DefRange, "TLS Needs a tcp:// Endpoint", "Host %q reaches its Docker engine over ssh://, which authenticates with ssh keys and the host's key in known_hosts, not with TLS certificates. Remove the tls block (an ssh block names the key and known_hosts files), or use a tcp:// endpoint.", h.Name)
		case dockerAttr != nil && endpoint.Scheme != "tcp":
			d.errorf(b.DefRange, "TLS Needs a tcp:// Endpoint", "Host %q has a tls block but its Docker endpoint %q is not tcp://. Remove the tls block, or use a tcp:// endpoint.", h.Name, h.Docker)
		}
	} else if dockerAttr != nil && endpoint.Scheme == "tcp" {
		if loopbackHost(endpoint.Hostname()) {
			d.warnf(dockerAttr.Expr.Range(), "Unencrypted Docker Endpoint", "Host %q is reached over tcp:// without TLS, so every user and process of this machine can control its Docker engine. Add a tls block, or use the engine's unix:// socket.", h.Name)
		} else {
			d.errorf(dockerAttr.Expr.Range(), "Docker Endpoint Without TLS",
				"Host %q is reached over tcp:// without TLS, so anyone on the network could control its Docker engine, and every container, file and password on it. Add a tls block with the CA, client certificate and key of the engine's TLS port (usually 2376), or use a unix:// socket.", h.Name)
		}
	}
	sshBlock := d.single(content.Blocks, "ssh", fmt.Sprintf("Host %q", h.Name))
	switch {
	case isSSH:
		h.SSH = d.decodeSSHBlock(h.Name, sshBlock, sshEndpoint, h.DockerRange)
	case sshBlock != nil && !dockerWritten && d.everyHost: // else docker is reported missing
		d.errorf(sshBlock.DefRange, "SSH Block Needs an ssh:// Endpoint", "Host %q has an ssh block but no docker attribute, so its pacsd drives the Docker engine of its environment (DOCKER_HOST, else %s) and would not use the ssh block. Remove the ssh block, or reach the engine over ssh://user@host.", h.Name, DefaultDockerEndpoint)
	case sshBlock != nil && dockerAttr != nil:
		d.errorf(sshBlock.DefRange, "SSH Block Needs an ssh:// Endpoint", "Host %q has an ssh block but its Docker endpoint %q is not ssh://. Remove the ssh block, or reach the engine over ssh://user@host.", h.Name, h.Docker)
	}
	if dockerAttr != nil {
		h.Engine = dockerEngine(h.Docker, h.TLS != nil)
		if sshEndpoint != nil {
			h.Engine = sshEndpoint.engine()
		}
	}
	if d.everyHost {
		switch {
		case !dockerWritten:
			// The engine of the host's pacsd's environment, as for nodes
			// without host; docker.New("") connects there.
			locals := localEngines()
			h.Engine = hostEngine(h.Name, locals[len(locals)-1])
		case h.Engine != "" && machineLocal(h.Engine):
			h.Engine = hostEngine(h.Name, h.Engine)
		}
	}
	return h
}

// hostEngine returns the key of the engine that the pacsd of host reaches
// at engine, a normalised endpoint that names the machine it is used on:
// with pacsd on every host, that is a different engine on each host.
func hostEngine(host, engine string) string {
	return "host\x00" + host + "\x00" + engine
}

// machineLocal reports whether the normalised endpoint engine names an engine
// on the machine it is used on: a unix:// socket, or a tcp:// or ssh://
// endpoint at a loopback address.
func machineLocal(engine string) bool {
	if strings.HasPrefix(engine, "unix://") {
		return true
	}
	u, err := url.Parse(engine)
	return err == nil && (u.Scheme == "tcp" || u.Scheme == "ssh") && loopbackHost(u.Hostname())
}

// decodeSSHBlock decodes the ssh block of host on an ssh:// endpoint (block
// is nil when there is none: the defaults) and checks what pacsd would use as
// run checks it (LoadSSHKeys, LoadKnownHosts): the key, or the agent and the
// default keys; the known_hosts file, and, when e is a valid endpoint, that it
// holds the host's key. dockerRange is where problems of the defaults point.
// Defaults that pass get a warning there all the same: they were checked for
// the user who validates, and pacsd may run as another.
func (d *decoder) decodeSSHBlock(host string, block *hcl.Block, e *SSHEndpoint, dockerRange hcl.Range) *SSH {
	s := &SSH{}
	keyRange, hostsRange := dockerRange, dockerRange
	if block != nil {
		content := d.content(block.Body, sshSchema)
		if attr := d.str(content.Attributes, "identity_file", &s.IdentityFile); attr != nil {
			keyRange = attr.Expr.Range()
			s.IdentityFile = d.resolve(s.IdentityFile)
		}
		if attr := d.str(content.Attributes, "known_hosts", &s.KnownHosts); attr != nil {
			hostsRange = attr.Expr.Range()
			s.KnownHosts = d.resolve(s.KnownHosts)
		}
	}
	report := func(rng hcl.Range, err error) {
		var se *SSHError
		if errors.As(err, &se) {
			if se.kind == sshHostUnknown {
				rng = dockerRange
			}
			d.errorf(rng, se.Summary, "%s", se.Detail)
		}
	}
	// With an endpoint that is not valid, only the files named are checked:
	// the defaults would only pile problems onto the endpoint's.
	keyDefault, hostsDefault := s.IdentityFile == "" && e != nil, s.KnownHosts == "" && e != nil
	defaultsPass := true // no default in use was refused
	var keys SSHKeys
	if e != nil || s.IdentityFile != "" {
		var err error
		if keys, err = LoadSSHKeys(s.IdentityFile); err != nil {
			report(keyRange, err)
			defaultsPass = !keyDefault
		}
	}
	if hostsDefault {
		p, err := DefaultKnownHosts()
		if err != nil {
			report(hostsRange, err)
			return s
		}
		s.KnownHosts = p
	}
	if s.KnownHosts != "" {
		if _, err := LoadKnownHosts(s.KnownHosts, e); err != nil {
			report(hostsRange, err)
			defaultsPass = defaultsPass && !hostsDefault
		}
	}
	if (keyDefault || hostsDefault) && defaultsPass {
		d.warnf(dockerRange, "SSH Defaults Depend on the User", "%s", sshDefaultsNote(host, keyDefault, hostsDefault, keys, s.KnownHosts))
	}
	return s
}

// loopbackHost reports whether host, the host part of a listen address, is
// loopback only: localhost, or an IP address in 127.0.0.0/8 or ::1. "" (every
// address) is not.
func loopbackHost(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

var hostnamePattern = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?$`)

func validHostAddress(a string) bool {
	return net.ParseIP(a) != nil || hostnamePattern.MatchString(a)
}

// decodeTLSBlock decodes the client certificate material of a host's Docker
// engine or of etcd, and checks that a client can use it: a CA certificate, a
// certificate and the private key that belongs to it, all PEM. server names
// the server the certificates are for in diagnostics ("the Docker engine",
// "etcd").
func (d *decoder) decodeTLSBlock(block *hcl.Block, server string) *TLS {
	t := &TLS{}
	attrs := d.content(block.Body, tlsSchema).Attributes
	if attr := d.str(attrs, "ca", &t.CA); attr != nil {
		d.checkCAFile(attr.Expr.Range(), t.CA, fmt.Sprintf("the certificate of the CA that signed %s's server certificate", server))
	}
	d.decodeCertAndKey(attrs, &t.Cert, &t.Key, fmt.Sprintf("pacsd's client certificate, signed by a CA %s trusts", server), "the client certificate")
	for _, p := range []*string{&t.CA, &t.Cert, &t.Key} {
		if *p != "" {
			*p = d.resolve(*p)
		}
	}
	return t
}

// readTLSFile reads a certificate file (relative to the topology file), or
// reports why it cannot.
func (d *decoder) readTLSFile(rng hcl.Range, path, kind string) ([]byte, bool) {
	b, err := readSmallFile(d.resolve(path))
	if err != nil {
		d.errorf(rng, kind+" Not Found", "pacsd cannot use %q: %s. Relative paths are relative to the topology file; correct the path or create the file.", path, unwrapPathError(err))
		return nil, false
	}
	return b, true
}

// pemCertificate reports whether b holds a PEM certificate that parses.
func pemCertificate(b []byte) bool {
	for {
		var block *pem.Block
		block, b = pem.Decode(b)
		if block == nil {
			return false
		}
		if block.Type == "CERTIFICATE" {
			_, err := x509.ParseCertificate(block.Bytes)
			return err == nil
		}
	}
}

// pemPrivateKey reports whether b holds an unencrypted PEM private key in one
// of the forms crypto/tls reads: PKCS #8, PKCS #1 (RSA) or SEC 1 (EC).
func pemPrivateKey(b []byte) bool {
	for {
		var block *pem.Block
		block, b = pem.Decode(b)
		if block == nil {
			return false
		}
		if !strings.HasSuffix(block.Type, "PRIVATE KEY") {
			continue
		}
		if _, err := x509.ParsePKCS8PrivateKey(block.Bytes); err == nil {
			return true
		}
		if _, err := x509.ParsePKCS1PrivateKey(block.Bytes); err == nil {
			return true
		}
		_, err := x509.ParseECPrivateKey(block.Bytes)
		return err == nil
	}
}

// decodeDaemonBlock decodes pacsd's own settings.
func (d *decoder) decodeDaemonBlock(block *hcl.Block, dm *Daemon) {
	content := d.content(block.Body, daemonSchema)
	if b := d.single(content.Blocks, "tls", "The daemon block"); b != nil {
		dm.TLS = d.decodeDaemonTLSBlock(b)
	}
	dm.Token = d.decodeTokenFile(content.Attributes)
	if attr := d.str(content.Attributes, "listen", &dm.Listen); attr != nil {
		host, port, err := net.SplitHostPort(dm.Listen)
		p, perr := strconv.Atoi(port)
		if err != nil || perr != nil || p < 1 || p > 65535 || (host != "" && net.ParseIP(host) == nil && host != "localhost") {
			d.errorf(attr.Expr.Range(), "Invalid Listen Address", "The listen address %q is not an IP address and port, such as \"127.0.0.1:9187\".", dm.Listen)
		} else {
			_, hasToken := content.Attributes["token_file"]
			d.checkListenSecurity(attr.Expr.Range(), host, dm, hasToken)
		}
	}
	if attr := d.str(content.Attributes, "state_dir", &dm.StateDir); attr != nil {
		switch clean := filepath.Clean(dm.StateDir); {
		case strings.TrimSpace(dm.StateDir) == "":
			d.errorf(attr.Expr.Range(), "Empty State Directory", "state_dir is empty. Give the directory where pacsd keeps its state, such as %q.", DefaultStateDir)
		case !filepath.IsAbs(clean) && (clean == ".." || strings.HasPrefix(clean, ".."+string(filepath.Separator))):
			d.errorf(attr.Expr.Range(), "State Directory Outside the File's Directory",
				"The state directory %q goes above the topology file's directory, so where it lands depends on where the file is. Give an absolute path, such as %q, or a directory beside the file.", dm.StateDir, DefaultStateDir)
		default:
			dm.StateDir = d.resolve(dm.StateDir)
		}
	}
	d.duration(content.Attributes, "resync", &dm.Resync)
	if dm.Resync.Duration > 0 && dm.Resync.Duration < 1e9 {
		d.errorf(content.Attributes["resync"].Expr.Range(), "Invalid Duration", "The resync interval %s is too short: a full pass more often than every second only loads the Docker engine. Use \"1s\" or more.", dm.Resync)
	}
	if b := d.single(content.Blocks, "etcd", "The daemon block"); b != nil {
		dm.Etcd = d.decodeEtcdBlock(b)
	}
}
