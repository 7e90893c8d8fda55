package reconcile

import (
	"slices"
	"strings"

	"github.com/pacsd/pacsd/pkg/pgconf"
	"github.com/pacsd/pacsd/pkg/spec"
)

// planDatabase plans what the primary's server must hold: no ALTER SYSTEM
// override of a parameter pacsd writes, the roles, and one slot per standby.
func (p *planner) planDatabase(primary *spec.Node, ns *NodeState, standbys []*spec.Node) {
	c := p.c
	db := ns.DB
	p.planOverrides(primary, ns)
	roles := []struct {
		r        RoleSpec
		password spec.Secret
		absent   bool
	}{
		{RoleSpec{Name: c.Superuser.Name, Login: true, Superuser: true}, c.Superuser.Password, false},
		{RoleSpec{Name: c.Replication.User, Login: true, Replication: true}, c.Replication.Password, false},
	}
	if len(c.Nodes) < 2 && c.Replication.Password.IsZero() {
		roles = roles[:1]
	}
	for _, r := range c.Roles {
		roles = append(roles, struct {
			r        RoleSpec
			password spec.Secret
			absent   bool
		}{RoleSpec{Name: r.Name, Login: r.Login, MemberOf: r.MemberOf}, r.Password, r.Ensure == "absent"})
	}
	if db == nil && authFailed(ns.DBError) {
		r := roles[0].r
		p.add(Action{Kind: SetRole, Node: primary.Name, Target: r.Name, Role: &r, Password: c.Superuser.Password, Local: true, phase: phasePrimary,
			Reason: "pacsd cannot log in: the superuser's password differs from the spec; it is reset over the container's own socket"})
		roles = roles[1:]
	}
	for _, want := range roles {
		reason := p.roleReason(db, want.r, want.password)
		switch {
		case want.absent:
			if db == nil {
				continue
			}
			if _, ok := db.Roles[want.r.Name]; ok {
				p.add(Action{Kind: DropRole, Node: primary.Name, Target: want.r.Name, Reason: `declared with ensure = "absent"`})
			}
		case reason != "":
			r := want.r
			p.add(Action{Kind: SetRole, Node: primary.Name, Target: r.Name, Role: &r, Password: want.password, Reason: reason})
		}
	}
	for _, n := range standbys {
		slot := pgconf.SlotName(c.Name, n.Name)
		if db == nil {
			p.add(Action{Kind: CreateSlot, Node: primary.Name, Target: slot, Reason: "standby " + n.Name + " needs a replication slot"})
			continue
		}
		if _, ok := db.Slots[slot]; !ok {
			p.add(Action{Kind: CreateSlot, Node: primary.Name, Target: slot, Reason: "standby " + n.Name + " has no replication slot"})
		} else if db.SlotInfo[slot].WALStatus == "lost" {
			p.add(Action{Kind: CreateSlot, Node: primary.Name, Target: slot, Reason: "the replication slot of standby " + n.Name + " was invalidated (wal_status lost): it is made anew"})
		}
	}
}

// authFailed reports a login refused for its password (SQLSTATE 28P01).
func authFailed(dbError string) bool {
	return strings.Contains(dbError, "28P01") || strings.Contains(dbError, "password authentication failed")
}

// roleReason says why role r must be set, "" when it is as the spec says.
func (p *planner) roleReason(db *DBState, r RoleSpec, password spec.Secret) string {
	if db == nil {
		return "the primary is new or not reachable yet"
	}
	have, ok := db.Roles[r.Name]
	if !ok {
		return "the role does not exist"
	}
	var diffs []string
	if have.Login != r.Login {
		diffs = append(diffs, "login")
	}
	if have.Replication != r.Replication {
		diffs = append(diffs, "replication")
	}
	if have.Superuser != r.Superuser {
		diffs = append(diffs, "superuser")
	}
	for _, m := range r.MemberOf {
		if !slices.Contains(have.MemberOf, m) {
			diffs = append(diffs, "member of "+m)
		}
	}
	if !password.IsZero() && (p.matches == nil || !p.matches(have.Verifier, password.Reveal())) {
		diffs = append(diffs, "password")
	}
	if len(diffs) == 0 {
		return ""
	}
	return "differs: " + strings.Join(diffs, ", ")
}
