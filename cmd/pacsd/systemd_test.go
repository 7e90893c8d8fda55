package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestSystemdDropInRefusesSymlink: a state_dir that goes through a symbolic
// link (here to a directory standing for /etc/pacsd) is refused, since
// systemd would open for writing where the link points, which the checks
// of the path never saw; the real path is not refused for a link (the
// test's directories are under /tmp, which is refused for reasons of its
// own).
func TestSystemdDropInRefusesSymlink(t *testing.T) {
	base := t.TempDir()
	real := filepath.Join(base, "etc-pacsd")
	if err := os.Mkdir(real, 0o750); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(base, "cfg")
	if err := os.Symlink(real, link); err != nil {
		t.Fatal(err)
	}
	node := "  node \"db1\" {}\n"
	for _, tc := range []struct {
		stateDir, refused string
	}{
		{link, "goes through the symbolic link " + link},
		{filepath.Join(link, "state"), "goes through the symbolic link " + link},
		{filepath.Join(real, "state"), ""},
	} {
		path := conninfoFile(t, "daemon {\n  state_dir = \""+tc.stateDir+"\"\n}\n"+conninfoCluster("pacs", "pacs", "pacsdb", "db1", node))
		code, stdout, stderr := runCLI(t, nil, "systemd-dropin", "-f", path)
		switch {
		case tc.refused != "" && (code != exitProblem || !strings.Contains(stderr, tc.refused) || stdout != ""):
			t.Errorf("state_dir %s: exit %d, stdout %q, stderr %q; want it refused saying %q", tc.stateDir, code, stdout, stderr, tc.refused)
		case tc.refused == "" && (strings.Contains(stderr, "symbolic link") || !strings.Contains(stderr, "PrivateTmp=yes")):
			t.Errorf("state_dir %s: exit %d\n%s%s; want it refused for /tmp alone", tc.stateDir, code, stdout, stderr)
		}
	}
}
