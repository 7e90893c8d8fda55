package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestShellsScriptDecides runs scripts/shells.sh in its dry-run mode with a
// PATH and a bash-completion file of the test's: with zsh, fish and the file
// present it is ready (and quiet); with any missing it installs what is
// missing as root and, not root, exits 1 saying what to install. Nothing is
// installed.
func TestShellsScriptDecides(t *testing.T) {
	d := newDryRun(t, "shells.sh")
	root := os.Geteuid() == 0
	for _, c := range []struct {
		name           string
		tools          []string // fake executables on PATH besides id
		bashCompletion bool     // whether bash-completion's file is there
		want           string   // the packages to install; "" : ready
	}{
		{name: "all present", tools: []string{"zsh", "fish"}, bashCompletion: true},
		{name: "fish missing", tools: []string{"zsh"}, bashCompletion: true, want: "fish"},
		{name: "bash-completion missing", tools: []string{"zsh", "fish"}, want: "bash-completion"},
		{name: "all missing", want: "zsh fish bash-completion"},
	} {
		t.Run(c.name, func(t *testing.T) {
			completion := filepath.Join(t.TempDir(), "bash_completion")
			if c.bashCompletion {
				if err := os.WriteFile(completion, nil, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			cmd, stdout, stderr, err := d.run(t, c.tools, "PACSD_SHELLS_DRYRUN=1", "PACSD_BASH_COMPLETION="+completion)
			switch {
			case c.want != "" && !root:
				if code := cmd.ProcessState.ExitCode(); code != 1 || !strings.Contains(stderr, "apt-get install "+c.want+"'") {
					t.Errorf("not root, %s missing: exit %d (want 1), stderr %q (want what to install)", c.want, code, stderr)
				}
			case err != nil:
				t.Fatalf("shells.sh (dry run) failed: %v\n%s%s", err, stdout, stderr)
			case c.want == "":
				if stdout != "decision: ready\n" || stderr != "" {
					t.Errorf("shells.sh with everything present: %q, stderr %q; want only the decision ready", stdout, stderr)
				}
			default:
				if want := "decision: install\nwould: apt-get install " + c.want + "\n"; stdout != want {
					t.Errorf("shells.sh printed %q, want %q", stdout, want)
				}
			}
		})
	}
}
