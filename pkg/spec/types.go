package spec

import (
	"encoding/json"
	"fmt"
	"slices"
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
	// DefaultEtcdPrefix is the key prefix of daemon.etcd when prefix is not written.
	DefaultEtcdPrefix = "/pacsd"
	// DefaultFailoverTTL is failover.ttl when it is not written.
	DefaultFailoverTTL = 10 * time.Second
	// MinFailoverTTL and MaxFailoverTTL bound failover.ttl: pacsd renews the
	// primary's lease every ttl/5 and fences its primary when it has not
	// renewed it for half the ttl, so a shorter lease fences a healthy
	// primary on a slow etcd round trip, and a longer one keeps a cluster
	// whose primary's host is lost without a primary for that long.
	MinFailoverTTL = 2 * time.Second
	MaxFailoverTTL = 10 * time.Minute
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
	// TLS says whose CA signs the nodes' server certificates and for how
	// long; TLS itself is always on.
	TLS   PostgresTLS `json:"tls"`
	Nodes []*Node     `json:"nodes"`

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
	// SSL makes the rule match TLS connections only (hostssl); without it
	// (ssl = false) the rule is a host rule, which matches connections with
	// and without TLS. Default true; the cert method needs it.
	SSL bool `json:"ssl"`

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
	// TTL is the lease the pacsd of the primary's host holds in etcd, between
	// MinFailoverTTL and MaxFailoverTTL (default DefaultFailoverTTL). That
	// pacsd renews it every TTL/5 and fences its own primary when it has not
	// renewed it for TTL/2; a standby is promoted only after the old lease has
	// expired. It matters only with pacsd on every host (File.EveryHost).
	TTL Duration `json:"ttl"`
	// Failsafe, with Automatic and pacsd on every host, keeps the primary
	// running when its pacsd cannot renew the lease because etcd cannot be
	// reached, instead of fencing it, as long as that pacsd still reaches
	// the pacsd of every other host of the cluster, none of which can then
	// promote (Patroni's failsafe mode); without Automatic it changes
	// nothing. Default false: the primary is fenced at TTL/2 without a
	// renewal, whatever the reason.
	Failsafe bool `json:"failsafe"`
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
	// for a node without host and for a node on a host block without a
	// docker attribute (pacsd on every host): "" is the engine of pacsd's
	// environment (DOCKER_HOST, else DefaultDockerEndpoint).
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

// Host is a machine with a Docker engine: one that pacsd drives remotely
// (one controller), or one whose own pacsd drives its engine (pacsd on every
// host, File.EveryHost).
type Host struct {
	Name string `json:"name"`
	// Docker is the engine endpoint: unix:///path, tcp://address:port (with
	// TLS unless the address is loopback), or ssh://user@host[:port][/socket]
	// (the engine's unix socket on the host, /var/run/docker.sock when no path
	// is written, reached through an ssh connection; see ParseSSHEndpoint).
	// It is "" only with pacsd on every host, where the docker attribute is
	// optional: the host's pacsd then drives the engine of its environment
	// (DOCKER_HOST, else DefaultDockerEndpoint), as for nodes without host.
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
	// is "" when the endpoint is not valid. With pacsd on every host, an
	// endpoint that names the machine it is used on (no docker attribute,
	// unix://, or a loopback address) is qualified by the host's name: each
	// host's pacsd reaches its own engine there.
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
	// Listen is the address of the HTTP status endpoints. One that is not
	// loopback comes with TLS and Authenticates.
	Listen   string `json:"listen"`
	StateDir string `json:"state_dir"`
	// Resync is the interval of a full pass even without events.
	Resync Duration `json:"resync"`
	// TLS is the daemon.tls block: the HTTP endpoints are served over
	// HTTPS with its certificate. nil without the block (plain HTTP, on a
	// loopback address only).
	TLS *DaemonTLS `json:"tls,omitempty"`
	// Token is the token of daemon.token_file, which clients of the HTTP
	// endpoints (all but /healthz) send as a bearer token or as the
	// password of basic authentication; zero without the attribute.
	Token Secret `json:"token,omitzero"`
	// Etcd is the daemon.etcd block: pacsd runs on every host and the
	// pacsd processes coordinate through etcd (File.EveryHost). nil without
	// the block: one pacsd drives every host's engine.
	Etcd *Etcd `json:"etcd,omitempty"`
}

// Etcd is how pacsd reaches the etcd cluster that holds the cluster state,
// the elections and the primaries' leases when pacsd runs on every host.
type Etcd struct {
	// Endpoints are the client URLs of the etcd members as written, in file
	// order: at least one, each http://host:port or https://host:port (no
	// path, no user information), no two the same.
	Endpoints []string `json:"endpoints"`
	// Prefix is the key prefix pacsd keeps its keys under (default
	// DefaultEtcdPrefix): it starts with "/", does not end with "/", and
	// holds no white space or control character.
	Prefix string `json:"prefix"`
	// TLS is the CA that verifies the members' certificates and pacsd's client
	// certificate and key, paths absolute or relative to the topology file's
	// directory. It is set exactly when the endpoints are https://.
	TLS *TLS `json:"tls"`
}

// EveryHost reports whether pacsd runs on every host, coordinated through
// etcd (the file has a daemon.etcd block): each pacsd then drives only the
// engine of its own host, and every node names a host block.
func (f *File) EveryHost() bool { return f.Daemon.Etcd != nil }

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

// Hosts returns the names of the host blocks the nodes of c run on, each
// once, in the order of the first node on each in the file; "" stands for
// the local Docker engine of nodes without host.
func (c *Cluster) Hosts() []string {
	var hosts []string
	for _, n := range c.Nodes {
		if !slices.Contains(hosts, n.Host) {
			hosts = append(hosts, n.Host)
		}
	}
	return hosts
}

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
