package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/pacsd/pacsd/pkg/daemon"
)

// newSystemdDropInCmd is 'pacsd systemd-dropin'.
func newSystemdDropInCmd(c *cli) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "systemd-dropin [-f FILE] [--write]",
		Short: "print (--write: install) the drop-in that lets pacsd.service write daemon.state_dir",
		Long: `pacsd.service lets pacsd write /var/lib/pacsd only (ProtectSystem=strict). For
a daemon.state_dir elsewhere, this prints the systemd drop-in that adds it to
the unit's ReadWritePaths=, or says that none is needed. --write installs it
as ` + daemon.DropInPath + `
(and removes one there that the file's state_dir no longer needs); then
create the directory, owned by pacsd, and run 'systemctl daemon-reload &&
systemctl restart pacsd', as it says. A state_dir the unit hides or empties
at every restart or boot (/tmp, /var/tmp, /home, /root, /run), one that opens
the system's or other services' files, and a path through a symbolic link
are refused.`,
		Example: `  pacsd systemd-dropin -f /etc/pacsd/pacs.hcl
  pacsd systemd-dropin --write`,
		Args:              noArgs,
		ValidArgsFunction: cobra.NoFileCompletions,
	}
	path := c.fileFlag(cmd)
	write := cmd.Flags().Bool("write", false, "write the drop-in to "+daemon.DropInPath+" instead of printing it")
	cmd.RunE = action(func([]string) int { return c.systemdDropIn(*path, *write) })
	return cmd
}

// systemdDropIn prints the drop-in that adds the state_dir of the file at
// path to pacsd.service's ReadWritePaths=, or says that none is needed;
// with write it writes it to daemon.DropInPath (or removes a drop-in there
// that is no longer needed).
func (c *cli) systemdDropIn(path string, write bool) int {
	f := c.loadSpec("systemd-dropin", path)
	if f == nil {
		return exitProblem
	}
	err := noSymlinkIn(f.Daemon.StateDir)
	var dropIn string
	if err == nil {
		dropIn, err = daemon.StateDirDropIn(f.Daemon.StateDir)
	}
	if err != nil {
		fmt.Fprintf(c.stderr, "pacsd systemd-dropin: %s: %v\n", path, err)
		return exitProblem
	}
	switch {
	case !write && dropIn == "":
		fmt.Fprintf(c.stdout, "# pacsd.service may write the state directory %s already: no drop-in is needed.\n", f.Daemon.StateDir)
	case !write:
		fmt.Fprint(c.stdout, dropIn)
	case dropIn == "":
		if err := os.Remove(daemon.DropInPath); err != nil && !errors.Is(err, os.ErrNotExist) {
			fmt.Fprintf(c.stderr, "pacsd systemd-dropin: while removing %s, which is no longer needed: %v\n", daemon.DropInPath, err)
			return exitProblem
		}
		fmt.Fprintf(c.stdout, "pacsd.service may write the state directory %s already: no drop-in is needed (none is left at %s)\n", f.Daemon.StateDir, daemon.DropInPath)
	default:
		if err := writeDropIn(daemon.DropInPath, dropIn); err != nil {
			fmt.Fprintf(c.stderr, "pacsd systemd-dropin: %v; nothing was changed\n", err)
			return exitProblem
		}
		fmt.Fprintf(c.stdout, "wrote %s: pacsd.service may write %s\nnext: %s (when the directory exists already, make sure it is pacsd's own), then systemctl daemon-reload && systemctl restart pacsd\n",
			daemon.DropInPath, f.Daemon.StateDir, daemon.InstallStateDir(f.Daemon.StateDir))
	}
	return exitOK
}

// writeDropIn puts content at path at once (mode 0644 when it is new),
// through replaceKeepingMode; a new file is empty, hence harmless, until
// then.
func writeDropIn(path, content string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("while creating %s: %w", filepath.Dir(path), err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err == nil {
		err = f.Close()
	} else if errors.Is(err, os.ErrExist) {
		err = nil
	}
	if err == nil {
		err = replaceKeepingMode(path, []byte(content))
	}
	if err != nil {
		return fmt.Errorf("while writing %s: %w", path, err)
	}
	return nil
}

// noSymlinkIn refuses a state directory whose existing part goes through a
// symbolic link: systemd follows it, so the drop-in would open for writing
// whatever the link names (/etc/pacsd itself), not the directory the
// checks of daemon.StateDirDropIn saw.
func noSymlinkIn(dir string) error {
	dir = filepath.Clean(dir)
	for p := dir; ; p = filepath.Dir(p) {
		st, err := os.Lstat(p)
		switch {
		case err == nil && st.Mode()&os.ModeSymlink != 0:
			real, _ := filepath.EvalSymlinks(p)
			return fmt.Errorf("the state directory %s goes through the symbolic link %s (to %s): the drop-in would let pacsd.service write where the link points; give daemon.state_dir as the real path, checked like any other", dir, p, real)
		case err != nil && !errors.Is(err, os.ErrNotExist):
			return fmt.Errorf("while checking the state directory %s: %w", dir, err)
		}
		if p == "/" {
			return nil
		}
	}
}
