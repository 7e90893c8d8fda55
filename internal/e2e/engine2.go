package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/volume"
	"github.com/docker/docker/client"
	"github.com/docker/go-connections/nat"
)

// The second engine's own paths. Its data root survives runs so the image is
// loaded once; everything else lives under /run and goes with a reboot.
const (
	// SecondEngineSocket is the API socket of the second engine.
	SecondEngineSocket = "/run/pacsd-e2e/docker2.sock"
	// SecondEngineHost is SecondEngineSocket as a DOCKER_HOST value.
	SecondEngineHost = "unix://" + SecondEngineSocket

	secondRunDir   = "/run/pacsd-e2e"
	secondExecRoot = secondRunDir + "/docker2"
	secondPidfile  = secondRunDir + "/docker2.pid"
	secondLock     = secondRunDir + "/docker2.lock"
	secondLog      = secondRunDir + "/docker2.log"
	secondDataRoot = "/var/lib/pacsd-e2e-docker2"
	// secondPool is where the second engine takes its networks from, apart from
	// the first engine's default pools (172.17.0.0/16 and up, 192.168.0.0/16).
	secondPool = "base=10.213.0.0/16,size=24"
	// secondReady bounds the wait for the second engine to answer after a start.
	secondReady = 30 * time.Second
)

// SecondEngine is a second Docker engine on this machine, beside the default
// one, for tests where an engine becomes unreachable. It runs its own dockerd
// (and the containerd that dockerd manages) with its own data root, exec root,
// socket and pidfile, no default bridge (--bridge=none), no iptables rules
// (--iptables=false, published ports go through the userland proxy) and its
// own address pool, so it never clashes with the first engine.
//
// Each test that asks for it gets it to itself: RequireSecondEngine starts it
// (about two seconds), holding a lock file so test binaries running side by
// side take turns, and the test's cleanup removes everything on it and stops
// it. The local image is loaded into it once and kept in its data root, which
// later runs reuse when the image ID is unchanged. Its methods fail the test
// that required it: call them from that test, not from its subtests.
type SecondEngine struct {
	// Host is the engine's address as a DOCKER_HOST value (SecondEngineHost).
	Host string
	// Docker is a client of the second engine. Its calls hang while the engine
	// is stopped (Stop) and fail while it is killed (Kill): bound them with a
	// context.
	Docker *client.Client
	// Image is the image under test, present on both engines.
	Image string
	// First is the test's Env on the first (default) engine.
	First *Env

	t    testing.TB
	lock *os.File

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{} // closed when cmd has exited
}

// RequireSecondEngine starts a second Docker engine for the test and returns
// it, with the image under test loaded, and the test's Env on the first engine
// (First) as Require gives it. Without PACSD_E2E=1 the test is
// skipped; with it, anything missing (root, dockerd, the first engine or the
// image) fails the test. When the test ends, every container, volume and
// network on the second engine is removed and the engine is stopped; its data
// root (with the image) is kept.
func RequireSecondEngine(t testing.TB) *SecondEngine {
	t.Helper()
	if !Enabled() {
		t.Skip("end-to-end test: set PACSD_E2E=1 (or run 'make test') to run it against a Docker engine")
	}
	if os.Geteuid() != 0 {
		t.Fatalf("a second Docker engine needs root (it runs its own dockerd); run the end-to-end tests as root")
	}
	dockerd, err := exec.LookPath("dockerd")
	if err != nil {
		t.Fatalf("a second Docker engine needs the dockerd binary: %v; run 'bash scripts/engine.sh'", err)
	}
	first := Require(t)
	for _, d := range []string{secondRunDir, secondDataRoot} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatalf("while creating %s: %v", d, err)
		}
	}
	lock, err := lockFile(secondLock, 5*time.Minute)
	if err != nil {
		t.Fatalf("while waiting for the second engine to be free: %v", err)
	}
	s := &SecondEngine{Host: SecondEngineHost, Image: first.Image, First: first, t: t, lock: lock}
	t.Cleanup(s.cleanup)
	if err := s.killStale(); err != nil {
		t.Fatal(err)
	}
	s.Docker, err = client.NewClientWithOpts(client.WithHost(SecondEngineHost), client.WithAPIVersionNegotiation())
	if err != nil {
		t.Fatalf("while making a client of the second engine: %v", err)
	}
	if err := s.spawn(dockerd); err != nil {
		t.Fatal(err)
	}
	if err := s.loadImage(first.Docker); err != nil {
		t.Fatal(err)
	}
	return s
}

// lockFile takes an exclusive lock on path, waiting at most wait.
func lockFile(path string, wait time.Duration) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("while opening %s: %w", path, err)
	}
	deadline := time.Now().Add(wait)
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return f, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) || time.Now().After(deadline) {
			_ = f.Close()
			return nil, fmt.Errorf("while locking %s: %w", path, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// killStale ends a second engine left running by a test binary that died
// before its cleanup (we hold the lock, so no live test uses it).
func (s *SecondEngine) killStale() error {
	pid := pidOf(secondPidfile, SecondEngineSocket)
	if pid == 0 {
		// A containerd orphaned by a killed dockerd no longer answers.
		if c := s.containerdPid(); c != 0 {
			s.t.Logf("second engine: killing containerd (pid %d) left by an earlier run", c)
			_ = syscall.Kill(c, syscall.SIGKILL)
		}
		return nil
	}
	s.t.Logf("second engine: stopping dockerd (pid %d) left by an earlier run", pid)
	_ = syscall.Kill(pid, syscall.SIGCONT)
	_ = syscall.Kill(pid, syscall.SIGTERM)
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if syscall.Kill(pid, 0) != nil {
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	_ = syscall.Kill(pid, syscall.SIGKILL)
	time.Sleep(500 * time.Millisecond)
	if syscall.Kill(pid, 0) == nil {
		return fmt.Errorf("while stopping the dockerd (pid %d) of an earlier run: it does not exit", pid)
	}
	return nil
}

// spawn starts the second dockerd and waits until it answers.
func (s *SecondEngine) spawn(dockerd string) error {
	logf, err := os.OpenFile(secondLog, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("while opening %s: %w", secondLog, err)
	}
	defer logf.Close()
	// A default bridge of its own: with --bridge=none, dockerd deletes the
	// interface named docker0 at start, which is the first engine's.
	if err := ensureBridge(secondBridge, secondBridgeAddr); err != nil {
		return err
	}
	cmd := exec.Command(dockerd,
		"--host", SecondEngineHost,
		"--data-root", secondDataRoot,
		"--exec-root", secondExecRoot,
		"--pidfile", secondPidfile,
		"--bridge="+secondBridge,
		"--iptables=false",
		"--ip-masq=false",
		"--default-address-pool", secondPool,
	)
	cmd.Stdout, cmd.Stderr = logf, logf
	// Its own process group: a ^C at the terminal reaches the test binary, whose
	// cleanup then stops the engine in order.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("while starting the second dockerd: %w", err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	s.mu.Lock()
	s.cmd, s.exited = cmd, exited
	s.mu.Unlock()
	if err := s.waitReady(secondReady); err != nil {
		return fmt.Errorf("while starting the second dockerd: %w\n%s", err, tail(secondLog, 20))
	}
	return nil
}

// The second engine's default bridge, made by the harness.
const (
	secondBridge     = "pacsd-e2e-br2"
	secondBridgeAddr = "10.214.0.1/24"
)

// ensureBridge creates a Linux bridge with addr unless it exists.
func ensureBridge(name, addr string) error {
	if exec.Command("ip", "link", "show", name).Run() == nil {
		return nil
	}
	for _, args := range [][]string{
		{"link", "add", "name", name, "type", "bridge"},
		{"addr", "add", addr, "dev", name},
		{"link", "set", name, "up"},
	} {
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			return fmt.Errorf("while making the second engine's bridge %s (ip %s): %w: %s", name, strings.Join(args, " "), err, out)
		}
	}
	return nil
}

// waitReady waits until the engine answers a ping.
func (s *SecondEngine) waitReady(timeout time.Duration) error {
	return Poll(timeout, func() error {
		select {
		case <-s.exitedChan():
			return errors.New("dockerd exited")
		default:
		}
		return s.Ping(time.Second)
	})
}

func (s *SecondEngine) exitedChan() chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.exited
}

// Ping asks the second engine whether it answers, waiting at most timeout.
func (s *SecondEngine) Ping(timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if _, err := s.Docker.Ping(ctx); err != nil {
		return fmt.Errorf("while pinging the second engine: %w", err)
	}
	return nil
}

// tail returns the last n lines of a file, for failure messages.
func tail(path string, n int) string {
	b, _ := os.ReadFile(path)
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// loadImage copies the image under test from the first engine unless the
// second already holds the same image ID (`docker save | docker load`).
func (s *SecondEngine) loadImage(first *client.Client) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	want, err := first.ImageInspect(ctx, s.Image)
	if err != nil {
		return fmt.Errorf("while inspecting image %s on the first engine: %w", s.Image, err)
	}
	if have, err := s.Docker.ImageInspect(ctx, s.Image); err == nil && have.ID == want.ID {
		return nil
	}
	start := time.Now()
	rc, err := first.ImageSave(ctx, []string{s.Image})
	if err != nil {
		return fmt.Errorf("while saving image %s from the first engine: %w", s.Image, err)
	}
	defer rc.Close()
	resp, err := s.Docker.ImageLoad(ctx, rc, client.ImageLoadWithQuiet(true))
	if err != nil {
		return fmt.Errorf("while loading image %s into the second engine: %w", s.Image, err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	have, err := s.Docker.ImageInspect(ctx, s.Image)
	if err != nil || have.ID != want.ID {
		return fmt.Errorf("while loading image %s into the second engine: image ID %q after load, want %q (%v): %s",
			s.Image, have.ID, want.ID, err, out)
	}
	s.t.Logf("second engine: loaded image %s in %s", s.Image, time.Since(start).Round(time.Millisecond))
	return nil
}

// pid returns the running second dockerd's pid, or 0 when it has exited.
func (s *SecondEngine) pid() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return 0
	}
	select {
	case <-s.exited:
		return 0
	default:
		return s.cmd.Process.Pid
	}
}

// Stop freezes the second dockerd with SIGSTOP (fault: engine unreachable)
// and returns once every thread of it is stopped. Its containers keep
// running, but every API call hangs until its context ends. Start thaws it.
func (s *SecondEngine) Stop() {
	s.t.Helper()
	pid := s.pid()
	if pid == 0 {
		s.t.Fatalf("second engine: cannot stop dockerd: it is not running")
	}
	if err := stopProcess(pid); err != nil {
		s.t.Fatalf("second engine: while stopping dockerd: %v", err)
	}
}

// Kill ends the second dockerd and the containerd it manages with SIGKILL
// (fault: engine crashed). API calls fail at once (nobody listens on the
// socket) while the containers keep running under their shims. (Left alone,
// the orphaned containerd stops answering, and a new dockerd waits for it in
// vain.) Start brings up a new dockerd and containerd, which find the
// containers again; without live restore dockerd then stops them, as after
// any crash of the engine.
func (s *SecondEngine) Kill() {
	s.t.Helper()
	containerd := s.containerdPid()
	pid := s.signal(syscall.SIGKILL)
	select {
	case <-s.exitedChan():
	case <-time.After(10 * time.Second):
		s.t.Fatalf("second engine: dockerd (pid %d) did not exit after SIGKILL", pid)
	}
	if containerd != 0 {
		_ = syscall.Kill(containerd, syscall.SIGKILL)
		if err := Poll(10*time.Second, func() error {
			if syscall.Kill(containerd, 0) == nil {
				return fmt.Errorf("containerd (pid %d) still runs", containerd)
			}
			return nil
		}); err != nil {
			s.t.Fatalf("second engine: %v after SIGKILL", err)
		}
	}
}

// containerdPid returns the pid of the containerd the second dockerd manages
// (its command line names the exec root; shims are not it), or 0.
func (s *SecondEngine) containerdPid() int {
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		args := strings.Split(string(b), "\x00")
		if filepath.Base(args[0]) != "containerd" || !bytes.Contains(b, []byte(secondExecRoot+"/")) {
			continue
		}
		var pid int
		if _, err := fmt.Sscanf(p, "/proc/%d/cmdline", &pid); err == nil {
			return pid
		}
	}
	return 0
}

// pidOf reads a pidfile and returns the pid when that process runs and its
// command line contains mark, else 0.
func pidOf(pidfile, mark string) int {
	b, err := os.ReadFile(pidfile)
	if err != nil {
		return 0
	}
	var pid int
	if _, err := fmt.Sscan(string(b), &pid); err != nil || pid <= 0 {
		return 0
	}
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil || !bytes.Contains(cmdline, []byte(mark)) {
		return 0
	}
	return pid
}

// signal sends sig to the running second dockerd and returns its pid.
func (s *SecondEngine) signal(sig syscall.Signal) int {
	s.t.Helper()
	pid := s.pid()
	if pid == 0 {
		s.t.Fatalf("second engine: cannot send %v: dockerd is not running", sig)
	}
	if err := syscall.Kill(pid, sig); err != nil {
		s.t.Fatalf("second engine: while sending %v to dockerd (pid %d): %v", sig, pid, err)
	}
	return pid
}

// Start makes the second engine answer again after Stop (SIGCONT) or Kill (a
// new dockerd on the same roots), and waits until it does.
func (s *SecondEngine) Start() {
	s.t.Helper()
	if err := s.start(); err != nil {
		s.t.Fatal(err)
	}
}

func (s *SecondEngine) start() error {
	if pid := s.pid(); pid != 0 {
		if err := syscall.Kill(pid, syscall.SIGCONT); err != nil {
			return fmt.Errorf("while sending SIGCONT to the second dockerd (pid %d): %w", pid, err)
		}
		if err := s.waitReady(secondReady); err != nil {
			return fmt.Errorf("while thawing the second dockerd: %w", err)
		}
		return nil
	}
	dockerd, err := exec.LookPath("dockerd")
	if err != nil {
		return fmt.Errorf("while looking for dockerd: %w", err)
	}
	return s.spawn(dockerd)
}

// Env returns an Env on the second engine: a network of its own there, names
// and labels of a fresh run id, and cleanup by label when the test ends (the
// engine is made to answer first). Nodes started through it run on the second
// engine; the test process reaches them at Node.IP as on the first engine.
func (s *SecondEngine) Env() *Env {
	s.t.Helper()
	e := &Env{T: s.t, Docker: s.Docker, Image: s.Image, RunID: newRunID()}
	s.t.Cleanup(func() {
		if err := s.start(); err != nil {
			s.t.Logf("cleanup: %v", err)
			return
		}
		e.cleanup()
	})
	e.Network = e.Name("net")
	if _, err := s.Docker.NetworkCreate(e.Ctx(apiTimeout), e.Network, network.CreateOptions{Driver: "bridge", Labels: e.Labels()}); err != nil {
		s.t.Fatalf("while creating network %s on the second engine: %v", e.Network, err)
	}
	return e
}

// HostAddress returns the address at which a container on the first engine
// reaches a port published by the second engine: the host's own address on
// the interface of its default route (the address another machine would use).
//
// What was found on a host running both engines: a container on a network of
// the first engine reaches a port the second engine publishes on all
// addresses through that host address and through the gateway address of its
// own network; not through 127.0.0.1 (the container's own loopback) and not
// through the default bridge's address 172.17.0.1 (there, docker0 had no
// member and its link was down). It also reaches the second engine's
// container address directly, routed by the host, but that is not what a
// deployment on two machines would see.
func (s *SecondEngine) HostAddress() string {
	s.t.Helper()
	addr, err := hostAddress()
	if err != nil {
		s.t.Fatal(err)
	}
	return addr
}

// hostAddress is the source address the host picks for a destination outside
// its networks; connecting a UDP socket sends nothing.
func hostAddress() (string, error) {
	c, err := net.Dial("udp4", "198.51.100.1:9")
	if err == nil {
		defer c.Close()
		if a, ok := c.LocalAddr().(*net.UDPAddr); ok && !a.IP.IsLoopback() {
			return a.IP.String(), nil
		}
	}
	return "", fmt.Errorf("while finding the host's address: no default route (%v)", err)
}

// portBindings publishes 5432 on every host address when asked, on a port the
// engine picks.
func (o NodeOptions) portBindings() nat.PortMap {
	if !o.Publish {
		return nil
	}
	return nat.PortMap{"5432/tcp": {{HostIP: "0.0.0.0"}}}
}

// HostPort returns the host port the engine published 5432 on (see
// NodeOptions.Publish), or fails the test when there is none.
func (n *Node) HostPort() string {
	n.env.T.Helper()
	c, err := n.env.Docker.ContainerInspect(n.env.Ctx(apiTimeout), n.ID)
	if err != nil {
		n.fatal("inspecting", err)
	}
	if c.NetworkSettings != nil {
		for _, b := range c.NetworkSettings.Ports["5432/tcp"] {
			if b.HostPort != "" {
				return b.HostPort
			}
		}
	}
	n.env.T.Fatalf("node %s: port 5432 is not published", n.Name)
	return ""
}

// cleanup removes everything on the second engine (no one else uses it while
// we hold the lock), stops it in order and releases the lock. The data root
// and its image stay.
func (s *SecondEngine) cleanup() {
	defer func() { _ = s.lock.Close() }()
	if s.Docker == nil {
		return
	}
	defer func() { _ = s.Docker.Close() }()
	if err := s.start(); err != nil {
		s.t.Logf("cleanup: %v", err)
	} else {
		s.removeAll()
	}
	pid := s.pid()
	if pid == 0 {
		return
	}
	_ = syscall.Kill(pid, syscall.SIGTERM)
	select {
	case <-s.exitedChan():
	case <-time.After(30 * time.Second):
		s.t.Logf("cleanup: the second dockerd (pid %d) did not stop in 30 s; killing it", pid)
		_ = syscall.Kill(pid, syscall.SIGKILL)
		<-s.exitedChan()
	}
}

// removeAll removes every container, volume and user-defined network of the
// second engine.
func (s *SecondEngine) removeAll() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*apiTimeout)
	defer cancel()
	if cs, err := s.Docker.ContainerList(ctx, container.ListOptions{All: true}); err == nil {
		for _, c := range cs {
			if c.State == "paused" {
				_ = s.Docker.ContainerUnpause(ctx, c.ID)
			}
			if err := s.Docker.ContainerRemove(ctx, c.ID, container.RemoveOptions{Force: true, RemoveVolumes: true}); err != nil {
				s.t.Logf("cleanup: second engine: while removing container %s: %v", c.ID[:12], err)
			}
		}
	}
	if vs, err := s.Docker.VolumeList(ctx, volume.ListOptions{}); err == nil {
		for _, v := range vs.Volumes {
			if err := s.Docker.VolumeRemove(ctx, v.Name, true); err != nil {
				s.t.Logf("cleanup: second engine: while removing volume %s: %v", v.Name, err)
			}
		}
	}
	if ns, err := s.Docker.NetworkList(ctx, network.ListOptions{}); err == nil {
		for _, n := range ns {
			switch n.Name {
			case "none", "host", "bridge":
				continue
			}
			if err := s.Docker.NetworkRemove(ctx, n.ID); err != nil {
				s.t.Logf("cleanup: second engine: while removing network %s: %v", n.Name, err)
			}
		}
	}
}
