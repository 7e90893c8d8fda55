package reconcile

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"

	"github.com/pacsd/pacsd/pkg/pgconf"
	"github.com/pacsd/pacsd/pkg/spec"
)

// planContainer plans the data, container and files of one node. phase is
// the phase of its container actions (phasePrimary or phaseStandbys).
func (p *planner) planContainer(n *spec.Node, ns *NodeState, primary bool, phase runPhase) {
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
			want.Files = append(want.Files, certFiles(p.c, n, p.obs.CA, initFilesDir)...)
		case ns.Data.Major != 0:
			// Data that is there already: pacsd's files go in with the
			// container, before its first start.
			want.Files = append(want.Files, pacsdFiles(files, !primary)...)
			want.Files = append(want.Files, certFiles(p.c, n, p.obs.CA, PGDATA)...)
			reason += "; it is created on the data that is there, with pacsd's files in it"
		}
		p.add(Action{Kind: CreateContainer, Node: n.Name, Target: want.Name, Container: &want, Reason: reason, phase: phase})
		p.add(Action{Kind: StartContainer, Node: n.Name, Target: want.Name, Reason: "the container was created", phase: phase})
		return
	case !sameConfig(ct.Labels[LabelConfig], want) || p.obs.Engine(n.Host).Network == nil:
		why := "its configuration differs from the spec (" + configDiff(ct.Labels, want.Labels) + ")"
		if p.obs.Engine(n.Host).Network == nil {
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
	p.planAliases(n, ct, want.Aliases, phaseStandbys)
	p.planFiles(n, ns, files, primary, phaseFiles, false)
}

// planAliases gives an existing container the DNS aliases its role calls for
// (the primary alias follows the acting primary).
func (p *planner) planAliases(n *spec.Node, ct *ContainerState, want []string, phase runPhase) {
	w := slices.Sorted(slices.Values(want))
	if ct == nil || slices.Equal(ct.Aliases, w) {
		return
	}
	p.add(Action{Kind: SetAliases, Node: n.Name, Target: ct.Name, Aliases: w, phase: phase,
		Reason: fmt.Sprintf("its aliases on network %q are %v, its role calls for %v", p.c.Network, ct.Aliases, w)})
}

// planMoveAside moves node n's data aside, never deleting it, when it must
// not be started or cannot serve any more (moveAsideWhy), and returns the
// state the rest of the plan must assume: no container, no data, so that
// the node is built anew from a base backup.
func (p *planner) planMoveAside(n *spec.Node, ns *NodeState, m Mount) *NodeState {
	why, what := p.moveAsideWhy(n, ns)
	if why == "" {
		return ns
	}
	if ns.Container != nil {
		p.add(Action{Kind: RemoveContainer, Class: ClassRebuild, Node: n.Name, Target: ns.Container.Name, Reason: what, phase: phaseSwitch})
	}
	p.add(Action{Kind: MoveAside, Class: ClassRebuild, Node: n.Name, Target: n.Location(), Mount: m, Reason: why})
	return &NodeState{}
}

// moveAsideWhy says why node n's data is moved aside, and in a few words
// what it is; "" when it stays: a partial base backup (never started), or a
// standby that can never stream again because the acting primary no longer
// has the WAL it asks for. No side effects.
//
// The second is decided from positions, not from the slot's wal_status: a
// slot can read lost when the standby can still stream (a slot left from
// when the node was a standby itself, or one made anew since), and read
// reserved when it cannot (made anew after the WAL was gone). A running
// standby that does not stream asks for WAL from ReceivedWAL once it has
// replayed what it has (before that ReceivedWAL is 0 and nothing is
// decided); the primary keeps WAL from OldestWAL. Only when the standby has
// no restore_command (no archive to read from) is what it asks for lost
// for good.
func (p *planner) moveAsideWhy(n *spec.Node, ns *NodeState) (why, what string) {
	if ns.Data.Partial {
		return "the data is a partial base backup; it is kept aside, never started", "its data is a partial base backup"
	}
	primary := p.node(p.acting)
	if n.Name == p.acting || ns.Data.Major == 0 || primary == nil || !WALGone(primary.DB, ns.DB, n.Name) {
		return "", ""
	}
	slot := pgconf.SlotName(p.c.Name, n.Name)
	state := "missing"
	if sl, ok := primary.DB.SlotInfo[slot]; ok {
		state = "wal_status " + cmp.Or(sl.WALStatus, "unknown")
	}
	what = fmt.Sprintf("%q no longer has the WAL it needs", p.acting)
	return fmt.Sprintf("it asks for WAL from %s, but the oldest WAL %q keeps begins at %s (its replication slot %s: %s; past max_slot_wal, %s, PostgreSQL invalidates a slot and removes the WAL), so it can never stream again; "+
		"its data is kept aside, never deleted, and it is built anew from a base backup",
		FormatLSN(ns.DB.ReceivedWAL), p.acting, FormatLSN(primary.DB.OldestWAL), slot, state, p.c.Replication.MaxSlotWAL), what
}

// WALGone reports that standby (named name) can never stream from primary:
// it runs, does not stream, has asked for WAL the primary no longer has,
// and has no archive to read it from. False when anything is unknown.
func WALGone(primary, standby *DBState, name string) bool {
	if primary == nil || standby == nil || primary.InRecovery || !standby.InRecovery {
		return false
	}
	if slices.Contains(primary.Streaming, name) || standby.Receiver == "streaming" {
		return false
	}
	if rc, ok := standby.Settings["restore_command"]; !ok || rc.Value != "" {
		return false
	}
	return standby.ReceivedWAL != 0 && primary.OldestWAL != 0 && standby.ReceivedWAL < primary.OldestWAL
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
		PortAddress:   publishAddress(n),
		RestartPolicy: restart,
		Files:         []FileWrite{{Path: superuserPasswordPath, Content: []byte(c.Superuser.Password.Reveal()), Mode: 0o600, Secret: true}},
	}
	cs.Labels = map[string]string{LabelCluster: c.Name, LabelNode: n.Name, LabelRole: role}
	cs.Labels[LabelConfig] = configDigest(cs)
	return cs
}

// publishAddress is the address node n's port is published on: its host's
// address when that is an IP address (so PostgreSQL is reached only where
// the other hosts reach it), else every address of the host.
func publishAddress(n *spec.Node) string {
	if n.Port == 0 || net.ParseIP(n.Address) == nil {
		return ""
	}
	return n.Address
}

// sameConfig reports whether a container labelled with digest was made for
// the configuration want. A container made before pacsd published ports on
// the host's address (its digest lacks the address) counts as the same: a
// restart of every node, primaries included, is not worth that alone; it
// gets the address when it is re-created for another change.
func sameConfig(digest string, want ContainerSpec) bool {
	if digest == want.Labels[LabelConfig] {
		return true
	}
	old := want
	old.PortAddress = ""
	return want.PortAddress != "" && digest == configDigest(old)
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
		"port=" + strings.TrimPrefix(cs.PortAddress+":", ":") + strconv.Itoa(cs.Port),
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
