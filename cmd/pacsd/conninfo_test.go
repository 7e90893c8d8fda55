package main

import (
	"encoding/json"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/pacsd/pacsd/pkg/spec"
)

const conninfoPassword = "s3cret-conninfo-pw"

// conninfoFile writes a topology file with body (cluster and host blocks)
// beside a password file pw.password, and returns its path.
func conninfoFile(t *testing.T, body string) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "pw.password"), []byte(conninfoPassword+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "pacs.hcl")
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, stdout, stderr := runCLI(t, nil, "validate", "-f", path); code != exitOK {
		t.Fatalf("the test's topology file is invalid: exit %d\n%s%s", code, stdout, stderr)
	}
	return path
}

// conninfoCluster returns a cluster block named name with the given superuser,
// database, primary and node blocks.
func conninfoCluster(name, user, database, primary, nodes string) string {
	return `cluster "` + name + `" {
  image    = "pacsd-postgres:15"
  primary  = "` + primary + `"
  database = "` + database + `"
  superuser {
    name          = "` + user + `"
    password_file = "pw.password"
  }
  replication {
    password_file = "pw.password"
  }
` + nodes + `}
`
}

// runConninfoOK runs pacsd conninfo with args and fails unless it exits 0
// with nothing on stderr and no password on stdout.
func runConninfoOK(t *testing.T, args ...string) string {
	t.Helper()
	code, stdout, stderr := runCLI(t, nil, append([]string{"conninfo"}, args...)...)
	if code != exitOK || stderr != "" {
		t.Fatalf("pacsd conninfo %v: exit %d, want 0\nstdout:\n%s\nstderr:\n%s", args, code, stdout, stderr)
	}
	if strings.Contains(stdout, conninfoPassword) {
		t.Fatalf("pacsd conninfo %v printed the password:\n%s", args, stdout)
	}
	return stdout
}

func TestConninfoLocalNodes(t *testing.T) {
	// The file's primary is the second node: it is listed first, the others
	// in file order; a node keeps its container_name.
	path := conninfoFile(t, conninfoCluster("pacs", "pacs", "pacsdb", "db2", `
  node "db1" {}
  node "db2" { port = 15432 }
  node "db3" { container_name = "archive-db3" }
`))
	got := runConninfoOK(t, "pacs", "-f", path)
	want := `cluster "pacs", database "pacsdb", user "pacs"; nodes: db2 pacs-db2:5432 (the file's primary), db1 pacs-db1:5432, db3 archive-db3:5432

read-write (the node that accepts writes):
  libpq  postgresql://pacs@pacs-db2:5432,pacs-db1:5432,archive-db3:5432/pacsdb?sslmode=verify-full&sslrootcert=pacs-ca.crt&target_session_attrs=read-write
  JDBC   jdbc:postgresql://pacs-db2:5432,pacs-db1:5432,archive-db3:5432/pacsdb?ssl=true&sslmode=verify-full&sslrootcert=pacs-ca.crt&targetServerType=primary

read-only (a standby, else the primary):
  libpq  postgresql://pacs@pacs-db2:5432,pacs-db1:5432,archive-db3:5432/pacsdb?sslmode=verify-full&sslrootcert=pacs-ca.crt&target_session_attrs=prefer-standby
  JDBC   jdbc:postgresql://pacs-db2:5432,pacs-db1:5432,archive-db3:5432/pacsdb?ssl=true&sslmode=verify-full&sslrootcert=pacs-ca.crt&targetServerType=preferSecondary

A client tries the nodes in turn and keeps the one that matches: the order does not matter.
Each node's certificate is verified with the cluster's CA certificate in pacs-ca.crt (pacsd conninfo --ca-file PATH writes it).
The password is not printed: libpq reads it from PGPASSFILE (~/.pgpass) or PGPASSWORD, JDBC from the datasource's password.
`
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("pacsd conninfo, local nodes (-want +got):\n%s", d)
	}
}

func TestConninfoHostNodes(t *testing.T) {
	prepareExampleSecrets(t)
	got := runConninfoOK(t, "-f", "../../examples/multi-host.hcl")
	for _, want := range []string{
		"  libpq  postgresql://pacs@10.0.0.11:15432,10.0.0.12:15432/pacsdb?sslmode=verify-full&sslrootcert=pacs-ca.crt&target_session_attrs=read-write\n",
		"  JDBC   jdbc:postgresql://10.0.0.11:15432,10.0.0.12:15432/pacsdb?ssl=true&sslmode=verify-full&sslrootcert=pacs-ca.crt&targetServerType=primary\n",
		"  libpq  postgresql://pacs@10.0.0.11:15432,10.0.0.12:15432/pacsdb?sslmode=verify-full&sslrootcert=pacs-ca.crt&target_session_attrs=prefer-standby\n",
		"  JDBC   jdbc:postgresql://10.0.0.11:15432,10.0.0.12:15432/pacsdb?ssl=true&sslmode=verify-full&sslrootcert=pacs-ca.crt&targetServerType=preferSecondary\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("pacsd conninfo -f examples/multi-host.hcl lacks the line\n%s\nin:\n%s", want, got)
		}
	}

	// Host names and IPv6 addresses (in brackets); the primary first.
	path := conninfoFile(t, conninfoCluster("pacs", "pacs", "pacsdb", "db2", `
  node "db1" {
    host = "a"
    port = 15432
  }
  node "db2" {
    host = "b"
    port = 25432
  }
`)+`
host "a" {
  docker  = "unix:///run/pacsd/a.sock"
  address = "10.0.0.11"
}
host "b" {
  docker  = "unix:///run/pacsd/b.sock"
  address = "fd00::12"
}
`)
	var info conninfo
	if err := json.Unmarshal([]byte(runConninfoOK(t, "-f", path, "--json")), &info); err != nil {
		t.Fatal(err)
	}
	hosts := "[fd00::12]:25432,10.0.0.11:15432"
	if want := "postgresql://pacs@" + hosts + "/pacsdb?sslmode=verify-full&sslrootcert=pacs-ca.crt&target_session_attrs=read-write"; info.ReadWrite.LibPQ != want {
		t.Errorf("libpq read-write URI %q, want %q", info.ReadWrite.LibPQ, want)
	}
	if want := "jdbc:postgresql://" + hosts + "/pacsdb?ssl=true&sslmode=verify-full&sslrootcert=pacs-ca.crt&targetServerType=preferSecondary"; info.ReadOnly.JDBC != want {
		t.Errorf("JDBC read-only URL %q, want %q", info.ReadOnly.JDBC, want)
	}
	wantNodes := []conninfoNode{
		{Node: "db2", Host: "fd00::12", Port: 25432, HostBlock: "b", Container: "pacs-db2", FilePrimary: true},
		{Node: "db1", Host: "10.0.0.11", Port: 15432, HostBlock: "a", Container: "pacs-db1"},
	}
	if d := cmp.Diff(wantNodes, info.Nodes); d != "" {
		t.Errorf("nodes (-want +got):\n%s", d)
	}
}

func TestConninfoJSON(t *testing.T) {
	path := conninfoFile(t, conninfoCluster("pacs", "pacs", "pacsdb", "db1", `
  node "db1" {}
  node "db2" {}
`))
	stdout := runConninfoOK(t, "--json", "-f", path)
	var got conninfo
	dec := json.NewDecoder(strings.NewReader(stdout))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&got); err != nil {
		t.Fatalf("pacsd conninfo --json printed no JSON of the documented form (%v):\n%s", err, stdout)
	}
	hosts := "pacs-db1:5432,pacs-db2:5432"
	want := conninfo{
		Cluster: "pacs", Database: "pacsdb", User: "pacs", RootCert: "pacs-ca.crt",
		ReadWrite: clientURLs{
			LibPQ: "postgresql://pacs@" + hosts + "/pacsdb?sslmode=verify-full&sslrootcert=pacs-ca.crt&target_session_attrs=read-write",
			JDBC:  "jdbc:postgresql://" + hosts + "/pacsdb?ssl=true&sslmode=verify-full&sslrootcert=pacs-ca.crt&targetServerType=primary",
		},
		ReadOnly: clientURLs{
			LibPQ: "postgresql://pacs@" + hosts + "/pacsdb?sslmode=verify-full&sslrootcert=pacs-ca.crt&target_session_attrs=prefer-standby",
			JDBC:  "jdbc:postgresql://" + hosts + "/pacsdb?ssl=true&sslmode=verify-full&sslrootcert=pacs-ca.crt&targetServerType=preferSecondary",
		},
		Nodes: []conninfoNode{
			{Node: "db1", Host: "pacs-db1", Port: 5432, Container: "pacs-db1", FilePrimary: true},
			{Node: "db2", Host: "pacs-db2", Port: 5432, Container: "pacs-db2"},
		},
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("pacsd conninfo --json (-want +got):\n%s", d)
	}
	// The keys are the documented ones.
	for _, key := range []string{`"read_write"`, `"read_only"`, `"libpq"`, `"jdbc"`, `"nodes"`, `"node"`, `"host"`, `"port"`} {
		if !strings.Contains(stdout, key) {
			t.Errorf("pacsd conninfo --json has no key %s:\n%s", key, stdout)
		}
	}
}

func TestConninfoEscaping(t *testing.T) {
	// The language allows letters of both cases, digits and "_" in user and
	// database names; they pass unescaped and keep their case.
	path := conninfoFile(t, conninfoCluster("pacs", "_Pacs_Admin2", "PACS_db_1", "db1", `
  node "db1" {}
`))
	var info conninfo
	if err := json.Unmarshal([]byte(runConninfoOK(t, "--json", "-f", path)), &info); err != nil {
		t.Fatal(err)
	}
	if want := "postgresql://_Pacs_Admin2@pacs-db1:5432/PACS_db_1?sslmode=verify-full&sslrootcert=pacs-ca.crt&target_session_attrs=read-write"; info.ReadWrite.LibPQ != want {
		t.Errorf("libpq URI %q, want %q", info.ReadWrite.LibPQ, want)
	}
	if want := "jdbc:postgresql://pacs-db1:5432/PACS_db_1?ssl=true&sslmode=verify-full&sslrootcert=pacs-ca.crt&targetServerType=primary"; info.ReadWrite.JDBC != want {
		t.Errorf("JDBC URL %q, want %q", info.ReadWrite.JDBC, want)
	}

	// --user may name any role: every byte that means something in a URL
	// (or that a JDBC URL decoder reads as a space, "+") is percent-encoded,
	// and a URL parser gives the name back.
	odd := "o'brien@x/y z+1%:?#&=é"
	info = conninfo{}
	if err := json.Unmarshal([]byte(runConninfoOK(t, "--json", "-f", path, "--user", odd)), &info); err != nil {
		t.Fatal(err)
	}
	wantUser := "o%27brien%40x%2Fy%20z%2B1%25%3A%3F%23%26%3D%C3%A9"
	if want := "postgresql://" + wantUser + "@pacs-db1:5432/PACS_db_1?sslmode=verify-full&sslrootcert=pacs-ca.crt&target_session_attrs=prefer-standby"; info.ReadOnly.LibPQ != want {
		t.Errorf("libpq URI for user %q: %q, want %q", odd, info.ReadOnly.LibPQ, want)
	}
	if info.User != odd {
		t.Errorf("JSON user %q, want %q", info.User, odd)
	}
	u, err := url.Parse(info.ReadOnly.LibPQ)
	if err != nil {
		t.Fatalf("the libpq URI %q does not parse: %v", info.ReadOnly.LibPQ, err)
	}
	if u.User.Username() != odd || u.Path != "/PACS_db_1" || u.Query().Get("target_session_attrs") != "prefer-standby" {
		t.Errorf("the libpq URI %q parses to user %q, path %q, query %q", info.ReadOnly.LibPQ, u.User.Username(), u.Path, u.RawQuery)
	}

	for in, want := range map[string]string{
		"pacsdb":   "pacsdb",
		"a-b.c_d~": "a-b.c_d~",
		"a b":      "a%20b",
		"a+b":      "a%2Bb",
		"50%":      "50%25",
		"x/y?z#w":  "x%2Fy%3Fz%23w",
		"ü":        "%C3%BC",
		"":         "",
	} {
		if got := escapeURLPart(in); got != want {
			t.Errorf("escapeURLPart(%q) = %q, want %q", in, got, want)
		}
		if back, err := url.PathUnescape(escapeURLPart(in)); err != nil || back != in {
			t.Errorf("escapeURLPart(%q) does not decode back: %q, %v", in, back, err)
		}
	}
}

func TestConninfoOneClusterDefault(t *testing.T) {
	path := conninfoFile(t, conninfoCluster("only", "pacs", "pacsdb", "db1", `
  node "db1" {}
`))
	for _, args := range [][]string{{"-f", path}, {"only", "-f", path}, {"-f", path, "only"}} {
		if got := runConninfoOK(t, args...); !strings.Contains(got, `cluster "only"`) || !strings.Contains(got, "postgresql://pacs@only-db1:5432/pacsdb?sslmode=verify-full&sslrootcert=only-ca.crt&target_session_attrs=read-write\n") {
			t.Errorf("pacsd conninfo %v:\n%s", args, got)
		}
	}
}

func TestConninfoUnknownCluster(t *testing.T) {
	two := conninfoCluster("east", "pacs", "pacsdb", "db1", `
  node "db1" {}
`) + conninfoCluster("west", "pacs", "pacsdb", "db1", `
  node "db1" {}
  node "db2" {}
`)
	path := conninfoFile(t, two)
	one := conninfoFile(t, conninfoCluster("only", "pacs", "pacsdb", "db1", `
  node "db1" {}
`))
	for _, tc := range []struct {
		args []string
		code int
		want []string
	}{
		{[]string{"north", "-f", path}, exitProblem, []string{`no cluster "north"`, `"east", "west"`}},
		{[]string{"north", "-f", one}, exitProblem, []string{`no cluster "north"`, `"only"`}},
		{[]string{"-f", path}, exitUsage, []string{"2 clusters", `"east", "west"`, "pacsd conninfo east"}},
		{[]string{"east", "west", "-f", path}, exitUsage, []string{`unexpected argument "west"`, "Usage: pacsd conninfo"}},
		{[]string{"-f", path, "east", "west"}, exitUsage, []string{`unexpected argument "west"`}},
		{[]string{"--user", "a\x00b", "-f", one}, exitUsage, []string{"NUL"}},
		{[]string{"-f", filepath.Join(t.TempDir(), "missing.hcl")}, exitProblem, []string{"missing.hcl"}},
	} {
		code, stdout, stderr := runCLI(t, nil, append([]string{"conninfo"}, tc.args...)...)
		if code != tc.code || stdout != "" {
			t.Errorf("pacsd conninfo %q: exit %d, want %d; stdout:\n%s", tc.args, code, tc.code, stdout)
		}
		for _, w := range tc.want {
			if !strings.Contains(stderr, w) {
				t.Errorf("pacsd conninfo %q: stderr lacks %q:\n%s", tc.args, w, stderr)
			}
		}
	}
	// Named, either cluster of the file is printed.
	if got := runConninfoOK(t, "west", "-f", path); !strings.Contains(got, "postgresql://pacs@west-db1:5432,west-db2:5432/pacsdb?sslmode=verify-full&sslrootcert=west-ca.crt&target_session_attrs=read-write\n") {
		t.Errorf("pacsd conninfo west:\n%s", got)
	}
}

func TestConninfoHelp(t *testing.T) {
	code, stdout, stderr := runCLI(t, nil, "conninfo", "-h")
	if code != exitOK {
		t.Fatalf("pacsd conninfo -h: exit %d\n%s%s", code, stdout, stderr)
	}
	for _, w := range []string{"Usage: pacsd conninfo [CLUSTER]", "prefer-standby", "preferSecondary",
		"target_session_attrs=standby", "targetServerType=secondary", "does not matter", "--user", "--json", "hostRecheckSeconds"} {
		if !strings.Contains(stdout, w) {
			t.Errorf("pacsd conninfo -h does not say %q on stdout:\n%s", w, stdout)
		}
	}
	if _, stdout, _ := runCLI(t, nil, "help"); !strings.Contains(stdout, "conninfo") {
		t.Errorf("pacsd help does not list conninfo:\n%s", stdout)
	}
}

// A node on a host block without a published port or address cannot be
// listed (validate refuses such a file; connInfo says so too).
func TestConninfoUnreachableNode(t *testing.T) {
	c := &spec.Cluster{Name: "pacs", Primary: "db1", Database: "pacsdb", Superuser: spec.Credentials{Name: "pacs"},
		Nodes: []*spec.Node{{Name: "db1", Container: "pacs-db1", Host: "a", Address: "10.0.0.11"}}}
	if _, err := connInfo(c, "", "ca.crt"); err == nil || !strings.Contains(err.Error(), `node "db1"`) || !strings.Contains(err.Error(), "port") {
		t.Errorf("connInfo of a host node without port: %v; want an error naming the node and its port", err)
	}
	c.Nodes = nil
	if _, err := connInfo(c, "", "ca.crt"); err == nil {
		t.Errorf("connInfo of a cluster without nodes: no error")
	}
}
