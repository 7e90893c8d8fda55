package main

import (
	"strings"
	"testing"
)

// TestRestartTarget: what restart and reinit refuse before they touch
// anything: a name that is neither a cluster nor a node, a cluster for
// reinit, and a name that is both a cluster and a node of it.
func TestRestartTarget(t *testing.T) {
	prepareExampleSecrets(t)
	file := "../../examples/replicated.hcl"
	both := conninfoFile(t, conninfoCluster("pacs", "pacs", "pacsdb", "pacs", `node "pacs" { port = 15432 }
  node "db2" { port = 25432 }
`))
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"restart", "db9", "-f", file}, exitProblem, `has no cluster and no node "db9"`},
		{[]string{"reinit", "db9", "-f", file}, exitProblem, `no cluster in ../../examples/replicated.hcl has a node "db9"`},
		{[]string{"reinit", "pacs", "-f", file}, exitProblem, `has a node "pacs"`},
		{[]string{"restart", "pacs", "-f", both}, exitUsage, `"pacs" names a cluster and a node of cluster "pacs"; for the node, add --cluster pacs`},
		{[]string{"restart", "db1", "db2", "-f", file}, exitUsage, `unexpected argument "db2": name one node or one cluster`},
	} {
		code, stdout, stderr := runCLI(t, nil, tc.args...)
		if code != tc.code || !strings.Contains(stderr, tc.want) {
			t.Errorf("pacsd %v: exit %d, want %d and %q\n%s%s", tc.args, code, tc.code, tc.want, stdout, stderr)
		}
	}
}

// TestAsker: the history says who asked: the command, its arguments and
// the flags given, and the machine.
func TestAsker(t *testing.T) {
	c := &cli{getenv: func(string) string { return "" }}
	cmd := newRestartCmd(c)
	if err := cmd.ParseFlags([]string{"--switchover", "-f", "/etc/pacsd/pacs.hcl"}); err != nil {
		t.Fatal(err)
	}
	got := asker(cmd, []string{"pacs"})
	if !strings.HasPrefix(got, "pacsd restart pacs --file /etc/pacsd/pacs.hcl --switchover on ") {
		t.Errorf("asker = %q", got)
	}
}
