package e2e

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"path"
	"sort"
	"strings"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/pkg/stdcopy"
)

// PGDATA is where the image keeps its data directory; volumes mount its parent.
const (
	PGDATA     = "/var/lib/postgresql/data"
	dataMount  = "/var/lib/postgresql"
	secretsDir = "/run/pacsd"
)

// File is a file to place into a container through the Docker API, owned by
// UID:GID with Mode (0600 when zero).
type File struct {
	Path     string
	Content  []byte
	Mode     int64
	UID, GID int
}

// NodeOptions describe one PostgreSQL container started by StartNode.
type NodeOptions struct {
	Name     string   // node name; the container is Env.Name(Name)
	Volume   string   // volume mounted at /var/lib/postgresql (created when empty)
	User     string   // POSTGRES_USER (default "pacs")
	Password string   // superuser password, given through POSTGRES_PASSWORD_FILE
	Database string   // POSTGRES_DB (default "pacsdb")
	Cmd      []string // command (default: the image's, i.e. postgres)
	Files    []File   // extra files placed before start
	// Publish publishes port 5432 on every host address, on a port the engine
	// picks (see Node.HostPort), for nodes reached from another engine.
	Publish bool
	// RestartPolicy is the container's restart policy: "" (none, as "no"),
	// "always", "unless-stopped" or "on-failure" (see TestHost.PowerOn).
	RestartPolicy string
}

// Node is a PostgreSQL container of the test bed.
type Node struct {
	env *Env
	// Network is the network the harness reaches the node on.
	Network  string
	Name     string
	ID       string
	Volume   string
	User     string
	Password string
	Database string
}

// StartNode creates and starts a PostgreSQL container on the run's network.
// The password reaches the entrypoint as a file copied in before start, never
// through the environment.
func (e *Env) StartNode(o NodeOptions) *Node {
	e.T.Helper()
	if o.User == "" {
		o.User = "pacs"
	}
	if o.Database == "" {
		o.Database = "pacsdb"
	}
	if o.Volume == "" {
		o.Volume = e.Volume(o.Name + "-data")
	}
	uid, gid := e.PostgresIDs()
	n := &Node{env: e, Network: e.Network, Name: o.Name, Volume: o.Volume, User: o.User, Password: o.Password, Database: o.Database}
	ctx := e.Ctx(apiTimeout)
	cname := e.Name(o.Name)
	// With the image's own command, the server speaks TLS with a
	// certificate of the run's CA (Env.CA) for the node's name.
	tlsOn := len(o.Cmd) == 0
	if tlsOn {
		o.Cmd = []string{"postgres", "-c", "ssl=on", "-c", "ssl_cert_file=" + tlsDir + "/server.crt", "-c", "ssl_key_file=" + tlsDir + "/server.key"}
	}
	c, err := e.Docker.ContainerCreate(ctx,
		&container.Config{
			Image:    e.Image,
			Hostname: o.Name,
			Cmd:      o.Cmd,
			Labels:   e.Labels(),
			Env: []string{
				"POSTGRES_USER=" + o.User,
				"POSTGRES_DB=" + o.Database,
				"POSTGRES_PASSWORD_FILE=" + secretsDir + "/superuser.password",
			},
		},
		&container.HostConfig{
			Binds:         []string{o.Volume + ":" + dataMount},
			PortBindings:  o.portBindings(),
			RestartPolicy: container.RestartPolicy{Name: container.RestartPolicyMode(o.RestartPolicy)},
		},
		&network.NetworkingConfig{EndpointsConfig: map[string]*network.EndpointSettings{
			e.Network: {Aliases: []string{o.Name}},
		}},
		nil, cname)
	if err != nil {
		e.T.Fatalf("while creating container %s: %v", cname, err)
	}
	n.ID = c.ID
	files := append([]File{{Path: secretsDir + "/superuser.password", Content: []byte(o.Password), Mode: 0o400, UID: uid, GID: gid}}, o.Files...)
	if tlsOn {
		files = append(files, e.serverTLSFiles(o.Name, cname, uid, gid)...)
	}
	for _, f := range files {
		if err := e.copyFile(ctx, c.ID, f); err != nil {
			e.T.Fatalf("node %s: %v", o.Name, err)
		}
	}
	n.Start()
	return n
}

// Container returns a Node for a container someone else made (pacsd, say),
// reached on network with the given superuser credentials.
func (e *Env) Container(name, network, user, password, database string) *Node {
	e.T.Helper()
	n, err := e.TryContainer(name, network, user, password, database)
	if err != nil {
		e.T.Fatal(err)
	}
	return n
}

// TryContainer is Container for any goroutine: it returns the error
// instead of failing the test (no such container, say).
func (e *Env) TryContainer(name, network, user, password, database string) (*Node, error) {
	ctx, cancel := context.WithTimeout(context.Background(), apiTimeout)
	defer cancel()
	c, err := e.Docker.ContainerInspect(ctx, name)
	if err != nil {
		return nil, fmt.Errorf("while inspecting container %s: %w", name, err)
	}
	return &Node{env: e, Network: network, Name: name, ID: c.ID, User: user, Password: password, Database: database}, nil
}

// Container returns a Node for a container someone else made on the host
// (pacsd names its containers <cluster>-<node>), with the given superuser
// credentials, reached on the network it is on (the first by name that
// gives it an address, when it is on several). Like every node on a test
// host, a Probe reaches it from inside the host's network namespace, so a
// partitioned host's node is still watched. The handle removes nothing when
// the test ends (the host's cleanup does).
func (h *TestHost) Container(name, user, password, database string) *Node {
	h.t.Helper()
	if h.base == nil {
		h.base = &Env{T: h.t, Docker: h.Docker, Image: h.Image, RunID: newRunID(), host: h}
	}
	// pacsd sets a container's aliases by disconnecting it from its
	// network and connecting it again: for that moment it is on none.
	var c container.InspectResponse
	var nw string
	deadline := time.Now().Add(15 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), apiTimeout)
		var err error
		c, err = h.Docker.ContainerInspect(ctx, name)
		cancel()
		if err != nil {
			h.t.Fatalf("test host %s: while inspecting container %s: %v", h.Name, name, err)
		}
		if nw = networkOf(c); nw != "" {
			break
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("test host %s: container %s is on no network (for 15 s)", h.Name, name)
		}
		time.Sleep(100 * time.Millisecond)
	}
	return &Node{env: h.base, Network: nw, Name: name, ID: c.ID, User: user, Password: password, Database: database}
}

// Host returns the test host the node runs on, or nil for the machine's engine.
func (n *Node) Host() *TestHost { return n.env.host }

// networkOf returns the network of the container that gives it an address,
// the first by name when there are several; for a container with no address
// (stopped), the first network it is attached to.
func networkOf(c container.InspectResponse) string {
	if c.NetworkSettings == nil {
		return ""
	}
	names := make([]string, 0, len(c.NetworkSettings.Networks))
	for name := range c.NetworkSettings.Networks {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		if ep := c.NetworkSettings.Networks[name]; ep != nil && ep.IPAddress != "" {
			return name
		}
	}
	if len(names) > 0 {
		return names[0]
	}
	return ""
}

// copyFile places f into a container (running or only created) as a one-entry
// tar stream, creating its parent directory owned by the same user.
// CopyFile places f into container id (created or running), its directory
// made when missing.
func (e *Env) CopyFile(ctx context.Context, id string, f File) error { return e.copyFile(ctx, id, f) }

func (e *Env) copyFile(ctx context.Context, id string, f File) error {
	mode := f.Mode
	if mode == 0 {
		mode = 0o600
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	dir := strings.TrimPrefix(path.Dir(f.Path), "/")
	now := time.Now()
	hdrs := []*tar.Header{
		{Name: dir + "/", Typeflag: tar.TypeDir, Mode: 0o700, Uid: f.UID, Gid: f.GID, ModTime: now},
		{Name: strings.TrimPrefix(f.Path, "/"), Typeflag: tar.TypeReg, Mode: mode, Size: int64(len(f.Content)), Uid: f.UID, Gid: f.GID, ModTime: now},
	}
	for i, h := range hdrs {
		if err := tw.WriteHeader(h); err != nil {
			return fmt.Errorf("while packing %s: %w", f.Path, err)
		}
		if i == 1 {
			if _, err := tw.Write(f.Content); err != nil {
				return fmt.Errorf("while packing %s: %w", f.Path, err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("while packing %s: %w", f.Path, err)
	}
	if err := e.Docker.CopyToContainer(ctx, id, "/", &buf, container.CopyToContainerOptions{}); err != nil {
		return fmt.Errorf("while copying %s into container %s: %w", f.Path, id[:12], err)
	}
	return nil
}

func (e *Env) logs(ctx context.Context, id string) (string, error) {
	rc, err := e.Docker.ContainerLogs(ctx, id, container.LogsOptions{ShowStdout: true, ShowStderr: true})
	if err != nil {
		return "", fmt.Errorf("while reading logs of %s: %w", id[:12], err)
	}
	defer rc.Close()
	var out bytes.Buffer
	if _, err := stdcopy.StdCopy(&out, &out, rc); err != nil {
		return out.String(), fmt.Errorf("while reading logs of %s: %w", id[:12], err)
	}
	return out.String(), nil
}

// Logs returns the container's output so far (for failure messages).
func (n *Node) Logs() string {
	out, err := n.env.logs(n.env.Ctx(apiTimeout), n.ID)
	if err != nil {
		return err.Error()
	}
	return out
}

func (n *Node) fatal(step string, err error) {
	n.env.T.Helper()
	n.env.T.Fatalf("node %s: while %s: %v", n.Name, step, err)
}

// Start starts the (stopped or created) container.
func (n *Node) Start() {
	n.env.T.Helper()
	if err := n.env.Docker.ContainerStart(n.env.Ctx(apiTimeout), n.ID, container.StartOptions{}); err != nil {
		n.fatal("starting", err)
	}
}

// Restart stops PostgreSQL with a fast shutdown and starts the container again.
func (n *Node) Restart() {
	n.env.T.Helper()
	if err := n.env.Docker.ContainerRestart(n.env.Ctx(2*apiTimeout), n.ID, container.StopOptions{}); err != nil {
		n.fatal("restarting", err)
	}
}

// Kill sends SIGKILL to the container (fault: crash) and returns once its
// main process has ended.
func (n *Node) Kill() {
	n.env.T.Helper()
	p := n.mainProcess("killing")
	if err := n.env.Docker.ContainerKill(n.env.Ctx(apiTimeout), n.ID, "KILL"); err != nil {
		n.fatal("killing", err)
	}
	n.confirmGone("killing", p)
}

// Stop stops the container the way `docker stop` does (fault: orderly stop)
// and returns once its main process has ended.
func (n *Node) Stop() {
	n.env.T.Helper()
	p := n.mainProcess("stopping")
	if err := n.env.Docker.ContainerStop(n.env.Ctx(2*apiTimeout), n.ID, container.StopOptions{}); err != nil {
		n.fatal("stopping", err)
	}
	n.confirmGone("stopping", p)
}

// Pause freezes every process of the container (fault: frozen node) and
// returns once the engine reports it paused and its cgroup is frozen.
func (n *Node) Pause() {
	n.env.T.Helper()
	if err := n.env.Docker.ContainerPause(n.env.Ctx(apiTimeout), n.ID); err != nil {
		n.fatal("pausing", err)
	}
	n.confirm("pausing", func(c container.InspectResponse) error {
		if c.State == nil || !c.State.Paused || c.State.Pid == 0 {
			return fmt.Errorf("the engine does not report container %s paused yet", n.ID[:12])
		}
		return frozen(c.State.Pid)
	})
}

// Unpause thaws a paused container and returns once the engine reports it
// running and its cgroup is no longer frozen.
func (n *Node) Unpause() {
	n.env.T.Helper()
	if err := n.env.Docker.ContainerUnpause(n.env.Ctx(apiTimeout), n.ID); err != nil {
		n.fatal("unpausing", err)
	}
	n.confirm("unpausing", func(c container.InspectResponse) error {
		if c.State == nil || c.State.Paused || c.State.Pid == 0 {
			return fmt.Errorf("the engine still reports container %s paused", n.ID[:12])
		}
		return thawed(c.State.Pid)
	})
}

// Remove force-removes the container, keeping its data volume (fault: `docker
// rm -f`), and returns once its main process has ended.
func (n *Node) Remove() {
	n.env.T.Helper()
	p := n.mainProcess("removing")
	if err := n.env.Docker.ContainerRemove(n.env.Ctx(apiTimeout), n.ID, container.RemoveOptions{Force: true}); err != nil {
		n.fatal("removing", err)
	}
	n.confirmGone("removing", p)
}

// Disconnect cuts the container off the run's network (fault: network
// partition) and returns once the engine no longer shows it on that network.
func (n *Node) Disconnect() {
	n.env.T.Helper()
	if err := n.env.Docker.NetworkDisconnect(n.env.Ctx(apiTimeout), n.Network, n.ID, true); err != nil {
		n.fatal("disconnecting from the network", err)
	}
	n.confirm("disconnecting from the network", func(c container.InspectResponse) error {
		if c.NetworkSettings != nil && c.NetworkSettings.Networks[n.Network] != nil {
			return fmt.Errorf("container %s is still on network %s", n.ID[:12], n.Network)
		}
		return nil
	})
}

// Reconnect attaches the container to the run's network again, with its
// alias, and returns once the engine shows it there with an address.
func (n *Node) Reconnect() {
	n.env.T.Helper()
	if err := n.env.Docker.NetworkConnect(n.env.Ctx(apiTimeout), n.Network, n.ID,
		&network.EndpointSettings{Aliases: []string{n.Name}}); err != nil {
		n.fatal("connecting to the network", err)
	}
	n.confirm("connecting to the network", func(c container.InspectResponse) error {
		if c.NetworkSettings == nil || c.NetworkSettings.Networks[n.Network] == nil || c.NetworkSettings.Networks[n.Network].IPAddress == "" {
			return fmt.Errorf("container %s has no address on network %s yet", n.ID[:12], n.Network)
		}
		return nil
	})
}

// mainProcess returns the container's main process while it runs, or the
// zero process when it does not run. The engine must share the test's pid
// namespace (every engine of the test bed does), or the fault could not be
// confirmed.
func (n *Node) mainProcess(step string) process {
	n.env.T.Helper()
	for i := 0; ; i++ {
		c, err := n.env.Docker.ContainerInspect(n.env.Ctx(apiTimeout), n.ID)
		if err != nil {
			n.fatal(step+" (inspecting before)", err)
		}
		if c.State == nil || !c.State.Running || c.State.Pid == 0 {
			return process{}
		}
		p, err := processOf(c.State.Pid)
		if err == nil {
			return p
		}
		if i == 2 {
			n.fatal(step, fmt.Errorf("the engine reports pid %d for container %s, which the test process cannot see (%w); "+
				"faults are confirmed through /proc, so the engine must run on this machine in the test's pid namespace", c.State.Pid, n.ID[:12], err))
		}
		time.Sleep(10 * time.Millisecond) // it may have just exited: ask again
	}
}

// confirmGone waits until p (from mainProcess) has ended.
func (n *Node) confirmGone(step string, p process) {
	n.env.T.Helper()
	if p.pid == 0 {
		return
	}
	if err := p.waitGone(confirmTimeout); err != nil {
		n.fatal(step+" (confirming the container's main process ended)", err)
	}
}

// confirm waits until cond holds for the container as the engine inspects it.
func (n *Node) confirm(step string, cond func(container.InspectResponse) error) {
	n.env.T.Helper()
	err := waitUntil(confirmTimeout, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), apiTimeout)
		defer cancel()
		c, err := n.env.Docker.ContainerInspect(ctx, n.ID)
		if err != nil {
			return fmt.Errorf("while inspecting: %w", err)
		}
		return cond(c)
	})
	if err != nil {
		n.fatal(step+" (confirming it took effect)", err)
	}
}

// State returns the container's state as Docker reports it (running, exited, paused, ...).
func (n *Node) State() string {
	n.env.T.Helper()
	c, err := n.env.Docker.ContainerInspect(n.env.Ctx(apiTimeout), n.ID)
	if err != nil {
		n.fatal("inspecting", err)
	}
	return c.State.Status
}

// IP returns the container's address on the run's network, or "" when it is not attached.
func (n *Node) IP() string {
	n.env.T.Helper()
	c, err := n.env.Docker.ContainerInspect(n.env.Ctx(apiTimeout), n.ID)
	if err != nil {
		n.fatal("inspecting", err)
	}
	if c.NetworkSettings == nil {
		return ""
	}
	if ep, ok := c.NetworkSettings.Networks[n.Network]; ok && ep != nil {
		return ep.IPAddress
	}
	return ""
}

// Exec runs cmd in the running container as user ("" for the image's default)
// and returns its combined output and exit code.
func (n *Node) Exec(user string, cmd ...string) (string, int) {
	n.env.T.Helper()
	out, code, err := n.TryExec(user, cmd...)
	if err != nil {
		n.fatal("running "+strings.Join(cmd, " "), err)
	}
	return out, code
}

// TryExec is Exec that returns errors of the Docker API instead of failing the test.
func (n *Node) TryExec(user string, cmd ...string) (string, int, error) {
	ctx := n.env.Ctx(5 * time.Minute)
	ex, err := n.env.Docker.ContainerExecCreate(ctx, n.ID, container.ExecOptions{
		User: user, Cmd: cmd, AttachStdout: true, AttachStderr: true,
	})
	if err != nil {
		return "", -1, err
	}
	att, err := n.env.Docker.ContainerExecAttach(ctx, ex.ID, container.ExecAttachOptions{})
	if err != nil {
		return "", -1, err
	}
	defer att.Close()
	var out bytes.Buffer
	if _, err := stdcopy.StdCopy(&out, &out, att.Reader); err != nil {
		return out.String(), -1, err
	}
	insp, err := n.env.Docker.ContainerExecInspect(ctx, ex.ID)
	if err != nil {
		return out.String(), -1, err
	}
	return out.String(), insp.ExitCode, nil
}

// WriteFile places content at rel (relative to PGDATA) owned by postgres, the
// way a hand edit or pacsd's own writer would (fault: config edited by hand).
func (n *Node) WriteFile(rel string, content []byte, mode int64) {
	n.env.T.Helper()
	uid, gid := n.env.PostgresIDs()
	f := File{Path: path.Join(PGDATA, rel), Content: content, Mode: mode, UID: uid, GID: gid}
	if err := n.env.copyFile(n.env.Ctx(apiTimeout), n.ID, f); err != nil {
		n.fatal("writing "+rel, err)
	}
}

// ReadFile returns the content of rel (relative to PGDATA) in the running container.
func (n *Node) ReadFile(rel string) string {
	n.env.T.Helper()
	out, code := n.Exec("postgres", "cat", path.Join(PGDATA, rel))
	if code != 0 {
		n.env.T.Fatalf("node %s: while reading %s: exit %d: %s", n.Name, rel, code, out)
	}
	return out
}
