package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"

	"github.com/pacsd/pacsd/internal/e2e"
	"github.com/pacsd/pacsd/pkg/daemon"
)

// Exposure levels `systemd-analyze security` gave pacsd.service (systemd
// 252, Debian 12) when this test was written; the unit must stay at these or
// lower. Offline, from the file alone, it rates 1.7; online, on the booted
// system with the unit loaded, 1.5.
const (
	maxExposureOffline = 1.7
	maxExposureOnline  = 1.5
)

// TestE2EPackage builds the package with `make dist`, boots systemd in a
// fresh container of the Debian image of image/systemd.sh, installs the
// package there without network, and checks what an operator relies on:
// the version, the unit (systemd-analyze verify, security), the user
// sysusers made, the conffiles and their modes, the shell completion
// scripts, the service neither enabled nor started. Then, with the host's
// Docker engine as the container's engine, the packaged service converges
// a PostgreSQL node under its full hardening; systemd's watchdog restarts a
// pacsd that stops answering; a state_dir the unit cannot write stops pacsd
// with the drop-in to write, and runs once it is written; an upgrade
// restarts pacsd and keeps the operator's edits and the database; removal
// stops and disables it; purge removes the configuration and keeps the
// state directory.
func TestE2EPackage(t *testing.T) {
	e := e2e.Require(t)
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	started := time.Now()

	// The image, cached by its recipe hash.
	script := exec.Command("bash", filepath.Join(root, "image", "systemd.sh"))
	script.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // mmdebstrap signals its process group on failure
	if out, err := script.CombinedOutput(); err != nil {
		t.Fatalf("image/systemd.sh: %v\n%s", err, out)
	}
	suite := osRelease(t, "VERSION_CODENAME")
	image := "pacsd-debian-systemd:" + suite
	t.Logf("image %s ready after %s", image, time.Since(started).Round(time.Second))

	// The package, from make dist.
	out := t.TempDir()
	if b, err := exec.Command("make", "-C", root, "--no-print-directory", "dist", "DIST="+out).CombinedOutput(); err != nil {
		t.Fatalf("make dist: %v\n%s", err, b)
	}
	describe := git(t, root, "describe", "--tags", "--always", "--dirty")
	commits, err := strconv.Atoi(git(t, root, "rev-list", "--count", "HEAD"))
	if err != nil {
		t.Fatal(err)
	}
	debVer, err := debVersion(describe, commits)
	if err != nil {
		t.Fatal(err)
	}
	debs, _ := filepath.Glob(filepath.Join(out, "pacsd_*.deb"))
	if len(debs) != 1 || filepath.Base(debs[0]) != "pacsd_"+debVer+"_"+runtime.GOARCH+".deb" {
		t.Fatalf("make dist made %v; want one pacsd_%s_%s.deb", debs, debVer, runtime.GOARCH)
	}
	deb, err := os.ReadFile(debs[0])
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("package %s built after %s", filepath.Base(debs[0]), time.Since(started).Round(time.Second))

	m := boot(t, e, image)
	m.put("/root/pacsd.deb", deb)

	// Installed with apt from the file alone: the container has no package
	// lists, so nothing can be downloaded; docker.io is only recommended.
	inst := m.must("installing the package", "apt-get install -y /root/pacsd.deb 2>&1")
	for _, want := range []string{"Setting up pacsd (" + debVer + ")", "Creating user 'pacsd'",
		"installed, not started: write /etc/pacsd/pacs.hcl", "there is no group docker"} {
		if !strings.Contains(inst, want) {
			t.Errorf("installing printed no %q:\n%s", want, inst)
		}
	}
	if got, want := m.must("pacsd version", "pacsd version"), "pacsd "+describe+" ("; !strings.HasPrefix(got, want) {
		t.Errorf("pacsd version printed %q; want it to begin %q (git describe)", got, want)
	}
	if got := m.must("the package's version", "dpkg-query -W -f '${Version}' pacsd"); got != debVer {
		t.Errorf("the installed package's version is %q, want %q", got, debVer)
	}
	if got := m.must("the binary", "file=$(readlink -f /usr/bin/pacsd); od -An -c -N4 $file; dpkg -S /usr/bin/pacsd"); !strings.Contains(got, "E   L   F") || !strings.Contains(got, "pacsd: /usr/bin/pacsd") {
		t.Errorf("/usr/bin/pacsd is not the package's ELF binary: %s", got)
	}

	// The unit: verified, pointing at the package's binary, as safe as before.
	// docker.service is not in the container; verify does not report a
	// missing unit of Wants=, and anything it prints fails the test.
	unit := "/usr/lib/systemd/system/pacsd.service"
	if got, code := m.run("systemd-analyze verify " + unit + " 2>&1"); code != 0 || got != "" {
		t.Errorf("systemd-analyze verify %s: exit %d:\n%s", unit, code, got)
	}
	if got := m.must("the unit's ExecStart", "grep ^ExecStart= "+unit); !strings.HasPrefix(got, "ExecStart=/usr/bin/pacsd run ") {
		t.Errorf("the packaged unit runs %q; want /usr/bin/pacsd", got)
	}
	offline := exposure(t, m.must("systemd-analyze security offline", "systemd-analyze security --offline=yes --no-pager "+unit+" 2>&1"))
	online := exposure(t, m.must("systemd-analyze security", "systemd-analyze security --no-pager pacsd.service 2>&1"))
	t.Logf("systemd-analyze security: exposure %.1f offline, %.1f online", offline, online)
	if offline > maxExposureOffline || online > maxExposureOnline {
		t.Errorf("pacsd.service's exposure is %.1f offline and %.1f online; it must stay at or below %.1f and %.1f",
			offline, online, maxExposureOffline, maxExposureOnline)
	}

	// sysusers made the user; the configuration belongs to root, group pacsd.
	if got := m.must("the user", "getent passwd pacsd"); !regexp.MustCompile(`^pacsd:x:\d+:\d+:[^:]*:/var/lib/pacsd:/usr/sbin/nologin$`).MatchString(got) {
		t.Errorf("getent passwd pacsd: %q", got)
	}
	if got := m.must("the conffiles", "dpkg-query -W -f '${Conffiles}' pacsd | awk '{print $1}'"); got != "/etc/pacsd/pacs.hcl.example\n/etc/pacsd/pacsd.env" {
		t.Errorf("the package's conffiles: %q", got)
	}
	if got := m.must("modes", "stat -c '%n %a %U:%G' /etc/pacsd /etc/pacsd/pacsd.env /etc/pacsd/pacs.hcl.example /usr/bin/pacsd /usr/lib/sysusers.d/pacsd.conf "+unit); got != strings.Join([]string{
		"/etc/pacsd 750 root:pacsd", "/etc/pacsd/pacsd.env 640 root:pacsd", "/etc/pacsd/pacs.hcl.example 640 root:pacsd",
		"/usr/bin/pacsd 755 root:root", "/usr/lib/sysusers.d/pacsd.conf 644 root:root", unit + " 644 root:root"}, "\n") {
		t.Errorf("owners and modes:\n%s", got)
	}
	// The completion scripts: where each shell looks, as pacsd prints them.
	for _, sh := range shells {
		if got, code := m.run(fmt.Sprintf("pacsd completion %s | cmp - %s && stat -c '%%a %%U' %[2]s", sh, completionPaths[sh])); code != 0 || got != "644 root" {
			t.Errorf("%s: exit %d, %s; want what 'pacsd completion %s' prints, mode 0644", completionPaths[sh], code, got, sh)
		}
	}
	if got, code := m.run("bash -n " + completionPaths["bash"] + " 2>&1"); code != 0 {
		t.Errorf("bash -n %s: exit %d: %s", completionPaths["bash"], code, got)
	}
	if got, _ := m.run("systemctl is-enabled pacsd; systemctl is-active pacsd"); got != "disabled\ninactive" {
		t.Errorf("after installing, pacsd.service is %q; want disabled and inactive (the topology file comes first)", got)
	}

	// The service, on the machine's engine (as docker.io would provide it).
	cluster := "pkg" + e.RunID
	e.Own("io.pacsd.cluster", cluster)
	m.must("the group docker", fmt.Sprintf("groupadd --system --gid %d docker", socketGroup(t)))
	m.put("/root/pacs.password", []byte(e.RunID+"-password\n"))
	m.must("the password file", "install -d -m 0750 -g pacsd /etc/pacsd/secrets && install -m 0600 -o pacsd /root/pacs.password /etc/pacsd/secrets/pacs.password")
	listen := e2e.FreeLoopbackAddr(t)
	m.topology(cluster, listen, "")
	m.must("validating", "pacsd validate")
	m.must("enabling", "systemctl enable --now pacsd 2>&1")
	m.converged("the first start")
	db := cluster + "-db"
	pg, err := e.Docker.ContainerInspect(e.Ctx(time.Minute), db)
	if err != nil || !pg.State.Running {
		t.Fatalf("the database container %s: %v, %+v", db, err, pg.State)
	}
	t.Logf("pacsd.service converged %s after %s", cluster, time.Since(started).Round(time.Second))

	// systemd's watchdog, as the unit sets it (here 2s instead of 60s):
	// pacsd feeds it through the sandbox; stopped, it is restarted.
	m.put("/root/watchdog.conf", []byte("[Service]\nWatchdogSec=2s\n"))
	m.must("the watchdog drop-in", "install -D -m 0644 /root/watchdog.conf /etc/systemd/system/pacsd.service.d/watchdog.conf && systemctl daemon-reload && systemctl restart pacsd")
	time.Sleep(5 * time.Second)
	if got := m.show("ActiveState", "NRestarts", "WatchdogUSec"); got != "active 0 2s" {
		t.Fatalf("5s with WatchdogSec=2s: %q; want active, no restart (pacsd feeds the watchdog)\n%s", got, m.journal(""))
	}
	since := m.must("the time", "date +%s")
	stopped := m.show("MainPID")
	m.must("stopping pacsd", "kill -STOP "+stopped)
	m.waitFor("systemd to restart the stopped pacsd", 30*time.Second, func() (bool, string) {
		got := m.show("NRestarts", "ActiveState", "MainPID")
		return got != "1 active "+stopped && strings.HasPrefix(got, "1 active "), got
	})
	if j, _ := m.run("journalctl -u pacsd --no-pager -o cat --since @" + since + " | grep -e 'Watchdog timeout' -e 'Failed with result'"); !strings.Contains(j, "Watchdog timeout") || !strings.Contains(j, "Failed with result 'watchdog'") {
		t.Errorf("the journal does not show the watchdog's restart:\n%s\n%s", j, m.journal(since))
	}
	m.must("removing the watchdog drop-in", "rm /etc/systemd/system/pacsd.service.d/watchdog.conf && systemctl daemon-reload")

	// Another state_dir: pacsd stops, naming the drop-in; with it, it runs.
	stateDir := "/srv/pacs's %i state"
	m.topology(cluster, listen, stateDir)
	since = m.must("the time", "date +%s")
	if got, code := m.run("systemctl restart pacsd 2>&1"); code == 0 {
		t.Fatalf("pacsd started on a state_dir the unit does not let it write: %s", got)
	}
	if j := m.logged(since); !strings.Contains(j, "read-only file system") || !strings.Contains(j, "pacsd systemd-dropin --write") ||
		!strings.Contains(j, daemon.DropInPath) || !strings.Contains(j, daemon.InstallStateDir(stateDir)) {
		t.Fatalf("the journal does not say which drop-in to write:\n%s", j)
	}
	if got := m.must("pacsd systemd-dropin --write", "pacsd systemd-dropin --write"); !strings.HasPrefix(got, "wrote "+daemon.DropInPath) {
		t.Errorf("pacsd systemd-dropin --write printed %q", got)
	}
	m.must("creating the state directory", daemon.InstallStateDir(stateDir))
	m.must("restarting", "systemctl daemon-reload && systemctl restart pacsd")
	if got := m.show("ReadWritePaths"); got != `/var/lib/pacsd "`+stateDir+`"` {
		t.Errorf("ReadWritePaths of pacsd.service: %q; want /var/lib/pacsd and %q", got, stateDir)
	}
	m.converged("the start on the new state_dir")
	// A file whose state_dir is the unit's own needs no drop-in: --write
	// removes it (and writes it again for the file in force).
	m.must("a file on /var/lib/pacsd", "sed '/state_dir/d' /etc/pacsd/pacs.hcl > /etc/pacsd/default.hcl")
	if got := m.must("pacsd systemd-dropin --write", "pacsd systemd-dropin -f /etc/pacsd/default.hcl --write && ls -A /etc/systemd/system/pacsd.service.d"); got !=
		"pacsd.service may write the state directory /var/lib/pacsd already: no drop-in is needed (none is left at "+daemon.DropInPath+")" {
		t.Errorf("pacsd systemd-dropin --write for /var/lib/pacsd: %q; want the drop-in removed", got)
	}
	m.must("pacsd systemd-dropin --write", "rm /etc/pacsd/default.hcl && pacsd systemd-dropin --write && systemctl daemon-reload")
	if got := m.must("the lock", "find /srv -name pacsd.lock -printf '%h %u %m'"); got != stateDir+" pacsd 600" {
		t.Errorf("the lock in the new state directory: %q", got)
	}

	// An upgrade (here the same package again): pacsd is restarted on the
	// new binary; the operator's edit of a conffile and the database stay.
	m.must("editing pacsd.env", `echo 'PACSD_OPTS="--log-level debug"' >> /etc/pacsd/pacsd.env`)
	before := m.show("MainPID")
	m.must("upgrading", "dpkg -i /root/pacsd.deb 2>&1")
	m.converged("the restart after the upgrade")
	if after := m.show("MainPID"); after == before {
		t.Errorf("pacsd (pid %s) was not restarted by the upgrade", before)
	}
	if got := m.must("pacsd.env", "tail -1 /etc/pacsd/pacsd.env; ls /etc/pacsd"); got != `PACSD_OPTS="--log-level debug"`+"\npacs.hcl\npacs.hcl.example\npacsd.env\nsecrets" {
		t.Errorf("after the upgrade, /etc/pacsd: %q; want the edit kept, no .dpkg files", got)
	}
	if got := m.must("the command line", "ps -o args= -p $(systemctl show -p MainPID --value pacsd)"); !strings.Contains(got, "--log-level debug") {
		t.Errorf("pacsd runs as %q; want the edited PACSD_OPTS", got)
	}
	if now, err := e.Docker.ContainerInspect(e.Ctx(time.Minute), db); err != nil || !now.State.Running || now.State.StartedAt != pg.State.StartedAt {
		t.Errorf("the database container %s was restarted or stopped with pacsd: %v, %+v", db, err, now.State)
	}

	// Removal: stopped, disabled, the binary gone, the configuration kept,
	// the database running.
	m.must("removing", "apt-get remove -y pacsd 2>&1")
	if got, _ := m.run("systemctl is-active pacsd; ls /etc/systemd/system/multi-user.target.wants/pacsd.service /usr/bin/pacsd /etc/pacsd/pacsd.env 2>&1"); got !=
		"inactive\nls: cannot access '/etc/systemd/system/multi-user.target.wants/pacsd.service': No such file or directory\n"+
			"ls: cannot access '/usr/bin/pacsd': No such file or directory\n/etc/pacsd/pacsd.env" {
		t.Errorf("after removal: %q; want pacsd stopped and disabled, gone, its configuration kept", got)
	}
	if now, err := e.Docker.ContainerInspect(e.Ctx(time.Minute), db); err != nil || !now.State.Running {
		t.Errorf("the database container %s stopped with the removal: %v", db, err)
	}

	// Purge: the configuration and the drop-in gone; the operator's files,
	// the state directory and the user kept.
	if got := m.must("purging", "dpkg --purge pacsd 2>&1"); !strings.Contains(got, "kept /var/lib/pacsd") {
		t.Errorf("purge did not say that it kept the state directory:\n%s", got)
	}
	if got := m.must("after purge", "ls -A /etc/pacsd; ls -d /var/lib/pacsd; ls /etc/systemd/system/pacsd.service.d 2>&1; getent passwd pacsd | cut -d: -f1"); got !=
		"pacs.hcl\nsecrets\n/var/lib/pacsd\nls: cannot access '/etc/systemd/system/pacsd.service.d': No such file or directory\npacsd" {
		t.Errorf("after purge: %q", got)
	}
	t.Logf("done after %s", time.Since(started).Round(time.Second))
}

// machine is a container booted with systemd as its init.
type machine struct {
	t *testing.T
	e *e2e.Env
	n *e2e.Node
}

// boot starts a container of image with systemd as PID 1 and waits until
// systemd is up. It shares the machine's network (pacsd reaches the
// PostgreSQL containers it makes on the machine's engine as it would on a
// host) and its engine's socket. systemd needs to mount (its units'
// sandboxes): every capability but CAP_SYS_RESOURCE, which this engine
// cannot grant (--privileged fails here), no seccomp or AppArmor filter.
func boot(t *testing.T, e *e2e.Env, image string) *machine {
	t.Helper()
	name := e.Name("systemd")
	ctx := e.Ctx(2 * time.Minute)
	c, err := e.Docker.ContainerCreate(ctx, &container.Config{Image: image, Labels: e.Labels(), Hostname: name},
		&container.HostConfig{
			NetworkMode:  "host",
			CapAdd:       []string{"ALL"},
			CapDrop:      []string{"SYS_RESOURCE"},
			SecurityOpt:  []string{"seccomp=unconfined", "apparmor=unconfined"},
			CgroupnsMode: container.CgroupnsModePrivate,
			Tmpfs:        map[string]string{"/run": "", "/run/lock": "", "/tmp": ""},
			Binds:        []string{socketPath(t) + ":/run/docker.sock"},
		}, nil, nil, name)
	if err != nil {
		t.Fatalf("while creating the container of %s: %v", image, err)
	}
	if err := e.Docker.ContainerStart(ctx, c.ID, container.StartOptions{}); err != nil {
		t.Fatalf("while starting the container of %s: %v", image, err)
	}
	m := &machine{t: t, e: e, n: e.Container(name, "host", "", "", "")}
	// Until systemd listens, systemctl cannot reach it.
	deadline := time.Now().Add(time.Minute)
	for {
		got, _ := m.run("systemctl is-system-running --wait 2>&1")
		if got == "running" {
			return m
		}
		if time.Now().After(deadline) || got == "degraded" {
			failed, _ := m.run("systemctl --failed --no-pager; journalctl -b --no-pager | tail -40")
			t.Fatalf("systemd in the container is %q, not running:\n%s", got, failed)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// run runs cmd with sh -c in the machine; its output without the last newline.
func (m *machine) run(cmd string) (string, int) {
	m.t.Helper()
	out, code := m.n.Exec("", "sh", "-c", cmd)
	return strings.TrimSuffix(out, "\n"), code
}

// must is run failing the test unless cmd succeeds.
func (m *machine) must(what, cmd string) string {
	m.t.Helper()
	out, code := m.run(cmd)
	if code != 0 {
		m.t.Fatalf("%s (%s): exit %d:\n%s\njournal of pacsd:\n%s", what, cmd, code, out, m.journal(""))
	}
	return out
}

// put copies content to path (a file of root's, mode 0600).
func (m *machine) put(path string, content []byte) {
	m.t.Helper()
	if err := m.e.CopyFile(m.e.Ctx(time.Minute), m.n.ID, e2e.File{Path: path, Content: content, Mode: 0o600}); err != nil {
		m.t.Fatal(err)
	}
}

// show returns the values of pacsd.service's properties, in the order
// asked, joined by spaces.
func (m *machine) show(props ...string) string {
	m.t.Helper()
	out, _ := m.run("systemctl show pacsd.service -p " + strings.Join(props, " -p "))
	values := map[string]string{}
	for _, l := range strings.Split(out, "\n") {
		if k, v, ok := strings.Cut(l, "="); ok {
			values[k] = v
		}
	}
	got := make([]string, len(props))
	for i, p := range props {
		got[i] = values[p]
	}
	return strings.Join(got, " ")
}

// journal returns pacsd.service's journal since the machine's time since
// (seconds since the epoch; "" for all of it).
func (m *machine) journal(since string) string {
	m.t.Helper()
	cmd := "journalctl -u pacsd --no-pager -o cat"
	if since != "" {
		cmd += " --since @" + since
	}
	out, _ := m.run(cmd + " 2>&1 | tail -60")
	return out
}

// logged is journal with pacsd's log lines decoded to their messages:
// JSON lines, and text lines (--log-format text, as pacsd.env gives) whose
// quoted msg= value is unquoted.
func (m *machine) logged(since string) string {
	m.t.Helper()
	lines := strings.Split(m.journal(since), "\n")
	for i, l := range lines {
		var rec struct{ Msg string }
		if json.Unmarshal([]byte(l), &rec) == nil {
			lines[i] = rec.Msg
			continue
		}
		if _, v, ok := strings.Cut(l, " msg="); ok {
			if q, err := strconv.QuotedPrefix(v); err == nil {
				lines[i], _ = strconv.Unquote(q)
			}
		}
	}
	return strings.Join(lines, "\n")
}

// topology writes /etc/pacsd/pacs.hcl as an operator would (0640,
// root:pacsd): one node in a volume, the endpoints on listen, stateDir when
// not "".
func (m *machine) topology(cluster, listen, stateDir string) {
	m.t.Helper()
	daemonBlock := fmt.Sprintf("daemon {\n  listen = %q\n", listen)
	if stateDir != "" {
		daemonBlock += fmt.Sprintf("  state_dir = %q\n", stateDir)
	}
	m.put("/root/pacs.hcl", fmt.Appendf(nil, `cluster %q {
  image    = %q
  database = "pacsdb"
  superuser {
    name          = "pacs"
    password_file = "secrets/pacs.password"
  }
  node "db" {
    volume = "%s-db"
  }
}
%s}
`, cluster, m.e.Image, cluster, daemonBlock))
	m.must("the topology file", "install -m 0640 -g pacsd /root/pacs.hcl /etc/pacsd/pacs.hcl")
}

// converged waits until the service runs and reports its cluster
// converged (systemctl status shows the STATUS= pacsd sends).
func (m *machine) converged(what string) {
	m.t.Helper()
	m.waitFor(what+": pacsd.service active with its cluster converged", 2*time.Minute, func() (bool, string) {
		got := m.show("ActiveState", "StatusText")
		return got == "active 1 of 1 clusters converged", got
	})
}

func (m *machine) waitFor(what string, timeout time.Duration, cond func() (bool, string)) {
	m.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok, last := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			m.t.Fatalf("waited %s for %s; last: %s\njournal of pacsd:\n%s", timeout, what, last, m.journal(""))
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// exposure reads the overall exposure level systemd-analyze security prints.
func exposure(t *testing.T, out string) float64 {
	t.Helper()
	mm := regexp.MustCompile(`Overall exposure level for pacsd\.service: ([0-9.]+)`).FindStringSubmatch(out)
	if mm == nil {
		t.Fatalf("systemd-analyze security printed no exposure level:\n%s", out)
	}
	v, err := strconv.ParseFloat(mm[1], 64)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func git(t *testing.T, dir string, args ...string) string {
	t.Helper()
	out, err := exec.Command("git", append([]string{"-C", dir}, args...)...).Output()
	if err != nil {
		t.Fatalf("git %s: %v", strings.Join(args, " "), err)
	}
	return strings.TrimSpace(string(out))
}

func osRelease(t *testing.T, key string) string {
	t.Helper()
	b, err := os.ReadFile("/etc/os-release")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, key+"="); ok {
			return strings.Trim(v, `"`)
		}
	}
	t.Fatalf("/etc/os-release has no %s", key)
	return ""
}

// socketPath is the machine's engine's socket (DOCKER_HOST or the default).
func socketPath(t *testing.T) string {
	t.Helper()
	if h := os.Getenv("DOCKER_HOST"); h != "" {
		p, ok := strings.CutPrefix(h, "unix://")
		if !ok {
			t.Fatalf("DOCKER_HOST=%s: the package's test shares the engine's unix socket with its container", h)
		}
		return p
	}
	return "/var/run/docker.sock"
}

// socketGroup is the group of the engine's socket (docker.io's group docker).
func socketGroup(t *testing.T) uint32 {
	t.Helper()
	fi, err := os.Stat(socketPath(t))
	if err != nil {
		t.Fatal(err)
	}
	return fi.Sys().(*syscall.Stat_t).Gid
}
