package reconcile

import (
	"context"
	"errors"
	"maps"
	"time"

	"github.com/pacsd/pacsd/pkg/spec"
)

// PGDATA is the data directory inside every node's container; the node's
// volume or host directory is mounted at its parent, DataMount.
const (
	PGDATA    = "/var/lib/postgresql/data"
	DataMount = "/var/lib/postgresql"
	// SecretsDir is where files holding secrets are placed in containers
	// (never in the environment): POSTGRES_PASSWORD_FILE points into it.
	SecretsDir = "/run/pacsd"
	// BuildingMarker exists beside PGDATA while pacsd builds a node's data
	// (a base backup); data with the marker is partial and never started.
	BuildingMarker = DataMount + "/pacsd-building"
	// BuildAttemptsPath, beside PGDATA, counts the base backups of the node
	// that began and did not finish; a finished one removes it. After
	// MaxBuildAttempts pacsd builds the node no more and says why.
	BuildAttemptsPath = DataMount + "/pacsd-build-attempts"
)

// Runtime is the container engine of one host, as Apply and Observe use it.
// Every method bounds its own API calls with a timeout; "absent" is reported
// as a nil result with a nil error, never as an error.
type Runtime interface {
	// NetworkInspect returns the network named name, nil when absent.
	NetworkInspect(ctx context.Context, name string, cluster string) (*NetworkState, error)
	// NetworkCreate creates a bridge network with labels.
	NetworkCreate(ctx context.Context, name string, labels map[string]string) error
	// ImageInspect returns the image ref, nil when absent.
	ImageInspect(ctx context.Context, ref string) (*ImageState, error)
	// ImagePull pulls ref, reporting progress lines; the error says clearly
	// when the image cannot be had (no registry, unknown image).
	ImagePull(ctx context.Context, ref string, progress func(string)) error
	// ContainerInspect returns the container named name, nil when absent.
	// Owned is set when its labels name cluster and node.
	ContainerInspect(ctx context.Context, name, cluster, node string) (*ContainerState, error)
	// ContainerCreate creates (does not start) a container and places
	// c.Files into it before returning.
	ContainerCreate(ctx context.Context, c ContainerSpec) (id string, err error)
	ContainerStart(ctx context.Context, id string) error
	// ContainerStop stops with SIGINT (PostgreSQL's fast shutdown), then kills after timeout.
	ContainerStop(ctx context.Context, id string, timeout time.Duration) error
	// ContainerRemove removes a container, never its volumes.
	ContainerRemove(ctx context.Context, id string) error
	// NetworkAliases gives a container exactly aliases on network netName.
	NetworkAliases(ctx context.Context, id, netName string, aliases []string) error
	// ReadFiles reads files from a container, running or not; a missing file
	// is absent from the map, not an error.
	ReadFiles(ctx context.Context, id string, paths []string) (map[string][]byte, error)
	// WriteFiles places files into a container, each atomically (written
	// beside the target, then renamed), owned by the postgres user.
	WriteFiles(ctx context.Context, id string, files []FileWrite) error
	// Exec runs cmd in the running container id as user and returns its
	// combined output and exit code; a non-zero exit code is not an error.
	Exec(ctx context.Context, id, user string, cmd []string) (string, int, error)
	// RunOnce runs a one-off container to completion and removes it. Output
	// lines go to o.Progress as they come; the result is the exit code and the
	// last lines of output.
	RunOnce(ctx context.Context, o OneOff) (code int, tail string, err error)
	// RemoveOneOffs finds the one-off containers of node in cluster (see
	// IsOneOff), left by a pacsd that was killed while one ran, kills them,
	// confirms that they no longer run, and removes them. It returns the
	// names of those it removed; an error means one may still run (and
	// write into the node's data). The node's own container is never
	// touched.
	RemoveOneOffs(ctx context.Context, cluster, node string) (removed []string, err error)
	// NodeContainers returns the names of the containers labelled as node's
	// own in cluster (not its one-offs), whatever their names are now.
	NodeContainers(ctx context.Context, cluster, node string) ([]string, error)
	// DataInspect reports what a data location holds, with a one-off
	// container of image when no container of the node runs.
	DataInspect(ctx context.Context, image string, m Mount) (DataState, error)
	// EngineID returns the engine's own ID, which stays the same however
	// the engine is reached and across its restarts; "" when it does not
	// say.
	EngineID(ctx context.Context) (string, error)
}

// ClusterState is what pacsd remembers of a cluster across restarts.
type ClusterState struct {
	// Acting is the node that is the primary now; "" means the spec's primary.
	Acting string `json:"acting,omitempty"`
	// Epoch counts changes of the acting primary (switchovers, failovers).
	Epoch int64 `json:"epoch"`
	// Keep is a value of the spec's primary that must not start a switchover:
	// the spec's primary at the time of a failover or of a switchover asked
	// for on the command line. It is cleared when the spec names the acting
	// primary.
	Keep string `json:"keep,omitempty"`
	// Rounds counts the apply rounds that acted on the cluster, from any
	// pacsd process: a round whose observation is older than another's
	// actions sees it changed and observes again.
	Rounds uint64 `json:"rounds,omitempty"`
	// Placed maps each node to where pacsd last saw its container: a node
	// the file now puts on another host or engine is not acted on (its
	// container, perhaps a primary, may still run where it was), and the
	// restart policy tells whether an engine that comes back starts it.
	Placed map[string]Placement `json:"placed,omitempty"`
	// Confirmed is the old primary an operator confirmed stopped ('pacsd
	// failover --confirm-fenced') while its engine did not answer: the
	// promotion of Acting goes on without that node's engine. It is cleared
	// when that engine answers again (the node is then fenced if it runs).
	Confirmed string `json:"confirmed,omitempty"`
}

// Placement is where a node's container was seen (see ClusterState.Placed).
type Placement struct {
	// Host is the node's host block ("" the local engine), Docker that
	// host's endpoint as the file wrote it.
	Host   string `json:"host,omitempty"`
	Docker string `json:"docker,omitempty"`
	// Restart is the container's restart policy ("no", "unless-stopped").
	Restart string `json:"restart,omitempty"`
	// Engine is the ID of the engine it ran on (Runtime.EngineID), "" when
	// not known.
	Engine string `json:"engine,omitempty"`
}

// Same reports whether s and o record the same state.
func (s ClusterState) Same(o ClusterState) bool {
	return s.Acting == o.Acting && s.Epoch == o.Epoch && s.Keep == o.Keep && s.Rounds == o.Rounds && s.Confirmed == o.Confirmed && maps.Equal(s.Placed, o.Placed)
}

// ClusterStore is the one owner of what pacsd keeps of a cluster across
// restarts and shares between pacsd processes: the acting primary, the epoch,
// the round counter (ClusterState), the failover supervisor's last sight of a
// healthy primary (LastSeen), and the cluster's lock. Plan, Apply, the
// switchover, the failover and the daemon's supervisor use nothing else to
// know them. pkg/state implements it over the state directory; MemoryStore
// implements it in memory (tests, and the model of a distributed store).
type ClusterStore interface {
	// Load returns the stored state; the zero state when none is stored. A
	// stored record that cannot be read as one Save wrote is an error that
	// matches ErrRecordDamaged.
	Load(cluster string) (ClusterState, error)
	// Save stores the state atomically and durably before returning. When
	// the store cannot be written (a full or read-only disk), the error
	// matches ErrRecordNotWritten and the stored record is the one before.
	Save(cluster string, s ClusterState) error
	// LoadSeen returns the last sight of a healthy primary; the zero
	// LastSeen when none is kept.
	LoadSeen(cluster string) (LastSeen, error)
	// SaveSeen keeps ls for LoadSeen, atomically.
	SaveSeen(cluster string, ls LastSeen) error
	// Lock takes the cluster's lock, shared by every pacsd process on the
	// store: Apply holds it while it checks that nothing changed since its
	// observation and carries out a round's actions (not while it
	// observes), a switchover while it observes and switches, a failover
	// throughout; so no two ever act on a cluster at once. It waits until
	// ctx is done and returns the release; an error that matches ErrLocked
	// means another holder kept it until then (a context done already makes
	// it one try).
	Lock(ctx context.Context, cluster string) (unlock func(), err error)
}

// CheckWrite asks s whether a record of cluster could be written now,
// without writing one, when s can tell (a state directory can: a copy of
// the record written to a temporary file); nil when it cannot.
func CheckWrite(s ClusterStore, cluster string) error {
	if wc, ok := s.(interface{ CheckWrite(cluster string) error }); ok {
		return wc.CheckWrite(cluster)
	}
	return nil
}

// ErrLocked is matched by ClusterStore.Lock's error when another holder
// kept the lock until the context was done.
var ErrLocked = errors.New("the cluster is locked")

// ErrRecordDamaged is matched by ClusterStore.Load's error when the stored
// record exists but is not one Save wrote (empty, cut short, unparsable).
var ErrRecordDamaged = errors.New("the cluster's state record is damaged")

// ErrRecordNotWritten is matched by ClusterStore.Save's error when the
// store could not write the record (a full or read-only file system under
// the state directory): nothing that must follow the record may go on.
var ErrRecordNotWritten = errors.New("the cluster's record cannot be written")

// Database connects to PostgreSQL servers.
type Database interface {
	// Connect opens a connection to the server at addr ("host:port") as user.
	Connect(ctx context.Context, addr, user string, password spec.Secret, database string) (DBConn, error)
}

// DBConn is one connection to one server.
type DBConn interface {
	// State reads everything Observe needs about the server.
	State(ctx context.Context) (*DBState, error)
	// SetRole creates the role or corrects its attributes and password so that
	// they match r. The password travels as a SCRAM verifier only.
	SetRole(ctx context.Context, r RoleSpec) error
	// DropRole drops the role if it exists.
	DropRole(ctx context.Context, name string) error
	// CreateSlot creates a physical replication slot if it does not exist,
	// and anew when PostgreSQL invalidated it (wal_status lost).
	CreateSlot(ctx context.Context, name string) error
	// ResetSetting removes an ALTER SYSTEM override of a parameter.
	ResetSetting(ctx context.Context, name string) error
	// Reload asks the server to re-read its configuration (pg_reload_conf).
	Reload(ctx context.Context) error
	// Health reads, cheaply, whether the server is in recovery and its WAL
	// positions (the WAL, ReceivedWAL, InRecovery and SyncStandbys fields of
	// DBState; the rest stays empty).
	Health(ctx context.Context) (*DBState, error)
	// Checkpoint runs CHECKPOINT (it makes a following shutdown quick).
	Checkpoint(ctx context.Context) error
	// Promote ends recovery (pg_promote, waiting until it is done); an
	// error when the server is not in recovery or did not finish in time.
	Promote(ctx context.Context) error
	// DropSlot drops a replication slot if it exists and is not active.
	DropSlot(ctx context.Context, name string) error
	// ReadFiles reads files as the server sees them (absolute paths, or
	// relative to its data directory): the content of each path, or its
	// SHA-256 for a path also in digests. A missing file is not in the map.
	ReadFiles(ctx context.Context, paths, digests []string) (map[string][]byte, error)
	Close()
}

// RoleSpec is what a role must look like.
type RoleSpec struct {
	Name        string
	Login       bool
	Replication bool
	Superuser   bool
	// Verifier is the SCRAM-SHA-256 verifier to store; "" leaves the password alone.
	Verifier string
	// MemberOf lists roles it must be a member of (others are left alone).
	MemberOf []string
}

// Mount is a node's data location mounted at DataMount: a named volume or a
// host directory.
type Mount struct {
	Volume  string
	HostDir string
}

// FileWrite is a file pacsd places into a container, owned by postgres.
type FileWrite struct {
	Path    string // absolute path in the container
	Content []byte
	Mode    int64
	// Secret marks content that must never be printed.
	Secret bool
	// Issue, when set, makes the executor issue a certificate for Path
	// (and its key) in place of Content: see CertIssue.
	Issue *CertIssue
}

// ContainerSpec is everything pacsd decides about a node's container.
type ContainerSpec struct {
	Name    string
	Image   string
	Labels  map[string]string
	Env     []string // never holds a secret
	Cmd     []string // empty: the image's
	Network string
	Aliases []string
	Mount   Mount
	// Port is the published host port (0: none).
	Port int
	// PortAddress is the host address Port is published on: the node's
	// host block's address when it is an IP address, "" for every address.
	PortAddress string
	// RestartPolicy is "no" or "unless-stopped".
	RestartPolicy string
	// Files are placed before the first start (password file, initdb script, ...).
	Files []FileWrite
}

// OneOff is a short-lived container, for pg_basebackup and data moves.
type OneOff struct {
	Name     string
	Image    string
	Network  string
	Labels   map[string]string
	Mount    Mount
	Cmd      []string
	Files    []FileWrite
	Progress func(line string)
}
