package pgconf

import (
	"bytes"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/pacsd/pacsd/pkg/spec"
)

// hbaLine is one rule of pg_hba.conf; comment, when set, follows the rule.
type hbaLine struct {
	typ, database, user, address, method, comment string
}

// HBA renders pg_hba.conf for node of cluster c. peers are the addresses of
// the other hosts that hold nodes of c (empty for a one-engine cluster): a
// CIDR, an IP address (written as a one-address CIDR) or a host name (which
// pg_hba matches by reverse lookup). They are sorted and deduplicated, so
// their order does not change the file.
//
// The rules, in order:
//   - local all and local replication with trust: connections over the
//     container's own socket are trusted, as the image's contract says;
//   - hostssl replication for the replication user from samenet and each
//     peer: replication only over TLS;
//   - hostssl all for the superuser (pacsd itself, and pg_rewind of a former
//     primary) from samenet and each peer;
//   - the cluster's access rules in file order, as "hostssl" (the default,
//     and always for the cert method) or, with ssl = false, "host", each
//     followed by a comment naming the rule.
//
// No host rule ever uses trust: pacsd's own rules use scram-sha-256 and the
// access rules take the methods the spec allows. Names are quoted as pg_hba
// needs (see hbaName); "all" in an access rule is the keyword.
func HBA(c *spec.Cluster, node string, peers []string) []byte {
	nets := []string{"samenet"}
	nets = append(nets, peerAddresses(peers)...)
	lines := []hbaLine{
		{typ: "local", database: "all", user: "all", method: "trust"},
		{typ: "local", database: "replication", user: "all", method: "trust"},
	}
	for _, n := range nets {
		lines = append(lines, hbaLine{typ: "hostssl", database: "replication", user: hbaName(c.Replication.User), address: n, method: "scram-sha-256"})
	}
	for _, n := range nets {
		lines = append(lines, hbaLine{typ: "hostssl", database: "all", user: hbaName(c.Superuser.Name), address: n, method: "scram-sha-256"})
	}
	for _, a := range c.Access {
		typ := "host"
		if a.SSL || a.Method == "cert" {
			typ = "hostssl"
		}
		lines = append(lines, hbaLine{
			typ:      typ,
			database: accessName(a.Database),
			user:     accessName(a.User),
			address:  a.Address,
			method:   a.Method,
			comment:  "# access " + strconv.Quote(a.Name),
		})
	}

	var b bytes.Buffer
	fmt.Fprintf(&b, "# pg_hba.conf of node %s in cluster %s, managed by pacsd.\n", strconv.Quote(node), strconv.Quote(c.Name))
	b.WriteString("# pacsd writes this whole file and puts back any edit: change the access\n")
	b.WriteString("# rules of the topology file instead.\n")
	b.WriteString("#\n")
	writeHBATable(&b, lines)
	return b.Bytes()
}

// writeHBATable writes the rules in aligned columns, under a heading.
func writeHBATable(b *bytes.Buffer, lines []hbaLine) {
	heading := hbaLine{typ: "# TYPE", database: "DATABASE", user: "USER", address: "ADDRESS", method: "METHOD"}
	var w [5]int
	for _, l := range append([]hbaLine{heading}, lines...) {
		for i, f := range []string{l.typ, l.database, l.user, l.address, l.method} {
			w[i] = max(w[i], len(f))
		}
	}
	for _, l := range append([]hbaLine{heading}, lines...) {
		row := fmt.Sprintf("%-*s  %-*s  %-*s  %-*s  %-*s  %s", w[0], l.typ, w[1], l.database, w[2], l.user, w[3], l.address, w[4], l.method, l.comment)
		b.WriteString(strings.TrimRight(row, " "))
		b.WriteByte('\n')
	}
}

// accessName is a database or user of an access rule: "all" is the keyword,
// anything else a name.
func accessName(name string) string {
	if name == "all" {
		return name
	}
	return hbaName(name)
}

// peerAddresses returns the peers as pg_hba addresses, sorted, without
// duplicates: CIDRs in their canonical form, single IP addresses as /32 or
// /128, anything else (a host name) as a quoted-if-needed token.
func peerAddresses(peers []string) []string {
	out := make([]string, 0, len(peers))
	for _, p := range peers {
		p = strings.TrimSpace(p)
		if pfx, err := netip.ParsePrefix(p); err == nil {
			out = append(out, pfx.Masked().String())
		} else if ip, err := netip.ParseAddr(p); err == nil {
			ip = ip.WithZone("")
			out = append(out, netip.PrefixFrom(ip, ip.BitLen()).String())
		} else if p != "" {
			out = append(out, hbaName(p))
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}
