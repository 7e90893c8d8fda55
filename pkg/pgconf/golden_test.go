package pgconf

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/pacsd/pacsd/pkg/spec"
)

var update = flag.Bool("update", false, "rewrite the golden files of testdata/golden")

// prepareSecrets gives the password files of testdata/secrets mode 0600,
// which git does not keep and the spec insists on.
func prepareSecrets(t testing.TB) {
	t.Helper()
	files, err := filepath.Glob("testdata/secrets/*")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if err := os.Chmod(f, 0o600); err != nil {
			t.Fatalf("while preparing %s: %v", f, err)
		}
	}
}

// loadCluster parses testdata/<file> and returns its first cluster.
func loadCluster(t testing.TB, file string) *spec.Cluster {
	t.Helper()
	prepareSecrets(t)
	path := filepath.Join("testdata", file)
	src, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	f, diags := spec.Parse(src, path)
	if diags.HasErrors() {
		t.Fatalf("while parsing %s: %s", path, diags)
	}
	return f.Clusters[0]
}

// secrets returns the passwords of c, which no file but the passfile may hold.
func secrets(c *spec.Cluster) []string {
	var out []string
	for _, s := range []spec.Secret{c.Superuser.Password, c.Replication.Password} {
		if v := s.Reveal(); v != "" {
			out = append(out, v)
		}
	}
	return out
}

type goldenCase struct {
	name     string // golden file stem
	file     string // topology in testdata
	node     string
	peers    []string
	upstream Upstream
}

var goldenCases = []goldenCase{
	{name: "single", file: "single.hcl", node: "db"},
	{name: "three-primary", file: "three.hcl", node: "db1"},
	{
		name: "three-standby", file: "three.hcl", node: "db2",
		upstream: Upstream{Host: "pacs-db1", Port: 5432, SlotName: SlotName("pacs", "db2"), Passfile: "/var/lib/postgresql/data/pacsd.pgpass"},
	},
	{
		name: "sync-primary", file: "sync.hcl", node: "db-a",
		// unsorted, with a duplicate and a bare address: the file must not care
		peers: []string{"db-c.example.org", "10.0.0.12", "10.0.0.12/32"},
	},
	{
		name: "sync-standby", file: "sync.hcl", node: "db-b",
		peers:    []string{"db-c.example.org", "192.0.2.7/32"},
		upstream: Upstream{Host: "192.0.2.7", Port: 15432, SlotName: SlotName("archive", "db-b"), Passfile: "/var/lib/postgresql/data/pacs d.pgpass"},
	},
	{
		name: "pg12-standby", file: "pg12.hcl", node: "db2",
		upstream: Upstream{Host: "old-db1", Port: 5432, SlotName: SlotName("old", "db2"), Passfile: "/var/lib/postgresql/data/pacsd.pgpass"},
	},
	{
		name: "pg17-standby", file: "pg17.hcl", node: "db2",
		upstream: Upstream{Host: "new-db1", Port: 5432, SlotName: SlotName("new", "db2"), Passfile: "/var/lib/postgresql/data/pacsd.pgpass"},
	},
}

// TestGolden renders pg_hba.conf, pacsd.conf and the passfile of each case
// and compares them with testdata/golden; -update rewrites the golden files.
func TestGolden(t *testing.T) {
	for _, tc := range goldenCases {
		t.Run(tc.name, func(t *testing.T) {
			c := loadCluster(t, tc.file)
			files := map[string][]byte{
				".pg_hba.conf": HBA(c, tc.node, tc.peers),
				".pacsd.conf":  Params(c, tc.node, tc.upstream),
			}
			if pf := Passfile(c); pf != nil {
				files[".pgpass"] = pf
			}
			for ext, got := range files {
				checkGolden(t, filepath.Join("testdata", "golden", tc.name+ext), got)
				if !bytes.HasSuffix(got, []byte("\n")) {
					t.Errorf("%s does not end with a newline", ext)
				}
				if ext == ".pgpass" {
					continue
				}
				for _, s := range secrets(c) {
					if bytes.Contains(got, []byte(s)) {
						t.Errorf("%s holds a password", ext)
					}
				}
			}
		})
	}
}

func checkGolden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if diff := cmp.Diff(string(want), string(got)); diff != "" {
		t.Errorf("%s differs (-want +got):\n%s", path, diff)
	}
}

// TestDeterministic renders every case many times: map order must never show.
func TestDeterministic(t *testing.T) {
	for _, tc := range goldenCases {
		c := loadCluster(t, tc.file)
		hba, params := HBA(c, tc.node, tc.peers), Params(c, tc.node, tc.upstream)
		for range 20 {
			if !bytes.Equal(hba, HBA(c, tc.node, tc.peers)) || !bytes.Equal(params, Params(c, tc.node, tc.upstream)) {
				t.Fatalf("%s: two renderings differ", tc.name)
			}
		}
	}
}

// TestNoParameterTwice checks that no parameter is set on two lines of pacsd.conf.
func TestNoParameterTwice(t *testing.T) {
	for _, tc := range goldenCases {
		c := loadCluster(t, tc.file)
		seen := map[string]bool{}
		for _, line := range strings.Split(string(Params(c, tc.node, tc.upstream)), "\n") {
			name, _, ok := strings.Cut(line, " = ")
			if !ok || strings.HasPrefix(line, "#") {
				continue
			}
			if seen[strings.ToLower(name)] {
				t.Errorf("%s: %s is set twice", tc.name, name)
			}
			seen[strings.ToLower(name)] = true
		}
	}
}
