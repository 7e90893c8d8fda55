package daemon

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
)

// TestStateDirDropIn: the drop-in names the state directory so that
// systemd reads back exactly that path (quotes, backslashes and specifiers
// escaped), none is written for the unit's own directory, and a directory
// the unit hides or empties at every restart, or one with a newline (which
// would start a directive of its own), is refused.
func TestStateDirDropIn(t *testing.T) {
	for _, tt := range []struct {
		dir, want, refused string
	}{
		{dir: "/var/lib/pacsd"},
		{dir: "/var/lib/pacsd/"},
		{dir: "/var/lib/pacsd/a"},
		{dir: "/srv/pacsd", want: `ReadWritePaths="/srv/pacsd"`},
		{dir: "/var/lib/pacsd2", want: `ReadWritePaths="/var/lib/pacsd2"`},
		{dir: "/srv/pacs state/../x", want: `ReadWritePaths="/srv/x"`},
		{dir: `/srv/a "b" %n \x`, want: `ReadWritePaths="/srv/a \"b\" %%n \\x"`},
		{dir: "/srv/a\nExecStartPre=+/bin/sh", refused: "control character"},
		{dir: "srv/pacsd", refused: "not an absolute path"},
		{dir: "/tmp/pacsd", refused: "emptied at every restart"},
		{dir: "/var/tmp", refused: "emptied at every restart"},
		{dir: "/home/op/pacsd", refused: "ProtectHome=yes hides /home"},
		{dir: "/root/pacsd", refused: "ProtectHome=yes hides /root"},
		{dir: "/", refused: "would let pacsd.service write /etc"},
		{dir: "/var", refused: "would let pacsd.service write /var/lib/dpkg"},
		{dir: "/var/lib", refused: "would let pacsd.service write /var/lib/dpkg"},
		{dir: "/etc/pacsd", refused: "would let pacsd.service write /etc"},
		{dir: "/usr/local/pacsd", refused: "would let pacsd.service write /usr"},
		{dir: "/var/lib/pacsd-b", want: `ReadWritePaths="/var/lib/pacsd-b"`},
		{dir: "/opt/pacsd", want: `ReadWritePaths="/opt/pacsd"`},
		{dir: "/run/pacsd", refused: "emptied at every boot"},
		{dir: "/run", refused: "emptied at every boot"},
		{dir: "/var/run/pacsd", refused: "emptied at every boot"},
		{dir: "/srv", refused: "holds the directories of others"},
		{dir: "/etc/../srv", refused: "holds the directories of others"},
		{dir: "/opt", refused: "holds the directories of others"},
		{dir: "/mnt", refused: "holds the directories of others"},
		{dir: "/var/log/pacsd", refused: "would let pacsd.service write /var/log"},
		{dir: "/var/spool/cron", refused: "would let pacsd.service write /var/spool"},
		{dir: "/var/lib/docker/pacsd", refused: "would let pacsd.service write /var/lib/docker"},
	} {
		got, err := StateDirDropIn(tt.dir)
		switch {
		case tt.refused != "":
			if err == nil || !strings.Contains(err.Error(), tt.refused) {
				t.Errorf("StateDirDropIn(%q) = %q, %v; want an error saying %q", tt.dir, got, err, tt.refused)
			}
		case err != nil:
			t.Errorf("StateDirDropIn(%q): %v", tt.dir, err)
		case tt.want == "" && got != "":
			t.Errorf("StateDirDropIn(%q) = %q; the unit may write it already, want no drop-in", tt.dir, got)
		case tt.want != "":
			var directives []string
			for _, l := range strings.Split(got, "\n") {
				if l != "" && !strings.HasPrefix(l, "#") {
					directives = append(directives, l)
				}
			}
			if want := []string{"[Service]", tt.want}; fmt.Sprint(directives) != fmt.Sprint(want) {
				t.Errorf("StateDirDropIn(%q) has the directives %q, want %q; whole:\n%s", tt.dir, directives, want, got)
			}
		}
	}
}

// TestUnwritableStateDirSaysWhatToDo: a state directory that cannot be
// written gets, under pacsd.service, the drop-in to write and the commands
// to run; elsewhere, the directory's access; other errors pass unchanged.
func TestUnwritableStateDirSaysWhatToDo(t *testing.T) {
	erofs := fmt.Errorf("while opening the lock file /srv/pacsd/pacsd.lock: %w", &os.PathError{Op: "open", Path: "/srv/pacsd/pacsd.lock", Err: syscall.EROFS})
	msg := unwritableStateDir(erofs, "/srv/pacsd", true).Error()
	for _, want := range []string{"read-only file system", "/srv/pacsd", DropInPath, "pacsd systemd-dropin --write",
		"mkdir -m 0750 '/srv/pacsd' && chown pacsd:pacsd '/srv/pacsd'", "systemctl daemon-reload && systemctl restart pacsd"} {
		if !strings.Contains(msg, want) {
			t.Errorf("under the unit, the message lacks %q:\n%s", want, msg)
		}
	}
	msg = unwritableStateDir(erofs, "/var/lib/pacsd", true).Error()
	if strings.Contains(msg, "drop-in") || !strings.Contains(msg, "chown -R pacsd:pacsd /var/lib/pacsd") {
		t.Errorf("for the unit's own state directory the message should say whose it must be, not ask for a drop-in:\n%s", msg)
	}
	msg = unwritableStateDir(erofs, "/tmp/pacsd", true).Error()
	if !strings.Contains(msg, "PrivateTmp=yes") {
		t.Errorf("for a state directory in /tmp the message should say why no drop-in serves:\n%s", msg)
	}
	eacces := &os.PathError{Op: "mkdir", Path: "/srv/pacsd", Err: syscall.EACCES}
	msg = unwritableStateDir(eacces, "/srv/pacsd", false).Error()
	if strings.Contains(msg, "systemd") || !strings.Contains(msg, "write access to /srv/pacsd") {
		t.Errorf("outside systemd the message should be about the directory's access:\n%s", msg)
	}
	other := fmt.Errorf("another pacsd (pid 1) holds /srv/pacsd/pacsd.lock; stop it first")
	if got := unwritableStateDir(other, "/srv/pacsd", true); got != other {
		t.Errorf("another error was changed: %v", got)
	}
}

// TestInstallStateDirQuotes: the command the messages give runs as shown,
// whatever the directory's name holds.
func TestInstallStateDirQuotes(t *testing.T) {
	dir := `/srv/pacs's "$(state)" %i`
	cmd := InstallStateDir(dir)
	mkdir, chown, ok := strings.Cut(cmd, " && ")
	if !ok {
		t.Fatalf("%s: want mkdir ... && chown ...", cmd)
	}
	for _, part := range []struct{ cmd, prefix string }{{mkdir, "mkdir -m 0750 "}, {chown, "chown pacsd:pacsd "}} {
		out, err := exec.Command("sh", "-c", "set -- "+strings.TrimPrefix(part.cmd, part.prefix)+`; printf '%s' "$1"`).Output()
		if !strings.HasPrefix(part.cmd, part.prefix) || err != nil || string(out) != dir {
			t.Errorf("%s names %q to the shell (%v); want %q", part.cmd, out, err, dir)
		}
	}
}

// TestInstallStateDirRefusesExisting: the command the messages give fails
// on a directory that exists, and leaves its owner and mode alone (install
// -d made an existing 0755 directory 0750 and pacsd's).
func TestInstallStateDirRefusesExisting(t *testing.T) {
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := exec.Command("sh", "-c", InstallStateDir(dir)).Run(); err == nil {
		t.Errorf("%s succeeded on an existing directory", InstallStateDir(dir))
	}
	if st, err := os.Stat(dir); err != nil || st.Mode().Perm() != 0o755 {
		t.Errorf("the existing directory was changed: %v, %v", st.Mode(), err)
	}
}
