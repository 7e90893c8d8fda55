package spec

import (
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/hashicorp/hcl/v2"
)

// clusterSource returns a cluster "pacs" of nodes db1..dbN with body added
// inside the cluster block (settings, access blocks).
func clusterSource(nodes int, body string) string {
	var b strings.Builder
	b.WriteString("cluster \"pacs\" {\n  image    = \"postgres:16\"\n  database = \"pacsdb\"\n  primary  = \"db1\"\n")
	b.WriteString("  superuser {\n    name          = \"pacs\"\n    password_file = \"secrets/ok.password\"\n  }\n")
	b.WriteString("  replication {\n    password_file = \"secrets/ok.password\"\n  }\n")
	b.WriteString(body)
	for i := 1; i <= nodes; i++ {
		fmt.Fprintf(&b, "  node \"db%d\" {}\n", i)
	}
	b.WriteString("}\n")
	return b.String()
}

// summaries parses src and returns "severity summary" of each diagnostic,
// checking the house style of each.
func summaries(t *testing.T, src string) []string {
	t.Helper()
	_, diags := Parse([]byte(src), "testdata/pacs.hcl")
	var got []string
	for _, d := range diags {
		sev := "error"
		if d.Severity == hcl.DiagWarning {
			sev = "warning"
		}
		got = append(got, sev+" "+d.Summary)
		checkDiagnosticText(t, d, true)
	}
	return got
}

// TestReplicationCapacity: max_wal_senders written in settings must leave a
// WAL sender for each standby and one for pg_basebackup, and
// max_replication_slots a slot for each standby. Left out, pacsd's own
// value (max(10, 2 × nodes)) applies and nothing is checked; a cluster
// without standbys is not checked.
func TestReplicationCapacity(t *testing.T) {
	prepareSecrets(t, "testdata/secrets")
	const senders, slots = "error Too Few WAL Senders", "error Too Few Replication Slots"
	for _, tc := range []struct {
		name     string
		nodes    int
		settings string
		want     []string
	}{
		{"left out, 12 standbys", 13, "", nil},
		{"senders enough", 4, "max_wal_senders = 4", nil},
		{"senders one short", 4, "max_wal_senders = 3", []string{senders}},
		{"senders as text", 4, `max_wal_senders = "3"`, []string{senders}},
		{"senders in hexadecimal", 4, `max_wal_senders = "0x4"`, nil},
		{"senders one per standby is not enough", 2, "max_wal_senders = 1", []string{senders}},
		{"senders for one standby", 2, "max_wal_senders = 2", nil},
		{"no standby, no sender", 1, "max_wal_senders = 0", nil},
		{"slots enough", 4, "max_replication_slots = 3", nil},
		{"slots one short", 4, "max_replication_slots = 2", []string{slots}},
		{"both short", 3, "max_wal_senders = 0\n    max_replication_slots = 0", []string{senders, slots}},
		{"case as written", 3, "MAX_WAL_SENDERS = 2", []string{senders}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			settings := ""
			if tc.settings != "" {
				settings = "  settings = {\n    " + tc.settings + "\n  }\n"
			}
			got := summaries(t, clusterSource(tc.nodes, settings))
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("diagnostics differ (-want +got):\n%s", diff)
			}
		})
	}
}

// TestReplicationCapacityDetail: the detail says how many WAL senders the
// cluster needs and why.
func TestReplicationCapacityDetail(t *testing.T) {
	prepareSecrets(t, "testdata/secrets")
	_, diags := Parse([]byte(clusterSource(3, "  settings = {\n    max_wal_senders = 2\n  }\n")), "testdata/pacs.hcl")
	if len(diags) != 1 {
		t.Fatalf("want one diagnostic, got:\n%s", diagsText(diags))
	}
	for _, want := range []string{"has 2 standbys", "at least 3, not 2", "one WAL sender", "pg_basebackup needs one more", "pacsd then sets 10"} {
		if !strings.Contains(diags[0].Detail, want) {
			t.Errorf("detail %q does not say %q", diags[0].Detail, want)
		}
	}
}

// TestSSLSetting: ssl is pacsd's (always on, with the certificate it
// places), whatever value settings give.
func TestSSLSetting(t *testing.T) {
	prepareSecrets(t, "testdata/secrets")
	managed := []string{"error Parameter Managed by pacsd"}
	for value, want := range map[string][]string{
		`"off"`: managed, "false": managed, `"0"`: managed,
		`"on"`: managed, "true": managed, `"yes"`: managed,
	} {
		got := summaries(t, clusterSource(1, "  settings = {\n    ssl = "+value+"\n  }\n"))
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("ssl = %s: diagnostics differ (-want +got):\n%s", value, diff)
		}
	}
}

// TestOpenAccess: the first rule that admits every database and every user
// from every address with a password, and that no reject rule before it
// narrows, gets the Access Open to Every Client warning; another rule open to
// every address (a CIDR /0) gets the milder Access Open to Every Address.
func TestOpenAccess(t *testing.T) {
	prepareSecrets(t, "testdata/secrets")
	const client, address = "warning Access Open to Every Client", "warning Access Open to Every Address"
	rule := func(name, database, user, addr, method string) string {
		s := fmt.Sprintf("  access %q {\n    address = %q\n", name, addr)
		if database != "" {
			s += fmt.Sprintf("    database = %q\n", database)
		}
		if user != "" {
			s += fmt.Sprintf("    user = %q\n", user)
		}
		if method != "" {
			s += fmt.Sprintf("    method = %q\n", method)
		}
		return s + "  }\n"
	}
	for _, tc := range []struct {
		name  string
		rules string
		want  []string
	}{
		{"no access block: the default rule", "", nil},
		{"archive only", rule("archive", "pacsdb", "pacs", "10.1.0.0/16", ""), nil},
		{"every address in IPv4, defaults all", rule("open", "", "", "0.0.0.0/0", ""), []string{client}},
		{"every address in IPv6", rule("open", "all", "all", "::/0", "md5"), []string{client}},
		{"all", rule("open", "all", "all", "all", "scram-sha-256"), []string{client}},
		{"after a narrower rule", rule("archive", "pacsdb", "pacs", "10.1.0.0/16", "") + rule("open", "all", "all", "all", ""), []string{client}},
		{"narrowed by a reject rule before it", rule("deny", "all", "all", "192.0.2.0/24", "reject") + rule("open", "all", "all", "all", ""), nil},
		{"narrowed, CIDR /0", rule("deny", "all", "viewer", "all", "reject") + rule("open", "all", "all", "0.0.0.0/0", ""), []string{address}},
		{"reject after it narrows nothing", rule("open", "all", "all", "all", "") + rule("deny", "all", "all", "192.0.2.0/24", "reject"), []string{client}},
		{"rejecting everyone", rule("none", "all", "all", "all", "reject"), nil},
		{"certificates only", rule("certs", "all", "all", "0.0.0.0/0", "cert"), []string{address}},
		{"one database", rule("db", "pacsdb", "all", "0.0.0.0/0", ""), []string{address}},
		{"one user, address all", rule("user", "all", "pacs", "all", ""), nil},
		{"same network", rule("net", "all", "all", "samenet", ""), nil},
		{"one network", rule("net", "all", "all", "10.0.0.0/8", ""), nil},
		{"the second broad rule", rule("a", "all", "all", "all", "") + rule("b", "all", "all", "::/0", ""), []string{client, address}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := summaries(t, clusterSource(1, tc.rules))
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("diagnostics differ (-want +got):\n%s", diff)
			}
		})
	}
}

// TestOpenAccessDetail: the warning suggests a rule for the archive's
// database and user from its network.
func TestOpenAccessDetail(t *testing.T) {
	prepareSecrets(t, "testdata/secrets")
	_, diags := Parse([]byte(clusterSource(1, "  access \"open\" {\n    address = \"all\"\n  }\n")), "testdata/pacs.hcl")
	if len(diags) != 1 {
		t.Fatalf("want one diagnostic, got:\n%s", diagsText(diags))
	}
	for _, want := range []string{`database = "pacsdb"`, `user = "pacs"`, "address of its network", `cluster network "pacs"`} {
		if !strings.Contains(diags[0].Detail, want) {
			t.Errorf("detail %q does not say %q", diags[0].Detail, want)
		}
	}
}

// TestHostAddresses: the host addresses of a cluster on several host blocks
// must be IP addresses other hosts reach the host at, and distinct for two
// nodes on one port; a cluster on one host block keeps any valid address.
func TestHostAddresses(t *testing.T) {
	prepareSecrets(t, "testdata/secrets")
	source := func(addrA, addrB string, portA, portB int, hostB string) string {
		return clusterSource(0, fmt.Sprintf("  node \"db1\" {\n    host = \"a\"\n    port = %d\n  }\n  node \"db2\" {\n    host = %q\n    port = %d\n  }\n", portA, hostB, portB)) +
			fmt.Sprintf("host \"a\" {\n  docker  = \"unix:///run/pacsd/a.sock\"\n  address = %q\n}\nhost \"b\" {\n  docker  = \"unix:///run/pacsd/b.sock\"\n  address = %q\n}\n", addrA, addrB)
	}
	for _, tc := range []struct {
		addrA, addrB string
		portA, portB int
		hostB        string // the host of db2: "b" spans two host blocks, "a" one
		want         []string
	}{
		{"10.0.0.11", "10.0.0.12", 15432, 15432, "b", nil},
		{"fd00::11", "10.0.0.12", 15432, 15432, "b", nil},
		{"127.0.0.1", "10.0.0.12", 15432, 15432, "b", []string{"error Loopback Host Address"}},
		{"10.0.0.11", "127.255.0.1", 15432, 15432, "b", []string{"error Loopback Host Address"}},
		{"::1", "10.0.0.12", 15432, 15432, "b", []string{"error Loopback Host Address"}},
		{"LocalHost", "10.0.0.12", 15432, 15432, "b", []string{"error Loopback Host Address"}},
		{"0.0.0.0", "::", 15432, 15432, "b", []string{"error Unspecified Host Address", "error Unspecified Host Address"}},
		{"db-a.example.org", "10.0.0.12", 15432, 15432, "b", []string{"error Host Address Is Not an IP Address"}},
		{"10.0.0.11", "db-b", 15432, 15432, "b", []string{"error Host Address Is Not an IP Address"}},
		{"10.0.0.11", "10.0.0.11", 15432, 15432, "b", []string{"error Nodes Share an Address and Port"}},
		{"fd00::11", "fd00:0::0011", 15432, 15432, "b", []string{"error Nodes Share an Address and Port"}},
		{"10.0.0.11", "::ffff:10.0.0.11", 15432, 15432, "b", []string{"error Nodes Share an Address and Port"}},
		{"10.0.0.11", "10.0.0.11", 15432, 15433, "b", []string{"warning Hosts Share an Address"}},
		{"127.0.0.1", "127.0.0.1", 15432, 15432, "b", []string{"error Loopback Host Address", "error Loopback Host Address"}},
		{"10.0.0.11:22", "10.0.0.12", 15432, 15432, "b", []string{"error Invalid Host Address"}},
		// One host block: the nodes replicate on the cluster network.
		{"127.0.0.1", "127.0.0.1", 15432, 15433, "a", nil},
		{"localhost", "10.0.0.12", 15432, 15433, "a", nil},
		{"0.0.0.0", "10.0.0.12", 15432, 15433, "a", nil},
		{"db-a.example.org", "db-b.example.org", 15432, 15433, "a", nil},
		{"10.0.0.11", "10.0.0.11", 15432, 15433, "a", nil},
	} {
		name := fmt.Sprintf("%s:%d/%s:%d on %s", tc.addrA, tc.portA, tc.addrB, tc.portB, tc.hostB)
		if got := summaries(t, source(tc.addrA, tc.addrB, tc.portA, tc.portB, tc.hostB)); !cmp.Equal(tc.want, got) {
			t.Errorf("%s: diagnostics %q, want %q", name, got, tc.want)
		}
	}
}

// TestHostAddressFixturesQuiet: the fixtures of valid clusters on one
// or several host blocks get no diagnostic at all, warnings included.
func TestHostAddressFixturesQuiet(t *testing.T) {
	prepareSecrets(t, "testdata/secrets")
	t.Setenv("PACSD_TEST_PASSWORD", "from-the-environment")
	for _, path := range []string{"testdata/valid/single_host_addresses.hcl", "testdata/valid/full.hcl", "testdata/valid/ssh.hcl"} {
		_, diags := parseFixture(t, path)
		for _, d := range diags {
			t.Errorf("%s: unexpected diagnostic: %s", path, d)
		}
	}
}
