package pgconf

import (
	"bytes"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/pacsd/pacsd/pkg/spec"
)

// Upstream is where a standby streams from. It is the zero value on the
// primary.
type Upstream struct {
	// Host and Port address the upstream server as the standby reaches it
	// (a Docker DNS name on the cluster network, or a host's address and
	// published port). Port 0 leaves libpq's default, 5432.
	Host string
	Port int
	// SlotName is the physical replication slot the upstream keeps for this
	// standby, normally SlotName(cluster, node).
	SlotName string
	// Passfile is the path, inside the container, of the file Passfile
	// renders; libpq reads the replication password from it.
	Passfile string
	// RootCert is the path, inside the container, of the cluster's CA
	// certificate: the standby verifies the upstream's server certificate
	// with it and that it names Host (sslmode=verify-full).
	RootCert string
}

// The files of a node's TLS certificate, relative to PGDATA (pacsd places
// them there; see reconcile).
const (
	ServerCertFile = "server.crt"
	ServerKeyFile  = "server.key"
	// RootCertFile is the cluster's CA certificate, which standbys verify
	// their upstream with.
	RootCertFile = "pacsd-ca.crt"
)

// setting is one line of pacsd.conf.
type setting struct {
	name, value string
	// note is a comment written after the line.
	note string
}

// Params renders pacsd.conf for node of cluster c: first every parameter
// pacsd manages, then the cluster's settings sorted by name. upstream is the
// zero value when node is the primary. node names a node of c (it is not
// checked: the name goes into the header and application_name as given).
//
// The managed parameters are listen_addresses = '*', port = 5432,
// wal_level = replica, hot_standby = on, wal_log_hints = on (for pg_rewind),
// max_wal_senders and max_replication_slots = max(10, 2 × nodes),
// max_slot_wal_keep_size = replication.max_slot_wal, synchronous_standby_names,
// password_encryption = scram-sha-256, ssl = on with ssl_cert_file and
// ssl_key_file (ServerCertFile, ServerKeyFile, relative to PGDATA),
// ssl_min_protocol_version = TLSv1.2, primary_conninfo and
// primary_slot_name. wal_level, max_wal_senders, max_replication_slots,
// password_encryption and ssl_min_protocol_version may be given in settings (the spec refuses the others):
// the value from settings then takes the managed line's place, so that no
// parameter is written twice.
//
// synchronous_standby_names is 'ANY 1 ("a", "b")' over the application names
// (node names) of every other node of c when replication is synchronous, on
// the primary and on standbys alike: the file is already right for a standby
// that gets promoted. It is the empty string when replication is asynchronous or c has no
// other node (a lone primary must not wait for a standby that cannot exist).
//
// On a standby, primary_conninfo names the upstream's host and port, the
// replication user, the passfile, application_name = node,
// sslmode=verify-full and sslrootcert (the cluster's CA); it never holds a
// password. On the primary, primary_conninfo
// and primary_slot_name are written as empty strings so that no value from elsewhere in
// postgresql.conf can make it stream.
//
// When c.ImageMajor is known, a parameter that PostgreSQL version does not
// have is left out with a comment saying so (PostgreSQL refuses to start on
// an unknown parameter in its configuration files), such as
// max_slot_wal_keep_size on PostgreSQL 12.
//
// Booleans and plain numbers are written bare; every other value (strings,
// enums, numbers with a unit such as '256MB') is written with Quote.
func Params(c *spec.Cluster, node string, upstream Upstream) []byte {
	slots := strconv.Itoa(max(10, 2*len(c.Nodes)))
	managed := []setting{
		{name: "listen_addresses", value: "*"},
		{name: "port", value: "5432"},
		{name: "wal_level", value: "replica"},
		{name: "hot_standby", value: "on"},
		{name: "wal_log_hints", value: "on", note: "pg_rewind brings a former primary back"},
		{name: "max_wal_senders", value: slots},
		{name: "max_replication_slots", value: slots},
		{name: "max_slot_wal_keep_size", value: c.Replication.MaxSlotWAL.String(), note: "replication.max_slot_wal"},
		{name: "synchronous_standby_names", value: synchronousNames(c, node), note: "replication.synchronous"},
		{name: "password_encryption", value: "scram-sha-256"},
		{name: "ssl", value: "on", note: "with the certificate pacsd issues for this node"},
		{name: "ssl_cert_file", value: ServerCertFile},
		{name: "ssl_key_file", value: ServerKeyFile},
		{name: "ssl_min_protocol_version", value: "TLSv1.2"},
		{name: "primary_conninfo", value: primaryConninfo(c, node, upstream)},
		{name: "primary_slot_name", value: upstream.SlotName},
	}
	written := map[string]bool{}
	var open []string // managed parameters that settings may give
	for i := range managed {
		m := &managed[i]
		written[strings.ToLower(m.name)] = true
		if _, fixed := spec.ManagedParam(m.name); fixed {
			continue
		}
		open = append(open, m.name)
		if v, ok := LookupSetting(c.Settings, m.name); ok {
			m.value, m.note = v, "from settings"
		}
	}
	var settings []setting
	for _, name := range sortedNames(c.Settings) {
		lower := strings.ToLower(name)
		if _, fixed := spec.ManagedParam(name); written[lower] || fixed {
			continue
		}
		settings = append(settings, setting{name: name, value: c.Settings[name]})
	}

	var b bytes.Buffer
	fmt.Fprintf(&b, "# pacsd.conf of node %s in cluster %s, managed by pacsd.\n", strconv.Quote(node), strconv.Quote(c.Name))
	b.WriteString("# pacsd writes this whole file and puts back any edit: change the topology\n")
	b.WriteString("# file instead. postgresql.conf includes it as its last line.\n")
	b.WriteString("\n")
	writeComment(&b, "Parameters pacsd manages. settings cannot set them, except "+strings.Join(open, ", ")+
		", which take the value given in settings (their lines then say \"from settings\").")
	writeSettings(&b, managed, c.ImageMajor)
	b.WriteString("\n# The settings of cluster " + strconv.Quote(c.Name) + ".\n")
	if len(settings) == 0 {
		b.WriteString("# (none)\n")
	}
	writeSettings(&b, settings, c.ImageMajor)
	return b.Bytes()
}

// writeSettings writes one line per setting, leaving out what PostgreSQL
// major (0: unknown) does not have.
func writeSettings(b *bytes.Buffer, settings []setting, major int) {
	for _, s := range settings {
		if p, ok := spec.LookupParam(s.name); ok && major != 0 && (major < p.MinMajor || p.MaxMajor != 0 && major > p.MaxMajor) {
			fmt.Fprintf(b, "# %s is left out: PostgreSQL %d does not have it.\n", s.name, major)
			continue
		}
		line := s.name + " = " + formatValue(s.name, s.value)
		if s.note != "" {
			line += "  # " + s.note
		}
		b.WriteString(line + "\n")
	}
}

// writeComment writes text as comment lines of at most 78 characters.
func writeComment(b *bytes.Buffer, text string) {
	line := "#"
	for _, word := range strings.Fields(text) {
		if len(line)+1+len(word) > 78 && line != "#" {
			b.WriteString(line + "\n")
			line = "#"
		}
		line += " " + word
	}
	b.WriteString(line + "\n")
}

// plainNumber is a number postgresql.conf reads without quotes.
var plainNumber = regexp.MustCompile(`^-?[0-9]+(\.[0-9]+)?$`)

// formatValue writes value of parameter name: bare for on/off of a boolean
// and a plain number of a numeric parameter, with Quote otherwise.
func formatValue(name, value string) string {
	if p, ok := spec.LookupParam(name); ok {
		switch {
		case p.Type == spec.Bool && (value == "on" || value == "off"):
			return value
		case (p.Type == spec.Integer || p.Type == spec.Real) && plainNumber.MatchString(value):
			return value
		}
	}
	return Quote(value)
}

// LookupSetting returns the value settings give for name, compared
// case-insensitively as PostgreSQL compares parameter names.
func LookupSetting(settings map[string]string, name string) (string, bool) {
	for k, v := range settings {
		if strings.EqualFold(k, name) {
			return v, true
		}
	}
	return "", false
}

// sortedNames returns the names of settings sorted case-insensitively (then
// exactly, so that the order never depends on the map).
func sortedNames(settings map[string]string) []string {
	names := make([]string, 0, len(settings))
	for k := range settings {
		names = append(names, k)
	}
	slices.SortFunc(names, func(a, b string) int {
		if c := strings.Compare(strings.ToLower(a), strings.ToLower(b)); c != 0 {
			return c
		}
		return strings.Compare(a, b)
	})
	return names
}

// synchronousNames is the value of synchronous_standby_names for node.
func synchronousNames(c *spec.Cluster, node string) string {
	if !c.Replication.Synchronous {
		return ""
	}
	var names []string
	for _, n := range c.Nodes {
		if n.Name != node {
			names = append(names, `"`+strings.ReplaceAll(n.Name, `"`, `""`)+`"`)
		}
	}
	if len(names) == 0 {
		return ""
	}
	slices.Sort(names)
	return "ANY 1 (" + strings.Join(names, ", ") + ")"
}

// primaryConninfo is the connection string of a standby to its upstream, ""
// on the primary. It never holds a password: libpq reads it from the passfile.
func primaryConninfo(c *spec.Cluster, node string, u Upstream) string {
	if u == (Upstream{}) {
		return ""
	}
	var kv []string
	add := func(k, v string) { kv = append(kv, k+"="+ConninfoValue(v)) }
	add("host", u.Host)
	if u.Port != 0 {
		add("port", strconv.Itoa(u.Port))
	}
	add("user", c.Replication.User)
	if u.Passfile != "" {
		add("passfile", u.Passfile)
	}
	add("application_name", node)
	add("sslmode", "verify-full")
	if u.RootCert != "" {
		add("sslrootcert", u.RootCert)
	}
	return strings.Join(kv, " ")
}
