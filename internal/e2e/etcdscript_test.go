package e2e

import (
	"os"
	"strings"
	"testing"
)

// TestEtcdScriptDecides runs scripts/etcd.sh in its dry-run mode with a PATH
// of the test's: with etcd and etcdctl on it, it is ready (and quiet);
// with either missing it installs as root and, not root, exits 1 saying
// what to install. Nothing is installed.
func TestEtcdScriptDecides(t *testing.T) {
	d := newDryRun(t, "etcd.sh")
	root := os.Geteuid() == 0
	for _, c := range []struct {
		name  string
		tools []string // fake executables on PATH besides id
		want  string   // the decision; "" : exit 1
	}{
		{name: "both present", tools: []string{"etcd", "etcdctl"}, want: "ready"},
		{name: "etcdctl missing", tools: []string{"etcd"}, want: "install"},
		{name: "both missing", want: "install"},
	} {
		t.Run(c.name, func(t *testing.T) {
			cmd, stdout, stderr, err := d.run(t, c.tools, "PACSD_ETCD_DRYRUN=1")
			want := c.want
			if want == "install" && !root {
				want = ""
			}
			if want == "" {
				if code := cmd.ProcessState.ExitCode(); code != 1 || !strings.Contains(stderr, "apt-get install etcd-server etcd-client") {
					t.Errorf("not root, a missing tool: exit %d (want 1), stderr %q (want what to install)", code, stderr)
				}
				return
			}
			if err != nil {
				t.Fatalf("etcd.sh (dry run) failed: %v\n%s%s", err, stdout, stderr)
			}
			if !strings.HasPrefix(stdout, "decision: "+want+"\n") {
				t.Errorf("etcd.sh printed %q, want decision %s", stdout, want)
			}
			if want == "ready" && stderr != "" {
				t.Errorf("etcd.sh is not quiet with both tools present: %q", stderr)
			}
			if want == "install" && !strings.Contains(stdout, "would: apt-get install etcd-server etcd-client\n") {
				t.Errorf("etcd.sh printed %q, want it to say it would install etcd-server and etcd-client", stdout)
			}
		})
	}
}
