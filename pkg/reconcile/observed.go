package reconcile

import (
	"fmt"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/pacsd/pacsd/pkg/spec"
)

// Labels pacsd puts on every object it owns. An object without LabelCluster is
// never changed by pacsd.
const (
	LabelCluster = "io.pacsd.cluster"
	LabelNode    = "io.pacsd.node"
	// LabelConfig carries a digest of the container's desired configuration;
	// a different digest means the container must be re-created.
	LabelConfig = "io.pacsd.config"
	// LabelRole records the role the container was created for (primary or standby).
	LabelRole = "io.pacsd.role"
)

// Observed is what one pass saw of one cluster.
type Observed struct {
	// Engines maps the host names of the cluster's nodes ("" is the local
	// engine) to what was seen on that host's Docker engine.
	Engines map[string]*EngineState
	// State is what pacsd remembers: the acting primary and the epoch.
	State ClusterState
	// RecordError says why the stored record could not be read (it is
	// damaged: empty, cut short, unparsable); State is then the zero state
	// and CurrentState rebuilds it from the nodes when they allow.
	RecordError string
	// Nodes maps node names of the spec (and nodes pacsd owns that the spec
	// no longer declares) to what was seen of them.
	Nodes map[string]*NodeState
	// CA is the certificate of the cluster's certificate authority (PEM),
	// which every node's server certificate must chain to.
	CA []byte
	// Now is when the observation was made: certificates are judged at it.
	Now time.Time
}

// EngineState is what was seen on the Docker engine of one host.
type EngineState struct {
	// Network is the cluster network on this engine, nil when absent.
	Network *NetworkState
	// Image is the cluster image on this engine, nil when absent.
	Image *ImageState
	// Unreachable says why the engine could not be asked ("" when it
	// answered); nothing else is known of it then, nor of its nodes.
	Unreachable string
	// ID is the engine's own ID (Runtime.EngineID), "" when not known.
	ID string
}

// Engine returns what was seen on the engine of host, with Unreachable set
// when it was not observed at all.
func (o *Observed) Engine(host string) *EngineState {
	if e := o.Engines[host]; e != nil {
		return e
	}
	return &EngineState{Unreachable: "it was not observed"}
}

// NetworkState is a Docker network with the cluster's name.
type NetworkState struct {
	ID    string
	Owned bool // carries LabelCluster with this cluster's name
}

// ImageState is an image present on an engine.
type ImageState struct {
	ID string
	// Major is the PostgreSQL major version the image declares (label
	// io.pacsd.pg-major or env PG_MAJOR), 0 when it does not say.
	Major int
	// Volumes are the paths the image declares VOLUME at.
	Volumes []string
}

// HidingVolume is the first of the image's volumes below DataMount ("" when
// none): the engine mounts an anonymous volume there, inside the node's
// data location, and the server would write its data into that volume,
// not into the location the file names. The official postgres images
// declare one at PGDATA.
func (i *ImageState) HidingVolume() string {
	if i == nil {
		return ""
	}
	for _, v := range i.Volumes {
		if v = path.Clean(v); strings.HasPrefix(v, DataMount+"/") {
			return v
		}
	}
	return ""
}

// hidingVolumeProblem says why the cluster's image cannot be used, v being
// its HidingVolume; on says where (" on the Docker engine of ...", or "").
func hidingVolumeProblem(c *spec.Cluster, on, v string) string {
	return fmt.Sprintf("image %s%s declares VOLUME %s, inside %s where pacsd mounts each node's data location: the server would keep its data in an anonymous volume instead of the node's location, and lose it with the container; use an image without that VOLUME (pacsd's recipe: 'make image'), then apply again", c.Image, on, v, DataMount)
}

// NodeState is what was seen of one node.
type NodeState struct {
	Container *ContainerState // nil when no container has the node's name
	// Data describes the node's data directory or volume.
	Data DataState
	// Files holds pacsd's files read from PGDATA (nil when they could not be read).
	Files *Files
	// DB is the server's state, nil when it could not be reached.
	DB *DBState
	// DBError says why DB is nil, when the container runs.
	DBError string
	// Unreachable says why the node's Docker engine could not be asked ("" when
	// it answered): nothing is known of the node, its data counts as Unknown.
	Unreachable string
	// Strays are the names of other containers labelled as this node's own
	// (renamed by hand, or left under an old container_name): each would
	// run a second server on the node's data.
	Strays []string
}

// ContainerState is a container as the engine reports it.
type ContainerState struct {
	ID      string
	Name    string
	Owned   bool // labelled for this cluster and node
	Running bool
	Paused  bool
	Status  string // created, running, paused, exited, dead, ...
	Labels  map[string]string
	// Addr is how pacsd reaches PostgreSQL in it ("host:port"), "" when unknown.
	Addr string
	// Aliases are its sorted DNS aliases on the cluster network (nil when not attached).
	Aliases []string
	// RestartPolicy is the container's restart policy ("no", "unless-stopped").
	RestartPolicy string
	// Mount is what the engine mounts at DataMount: the data location the
	// container was created on. Nil when nothing is mounted there or the
	// engine did not say.
	Mount *Mount
}

// DataState describes a node's data location.
type DataState struct {
	// Exists reports whether the volume or directory exists.
	Exists bool
	// Major is the PG_VERSION of PGDATA, 0 when PGDATA holds no cluster.
	Major int
	// Partial reports a PGDATA that pacsd started building but did not finish
	// (a base backup interrupted): it must never be started.
	Partial bool
	// Unknown reports that the data could not be inspected (engine error).
	Unknown bool
	// BuildAttempts counts the base backups that began and did not finish
	// (see BuildAttemptsPath).
	BuildAttempts int
	// Control is the head of the control file, nil when it was not read.
	Control *Control
	// Unadopted reports data in the layout of a container set up by hand
	// (PG_VERSION directly in the location: it was mounted as PGDATA
	// itself), or a move into pacsd's layout that 'pacsd adopt' began and
	// did not finish (AdoptMarker). Only 'pacsd adopt' acts on it.
	Unadopted bool
}

// Files are pacsd's files in a node's PGDATA as read from the container.
// A file that does not exist is nil.
type Files struct {
	HBA           []byte // pg_hba.conf
	Params        []byte // pacsd.conf
	PostgresConf  []byte // postgresql.conf (for the include line)
	StandbySignal bool   // standby.signal exists
	// PassfileSum is the SHA-256 of pacsd.pgpass, nil when it is missing:
	// the password in it never leaves the node to be compared.
	PassfileSum []byte
	// ServerCert and RootCert are the node's server certificate and the CA
	// certificate in its PGDATA (nil when missing); KeyMatches says that
	// server.key is the certificate's key (the key itself is not kept).
	ServerCert, RootCert []byte
	KeyMatches           bool
}

// DBState is what the server reports about itself.
type DBState struct {
	// ServedCert is the certificate (DER) the server presented to a
	// connection opened for this observation; nil when it is not known (a
	// connection kept from before).
	ServedCert []byte
	Version    int // server_version_num
	InRecovery bool
	Timeline   int64
	// Settings maps parameter names to their state as pg_settings reports it.
	Settings map[string]Setting
	// Roles maps role names to their state (all roles, declared or not).
	Roles map[string]RoleState
	// Slots maps physical replication slot names to whether they are active.
	Slots map[string]bool
	// Streaming lists the application names of standbys streaming from this node.
	Streaming []string
	// Receiver is the status of this node's WAL receiver ("" when none).
	Receiver string
	// WAL is the position of the server's WAL: written on a primary
	// (pg_current_wal_lsn), replayed on a standby (pg_last_wal_replay_lsn).
	WAL uint64
	// ReceivedWAL is how far a standby has received WAL (0 on a primary).
	// Once its startup process has asked for streaming it is at least the
	// start of the segment it asked for (PostgreSQL sets it there), before
	// that 0.
	ReceivedWAL uint64
	// OldestWAL is where the oldest WAL segment in a server's pg_wal
	// begins, whatever its timeline: WAL before it is gone from this
	// server (0 when it could not be read).
	OldestWAL uint64
	// SyncStandbys lists the application names of standbys that a primary
	// waits for (sync_state sync or quorum).
	SyncStandbys []string
	// Replicas are a primary's WAL senders by application name
	// (pg_stat_replication); SlotInfo its physical slots by name with the
	// WAL each retains. Read by State only.
	Replicas map[string]ReplicaState
	SlotInfo map[string]SlotState
}

// ReplicaState is one row of pg_stat_replication.
type ReplicaState struct {
	State     string // startup, catchup, streaming, backup, stopping
	SyncState string // async, potential, sync, quorum
	// ReplayLSN is how far the standby has replayed; ReplayLag is
	// replay_lag in seconds (0 when caught up and idle).
	ReplayLSN uint64
	ReplayLag float64
}

// SlotState is one physical replication slot.
type SlotState struct {
	Active bool
	// Retained is the WAL it holds back on the primary (bytes from its
	// restart_lsn to the current position); WALStatus is PostgreSQL's
	// wal_status (reserved, extended, unreserved, lost).
	Retained  int64
	WALStatus string
}

// Setting is one row of pg_settings.
type Setting struct {
	Value          string // setting with unit as SHOW prints it
	Context        string // postmaster, sighup, ...
	SourceFile     string // the file that set it, "" for defaults
	PendingRestart bool
}

// RoleState is one row of pg_authid.
type RoleState struct {
	Login       bool
	Replication bool
	Superuser   bool
	// Verifier is the stored password (a SCRAM-SHA-256 verifier), "" when none.
	// It is not the password, but it is still never printed.
	Verifier string
	MemberOf []string
}

// ParseBuildAttempts reads the content of BuildAttemptsPath; anything but a
// count reads as one attempt, never as none.
func ParseBuildAttempts(b []byte) int {
	n, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || n < 1 {
		return 1
	}
	return n
}
