package reconcile

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/pacsd/pacsd/pkg/pgconf"
	"github.com/pacsd/pacsd/pkg/spec"
)

// One-off jobs: base backups and rewinds run in a container of their own,
// started on the node's data and removed when they end.
//
// Their scripts run as root with the data mounted, so they are constant text:
// every value (user and database names, the primary's host, the slot, paths)
// reaches them as a positional argument of bash, never spliced into the
// script, and the scripts quote "$1" and the like wherever they use one.

// LabelOneOff marks a one-off container (base backup, rewind, data moved
// aside); its value says which. A one-off also carries LabelCluster and
// LabelNode of the node whose data it mounts.
const LabelOneOff = "io.pacsd.one-off"

// oneOffRoles are the LabelRole values of one-off containers made before
// LabelOneOff existed.
var oneOffRoles = map[string]bool{"basebackup": true, "rewind": true, "move-aside": true}

// IsOneOff reports whether a container with labels is a one-off container
// of pacsd (it carries LabelOneOff, or a LabelRole only one-offs have), never
// a node's own container.
func IsOneOff(labels map[string]string) bool {
	return labels[LabelOneOff] != "" || oneOffRoles[labels[LabelRole]]
}

// installLoop installs the files staged by stageFiles, given as the pairs of
// arguments left after the script's own ones were shifted away.
const installLoop = `while [ $# -gt 0 ]; do install -o postgres -g postgres -m 0600 -- "$1" "$2"; shift 2; done
`

// enterable is a shell function of the scripts: enterable MOUNT WHAT HINT
// fails, with a message naming WHAT (the node's data location) and HINT (what
// the operator can do), when the image's postgres user cannot enter the
// mount point MOUNT. The mount point is the operator's directory (data =
// "/srv"): pacsd changes only the data directory inside it, never its owner
// or mode.
const enterable = `enterable() {
  if ! runuser -u postgres -- test -x "$1"; then
    echo "the image's postgres user (uid $(id -u postgres)) cannot enter $2, the node's data location mounted at $1 (owner $(stat -c %u:%g -- "$1"), mode $(stat -c %a -- "$1")); pacsd changes only the data directory inside it, never the directory itself: $3, then run pacsd again" >&2
    exit 4
  fi
}
`

// baseBackupScript builds a standby's data. Arguments: the mount point, what
// the data location is and what to do when postgres cannot enter it, the
// marker, PGDATA, the passfile, the primary's host and port, the replication
// user, the slot, the count of unfinished builds (BuildAttemptsPath), the
// cluster's CA certificate (the primary's certificate is verified with it
// and must name the host: sslmode=verify-full), then pairs of a staged file
// and its target.
const baseBackupScript = `set -eu
` + enterable + `mount=$1 where=$2 hint=$3 marker=$4 pgdata=$5 passfile=$6 host=$7 port=$8 user=$9 slot=${10} attempts=${11} ca=${12}
shift 12
enterable "$mount" "$where" "$hint"
# A fence may have left standby.signal alone in a PGDATA that had no data.
if [ -n "$(ls -A -- "$pgdata" 2>/dev/null | grep -vx standby.signal)" ]; then echo "$pgdata is not empty; refusing to overwrite data (observe again: the data was seen as empty)" >&2; exit 3; fi
rm -f -- "$pgdata/standby.signal"
# Builds begun and not finished, counted before this one begins: a build
# that fails, hangs or is killed is counted, and pacsd stops after a few.
n=$(head -c 16 -- "$attempts" 2>/dev/null | tr -cd 0-9)
echo $(( ${n:-0} + 1 )) > "$attempts"
touch -- "$marker"
install -d -o postgres -g postgres -m 0700 -- "$pgdata"
runuser -u postgres -- env PGPASSFILE="$passfile" PGSSLMODE=verify-full PGSSLROOTCERT="$ca" pg_basebackup -h "$host" -p "$port" -U "$user" -w -D "$pgdata" -X stream -S "$slot" -c fast -P -v
` + installLoop + `rm -f -- "$marker" "$attempts"
`

// rewindScript rewinds a former primary's data. Arguments: the mount point,
// what the data location is and what to do when postgres cannot enter it,
// the marker, PGDATA, the passfile, the source server's libpq connection
// string, then pairs of a staged file and its target.
const rewindScript = `set -eu
` + enterable + `mount=$1 where=$2 hint=$3 marker=$4 pgdata=$5 passfile=$6 source=$7
shift 7
enterable "$mount" "$where" "$hint"
touch -- "$marker"
# standby.signal stays in place, so that a start of the node by hand or by
# the engine never finds it a primary: pg_rewind removes every file its
# source lacks, standby.signal among them, so it is put back right after,
# and on any exit (a failed or stopped rewind) by the trap.
signal() { runuser -u postgres -- touch -- "$pgdata/standby.signal"; }
trap signal EXIT
signal
# pg_rewind needs data that was shut down cleanly, and its own crash
# recovery (single-user mode) refuses standby.signal: data that was not (a
# killed primary, a crashed standby) is recovered here as a standby that
# follows nobody and listens nowhere, then shut down cleanly ("shut down in
# recovery"). A line a second says it is alive, for at most an hour.
state=$(runuser -u postgres -- env LC_ALL=C pg_controldata -D "$pgdata" | sed -n 's/^Database cluster state: *//p')
case "$state" in
"shut down" | "shut down in recovery") ;;
*)
  echo "the data was not shut down cleanly ($state); recovering it as a standby first"
  # Its postmaster.pid is stale: its container is stopped (fenced), and the
  # pid it names is another process in this container.
  rm -f -- "$pgdata/postmaster.pid"
  runuser -u postgres -- pg_ctl -D "$pgdata" -W -l /tmp/recovery.log \
    -o "-c listen_addresses= -c hot_standby=on -c primary_conninfo= -c primary_slot_name= -c restore_command= -c unix_socket_directories=/tmp" start
  waited=0
  until [ "$(sed -n 8p "$pgdata/postmaster.pid" 2>/dev/null | tr -d ' ')" = ready ]; do
    # The server writes its pid file a moment after pg_ctl returns.
    if { [ "$waited" -ge 10 ] && ! runuser -u postgres -- pg_ctl -D "$pgdata" status >/dev/null 2>&1; } || [ "$waited" -ge 3600 ]; then
      echo "the recovery as a standby did not finish (waited ${waited}s):" >&2
      cat /tmp/recovery.log >&2
      runuser -u postgres -- pg_ctl -D "$pgdata" -w -m immediate stop >/dev/null 2>&1 || true
      exit 1
    fi
    sleep 1
    waited=$((waited + 1))
    echo "recovering as a standby: ${waited}s"
  done
  runuser -u postgres -- pg_ctl -D "$pgdata" -w -t 3600 -m fast stop
  ;;
esac
runuser -u postgres -- env PGPASSFILE="$passfile" pg_rewind -D "$pgdata" --source-server="$source" -P
signal
` + installLoop + `rm -f -- "$marker"
`

// moveAsideScript moves PGDATA aside, never over anything: arguments are
// PGDATA, the name it is moved to (beside it, named with the time), the
// building marker, then files beside PGDATA to remove with the marker.
const moveAsideScript = `set -eu
pgdata=$1 aside=$2 marker=$3
shift 3
if [ -e "$pgdata" ]; then
  if [ -e "$aside" ]; then echo "$aside exists already; nothing was moved" >&2; exit 3; fi
  mv -- "$pgdata" "$aside"
  echo "moved aside to $aside"
fi
rm -f -- "$marker" "$@"
`

// AsidePrefix begins the name, beside PGDATA, of a node's data moved aside:
// it is followed by the time of the move (UTC), and kept until an operator
// removes it.
const AsidePrefix = DataMount + "/data.aside-"

// moveAside moves node's PGDATA on m aside (to AsidePrefix and the time)
// in a one-off container, with the building marker and also (paths beside
// PGDATA) removed; it returns where the data went inside the mount, ""
// when there was no PGDATA. Nothing is ever moved over something that
// exists.
func (x *executor) moveAside(ctx context.Context, rt Runtime, node string, m Mount, also ...string) (string, error) {
	aside := AsidePrefix + time.Now().UTC().Format("20060102T150405Z")
	moved := ""
	progress := x.progress(node)
	watch := func(line string) {
		if strings.HasPrefix(line, "moved aside to ") {
			moved = strings.TrimPrefix(line, "moved aside to ")
		}
		progress(line)
	}
	n := x.c.Node(node)
	args := append([]string{PGDATA, aside, BuildingMarker}, also...)
	code, tail, err := x.runOneOff(ctx, rt, n, "move-aside", m, moveAsideScript, args, nil, watch)
	if err == nil && code != 0 {
		err = fmt.Errorf("move-aside exited with code %d: %s", code, strings.TrimSpace(tail))
	}
	return moved, err
}

// baseBackup builds a standby's data with pg_basebackup in a one-off
// container. It refuses a PGDATA that holds anything, before leaving a mark.
// Then a marker beside PGDATA says the data is partial until pacsd's files
// are in place; a failed build leaves the marker, so the next pass moves the
// data aside and never starts it.
func (x *executor) baseBackup(ctx context.Context, rt Runtime, a Action) error {
	b := a.Backup
	issued, err := x.d.issueFiles(ctx, x.c, b.Files)
	if err != nil {
		return err
	}
	staged, pairs := stageFiles(issued)
	files := append([]FileWrite{b.Passfile, b.RootCA}, staged...)
	where, hint := x.mountWords(a.Node, a.Mount)
	args := append([]string{DataMount, where, hint, BuildingMarker, PGDATA, b.Passfile.Path, b.Host, strconv.Itoa(b.Port), b.User, b.Slot, BuildAttemptsPath, b.RootCA.Path}, pairs...)
	return x.runScript(ctx, rt, a.Node, "basebackup", a.Mount, baseBackupScript, args, files)
}

// runScript runs script with bash in a one-off container of the node, named
// after the node's container and what, with args as its positional
// arguments ($1 onwards) and files placed before it starts. The one-offs a
// killed pacsd left on the node go first (clearOneOffs).
func (x *executor) runScript(ctx context.Context, rt Runtime, node, what string, m Mount, script string, args []string, files []FileWrite) error {
	code, tail, err := x.runOneOff(ctx, rt, x.c.Node(node), what, m, script, args, files, x.progress(node))
	if err != nil {
		return err
	}
	if code != 0 {
		return fmt.Errorf("%s exited with code %d: %s", what, code, strings.TrimSpace(tail))
	}
	return nil
}

// runOneOff runs script in a one-off container of node n, its output lines
// to progress, and returns its exit code and last lines (see runScript).
func (x *executor) runOneOff(ctx context.Context, rt Runtime, n *spec.Node, what string, m Mount, script string, args []string, files []FileWrite, progress func(string)) (int, string, error) {
	// A one-off left by a killed pacsd blocks this one by its name and may
	// still write into the data.
	if err := x.clearOneOffs(ctx, rt, n.Name); err != nil {
		return 0, "", err
	}
	return rt.RunOnce(ctx, OneOff{
		Name:     n.Container + "-" + what,
		Image:    x.c.Image,
		Network:  x.c.Network,
		Labels:   map[string]string{LabelCluster: x.c.Name, LabelNode: n.Name, LabelRole: what, LabelOneOff: what},
		Mount:    m,
		Cmd:      append([]string{"bash", "-c", script, "bash"}, args...),
		Files:    files,
		Progress: progress,
	})
}

// clearOneOffs removes the one-off containers of node that a killed pacsd
// left behind (see Runtime.RemoveOneOffs) and logs each one it removed. Call
// it before anything touches the node's data: such a container blocks the
// next one by its name and may still write into the data. An error means
// one may still run; then nothing may touch the data.
//
// A one-off of long work that runs without the cluster's lock (see
// executor.unlocked) holds the node's work lock: when another pacsd process
// holds it, its one-off is not a leftover but work in progress, and it is
// left alone (ErrNodeBusy).
func (x *executor) clearOneOffs(ctx context.Context, rt Runtime, node string) error {
	if !x.working[node] && x.d.Store != nil {
		unlock, err := x.workLock(ctx, node)
		if err != nil {
			return err
		}
		defer unlock()
	}
	removed, err := rt.RemoveOneOffs(ctx, x.c.Name, node)
	for _, name := range removed {
		x.log.Warn("removed a one-off container left behind (a base backup, rewind or move of the data that did not finish)",
			"cluster", x.c.Name, "node", node, "container", name)
	}
	if err != nil {
		return fmt.Errorf("while removing the one-off containers left behind on node %q (they may still write into its data): %w", node, err)
	}
	return nil
}

// ErrNodeBusy is returned (wrapped) when another pacsd process runs long
// work (a base backup, a rewind) on a node's data: nothing else touches
// that data until it ends.
var ErrNodeBusy = errors.New("another pacsd process is building or rewinding the node's data")

// workLockKey names the lock that long work on a node's data holds while it
// runs without the cluster's lock.
func workLockKey(cluster, node string) string { return cluster + ".work." + node }

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
	issued, err := x.d.issueFiles(ctx, x.c, b.Files)
	if err != nil {
		return err
	}
	staged, pairs := stageFiles(issued)
	where, hint := x.mountWords(a.Node, a.Mount)
	args := append([]string{DataMount, where, hint, BuildingMarker, PGDATA, b.Passfile.Path, sourceServer(b.Host, b.Port, b.User, x.c.Database, b.RootCA.Path)}, pairs...)
	return x.runScript(ctx, rt, a.Node, "rewind", a.Mount, rewindScript, args, append([]FileWrite{b.Passfile, b.RootCA}, staged...))
}

// mountWords says what the data location m of node is, for messages, and
// what the operator can do so that the image's postgres user can enter it.
func (x *executor) mountWords(node string, m Mount) (where, hint string) {
	on := ""
	if n := x.c.Node(node); n != nil && n.Host != "" {
		on = fmt.Sprintf(" on host %q", n.Host)
	}
	if m.HostDir != "" {
		return "host directory " + m.HostDir + on, "give that user search permission on it, for example: chmod o+x " + m.HostDir + " (mode 0711 or 0755)"
	}
	return "volume " + m.Volume + on, "give that user search permission on the volume's top directory (mode 0711 or 0755)"
}

// sourceServer is pg_rewind's --source-server: a libpq connection string
// whose values are quoted by libpq's rules, verifying the source's
// certificate with the CA certificate at rootCert and that it names host
// (sslmode=verify-full). It holds no password (the passfile does).
func sourceServer(host string, port int, user, database, rootCert string) string {
	return "host=" + pgconf.ConninfoValue(host) + " port=" + strconv.Itoa(port) +
		" user=" + pgconf.ConninfoValue(user) + " dbname=" + pgconf.ConninfoValue(database) +
		" sslmode=verify-full sslrootcert=" + pgconf.ConninfoValue(rootCert)
}

// stageFiles places files for a one-off container under SecretsDir/files,
// each under a name of its own (its index), and returns the arguments of
// installLoop: pairs of a staged path and the target in PGDATA.
func stageFiles(files []FileWrite) ([]FileWrite, []string) {
	var staged []FileWrite
	var pairs []string
	for i, f := range files {
		s := FileWrite{Path: SecretsDir + "/files/" + strconv.Itoa(i), Content: f.Content, Mode: 0o600, Secret: f.Secret}
		staged = append(staged, s)
		pairs = append(pairs, s.Path, f.Path)
	}
	return staged, pairs
}

// workLock takes node's work lock (see workLockKey) at once or not at all: an
// error that matches ErrNodeBusy means another pacsd process works on the
// node's data.
func (x *executor) workLock(ctx context.Context, node string) (func(), error) {
	once, cancel := context.WithCancel(ctx)
	cancel() // one try
	unlock, err := x.d.Store.Lock(once, workLockKey(x.c.Name, node))
	if err != nil {
		return nil, &NodeBusyError{Cluster: x.c.Name, Node: node, err: err}
	}
	return unlock, nil
}

// NodeBusyError is the error of a step refused because another pacsd
// process runs long work on the node's data; it matches ErrNodeBusy.
type NodeBusyError struct {
	Cluster, Node string
	err           error
}

func (e *NodeBusyError) Error() string {
	return fmt.Sprintf("node %q: %v (%v); the next pass looks again", e.Node, ErrNodeBusy, e.err)
}

// Unwrap returns ErrNodeBusy.
func (e *NodeBusyError) Unwrap() error { return ErrNodeBusy }

// Wait waits until the other process's work on the node ends (its work lock
// is free), or ctx is done.
func (e *NodeBusyError) Wait(ctx context.Context, store ClusterStore) error {
	unlock, err := store.Lock(ctx, workLockKey(e.Cluster, e.Node))
	if err != nil {
		return err
	}
	unlock()
	return nil
}
