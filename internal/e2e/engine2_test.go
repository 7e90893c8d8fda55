package e2e

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/network"
	"github.com/jackc/pgx/v5"
)

// TestE2ESecondEngine proves the second engine: it runs a node of the local
// image whose published port a container on the first engine reaches at
// HostAddress; it stops answering when stopped (calls time out) or killed
// (calls fail) while the database keeps serving, and it is usable again after
// Start.
func TestE2ESecondEngine(t *testing.T) {
	s := RequireSecondEngine(t)
	a, b := s.First, s.Env()
	far := b.StartNode(NodeOptions{Name: "far", Password: "far-" + b.RunID, Publish: true})
	far.WaitWritable(60 * time.Second)
	addr, port := s.HostAddress(), far.HostPort()

	// From a container on the first engine, try the host address and the
	// other candidates, and say which answer.
	gw := gateway(t, a)
	script := fmt.Sprintf(`for h in %s %s 127.0.0.1 172.17.0.1; do
  if PGPASSFILE=/run/pacsd/pgpass PGCONNECT_TIMEOUT=2 psql -XAt -h "$h" -p %s -U %s -d %s -c 'SELECT 1' >/dev/null 2>&1
  then echo "$h reaches"; else echo "$h does not reach"; fi
done`, addr, gw, port, far.User, far.Database)
	pass := File{Path: "/run/pacsd/pgpass", Content: []byte(fmt.Sprintf("*:*:*:%s:%s\n", far.User, far.Password)), Mode: 0o600}
	out, code, err := a.RunOnce("reach", []string{"bash", "-c", script}, nil, pass)
	if err != nil || code != 0 {
		t.Fatalf("while reaching the second engine from the first: exit %d: %v\n%s", code, err, out)
	}
	t.Logf("from a container on the first engine to port %s published by the second:\n%s", port, out)
	if !strings.Contains(out, addr+" reaches") {
		t.Errorf("a container on the first engine does not reach %s:%s published by the second", addr, port)
	}

	// Stopped (SIGSTOP): every thread of dockerd is stopped once Stop
	// returns, so calls time out; the database keeps serving.
	s.Stop()
	if err := allStopped(s.pid()); err != nil {
		t.Errorf("right after Stop: dockerd: %v", err)
	}
	start := time.Now()
	err = s.Ping(2 * time.Second)
	if err == nil || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("a stopped engine answered a ping or failed otherwise than by timing out: %v", err)
	}
	t.Logf("ping of the stopped engine: %v after %s", err, time.Since(start).Round(time.Millisecond))
	if err := published(far, addr, port); err != nil {
		t.Errorf("the database on a stopped engine no longer serves: %v", err)
	}
	s.Start()
	if err := s.Ping(5 * time.Second); err != nil {
		t.Fatalf("after Start from stopped: %v", err)
	}

	// Killed: calls fail at once; after Start the engine runs the node again.
	s.Kill()
	start = time.Now()
	err = s.Ping(2 * time.Second)
	if err == nil || time.Since(start) > time.Second {
		t.Errorf("a killed engine: ping returned %v after %s, want a failure at once", err, time.Since(start))
	}
	t.Logf("ping of the killed engine: %v", err)
	s.Start()
	if st := far.State(); st != "running" {
		t.Logf("node %s after the engine came back: %s; starting it", far.Name, st)
		far.Start()
	}
	far.WaitWritable(60 * time.Second)
	if err := published(far, addr, port); err != nil {
		t.Errorf("after Start from killed: %v", err)
	}
}

// gateway returns the gateway address of the Env's network.
func gateway(t *testing.T, e *Env) string {
	t.Helper()
	n, err := e.Docker.NetworkInspect(e.Ctx(apiTimeout), e.Network, network.InspectOptions{})
	if err != nil || len(n.IPAM.Config) == 0 {
		t.Fatalf("while inspecting network %s: %v", e.Network, err)
	}
	return n.IPAM.Config[0].Gateway
}

// published connects from the test process to n's published port at addr.
func published(n *Node, addr, port string) error {
	u := url.URL{
		Scheme: "postgres", User: url.UserPassword(n.User, n.Password),
		Host: net.JoinHostPort(addr, port), Path: "/" + n.Database, RawQuery: "sslmode=prefer",
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, u.String())
	if err != nil {
		return fmt.Errorf("while connecting to %s:%s: %w", addr, port, err)
	}
	defer closeConn(conn)
	var one int
	if err := conn.QueryRow(ctx, "SELECT 1").Scan(&one); err != nil {
		return fmt.Errorf("while querying %s:%s: %w", addr, port, err)
	}
	return nil
}

// TestE2ESecondEngineKeepsDocker0 proves that a second engine leaves the
// machine's engine alone: its default bridge docker0 is still there while a
// second engine runs, after that engine was killed and started again on its
// own roots, and after it stopped; and the machine's engine still starts a
// container on its default network.
func TestE2ESecondEngineKeepsDocker0(t *testing.T) {
	e := Require(t)
	if err := docker0(); err != nil {
		t.Fatalf("before the test: %v; the machine's engine has no default bridge (restart dockerd to get it back)", err)
	}
	t.Run("second engine", func(t *testing.T) {
		s := RequireSecondEngine(t)
		if err := docker0(); err != nil {
			t.Errorf("after the second engine started: %v", err)
		}
		s.Kill()
		s.Start()
		if err := docker0(); err != nil {
			t.Errorf("after the second engine was killed and started again: %v", err)
		}
	})
	if err := docker0(); err != nil {
		t.Fatalf("after the second engine stopped: %v", err)
	}
	ctx := e.Ctx(apiTimeout)
	c, err := e.Docker.ContainerCreate(ctx, &container.Config{Image: e.Image, Cmd: []string{"true"}, Labels: e.Labels()},
		nil, nil, nil, e.Name("default-bridge"))
	if err != nil {
		t.Fatalf("while creating a container on the machine engine's default network: %v", err)
	}
	if err := e.Docker.ContainerStart(ctx, c.ID, container.StartOptions{}); err != nil {
		t.Fatalf("the machine's engine no longer starts a container on its default network: %v", err)
	}
}

// docker0 returns nil when the machine engine's default bridge exists in the
// test's network namespace.
func docker0() error {
	if out, err := exec.Command("ip", "link", "show", "docker0").CombinedOutput(); err != nil {
		return fmt.Errorf("docker0 is gone (ip link show docker0: %v: %s)", err, strings.TrimSpace(string(out)))
	}
	return nil
}
