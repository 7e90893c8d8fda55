package daemon

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"strings"
	"syscall"
	"unicode"

	"github.com/pacsd/pacsd/pkg/spec"
)

// What pacsd.service (systemd/pacsd.service) lets pacsd write, and where the
// drop-in that adds a state directory elsewhere goes.
const (
	// UnitStateDir is the one directory the unit lets pacsd write
	// (ProtectSystem=strict, StateDirectory=pacsd, ReadWritePaths=).
	UnitStateDir = spec.DefaultStateDir
	// DropInPath is the drop-in that adds state_dir to the unit's
	// ReadWritePaths=; `pacsd systemd-dropin --write` writes it.
	DropInPath = "/etc/systemd/system/pacsd.service.d/state-dir.conf"
)

// unitHidden are the trees pacsd.service hides from pacsd or gives it a
// private copy of: a state directory there would be refused (ProtectHome=)
// or lost at every restart (PrivateTmp=), whatever ReadWritePaths= says.
var unitHidden = []struct{ dir, why string }{
	{"/tmp", "PrivateTmp=yes gives pacsd a private /tmp that is emptied at every restart"},
	{"/var/tmp", "PrivateTmp=yes gives pacsd a private /var/tmp that is emptied at every restart"},
	{"/home", "ProtectHome=yes hides /home from pacsd"},
	{"/root", "ProtectHome=yes hides /root from pacsd"},
	{"/run", "/run is a tmpfs emptied at every boot: the acting primary's record, the fencing epoch and the clusters' certificate authority would be lost"},
	{"/var/run", "/var/run is /run, a tmpfs emptied at every boot: the acting primary's record, the fencing epoch and the clusters' certificate authority would be lost"},
	{"/proc", "/proc is no place for state"},
	{"/sys", "/sys is no place for state"},
	{"/dev", "PrivateDevices=yes gives pacsd a private /dev"},
}

// systemTrees are what no drop-in of pacsd's may open for writing: a state
// directory in them or above them (such as /, /var or /var/lib) is refused.
// The trees of other services (their logs, spools, the engine's own data)
// are among them.
var systemTrees = []string{"/etc", "/usr", "/boot", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/var/lib/dpkg", "/var/lib/systemd",
	"/var/log", "/var/spool", "/var/mail", "/var/cache", "/var/backups", "/var/lib/docker", "/var/lib/containerd", "/var/lib/postgresql"}

// sharedRoots are directories that hold the directories of others: a state
// directory below them is fine (/srv/pacsd), they themselves are not.
var sharedRoots = []string{"/srv", "/opt", "/mnt", "/media", "/var/local", "/var/opt", "/var/lib"}

// StateDirDropIn returns the systemd drop-in that lets pacsd.service write
// stateDir, or "" when the unit already may (stateDir is UnitStateDir or
// below it). It refuses a directory the unit hides or makes private, one
// that would open the system's files (systemTrees), a relative one, and
// one with control characters (a newline would start a directive of its
// own). No side effects.
func StateDirDropIn(stateDir string) (string, error) {
	if !filepath.IsAbs(stateDir) {
		return "", fmt.Errorf("the state directory %q is not an absolute path; give daemon.state_dir as one, such as %q", stateDir, UnitStateDir)
	}
	if strings.IndexFunc(stateDir, unicode.IsControl) >= 0 {
		return "", fmt.Errorf("the state directory %q has a control character, which a unit file cannot hold; give daemon.state_dir without one", stateDir)
	}
	dir := filepath.Clean(stateDir)
	if within(dir, UnitStateDir) {
		return "", nil
	}
	for _, h := range unitHidden {
		if within(dir, h.dir) {
			return "", fmt.Errorf("the state directory %s cannot serve pacsd.service: %s; give daemon.state_dir elsewhere, such as %s", dir, h.why, UnitStateDir)
		}
	}
	for _, sys := range systemTrees {
		if within(dir, sys) || within(sys, dir) {
			return "", fmt.Errorf("the state directory %s would let pacsd.service write %s, which ProtectSystem=strict keeps read-only (the system's files, pacsd's own configuration); give daemon.state_dir a directory of its own, such as %s or /srv/pacsd", dir, sys, UnitStateDir)
		}
	}
	for _, r := range sharedRoots {
		if dir == r {
			return "", fmt.Errorf("the state directory %s holds the directories of others, which pacsd.service must not be let write; give daemon.state_dir a directory of its own below it, such as %s", dir, filepath.Join(dir, "pacsd"))
		}
	}
	// systemd unquotes "..." with C escapes, and expands specifiers (%)
	// before that.
	quoted := `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`, `%`, `%%`).Replace(dir) + `"`
	return fmt.Sprintf(`# Written by "pacsd systemd-dropin": pacsd.service may write pacsd's
# state directory (daemon.state_dir of the topology file) besides %s.
# The directory must exist before pacsd starts, owned by pacsd:
#   %s
# then: systemctl daemon-reload && systemctl restart pacsd
[Service]
ReadWritePaths=%s
`, UnitStateDir, InstallStateDir(dir), quoted), nil
}

// InstallStateDir is the command that creates the state directory dir for
// pacsd.service, dir quoted for the shell. It fails when dir exists: it
// never takes over a directory that is someone else's (install -d would
// change its owner and mode).
func InstallStateDir(dir string) string {
	q := "'" + strings.ReplaceAll(dir, "'", `'\''`) + "'"
	return "mkdir -m 0750 " + q + " && chown pacsd:pacsd " + q
}

// within reports whether path is dir or below it (both clean and absolute).
func within(path, dir string) bool {
	return path == dir || strings.HasPrefix(path, strings.TrimSuffix(dir, "/")+"/")
}

// unwritableStateDir adds to err, when it says that the state directory dir
// cannot be written (read-only file system, permission denied), what to do
// about it: under systemd (underUnit) the drop-in pacsd.service needs, else
// the directory's owner. Other errors are returned as they are.
func unwritableStateDir(err error, dir string, underUnit bool) error {
	if !errors.Is(err, syscall.EROFS) && !errors.Is(err, fs.ErrPermission) {
		return err
	}
	if !underUnit {
		return fmt.Errorf("%w; pacsd cannot write its state directory (daemon.state_dir): give the user pacsd runs as write access to %s", err, dir)
	}
	if dropIn, derr := StateDirDropIn(dir); derr != nil {
		return fmt.Errorf("%w; %v", err, derr)
	} else if dropIn == "" {
		return fmt.Errorf("%w; pacsd cannot write its state directory %s: it must be owned by the user pacsd.service runs as (StateDirectory=pacsd makes it so; 'systemctl restart pacsd' after 'chown -R pacsd:pacsd %s')", err, dir, dir)
	}
	return fmt.Errorf("%w; pacsd.service lets pacsd write only %s (ProtectSystem=strict) and what its drop-ins add: "+
		"create the state directory (%s), "+
		"add it with 'pacsd systemd-dropin --write' (writes %s; -f names the topology file), "+
		"then run 'systemctl daemon-reload && systemctl restart pacsd'", err, UnitStateDir, InstallStateDir(dir), DropInPath)
}
