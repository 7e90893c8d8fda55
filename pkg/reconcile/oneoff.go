package reconcile

import (
	"context"
	"fmt"
	"path"
	"strings"
)

// One-off jobs: base backups and rewinds run in a container of their own,
// started on the node's data and removed when they end.

// baseBackup builds a standby's data with pg_basebackup in a one-off
// container. It refuses a PGDATA that holds anything, before leaving a mark.
// Then a marker beside PGDATA says the data is partial until pacsd's files
// are in place; a failed build leaves the marker, so the next pass moves the
// data aside and never starts it.
func (x *executor) baseBackup(ctx context.Context, rt Runtime, a Action) error {
	b := a.Backup
	staged, install := stageFiles(b.Files)
	files := append([]FileWrite{b.Passfile}, staged...)
	script := fmt.Sprintf(`set -e
install -d -o postgres -g postgres -m 0700 %[1]s
if [ -n "$(ls -A %[3]s 2>/dev/null)" ]; then echo "%[3]s is not empty; refusing to overwrite data (observe again: the data was seen as empty)" >&2; exit 3; fi
touch %[2]s
install -d -o postgres -g postgres -m 0700 %[3]s
runuser -u postgres -- env PGPASSFILE=%[4]s pg_basebackup -h %[5]s -p %[6]d -U %[7]s -D %[3]s -X stream -S %[8]s -c fast -P -v
%[9]srm -f %[2]s
`, DataMount, BuildingMarker, PGDATA, b.Passfile.Path, b.Host, b.Port, b.User, b.Slot, install)
	return x.runOnce(ctx, rt, a.Node, "basebackup", a.Mount, script, files)
}

func (x *executor) runOnce(ctx context.Context, rt Runtime, node, what string, m Mount, script string, files []FileWrite) error {
	n := x.c.Node(node)
	code, tail, err := rt.RunOnce(ctx, OneOff{
		Name:     n.Container + "-" + what,
		Image:    x.c.Image,
		Network:  x.c.Network,
		Labels:   map[string]string{LabelCluster: x.c.Name, LabelNode: n.Name, LabelRole: what},
		Mount:    m,
		Cmd:      []string{"bash", "-c", script},
		Files:    files,
		Progress: x.progress(node),
	})
	if err != nil {
		return err
	}
	if code != 0 {
		return fmt.Errorf("%s exited with code %d: %s", what, code, strings.TrimSpace(tail))
	}
	return nil
}

// rewind runs pg_rewind on a former primary's data against the acting
// primary, then puts pacsd's files and standby.signal in place. Its marker
// stays when it fails, so the next pass moves the data aside and rebuilds.
func (x *executor) rewind(ctx context.Context, rt Runtime, a Action) error {
	b := a.Backup
	// pg_rewind reads the source's timeline from its control file, which a
	// promoted server updates only at its next checkpoint.
	srt, err := x.rt(x.acting)
	if err != nil {
		return err
	}
	conn, err := x.connect(ctx, srt, x.acting)
	if err != nil {
		return fmt.Errorf("while reaching the acting primary %q to rewind from it: %w", x.acting, err)
	}
	err = conn.Checkpoint(ctx)
	conn.Close()
	if err != nil {
		return fmt.Errorf("while running a checkpoint on the acting primary %q before the rewind: %w", x.acting, err)
	}
	staged, install := stageFiles(b.Files)
	script := fmt.Sprintf(`set -e
touch %[1]s
runuser -u postgres -- env PGPASSFILE=%[2]s pg_rewind -D %[3]s --source-server="host=%[4]s port=%[5]d user=%[6]s dbname=%[7]s" -P
%[8]srm -f %[1]s
`, BuildingMarker, b.Passfile.Path, PGDATA, b.Host, b.Port, b.User, x.c.Database, install)
	return x.runOnce(ctx, rt, a.Node, "rewind", a.Mount, script, append([]FileWrite{b.Passfile}, staged...))
}

// stageFiles places files for a one-off container under SecretsDir/files and
// returns the shell lines that install them into PGDATA owned by postgres.
func stageFiles(files []FileWrite) ([]FileWrite, string) {
	var staged []FileWrite
	var install strings.Builder
	for _, f := range files {
		s := FileWrite{Path: SecretsDir + "/files/" + path.Base(f.Path), Content: f.Content, Mode: 0o600, Secret: f.Secret}
		staged = append(staged, s)
		fmt.Fprintf(&install, "install -o postgres -g postgres -m 0600 %s %s\n", s.Path, f.Path)
	}
	return staged, install.String()
}
