package reconcile

import (
	"fmt"
	"strings"

	"github.com/pacsd/pacsd/pkg/spec"
)

// Kind says what an action does.
type Kind string

// The kinds of action, in the order of the phases Apply runs them in.
const (
	CreateNetwork   Kind = "create-network"
	PullImage       Kind = "pull-image"
	MoveAside       Kind = "move-aside"
	CreateContainer Kind = "create-container"
	RemoveContainer Kind = "remove-container"
	StartContainer  Kind = "start-container"
	WriteFile       Kind = "write-file"
	ResetSetting    Kind = "reset-setting"
	SetRole         Kind = "set-role"
	DropRole        Kind = "drop-role"
	CreateSlot      Kind = "create-slot"
	BaseBackup      Kind = "base-backup"
	Reload          Kind = "reload"
	Restart         Kind = "restart"
	// Fence stops a node that runs as a primary but is not the acting one.
	Fence Kind = "fence"
	// Switchover hands the primary role to Node (stop, catch up, promote).
	Switchover Kind = "switchover"
	// Promote ends recovery on the acting primary.
	Promote Kind = "promote"
	// Rewind makes a former primary's data follow the acting primary.
	Rewind Kind = "rewind"
	// SetAliases gives a container its DNS aliases on the cluster network.
	SetAliases Kind = "set-aliases"
)

// Class says how disruptive an action is to a node.
type Class string

// Classes of action; the empty class disturbs nothing that runs.
const (
	ClassNone     Class = ""
	ClassReload   Class = "reload"
	ClassRestart  Class = "restart"
	ClassRecreate Class = "recreate"
	ClassRebuild  Class = "rebuild"
	// ClassSwitchover moves the primary role: writes stop for a moment.
	ClassSwitchover Class = "switchover"
)

// Action is one step of a plan. Its fields other than Kind, Node, Target and
// Reason are what Apply needs to carry it out; none of them is ever printed
// when it holds a secret.
type Action struct {
	Kind    Kind
	Class   Class
	Cluster string
	Node    string // "" for cluster-wide actions
	// Host is the host whose engine a cluster-wide action (CreateNetwork,
	// PullImage) runs on; "" is the local engine.
	Host string
	// Target names what the action changes: a network, image, container,
	// file path, role, slot or parameter.
	Target string
	Reason string

	Container *ContainerSpec // CreateContainer
	File      *FileWrite     // WriteFile
	Role      *RoleSpec      // SetRole (Verifier empty: Password tells)
	Password  spec.Secret    // SetRole: the password the role must have (redacts itself)
	// Local makes SetRole run over the container's own socket (trusted by the
	// image's contract), for when pacsd cannot log in over TCP any more.
	Local  bool
	Backup *BackupSpec // BaseBackup
	Mount  Mount       // MoveAside, BaseBackup, Rewind
	// From is the node that is primary now (Switchover).
	From string
	// Aliases are the DNS aliases to set (SetAliases).
	Aliases []string
	// Repoint marks the Reload that gives a standby a new primary to
	// follow: Apply waits a moment (RepointTimeout) for it to stream.
	Repoint bool
	// CatchUp marks the Restart of a standby that lowers one of
	// hotStandbyParams: it is stopped only once it has replayed the
	// primary's WAL up to where it is now, past the record of the
	// primary's own restart with the lower value; before that, it would
	// not start again.
	CatchUp bool

	phase runPhase
}

// BackupSpec says how to build a standby's data with pg_basebackup.
type BackupSpec struct {
	Image    string
	Network  string
	Host     string // where the acting primary is reached (see Reach)
	Port     int
	User     string
	Slot     string
	Files    []FileWrite // placed into PGDATA when the backup is complete
	Passfile FileWrite   // libpq passfile for the replication role
	// RootCA is the cluster's CA certificate, placed for the one-off to
	// verify the acting primary's certificate with.
	RootCA FileWrite
}

// symbol is the diff sign of an action: + creates, - removes, ~ changes.
func (a Action) symbol() string {
	switch a.Kind {
	case CreateNetwork, PullImage, CreateContainer, CreateSlot, BaseBackup:
		return "+"
	case RemoveContainer, DropRole, MoveAside, Fence:
		return "-"
	}
	return "~"
}

// String prints the action as one line of a plan: sign, kind, node, target,
// class and reason. It never contains a secret.
func (a Action) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %-16s", a.symbol(), a.Kind)
	where := a.Cluster
	if a.Node != "" {
		where += "/" + a.Node
	}
	fmt.Fprintf(&b, " %-14s %s", where, a.Target)
	if a.Class != ClassNone {
		fmt.Fprintf(&b, " [%s]", a.Class)
	}
	if a.Reason != "" {
		fmt.Fprintf(&b, ": %s", a.Reason)
	}
	return b.String()
}
