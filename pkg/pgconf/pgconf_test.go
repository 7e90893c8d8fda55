package pgconf

import (
	"bytes"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/pacsd/pacsd/pkg/spec"
)

func TestEnsureInclude(t *testing.T) {
	inc := IncludeLine + "\n"
	tests := []struct {
		name    string
		conf    string
		want    string
		changed bool
	}{
		{"empty", "", inc, true},
		{"absent", "shared_buffers = 128MB\n", "shared_buffers = 128MB\n" + inc, true},
		{"present", "a = 1\n" + inc, "a = 1\n" + inc, false},
		{"only the line", inc, inc, false},
		{"duplicated", inc + "a = 1\n" + inc + inc, "a = 1\n" + inc, true},
		{"not last", "a = 1\n" + inc + "port = 5433\n", "a = 1\nport = 5433\n" + inc, true},
		{"commented out", "a = 1\n#" + IncludeLine + "\n", "a = 1\n" + inc, true},
		{"commented out with blanks", "a = 1\n  # # include_if_exists = 'pacsd.conf'\n", "a = 1\n" + inc, true},
		{"edited comment", "include_if_exists = 'pacsd.conf'\n", inc, true},
		{"edited directive", "a = 1\ninclude 'pacsd.conf' # mine\nb = 2\n", "a = 1\nb = 2\n" + inc, true},
		{"edited case and path", "INCLUDE_IF_EXISTS = \"/var/lib/postgresql/data/pacsd.conf\"\n", inc, true},
		{"no trailing newline", "a = 1", "a = 1\n" + inc, true},
		{"present without trailing newline", "a = 1\n" + IncludeLine, "a = 1\n" + inc, true},
		{"other includes kept", "include_dir = 'conf.d'\ninclude 'other.conf'\n", "include_dir = 'conf.d'\ninclude 'other.conf'\n" + inc, true},
		{"comment about pacsd.conf kept", "# pacsd.conf holds pacsd's parameters\n" + inc, "# pacsd.conf holds pacsd's parameters\n" + inc, false},
		{"crlf kept", "a = 1\r\nb = 2\r\n", "a = 1\r\nb = 2\r\n" + inc, true},
		{"crlf include replaced", "a = 1\r\n" + IncludeLine + "\r\n", "a = 1\r\n" + inc, true},
		{"blank lines kept", "\n\na = 1\n\n", "\n\na = 1\n\n" + inc, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, changed := EnsureInclude([]byte(tt.conf))
			if diff := cmp.Diff(tt.want, string(got)); diff != "" {
				t.Errorf("EnsureInclude(%q) (-want +got):\n%s", tt.conf, diff)
			}
			if changed != tt.changed {
				t.Errorf("EnsureInclude(%q) changed = %v, want %v", tt.conf, changed, tt.changed)
			}
			if again, changed := EnsureInclude(got); changed || !bytes.Equal(again, got) {
				t.Errorf("EnsureInclude is not idempotent on %q: %q", got, again)
			}
		})
	}
}

// FuzzEnsureInclude checks the contract on any input: one include line, at
// the end, idempotent, and every other line kept in order.
func FuzzEnsureInclude(f *testing.F) {
	f.Add([]byte("a = 1\n" + IncludeLine + "\nb = 2"))
	f.Add([]byte("#include 'pacsd.conf'\r\n\n"))
	f.Fuzz(func(t *testing.T, conf []byte) {
		got, changed := EnsureInclude(conf)
		if changed == bytes.Equal(got, conf) {
			t.Fatalf("changed = %v for %q -> %q", changed, conf, got)
		}
		if !bytes.HasSuffix(got, []byte("\n"+IncludeLine+"\n")) && !bytes.Equal(got, []byte(IncludeLine+"\n")) {
			t.Fatalf("result does not end with the include line: %q", got)
		}
		if again, changed := EnsureInclude(got); changed || !bytes.Equal(again, got) {
			t.Fatalf("not idempotent: %q -> %q", got, again)
		}
		var kept []string
		for _, l := range strings.SplitAfter(string(conf), "\n") {
			if l != "" && !includesPacsdConf([]byte(l)) {
				kept = append(kept, strings.TrimSuffix(l, "\n"))
			}
		}
		want := strings.Join(append(kept, IncludeLine), "\n") + "\n"
		if string(got) != want {
			t.Fatalf("lines not kept: got %q, want %q", got, want)
		}
	})
}

var slotPattern = regexp.MustCompile(`^[a-z0-9_]{1,63}$`)

func TestSlotName(t *testing.T) {
	long := strings.Repeat("x", 48)
	tests := []struct {
		cluster, node, want string
	}{
		{"pacs", "db2", "pacsd_pacs_db2"},
		{"pacs", "db_2", "pacsd_pacs_db_2"},
		// pinned: a changed name would orphan the slots of existing clusters
		// a replaced byte could make two nodes meet: the hash keeps them apart
		{"pacs", "db-2", "pacsd_pacs_db_2_b1d76df3"},
		{"PACS", "Db2", "pacsd_pacs_db2_2ce8733f"},
		{"pacs", "db 2/ü", "pacsd_pacs_db_2____8d6189e4"},
		{"", "", "pacsd__"},
		{long, long, "pacsd_" + long + "_b7d6d86b"},
	}
	for _, tt := range tests {
		got := SlotName(tt.cluster, tt.node)
		if got != tt.want {
			t.Errorf("SlotName(%q, %q) = %q, want %q", tt.cluster, tt.node, got, tt.want)
		}
		if !slotPattern.MatchString(got) {
			t.Errorf("SlotName(%q, %q) = %q is not a valid slot name", tt.cluster, tt.node, got)
		}
	}
	// Slots live on one cluster's servers: the nodes of one cluster must not meet.
	distinct := map[string][2]string{}
	for _, pair := range [][2]string{
		{"pacs", "db-2"}, {"pacs", "db_2"}, {"pacs", "DB_2"}, {"pacs", "db.2"},
		{long, long + "a"}, {long, long + "b"}, {long, long + "-"}, {long, long + "_"},
	} {
		s := SlotName(pair[0], pair[1])
		if first, dup := distinct[s]; dup {
			t.Errorf("SlotName%q and SlotName%q are both %q", first, pair, s)
		}
		distinct[s] = pair
	}
}

func FuzzSlotName(f *testing.F) {
	f.Add("pacs", "db-1")
	f.Fuzz(func(t *testing.T, cluster, node string) {
		s := SlotName(cluster, node)
		if !slotPattern.MatchString(s) || s != SlotName(cluster, node) {
			t.Fatalf("SlotName(%q, %q) = %q", cluster, node, s)
		}
	})
}

func TestQuote(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", `''`},
		{"256MB", `'256MB'`},
		{"it's", `'it''s'`},
		{`C:\dir\`, `'C:\\dir\\'`},
		{`\'`, `'\\'''`},
		{"a\nb\r\tc", `'a\nb\r\tc'`},
		{"bell\x07del\x7f", `'bell\007del\177'`},
		{"ANY 1 (\"db2\", \"db3\")", `'ANY 1 ("db2", "db3")'`},
		{"ünï", `'ünï'`},
	}
	for _, tt := range tests {
		if got := Quote(tt.in); got != tt.want {
			t.Errorf("Quote(%q) = %s, want %s", tt.in, got, tt.want)
		}
		if got := Quote(tt.in); strings.ContainsAny(got, "\n\r") {
			t.Errorf("Quote(%q) = %q breaks the line", tt.in, got)
		}
	}
}

func TestConninfoValue(t *testing.T) {
	tests := []struct{ in, want string }{
		{"db1", "db1"},
		{"", `''`},
		{"a b", `'a b'`},
		{"it's", `'it\'s'`},
		{`back\slash`, `'back\\slash'`},
		{"x=y", "x=y"},
		{"tab\there", "'tab\there'"},
	}
	for _, tt := range tests {
		if got := ConninfoValue(tt.in); got != tt.want {
			t.Errorf("ConninfoValue(%q) = %s, want %s", tt.in, got, tt.want)
		}
	}
}

func TestHBAName(t *testing.T) {
	tests := []struct{ in, want string }{
		{"pacs", "pacs"},
		{"Pacs_1", "Pacs_1"},
		{"all", `"all"`},
		{"replication", `"replication"`},
		{"samenet", `"samenet"`},
		{"+admins", `"+admins"`},
		{"@users", `"@users"`},
		{"/^re$", `"/^re$"`},
		{"a b", `"a b"`},
		{"a,b", `"a,b"`},
		{"a#b", `"a#b"`},
		{`say "hi"`, `"say ""hi"""`},
		{"", `""`},
	}
	for _, tt := range tests {
		if got := hbaName(tt.in); got != tt.want {
			t.Errorf("hbaName(%q) = %s, want %s", tt.in, got, tt.want)
		}
	}
}

func TestPeerAddresses(t *testing.T) {
	got := peerAddresses([]string{"10.0.0.12", " 10.0.0.0/8 ", "10.1.2.3/8", "fd00::1", "b.example.org", "10.0.0.12/32", "", "samenet"})
	want := []string{`"samenet"`, "10.0.0.0/8", "10.0.0.12/32", "b.example.org", "fd00::1/128"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("peerAddresses (-want +got):\n%s", diff)
	}
}

func TestFormatValue(t *testing.T) {
	tests := []struct{ name, value, want string }{
		{"port", "5432", "5432"},
		{"random_page_cost", "1.1", "1.1"},
		{"shared_buffers", "256MB", "'256MB'"},
		{"statement_timeout", "30s", "'30s'"},
		{"jit", "off", "off"},
		{"wal_level", "logical", "'logical'"},
		{"TimeZone", "UTC", "'UTC'"},
		{"search_path", `"$user", public`, `'"$user", public'`},
		{"unknown.extension", "1", "'1'"},
	}
	for _, tt := range tests {
		if got := formatValue(tt.name, tt.value); got != tt.want {
			t.Errorf("formatValue(%q, %q) = %s, want %s", tt.name, tt.value, got, tt.want)
		}
	}
}

// TestParamsSettingsNeverOverrideFixed builds a cluster by hand, past the
// spec's checks, and shows that settings cannot replace what pacsd fixes.
func TestParamsSettingsNeverOverrideFixed(t *testing.T) {
	c := &spec.Cluster{
		Name:        "pacs",
		Replication: spec.Replication{User: "replicator", MaxSlotWAL: spec.DefaultMaxSlotWAL},
		Settings:    map[string]string{"port": "6543", "Primary_Conninfo": "host=evil", "WAL_LEVEL": "logical", "work_mem": "8MB"},
		Nodes:       []*spec.Node{{Name: "db1"}, {Name: "db2"}, {Name: "db3"}, {Name: "db4"}, {Name: "db5"}, {Name: "db6"}},
	}
	got := string(Params(c, "db1", Upstream{}))
	for _, line := range []string{"port = 5432\n", "primary_conninfo = ''\n", "wal_level = 'logical'  # from settings\n", "work_mem = '8MB'\n", "max_wal_senders = 12\n"} {
		if !strings.Contains(got, line) {
			t.Errorf("pacsd.conf lacks %q:\n%s", line, got)
		}
	}
	for _, bad := range []string{"6543", "evil", "WAL_LEVEL"} {
		if strings.Contains(got, bad) {
			t.Errorf("pacsd.conf holds %q:\n%s", bad, got)
		}
	}
}

func TestSynchronousNames(t *testing.T) {
	nodes := []*spec.Node{{Name: "db3"}, {Name: "db1"}, {Name: "db2"}}
	tests := []struct {
		name  string
		sync  bool
		nodes []*spec.Node
		node  string
		want  string
	}{
		{"asynchronous", false, nodes, "db1", ""},
		{"primary", true, nodes, "db1", `ANY 1 ("db2", "db3")`},
		{"standby", true, nodes, "db2", `ANY 1 ("db1", "db3")`},
		{"alone", true, nodes[:1], "db3", ""},
	}
	for _, tt := range tests {
		c := &spec.Cluster{Replication: spec.Replication{Synchronous: tt.sync}, Nodes: tt.nodes}
		if got := synchronousNames(c, tt.node); got != tt.want {
			t.Errorf("%s: synchronousNames = %q, want %q", tt.name, got, tt.want)
		}
	}
}

func TestPassfile(t *testing.T) {
	c := &spec.Cluster{Replication: spec.Replication{User: "repl:user", Password: spec.NewSecret(`p:a\ss`, "test")}}
	if got, want := string(Passfile(c)), `*:*:*:repl\:user:p\:a\\ss`+"\n"; got != want {
		t.Errorf("Passfile = %q, want %q", got, want)
	}
	if got := Passfile(&spec.Cluster{Replication: spec.Replication{User: "replicator"}}); got != nil {
		t.Errorf("Passfile without a password = %q, want nil", got)
	}
}
