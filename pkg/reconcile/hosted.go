package reconcile

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/pacsd/pacsd/pkg/spec"
)

// Hosted is what Apply and Failover need in the mode "every host"
// (daemon.etcd): each host's pacsd drives its own engine only, the others'
// nodes are seen through what their pacsd reports, and the acting primary
// runs only while its host's pacsd holds the primary's lease.
type Hosted struct {
	// Host is the host block of this pacsd.
	Host string
	// MayRunPrimary reports whether this pacsd holds the primary's lease of
	// cluster for node now, so that it may start or promote it.
	MayRunPrimary func(cluster, node string) bool
	// Fenced confirms, in a failover, that the old primary node can no
	// longer accept writes: its lease has expired or was given up, and it
	// does not answer as a primary. It stands for the fence through the
	// engine, which only the old primary's own host could carry out. The
	// error wraps ErrNotFenced when it cannot be confirmed.
	Fenced func(ctx context.Context, c *spec.Cluster, node string) error
	// FenceOwn fences node, of this host, through this host's engine (as
	// fenceNode does), then gives up the primary's lease this pacsd holds
	// for it, if any, so that the record may name another primary: the
	// fence of a failover by hand ('pacsd failover') that the old
	// primary's own host carries out. The error wraps ErrNotFenced when
	// the fence or the lease's release cannot be confirmed.
	FenceOwn func(ctx context.Context, c *spec.Cluster, node string) error
	// Seen receives each observation of a cluster (its host's nodes are
	// reported to the other hosts' pacsd).
	Seen func(c *spec.Cluster, obs *Observed)
	// FilePrimaries returns, by host, the primary that each host's pacsd
	// reads in its file for cluster (HostReport.Primary), for the hosts
	// that report now. A switchover waits until they all agree
	// (SwitchoverWaits).
	FilePrimaries func(ctx context.Context, cluster string) (map[string]string, error)
	// HandOver gives up cluster's primary lease, which this pacsd holds
	// for node, in a switchover, once node is stopped and the target has
	// everything it wrote: the record may then name the target. This pacsd
	// does not take the lease for node again until undo is called (the
	// switchover is given up and node started again).
	HandOver func(ctx context.Context, cluster, node string) (undo func(), err error)
}

// SwitchoverWaits says why a switchover of c to the primary its file names
// must wait in the mode "every host", "" when it need not: every host of
// the cluster has a pacsd that reports on it, and each reads the same
// primary in its file (primaries, by host; err when they could not be
// read). A host whose file still names the old primary would switch back
// once its node holds the lease. It has no side effects.
func SwitchoverWaits(c *spec.Cluster, primaries map[string]string, err error) string {
	if err != nil {
		return fmt.Sprintf("what the other hosts' pacsd read in their files cannot be read from etcd (%v)", err)
	}
	var why []string
	for _, h := range c.Hosts() {
		p, ok := primaries[h]
		switch {
		case !ok:
			why = append(why, fmt.Sprintf("no pacsd of host %q reports on the cluster (start it there)", h))
		case p == "":
			why = append(why, fmt.Sprintf("the pacsd of host %q does not say which primary its file names (an older pacsd: upgrade it)", h))
		case p != c.Primary:
			why = append(why, fmt.Sprintf("the file of host %q names %q (edit it there too; if it was edited, its pacsd kept the last valid file: see its log)", h, p))
		}
	}
	return strings.Join(why, "; ")
}

// remoteAddr is where this pacsd reaches node n's server when n runs on
// another host with pacsd on every host: that host's address and the
// node's published port; "" otherwise (the container's own address, from
// its engine).
func (d Deps) remoteAddr(n *spec.Node) string {
	if d.Hosted == nil || n.Host == d.Hosted.Host {
		return ""
	}
	return HostAddr(n)
}

// HostAddr is where other hosts reach node n's server: its host's address
// and its published port ("host:port", IPv6 in brackets); "" when it
// publishes no port or its host has no address.
func HostAddr(n *spec.Node) string {
	if n.Port == 0 || n.Address == "" {
		return ""
	}
	return net.JoinHostPort(n.Address, strconv.Itoa(n.Port))
}

// ErrReportedOnly is matched by the error of a Runtime that knows another
// host's node only through what that host's pacsd reports (the mode "every
// host") when asked for the node's files: Observe then takes its data as
// reported.
var ErrReportedOnly = errors.New("the node is known only through its host's report")

// runsPrimary are the kinds of action that make a node run, or run as a
// primary: on the acting primary they need its lease.
var runsPrimary = map[Kind]bool{StartContainer: true, Restart: true, Promote: true, Switchover: true}

// Scope keeps of a plan what the pacsd of host h carries out in the mode
// "every host": the actions on its own engine and nodes, and of those that
// run the acting primary only the ones it may (mayRun: it holds the lease);
// no base backup or rewind while the primary is not up (primaryUp: it takes
// writes) or has work pending on its own host.
// Problems that keep Apply off another host's node are that host's pacsd's
// to report and are dropped; an action held back for the lease becomes a
// problem of the acting primary alone (Problem.NodeOnly), and so does a
// switchover, which the acting primary's host carries out under its lease
// once every host's file names its target (switchWaits says why not). It
// has no side effects.
func Scope(c *spec.Cluster, h string, acting string, mayRun, primaryUp bool, switchWaits string, actions []Action, problems []Problem) ([]Action, []Problem) {
	hostOf := func(node, host string) string {
		if n := c.Node(node); n != nil {
			return n.Host
		}
		return host
	}
	var kept []Action
	var ps []Problem
	for _, p := range problems {
		if p.NodeOnly && p.Node != "" && hostOf(p.Node, "") != h {
			continue
		}
		if p.Summary == summaryPrimaryInRecovery && p.Node == acting && hostOf(acting, "") != h {
			// Its promotion is the leader's, or its own host's: this
			// host's nodes wait for it (below), nothing else here does.
			continue
		}
		ps = append(ps, p)
	}
	// The primary's host acts first: while the acting primary does not
	// take writes, or its host has work on it, no base backup or rewind
	// starts from it (it would fail, and count as a failed build).
	waits := !primaryUp
	for _, a := range actions {
		if a.Node == acting && hostOf(a.Node, a.Host) != h {
			waits = true
		}
	}
	// A node any of whose actions is held back is left alone this round:
	// its later actions assume the held one done (a standby's container
	// started on data no base backup made would initialise an empty
	// primary).
	blocked := map[string]string{}
	// A node of another host runs as a second primary: only its own pacsd
	// can fence it, and until it has, nothing here starts or promotes the
	// acting primary (the plan counts on the fence).
	for _, a := range actions {
		if a.Kind == Fence && a.Class != ClassRebuild && hostOf(a.Node, a.Host) != h { // not a diverged standby's stop
			blocked[acting] = "fence:" + a.Node
		}
	}
	for _, a := range actions {
		switch {
		case hostOf(a.Node, a.Host) != h || a.Node == "" || blocked[a.Node] != "":
		case a.Node == acting && runsPrimary[a.Kind] && !mayRun:
			blocked[a.Node] = "lease"
		case waits && (a.Kind == BaseBackup || a.Kind == Rewind):
			blocked[a.Node] = string(a.Kind)
		case !primaryUp && hostOf(acting, "") != h && a.Node != acting && a.Kind == WriteFile && a.Target == ParamsPath:
			// A standby pointed at another host's acting primary before
			// it takes writes (a failover half done) would find no slot
			// there yet and retry only after wal_retrieve_retry_interval.
			blocked[a.Node] = "repoint"
		}
	}
	for _, a := range actions {
		switch {
		case a.Kind == Switchover && hostOf(a.From, "") != h:
			// Only the pacsd of the acting primary's host can stop it.
			ps = append(ps, Problem{Cluster: c.Name, Node: a.From, Warning: true, Summary: "Switchover Waits",
				Detail: fmt.Sprintf("the file names %q as primary; the pacsd of host %q, where the acting primary %q runs, carries the switchover out (its log says what it waits for)", a.Node, hostOf(a.From, ""), a.From)})
		case a.Kind == Switchover && !mayRun:
			ps = append(ps, Problem{Cluster: c.Name, Node: a.From, NodeOnly: true, Summary: "Switchover Waits",
				Detail: fmt.Sprintf("the file names %q as primary, but this host's pacsd does not hold the lease of the acting primary %q in etcd, so it does not hand it over: check that etcd answers from this host", a.Node, a.From)})
		case a.Kind == Switchover && switchWaits != "":
			ps = append(ps, Problem{Cluster: c.Name, Node: a.From, NodeOnly: true, Summary: "Switchover Waits",
				Detail: fmt.Sprintf("the file names %q as primary, but %s; the switchover from %q waits until every host's pacsd reads the same primary", a.Node, switchWaits, a.From)})
		case a.Kind == Switchover:
			kept = append(kept, a) // carried out here: the target is asked over SQL
		case hostOf(a.Node, a.Host) != h || blocked[a.Node] != "":
		default:
			kept = append(kept, a)
		}
	}
	for _, n := range c.Nodes {
		why := blocked[n.Name]
		switch {
		case why == "":
		case why == "lease":
			ps = append(ps, Problem{Cluster: c.Name, Node: n.Name, NodeOnly: true, Summary: "Primary Lease Not Held",
				Detail: fmt.Sprintf("node %q is the acting primary, but this host's pacsd does not hold its lease in etcd, so it neither starts nor promotes it: check that etcd answers from this host; when the lease has expired, another host's pacsd fails over", n.Name)})
		case why == "repoint":
			ps = append(ps, Problem{Cluster: c.Name, Node: n.Name, NodeOnly: true, Summary: "Waits For The Primary",
				Detail: fmt.Sprintf("node %q is to follow the acting primary %q, which does not take writes yet (a failover or switchover under way on another host); this host's pacsd repoints it once it does", n.Name, acting)})
		case strings.HasPrefix(why, "fence:"):
			other := strings.TrimPrefix(why, "fence:")
			ps = append(ps, Problem{Cluster: c.Name, Node: n.Name, NodeOnly: true, Summary: "Second Primary Elsewhere",
				Detail: fmt.Sprintf("node %q on host %q takes writes although %q is the acting primary; only the pacsd of that host can fence it, and until it has, this host's pacsd neither starts nor promotes %q: check that pacsd runs on host %q", other, hostOf(other, ""), n.Name, n.Name, hostOf(other, ""))})
		default:
			ps = append(ps, Problem{Cluster: c.Name, Node: n.Name, NodeOnly: true, Summary: "Waits For The Primary",
				Detail: fmt.Sprintf("node %q is built from the acting primary %q (%s), which does not take writes yet or has work pending on its host; this host's pacsd builds it once the primary runs", n.Name, acting, why)})
		}
	}
	return kept, ps
}

// HostReport is what the pacsd of one host saw of its engine and of its
// own nodes of one cluster, for the pacsd of the other hosts (the mode
// "every host"), which reach that engine through it only. It holds no
// secret.
type HostReport struct {
	Host string    `json:"host"`
	At   time.Time `json:"at"`
	// Engine is what was seen on the host's engine (Unreachable: its own
	// engine did not answer).
	Engine EngineState `json:"engine"`
	// Image is the cluster's image reference the engine was asked about.
	Image string `json:"image"`
	// Primary is the cluster's primary as this host's file names it.
	Primary string `json:"primary,omitempty"`
	// Nodes maps the host's nodes of the cluster to what was seen of them.
	Nodes map[string]NodeReport `json:"nodes"`
}

// NodeReport is one node as its host's pacsd saw it.
type NodeReport struct {
	// Container is its container; Addr is where other hosts reach its
	// server (the host's address and the published port, "" when the node
	// publishes none).
	Container *ContainerState `json:"container,omitempty"`
	// Containers are the names of the containers labelled as the node's
	// own (Runtime.NodeContainers).
	Containers []string  `json:"containers,omitempty"`
	Mount      Mount     `json:"mount"`
	Data       DataState `json:"data"`
	// Health is the server's role and positions (nil when it did not
	// answer); DBError says why.
	Health  *DBState `json:"health,omitempty"`
	DBError string   `json:"db_error,omitempty"`
}

// Report is what the pacsd of host reports of obs: its engine and its own
// nodes of c, with nothing secret (no role, no setting, no file).
func Report(c *spec.Cluster, host string, obs *Observed, at time.Time) HostReport {
	r := HostReport{Host: host, At: at, Image: c.Image, Primary: c.Primary, Nodes: map[string]NodeReport{}}
	if e := obs.Engines[host]; e != nil {
		r.Engine = *e
	}
	for _, n := range c.Nodes {
		ns := obs.Nodes[n.Name]
		if n.Host != host || ns == nil {
			continue
		}
		nr := NodeReport{Mount: Mount{Volume: n.Volume, HostDir: n.Data}, Data: ns.Data, DBError: ns.DBError}
		if ns.Container != nil {
			ct := *ns.Container
			ct.Addr = ""
			if ct.Running {
				ct.Addr = HostAddr(n)
			}
			nr.Container = &ct
			if ct.Owned {
				nr.Containers = append(nr.Containers, ct.Name)
			}
		}
		nr.Containers = append(nr.Containers, ns.Strays...)
		if db := ns.DB; db != nil {
			nr.Health = &DBState{Version: db.Version, InRecovery: db.InRecovery, Timeline: db.Timeline, Streaming: db.Streaming,
				Receiver: db.Receiver, WAL: db.WAL, ReceivedWAL: db.ReceivedWAL, OldestWAL: db.OldestWAL, SyncStandbys: db.SyncStandbys}
		}
		r.Nodes[n.Name] = nr
	}
	return r
}
