package spec

import (
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

const previousBase = `
cluster "pacs" {
  image    = "dcm4che/postgres-dcm4chee:17.4-34"
  database = "pacsdb"
  primary  = "db1"
  superuser {
    name          = "pacs"
    password_file = "secrets/ok.password"
  }
  replication {
    password_file = "secrets/ok.password"
  }
  node "db1" {
    data = "/var/local/mypacs/db"
  }
  node "db2" {
    volume = "pacs-db2"
  }
  node "db3" {}
}
`

func mustParse(t *testing.T, src string) *File {
	t.Helper()
	f, diags := Parse([]byte(src), "testdata/previous.hcl")
	if diags.HasErrors() {
		t.Fatalf("unexpected errors:\n%s", diagsText(diags))
	}
	return f
}

func TestCheckAgainstPrevious(t *testing.T) {
	prepareSecrets(t, "testdata/secrets")
	prev := mustParse(t, previousBase)
	for _, tc := range []struct {
		name   string
		edit   func(string) string
		acting map[string]string
		want   []string // "line:column summary"
	}{
		{"unchanged", func(s string) string { return s }, map[string]string{"pacs": "db1"}, nil},
		{"data directory moved", func(s string) string {
			return strings.Replace(s, `/var/local/mypacs/db"`, `/srv/db"`, 1)
		}, nil, []string{"14:12 Data Location Changed"}},
		{"volume renamed", func(s string) string {
			return strings.Replace(s, `"pacs-db2"`, `"pacs-db2-new"`, 1)
		}, nil, []string{"17:14 Data Location Changed"}},
		{"directory becomes volume", func(s string) string {
			return strings.Replace(s, `data = "/var/local/mypacs/db"`, `volume = "pacs-db1"`, 1)
		}, nil, []string{"14:14 Data Location Changed"}},
		{"default volume follows a new container name", func(s string) string {
			return strings.Replace(s, `node "db3" {}`, "node \"db3\" {\n    container_name = \"third\"\n  }", 1)
		}, nil, []string{"19:3 Data Location Changed"}},
		{"standby removed", func(s string) string {
			return strings.Replace(s, `node "db3" {}`, ``, 1)
		}, map[string]string{"pacs": "db1"}, nil},
		{"acting primary removed", func(s string) string {
			return strings.Replace(strings.Replace(s, `primary  = "db1"`, `primary  = "db2"`, 1), "node \"db1\" {\n    data = \"/var/local/mypacs/db\"\n  }", "", 1)
		}, map[string]string{"pacs": "db1"}, []string{"2:1 Acting Primary Removed"}},
		{"acting primary after failover removed", func(s string) string {
			return strings.Replace(s, `node "db3" {}`, ``, 1)
		}, map[string]string{"pacs": "db3"}, []string{"2:1 Acting Primary Removed"}},
		{"cluster removed while running", func(string) string {
			return strings.Replace(previousBase, `cluster "pacs"`, `cluster "other"`, 1)
		}, map[string]string{"pacs": "db1"}, []string{"0:0 Acting Primary Removed"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			next := mustParse(t, tc.edit(previousBase))
			var got []string
			for _, d := range CheckAgainstPrevious(prev, next, tc.acting) {
				line, column := 0, 0
				if d.Subject != nil {
					line, column = d.Subject.Start.Line, d.Subject.Start.Column
				}
				got = append(got, fmt.Sprintf("%d:%d %s", line, column, d.Summary))
				checkDiagnosticText(t, d, false)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("diagnostics differ (-want +got):\n%s", diff)
			}
		})
	}
	if d := CheckAgainstPrevious(nil, prev, nil); d != nil {
		t.Errorf("with no previous file: %v, want none", d)
	}
}

// TestCheckAgainstPreviousHost: a node whose data stays but whose host
// changes is refused at its host attribute, or at its header when host is
// left out (the node is back on the local engine).
func TestCheckAgainstPreviousHost(t *testing.T) {
	prepareSecrets(t, "testdata/secrets")
	const base = `
cluster "pacs" {
  image    = "dcm4che/postgres-dcm4chee:17.4-34"
  database = "pacsdb"
  superuser {
    name          = "pacs"
    password_file = "secrets/ok.password"
  }
  node "db1" {
    volume = "pacs-db1"
    port   = 15432%s
  }
}
host "b" {
  docker  = "unix:///run/pacsd/engine-b.sock"
  address = "10.0.0.12"
}
host "c" {
  docker  = "unix:///run/pacsd/engine-c.sock"
  address = "10.0.0.13"
}
`
	onB := mustParse(t, fmt.Sprintf(base, "\n    host   = \"b\""))
	for _, tc := range []struct {
		name       string
		prev, next string
		want       string // "line:column summary"
	}{
		{"to another host block", "\n    host   = \"b\"", "\n    host   = \"c\"", "12:14 Data Location Changed"},
		{"to the local engine", "\n    host   = \"b\"", "", "9:3 Data Location Changed"},
		{"from the local engine", "", "\n    host   = \"b\"", "12:14 Data Location Changed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			prev, next := onB, mustParse(t, fmt.Sprintf(base, tc.next))
			if tc.prev == "" {
				prev = mustParse(t, fmt.Sprintf(base, ""))
			}
			var got []string
			for _, d := range CheckAgainstPrevious(prev, next, nil) {
				got = append(got, fmt.Sprintf("%d:%d %s", d.Subject.Start.Line, d.Subject.Start.Column, d.Summary))
			}
			if diff := cmp.Diff([]string{tc.want}, got); diff != "" {
				t.Errorf("diagnostics differ (-want +got):\n%s", diff)
			}
		})
	}
}
