package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestE2EEngineScriptJudgesItsOwnEngine proves that scripts/engine.sh judges
// the machine's engine by its socket and its own pid file, not by any dockerd
// process: with a test host's dockerd running on a socket of its own, a main
// engine whose socket does not answer and whose pid file names a dead
// process is started. The script runs in its dry-run mode, on paths of the
// test, so the machine's engine is never touched.
func TestE2EEngineScriptJudgesItsOwnEngine(t *testing.T) {
	h := RequireTestHost(t)
	script, err := filepath.Abs("../../scripts/engine.sh")
	if err != nil {
		t.Fatal(err)
	}
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Fatalf("while making a dead pid: %v", err)
	}
	sleeper := exec.Command("sleep", "300")
	if err := sleeper.Start(); err != nil {
		t.Fatalf("while starting a process that is no engine: %v", err)
	}
	t.Cleanup(func() { _ = sleeper.Process.Kill(); _ = sleeper.Wait() })

	for _, c := range []struct {
		name       string
		sock       string // "" : a socket nobody listens on
		pid        int    // written to the pid file; 0: no pid file
		containerd int    // written to the containerd pid file; 0: none
		want       string
		wantWould  []string // lines the dry run must print
		notWould   []string // and must not
	}{
		{name: "dead main engine beside a test host's", pid: dead.Process.Pid, want: "start",
			wantWould: []string{"rm -f PIDFILE"}},
		{name: "no pid file beside a test host's", want: "start"},
		{name: "pid file names a live process that is no dockerd", pid: os.Getpid(), want: "start"},
		{name: "pid file names a live dockerd", pid: h.pid(), want: "wait"},
		{name: "socket answers", sock: h.socket, pid: dead.Process.Pid, want: "ready"},
		{name: "containerd pid file names a process that is not its containerd", pid: dead.Process.Pid,
			containerd: sleeper.Process.Pid, want: "start",
			wantWould: []string{"rm -f EXECROOT/containerd/containerd.pid"}, notWould: []string{"kill"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			sock, pidfile, execroot := filepath.Join(dir, "docker.sock"), filepath.Join(dir, "docker.pid"), filepath.Join(dir, "exec")
			if c.sock != "" {
				sock = c.sock
			}
			if c.pid != 0 {
				if err := os.WriteFile(pidfile, []byte(strconv.Itoa(c.pid)), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			if c.containerd != 0 {
				if err := os.MkdirAll(filepath.Join(execroot, "containerd"), 0o700); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(filepath.Join(execroot, "containerd", "containerd.pid"), []byte(strconv.Itoa(c.containerd)), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			cmd := exec.Command("bash", script)
			cmd.Env = append(os.Environ(), "PACSD_ENGINE_DRYRUN=1", "PACSD_DOCKER_SOCK="+sock,
				"PACSD_DOCKER_PIDFILE="+pidfile, "PACSD_DOCKER_EXEC_ROOT="+execroot)
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("engine.sh (dry run) failed: %v\n%s", err, out)
			}
			if !strings.Contains(string(out), "decision: "+c.want+"\n") {
				t.Errorf("engine.sh decided otherwise than %q:\n%s", c.want, out)
			}
			expand := strings.NewReplacer("PIDFILE", pidfile, "EXECROOT", execroot)
			for _, w := range c.wantWould {
				if !strings.Contains(string(out), "would: "+expand.Replace(w)+"\n") {
					t.Errorf("engine.sh does not say it would %q:\n%s", expand.Replace(w), out)
				}
			}
			for _, w := range c.notWould {
				if strings.Contains(string(out), "would: "+w) {
					t.Errorf("engine.sh says it would %s (%s):\n%s", w, fmt.Sprint(c.containerd), out)
				}
			}
			if _, err := os.Stat(pidfile); c.pid != 0 && err != nil {
				t.Errorf("the dry run removed the pid file: %v", err)
			}
		})
	}
}
