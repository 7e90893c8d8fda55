package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestEtcdScriptDecides runs scripts/etcd.sh in its dry-run mode with a PATH
// of the test's: with etcd and etcdctl on it, it is ready (and quiet);
// with either missing it installs as root and, not root, exits 1 saying
// what to install. Nothing is installed.
func TestEtcdScriptDecides(t *testing.T) {
	script, err := filepath.Abs("../../scripts/etcd.sh")
	if err != nil {
		t.Fatal(err)
	}
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Fatalf("bash is needed to run scripts/etcd.sh: %v", err)
	}
	id, err := exec.LookPath("id")
	if err != nil {
		t.Fatalf("id is needed to run scripts/etcd.sh: %v", err)
	}
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
			dir := t.TempDir()
			for _, tool := range c.tools {
				if err := os.WriteFile(filepath.Join(dir, tool), []byte("#!/bin/sh\nexit 0\n"), 0o755); err != nil {
					t.Fatal(err)
				}
			}
			if err := os.Symlink(id, filepath.Join(dir, "id")); err != nil {
				t.Fatal(err)
			}
			cmd := exec.Command(bash, script)
			cmd.Env = []string{"PATH=" + dir, "PACSD_ETCD_DRYRUN=1"}
			var stdout, stderr strings.Builder
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			err := cmd.Run()
			want := c.want
			if want == "install" && !root {
				want = ""
			}
			if want == "" {
				if code := cmd.ProcessState.ExitCode(); code != 1 || !strings.Contains(stderr.String(), "apt-get install etcd-server etcd-client") {
					t.Errorf("not root, a missing tool: exit %d (want 1), stderr %q (want what to install)", code, stderr.String())
				}
				return
			}
			if err != nil {
				t.Fatalf("etcd.sh (dry run) failed: %v\n%s%s", err, stdout.String(), stderr.String())
			}
			if !strings.HasPrefix(stdout.String(), "decision: "+want+"\n") {
				t.Errorf("etcd.sh printed %q, want decision %s", stdout.String(), want)
			}
			if want == "ready" && stderr.Len() > 0 {
				t.Errorf("etcd.sh is not quiet with both tools present: %q", stderr.String())
			}
			if want == "install" && !strings.Contains(stdout.String(), "would: apt-get install etcd-server etcd-client\n") {
				t.Errorf("etcd.sh printed %q, want it to say it would install etcd-server and etcd-client", stdout.String())
			}
		})
	}
}
