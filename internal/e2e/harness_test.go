package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/volume"
)

// TestE2EHarnessFaults proves each fault the harness injects has the effect
// later tests rely on, and that a node comes back from it.
func TestE2EHarnessFaults(t *testing.T) {
	e := Require(t)
	n := e.StartNode(NodeOptions{Name: "db1", Password: "pw-" + e.RunID})
	n.WaitWritable(90 * time.Second)

	t.Run("exec", func(t *testing.T) {
		out, code := n.Exec("postgres", "psql", "-XAt", "-U", "pacs", "-d", "pacsdb", "-c", "SELECT current_user")
		if code != 0 || strings.TrimSpace(out) != "pacs" {
			t.Fatalf("exec psql over the local socket: exit %d, output %q", code, out)
		}
		if _, code := n.Exec("", "false"); code != 1 {
			t.Fatalf("exec false: exit %d, want 1", code)
		}
	})
	t.Run("write file into PGDATA", func(t *testing.T) {
		n.WriteFile("pacsd-probe.txt", []byte("hello\n"), 0o600)
		if got := n.ReadFile("pacsd-probe.txt"); got != "hello\n" {
			t.Fatalf("read back %q, want %q", got, "hello\n")
		}
		out, _ := n.Exec("", "stat", "-c", "%U %a", PGDATA+"/pacsd-probe.txt")
		if strings.TrimSpace(out) != "postgres 600" {
			t.Fatalf("owner and mode %q, want %q", strings.TrimSpace(out), "postgres 600")
		}
	})
	t.Run("kill", func(t *testing.T) {
		p := mainProcessOf(t, n)
		n.Kill()
		if err := p.gone(); err != nil {
			t.Fatalf("right after Kill: %v", err)
		}
		e.Eventually(10*time.Second, "container to exit", func() error { return stateIs(n, "exited") })
		if n.Writable() == nil {
			t.Fatal("a killed node accepts writes")
		}
		n.Start()
		n.WaitWritable(60 * time.Second)
	})
	t.Run("stop", func(t *testing.T) {
		p := mainProcessOf(t, n)
		n.Stop()
		if err := p.gone(); err != nil {
			t.Fatalf("right after Stop: %v", err)
		}
		if s := n.State(); s != "exited" {
			t.Fatalf("state after stop %q, want exited", s)
		}
		n.Start()
		n.WaitWritable(60 * time.Second)
	})
	t.Run("pause", func(t *testing.T) {
		p := mainProcessOf(t, n)
		n.Pause()
		if err := frozen(p.pid); err != nil {
			t.Fatalf("right after Pause: %v", err)
		}
		if s := n.State(); s != "paused" {
			t.Fatalf("state after pause %q, want paused", s)
		}
		if n.Writable() == nil {
			t.Fatal("a paused node accepts writes")
		}
		n.Unpause()
		if err := thawed(p.pid); err != nil {
			t.Fatalf("right after Unpause: %v", err)
		}
		n.WaitWritable(30 * time.Second)
	})
	t.Run("network disconnect", func(t *testing.T) {
		n.Disconnect()
		if ip := n.IP(); ip != "" {
			t.Fatalf("still attached with %s after disconnect", ip)
		}
		n.Reconnect()
		n.WaitWritable(30 * time.Second)
	})
	t.Run("remove keeps the data", func(t *testing.T) {
		n.ExecSQL("CREATE TABLE kept(x int); INSERT INTO kept VALUES (42)")
		vol := n.Volume
		p := mainProcessOf(t, n)
		n.Remove()
		if err := p.gone(); err != nil {
			t.Fatalf("right after Remove: %v", err)
		}
		if _, err := e.Docker.ContainerInspect(e.Ctx(apiTimeout), n.ID); err == nil {
			t.Fatal("container still exists after remove")
		}
		m := e.StartNode(NodeOptions{Name: "db1", Volume: vol, Password: n.Password})
		m.WaitWritable(60 * time.Second)
		if got := m.QueryString("SELECT x::text FROM kept"); got != "42" {
			t.Fatalf("row after re-creating on the same volume: %q, want 42", got)
		}
	})
}

// mainProcessOf returns the running node's main process.
func mainProcessOf(t *testing.T, n *Node) process {
	t.Helper()
	c, err := n.env.Docker.ContainerInspect(n.env.Ctx(apiTimeout), n.ID)
	if err != nil || c.State == nil || c.State.Pid == 0 {
		t.Fatalf("node %s: no main process (%v)", n.Name, err)
	}
	p, err := processOf(c.State.Pid)
	if err != nil {
		t.Fatalf("node %s: %v", n.Name, err)
	}
	return p
}

func stateIs(n *Node, want string) error {
	if s := n.State(); s != want {
		return &stateError{s, want}
	}
	return nil
}

type stateError struct{ got, want string }

func (s *stateError) Error() string { return "state " + s.got + ", want " + s.want }

// TestE2EHarnessCleanup proves that everything a test made is removed by label
// when it ends, even when it fails: it runs a child test that creates a paused
// node and then fails, and looks for what the child left.
func TestE2EHarnessCleanup(t *testing.T) {
	e := Require(t)
	idFile := filepath.Join(t.TempDir(), "run-id")
	cmd := exec.Command(os.Args[0], "-test.run", "^TestE2EHarnessFailingChild$", "-test.v")
	cmd.Env = append(os.Environ(), "PACSD_E2E_CHILD="+idFile)
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "deliberate failure") {
		t.Fatalf("the child test should have failed deliberately; err %v, output:\n%s", err, out)
	}
	runID, err := os.ReadFile(idFile)
	if err != nil {
		t.Fatalf("the child did not record its run id: %v\n%s", err, out)
	}
	ctx := e.Ctx(apiTimeout)
	old := &Env{RunID: string(runID)}
	cs, err := e.Docker.ContainerList(ctx, container.ListOptions{All: true, Filters: old.filter()})
	if err != nil || len(cs) != 0 {
		t.Errorf("containers left after a failed test: %d (err %v)", len(cs), err)
	}
	vs, err := e.Docker.VolumeList(ctx, volume.ListOptions{Filters: old.filter()})
	if err != nil || len(vs.Volumes) != 0 {
		t.Errorf("volumes left after a failed test: %d (err %v)", len(vs.Volumes), err)
	}
	ns, err := e.Docker.NetworkList(ctx, network.ListOptions{Filters: old.filter()})
	if err != nil || len(ns) != 0 {
		t.Errorf("networks left after a failed test: %d (err %v)", len(ns), err)
	}
}

// TestE2EHarnessFailingChild is run only by TestE2EHarnessCleanup.
func TestE2EHarnessFailingChild(t *testing.T) {
	idFile := os.Getenv("PACSD_E2E_CHILD")
	if idFile == "" {
		return // run by TestE2EHarnessCleanup only
	}
	e := Require(t)
	if err := os.WriteFile(idFile, []byte(e.RunID), 0o600); err != nil {
		t.Fatal(err)
	}
	n := e.StartNode(NodeOptions{Name: "db1", Password: "pw"})
	n.Pause() // a paused container must be removable too
	t.Fatal("deliberate failure")
}
