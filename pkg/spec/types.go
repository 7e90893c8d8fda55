package spec

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/hashicorp/hcl/v2"
)

// Defaults that the parsed value shows when the file leaves an attribute out.
const (
	DefaultReplicationUser = "replicator"
	DefaultMaxSlotWAL      = 4 << 30 // 4GB
	DefaultMaxLag          = 16 << 20
	DefaultFailoverAfter   = 10 * time.Second
	DefaultPrimaryAlias    = "db"
	DefaultStandbyAlias    = "db-ro"
	DefaultListen          = "127.0.0.1:9187"
	DefaultStateDir        = "/var/lib/pacsd"
	DefaultResync          = 30 * time.Second
	DefaultAccessMethod    = "scram-sha-256"
	// MinMajorVersion is the oldest PostgreSQL major version pacsd supports.
	MinMajorVersion = 12
)

// File is a parsed, valid topology file with every default filled in.
type File struct {
	// Path is the file's path as given to Parse or ParseFile (absolute for ParseFile).
	Path     string     `json:"path"`
	Clusters []*Cluster `json:"clusters"`
	Hosts    []*Host    `json:"hosts"`
	Daemon   Daemon     `json:"daemon"`
}

// Cluster is one primary with its standbys, declared by a cluster block.
type Cluster struct {
	Name string `json:"name"`
	// Image is the container image every node of the cluster runs.
	Image string `json:"image"`
	// ImageMajor is the PostgreSQL major version read from the image tag, 0 when the tag does not say.
	ImageMajor int `json:"image_major"`
	// Network is the Docker network pacsd creates and owns for the cluster (default: the cluster name).
	Network string `json:"network"`
	// NetworkRange is the range of the network attribute's value, or of the block header when it is not set.
	NetworkRange hcl.Range `json:"-"`
	// Primary names the node that should be the primary.
	Primary     string      `json:"primary"`
	Superuser   Credentials `json:"superuser"`
	Database    string      `json:"database"`
	Replication Replication `json:"replication"`
	// Settings maps PostgreSQL parameter names to the values written to postgresql.conf.
	Settings map[string]string `json:"settings"`
	// Access lists the client pg_hba rules in file order (one default rule when none is declared).
	Access   []*Access `json:"access"`
	Roles    []*Role   `json:"roles"`
	Clients  Clients   `json:"clients"`
	Failover Failover  `json:"failover"`
	Nodes    []*Node   `json:"nodes"`

	DeclRange hcl.Range `json:"-"`
}

// Node returns the node named name, or nil.
func (c *Cluster) Node(name string) *Node {
	for _, n := range c.Nodes {
		if n.Name == name {
			return n
		}
	}
	return nil
}

// Credentials is a user name with its password.
type Credentials struct {
	Name     string `json:"name"`
	Password Secret `json:"password"`

	// NameRange is the range of the name attribute's value, or of the
	// enclosing block's header when it is not set.
	NameRange hcl.Range `json:"-"`
}

// Replication describes the streaming replication role and its bounds.
type Replication struct {
	User     string `json:"user"`
	Password Secret `json:"password"`
	// Synchronous makes the primary wait for one standby (synchronous_standby_names = 'ANY 1 (...)').
	Synchronous bool `json:"synchronous"`
	// MaxSlotWAL bounds the WAL a replication slot keeps (max_slot_wal_keep_size).
	MaxSlotWAL Size `json:"max_slot_wal"`

	// UserRange is the range of the user attribute's value, or of the
	// replication block's header (the cluster block's when there is none)
	// when it is not set.
	UserRange hcl.Range `json:"-"`
}

// Access is one client rule of pg_hba.conf ("host DATABASE USER ADDRESS METHOD").
type Access struct {
	Name     string `json:"name"`
	Database string `json:"database"`
	User     string `json:"user"`
	// Address is a CIDR, "all", "samehost" or "samenet".
	Address string `json:"address"`
	Method  string `json:"method"`

	DeclRange hcl.Range `json:"-"`
	// AddressRange is the range of the address attribute's value, or of the
	// block header when it is not set (the default rule, or an error).
	AddressRange hcl.Range `json:"-"`
}

// Role is an extra database role pacsd keeps; roles not declared are left alone.
type Role struct {
	Name     string   `json:"name"`
	Login    bool     `json:"login"`
	Password Secret   `json:"password"`
	MemberOf []string `json:"member_of"`
	// Ensure is "present" or "absent"; absent is the only way pacsd drops a role.
	Ensure string `json:"ensure"`

	DeclRange hcl.Range `json:"-"`
}

// Clients names the Docker DNS aliases the archive uses on the cluster network.
// An empty alias means none.
type Clients struct {
	PrimaryAlias string `json:"primary_alias"`
	StandbyAlias string `json:"standby_alias"`

	// PrimaryRange and StandbyRange are the ranges of the two attributes, or
	// of the cluster block's header when an alias keeps its default.
	PrimaryRange hcl.Range `json:"-"`
	StandbyRange hcl.Range `json:"-"`
}

// Failover controls automatic promotion.
type Failover struct {
	Automatic bool `json:"automatic"`
	// MaxLag is how far behind a standby may be and still be promoted.
	MaxLag Size `json:"max_lag"`
	// After is how long the primary must be unreachable before failover.
	After Duration `json:"after"`
}

// Node is one PostgreSQL container of a cluster.
type Node struct {
	Name string `json:"name"`
	// Container is the container name (default "<cluster>-<node>").
	Container string `json:"container_name"`
	// Port is the published host port, 0 when none.
	Port int `json:"port"`
	// Data is the host directory holding PGDATA's parent (absolute); empty when Volume is used.
	Data string `json:"data"`
	// Volume is the named Docker volume holding the data (default "<container>-data" when data is not set).
	Volume string `json:"volume"`
	// Host names a host block; empty means the local Docker engine.
	Host string `json:"host"`
	// Address is the address of the node's host block (where other hosts
	// reach its published port), "" for a node without host. Nodes of one
	// cluster on different host blocks run on different engines and reach
	// each other at Address and Port.
	Address string `json:"address,omitempty"`
	// Docker is the Docker endpoint of the node's host block as written, ""
	// for a node without host.
	Docker string `json:"-"`

	DeclRange hcl.Range `json:"-"`
	// PortRange and HostRange are the ranges of the port and host
	// attributes' values, or of the block header when they are not set.
	PortRange hcl.Range `json:"-"`
	HostRange hcl.Range `json:"-"`
	// DataRange is the range of the data or volume attribute, or of the block header when neither is set.
	DataRange hcl.Range `json:"-"`
	// ContainerRange is the range of the container_name attribute, or of the block header when it is not set.
	ContainerRange hcl.Range `json:"-"`
}

// Location describes where the node keeps its data, such as `directory "/x" on host "b"`.
func (n *Node) Location() string {
	where := "the local Docker engine"
	if n.Host != "" {
		where = fmt.Sprintf("host %q", n.Host)
	}
	if n.Data != "" {
		return fmt.Sprintf("directory %q on %s", n.Data, where)
	}
	return fmt.Sprintf("volume %q on %s", n.Volume, where)
}

// Host is a remote Docker engine.
type Host struct {
	Name string `json:"name"`
	// Docker is the engine endpoint: unix:///path, tcp://address:port (with
	// TLS unless the address is loopback), or ssh://user@host[:port][/socket]
	// (the engine's unix socket on the host, /var/run/docker.sock when no path
	// is written, reached through an ssh connection; see ParseSSHEndpoint).
	Docker string `json:"docker"`
	// Address is where other hosts reach this host's published ports.
	Address string `json:"address"`
	// TLS is the tls block of a tcp:// endpoint, nil when there is none.
	TLS *TLS `json:"tls"`
	// SSH is how pacsd authenticates to an ssh:// endpoint and checks its
	// host key, with the defaults filled in; nil for other endpoints.
	SSH *SSH `json:"ssh,omitempty"`
	// Engine is the endpoint normalised (scheme, host, port, path; see
	// DefaultDockerEndpoint for the local engine's): two host blocks with the
	// same Engine would name one Docker engine, which the parser refuses. It
	// is "" when the endpoint is not valid.
	Engine string `json:"-"`

	DeclRange hcl.Range `json:"-"`
	// DockerRange is the range of the docker attribute's value, or of the block header when it is not set.
	DockerRange hcl.Range `json:"-"`
}

// TLS holds the paths (absolute or relative to the topology file's directory) of the client certificate material.
type TLS struct {
	CA   string `json:"ca"`
	Cert string `json:"cert"`
	Key  string `json:"key"`
}

// SSH holds the files (relative paths resolved against the topology file's
// directory) pacsd uses on an ssh:// endpoint.
type SSH struct {
	// IdentityFile is the private key pacsd offers, alone. "" means the keys
	// of the ssh agent (SSH_AUTH_SOCK), then those of DefaultSSHKeyFiles that
	// exist and have no passphrase.
	IdentityFile string `json:"identity_file"`
	// KnownHosts is the known_hosts file that holds the host's key; the
	// default is ~/.ssh/known_hosts of the user pacsd runs as.
	KnownHosts string `json:"known_hosts"`
}

// Daemon configures pacsd itself.
type Daemon struct {
	// Listen is the address of the HTTP status endpoints.
	Listen   string `json:"listen"`
	StateDir string `json:"state_dir"`
	// Resync is the interval of a full pass even without events.
	Resync Duration `json:"resync"`
}

// Duration is a time.Duration that prints and marshals as text such as "30s".
type Duration struct{ time.Duration }

// MarshalJSON encodes the duration as its text, such as "30s".
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(d.String()) }

// Size is a number of bytes that prints and marshals in PostgreSQL units, such as "16MB".
type Size int64

var byteUnits = []struct {
	name  string
	bytes int64
}{{"TB", 1 << 40}, {"GB", 1 << 30}, {"MB", 1 << 20}, {"kB", 1 << 10}, {"B", 1}}

// String returns the size in the largest PostgreSQL unit that divides it exactly.
func (s Size) String() string {
	for _, u := range byteUnits {
		if int64(s)%u.bytes == 0 && (int64(s) != 0 || u.bytes == 1) {
			return fmt.Sprintf("%d%s", int64(s)/u.bytes, u.name)
		}
	}
	return fmt.Sprintf("%dB", int64(s))
}

// MarshalJSON encodes the size as its text, such as "16MB".
func (s Size) MarshalJSON() ([]byte, error) { return json.Marshal(s.String()) }

// SpansHosts reports whether the nodes of c run on more than one host block
// (so on several Docker engines): they then replicate through their hosts'
// addresses and published ports instead of the cluster network.
func (c *Cluster) SpansHosts() bool {
	for _, n := range c.Nodes {
		if n.Host != c.Nodes[0].Host {
			return true
		}
	}
	return false
}
