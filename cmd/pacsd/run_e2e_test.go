package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"

	"github.com/pacsd/pacsd/internal/e2e"
	"github.com/pacsd/pacsd/internal/faults"
	"github.com/pacsd/pacsd/pkg/daemon"
)

// daemonRun is pacsd run started in the test's process on a topology.
type daemonRun struct {
	tp       *topology
	path     string // the file the daemon reads; tp.path is the draft
	stateDir string
	listen   string
	resync   string
	log      *syncBuffer
	cancel   context.CancelFunc
	hup      chan os.Signal
	done     chan int
}

// startDaemon starts the daemon on tp with its own state directory and a free
// loopback port; it is stopped when the test ends.
func startDaemon(t *testing.T, tp *topology, resync string) *daemonRun {
	t.Helper()
	r := &daemonRun{tp: tp, path: filepath.Join(tp.dir, "pacs-run.hcl"), stateDir: filepath.Join(tp.dir, "state"),
		listen: freePort(t), resync: resync, log: &syncBuffer{}, hup: make(chan os.Signal, 1), done: make(chan int, 1)}
	tp.noDaemon = true
	r.save(t, "")
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	log := slog.New(slog.NewJSONHandler(r.log, &slog.HandlerOptions{Level: slog.LevelDebug}))
	go func() { r.done <- serve(ctx, r.path, "", log, r.hup) }()
	t.Cleanup(func() {
		r.stop(t)
		if t.Failed() || os.Getenv("PACSD_E2E_DUMP") != "" {
			t.Logf("daemon log:\n%s", r.log)
		}
	})
	return r
}

func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// save writes tp's file with the daemon block and suffix, and puts it in
// place atomically, as an editor saves.
func (r *daemonRun) save(t *testing.T, suffix string) {
	t.Helper()
	r.tp.write(t)
	src, err := os.ReadFile(r.tp.path)
	if err != nil {
		t.Fatal(err)
	}
	content := fmt.Sprintf("%s\ndaemon {\n  listen    = %q\n  state_dir = %q\n  resync    = %q\n}\n%s", src, r.listen, r.stateDir, r.resync, suffix)
	tmp := r.path + ".tmp"
	if err := os.WriteFile(tmp, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, r.path); err != nil {
		t.Fatal(err)
	}
}

// stop stops the daemon (once) and checks that it exits 0.
func (r *daemonRun) stop(t *testing.T) {
	t.Helper()
	if r.cancel == nil {
		return
	}
	r.cancel()
	r.cancel = nil
	select {
	case code := <-r.done:
		if code != exitOK {
			t.Errorf("pacsd run exited %d after it was stopped", code)
		}
	case <-time.After(time.Minute):
		t.Error("pacsd run did not stop within a minute")
	}
}

// get returns the status and body of one of the daemon's endpoints.
func (r *daemonRun) get(path string) (int, string, error) {
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get("http://" + r.listen + path)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// waitFor polls cond every 100ms until it returns nil; it returns how long that took.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() error) time.Duration {
	t.Helper()
	start := time.Now()
	if err := e2e.Poll(timeout, cond); err != nil {
		t.Fatalf("waited %s for %s: %v", timeout, what, err)
	}
	return time.Since(start)
}

func (r *daemonRun) waitReady(t *testing.T, timeout time.Duration) time.Duration {
	t.Helper()
	return waitFor(t, timeout, "/readyz", func() error {
		code, body, err := r.get("/readyz")
		if err == nil && code != http.StatusOK {
			err = fmt.Errorf("%d %s", code, body)
		}
		return err
	})
}

// status is the daemon's /status.
func (r *daemonRun) status() (daemon.Status, error) {
	var st daemon.Status
	_, body, err := r.get("/status")
	if err == nil {
		err = json.Unmarshal([]byte(body), &st)
	}
	return st, err
}

// settled waits until every cluster has had a pass since the file was last taken.
func (r *daemonRun) settled(t *testing.T) {
	t.Helper()
	waitFor(t, time.Minute, "a pass since the file was taken", func() error {
		st, err := r.status()
		if err != nil {
			return err
		}
		for name, c := range st.Clusters {
			if !c.LastPass.After(st.LoadedAt) {
				return fmt.Errorf("cluster %s: last pass %s, file taken %s", name, c.LastPass, st.LoadedAt)
			}
		}
		return nil
	})
}

func (r *daemonRun) metric(t *testing.T, line string, or ...string) error {
	t.Helper()
	_, body, err := r.get("/metrics")
	if err != nil {
		return err
	}
	for _, l := range strings.Split(body, "\n") {
		if l == line || slices.Contains(or, l) {
			return nil
		}
	}
	return fmt.Errorf("no line %q in /metrics", line)
}

// TestE2ERun starts pacsd run on a primary and a standby and proves that it
// converges, takes saved edits without a restart, refuses an invalid save
// without touching anything, puts back a removed standby on the engine's
// event alone, and refuses a second pacsd on its state directory.
func TestE2ERun(t *testing.T) {
	e := e2e.Require(t)
	tp := newTopology(t, e, "db1", "db2")
	tp.extra = `  settings = { work_mem = "4MB" }`
	// resync 5m: every repair below must come from a file change, SIGHUP or an engine event.
	r := startDaemon(t, tp, "5m")
	took := r.waitReady(t, 8*time.Minute)
	t.Logf("from nothing to /readyz 200: %.1fs", took.Seconds())
	tp.checkStreaming(t)
	tp.writeAndRead(t, "R1")
	w := e.StartWriter(tp.nodesOf(), "run_writes")
	probe := e.StartProbe(tp.nodesOf())

	t.Run("saved reloadable setting", func(t *testing.T) {
		before := startedAt(t, e, tp.container("db1"))
		tp.extra = `  settings = { work_mem = "16MB" }`
		r.save(t, "")
		took := waitFor(t, time.Minute, "work_mem 16MB on every node", func() error {
			for _, n := range tp.nodes {
				if got := tp.node(n).QueryString("SHOW work_mem"); got != "16MB" {
					return fmt.Errorf("node %s: work_mem %s", n, got)
				}
			}
			return nil
		})
		t.Logf("from a saved edit to SHOW work_mem = 16MB on every node: %.2fs", took.Seconds())
		if after := startedAt(t, e, tp.container("db1")); after != before {
			t.Error("the primary was restarted for a reloadable setting")
		}
	})

	viewer := func(pw string) *e2e.Node { return tp.as("db1", "viewer", pw) }
	t.Run("added role", func(t *testing.T) {
		tp.addViewer(t, "viewer-1")
		r.save(t, "")
		took := waitFor(t, time.Minute, "viewer logs in", func() error { return viewer("viewer-1").TryExecSQL("SELECT 1") })
		t.Logf("from a saved role to a login: %.2fs", took.Seconds())
	})

	t.Run("SIGHUP reads a changed password file", func(t *testing.T) {
		tp.secret(t, "viewer.password", "viewer-2")
		r.hup <- os.Interrupt // any value: serve reloads on every receive
		waitFor(t, time.Minute, "viewer logs in with the new password", func() error { return viewer("viewer-2").TryExecSQL("SELECT 1") })
	})

	t.Run("invalid save", func(t *testing.T) {
		before := map[string]string{}
		for _, n := range tp.nodes {
			before[n] = startedAt(t, e, tp.container(n))
		}
		tp.extra = `  settings = { work_mem = "32MB" }`
		run := e2e.Fault(t, "a file with a syntax error saved", faults.InvalidFile)
		r.save(t, "bogus {\n")
		waitFor(t, 30*time.Second, "the reload gauge at 0", func() error { return r.metric(t, "pacsd_config_last_reload_successful 0") })
		run.Converged()
		if !strings.Contains(r.log.String(), "topology file refused") || !strings.Contains(r.log.String(), `"line":`) {
			t.Errorf("the refusal and its diagnostics were not logged")
		}
		time.Sleep(2 * time.Second)
		for _, n := range tp.nodes {
			if got := tp.node(n).QueryString("SHOW work_mem"); got != "16MB" {
				t.Errorf("node %s: work_mem %s after an invalid save, want 16MB", n, got)
			}
			if after := startedAt(t, e, tp.container(n)); after != before[n] {
				t.Errorf("node %s was restarted after an invalid save", n)
			}
		}
		if code, _, err := r.get("/healthz"); err != nil || code != http.StatusOK {
			t.Errorf("/healthz after an invalid save: %d %v", code, err)
		}
		tp.extra = `  settings = { work_mem = "16MB" }` + "\n  role \"viewer\" {\n    login = true\n    password_file = \"viewer.password\"\n  }\n"
		r.save(t, "")
		waitFor(t, 30*time.Second, "the reload gauge back at 1", func() error { return r.metric(t, "pacsd_config_last_reload_successful 1") })
		r.settled(t)
	})

	t.Run("removed standby is put back on the engine's event", func(t *testing.T) {
		r.waitReady(t, time.Minute)
		run := e2e.Fault(t, "standby removed, put back on the engine's event", faults.StandbyGone)
		start := time.Now()
		if err := e.Docker.ContainerRemove(e.Ctx(time.Minute), tp.container("db2"), container.RemoveOptions{Force: true}); err != nil {
			t.Fatal(err)
		}
		waitFor(t, 2*time.Minute, "db2 streaming again", func() error {
			c, err := e.Docker.ContainerInspect(e.Ctx(time.Minute), tp.container("db2"))
			if err != nil {
				return err
			}
			if !c.State.Running {
				return fmt.Errorf("db2 is %s", c.State.Status)
			}
			return tp.node("db2").Streaming()
		})
		run.Converged()
		t.Logf("from docker rm -f of the standby to streaming again: %.2fs", time.Since(start).Seconds())
		if !strings.Contains(r.log.String(), `"msg":"engine event; observing again"`) {
			t.Error("no engine event was logged: the repair did not come from the event")
		}
		tp.checkStreaming(t)
		tp.writeAndRead(t, "R2")
		waitFor(t, 30*time.Second, "drift counted", func() error {
			_, body, err := r.get("/metrics")
			if err == nil && !strings.Contains(body, `pacsd_drift_repairs_total{cluster="`+tp.name+`",kind="create-container"}`) {
				err = fmt.Errorf("no drift counter")
			}
			return err
		})
	})

	t.Run("second pacsd on the state directory", func(t *testing.T) {
		log := &syncBuffer{}
		run := e2e.Fault(t, "a second pacsd run on the file", faults.TwoPacsd)
		code := serve(context.Background(), r.path, "", slog.New(slog.NewJSONHandler(log, nil)), nil)
		run.Converged()
		want := "another pacsd (pid " + fmt.Sprint(os.Getpid()) + ") holds " + filepath.Join(r.stateDir, "pacsd.lock") + "; stop it first"
		if code != exitProblem || !strings.Contains(log.String(), want) {
			t.Errorf("second pacsd: exit %d, log:\n%s\nwant %q", code, log, want)
		}
	})

	t.Run("stopping pacsd leaves the databases running", func(t *testing.T) {
		r.stop(t)
		for _, n := range tp.nodes {
			c, err := e.Docker.ContainerInspect(e.Ctx(time.Minute), tp.container(n))
			if err != nil || !c.State.Running {
				t.Errorf("node %s after pacsd stopped: %v %v", n, c.State, err)
			}
		}
		tp.node("db1").WaitWritable(10 * time.Second)
	})

	report := w.Stop()
	t.Logf("writer: %s", report)
	report.CheckNoLoss(t, tp.node("db1"))
	probe.Check(t)
}
