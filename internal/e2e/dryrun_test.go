package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// dryRun runs one of the provisioning scripts of scripts/ (etcd.sh,
// shells.sh) with bash, as their dry-run tests do.
type dryRun struct {
	script, bash, id string
}

// newDryRun finds scripts/name, bash and id.
func newDryRun(t *testing.T, name string) dryRun {
	t.Helper()
	var d dryRun
	var err error
	if d.script, err = filepath.Abs("../../scripts/" + name); err != nil {
		t.Fatal(err)
	}
	if d.bash, err = exec.LookPath("bash"); err != nil {
		t.Fatalf("bash is needed to run scripts/%s: %v", name, err)
	}
	if d.id, err = exec.LookPath("id"); err != nil {
		t.Fatalf("id is needed to run scripts/%s: %v", name, err)
	}
	return d
}

// run runs the script with env alone, and PATH a directory of the test's
// that holds id and, for each of tools, an executable that exits 0.
func (d dryRun) run(t *testing.T, tools []string, env ...string) (cmd *exec.Cmd, stdout, stderr string, err error) {
	t.Helper()
	dir := t.TempDir()
	for _, tool := range tools {
		if err := os.WriteFile(filepath.Join(dir, tool), []byte("#!/bin/sh\nexit 0\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(d.id, filepath.Join(dir, "id")); err != nil {
		t.Fatal(err)
	}
	cmd = exec.Command(d.bash, d.script)
	cmd.Env = append([]string{"PATH=" + dir}, env...)
	var out, errOut strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err = cmd.Run()
	return cmd, out.String(), errOut.String(), err
}
