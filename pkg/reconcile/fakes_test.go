package reconcile

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pacsd/pacsd/pkg/pgconf"
	"github.com/pacsd/pacsd/pkg/spec"
)

// loudWorld is a small model of one cluster's engine and servers, for the
// unit tests of the acting code (Apply, the switchover): containers by name
// (running, paused, their own files), each node's data (pacsd's files, the
// control file, the timeline and WAL position) and each node's server
// (writable or in recovery, the upstream it streams from, its slots and
// settings; roles are shared, as physical replication shares them). What
// the code does through loudRuntime, loudDB and loudConn changes the model,
// so Observe → Plan → execute round trips converge as they do on a real
// engine.
//
// Every call is recorded. A call of a method the test did not allow (see
// allow) fails the test with the method and its arguments, and returns an
// error: like the fakes of Nomad's docker driver, the fake fails loudly on
// what it does not expect. A call can be made to fail (failOn), and a hook
// can run on each call (onCall). Changes of the store's record show among
// the calls as "record ..." entries, where the next call saw them.
type loudWorld struct {
	t     *testing.T
	c     *spec.Cluster
	store *MemoryStore

	mu      sync.Mutex
	allowed map[string]bool
	fail    map[string]error
	onCall  func(call string)
	calls   []string
	last    ClusterState // the record as the last call saw it

	network, owned, image bool
	cts                   map[string]*loudCt   // by container name
	engineID              string               // what EngineID says
	data                  map[string]*loudData // by node name: its volume or directory
	roles                 map[string]RoleState // every server's (replicated)
}

// loudCt is a container.
type loudCt struct {
	id, name, node  string
	labels          map[string]string
	mount           Mount
	running, paused bool
	status          string
	aliases         []string
	files           map[string][]byte // its own files, outside the data mount
}

// loudData is a node's data location and the server that runs on it.
type loudData struct {
	files map[string][]byte // under DataMount, by absolute path
	// The control file's state while the server is down; the checkpoint
	// and timeline of its last checkpoint.
	state      ClusterDBState
	checkpoint uint64
	timeline   uint32
	wal        uint64
	// The server, while its container runs.
	up, recovery bool
	upstream     string // the node it streams from (pacsd.conf's primary_conninfo at start and reload)
	slots        map[string]bool
	settings     map[string]Setting
	// lagging: its WAL receiver never connects; stuck: it receives but
	// replays nothing more.
	lagging, stuck bool
}

// observeMethods are the calls of an observation: reads only.
var observeMethods = []string{"EngineID", "NetworkInspect", "ImageInspect", "ContainerInspect", "NodeContainers", "DataInspect",
	"ReadFiles", "Connect", "sql.State", "sql.ReadFiles", "sql.Close"}

// mutating are the calls that change something, as acts lists them.
var mutating = map[string]bool{
	"NetworkCreate": true, "ImagePull": true, "ContainerCreate": true, "ContainerStart": true, "ContainerStop": true,
	"ContainerRemove": true, "NetworkAliases": true, "WriteFiles": true, "Exec": true, "RunOnce": true,
	"sql.SetRole": true, "sql.DropRole": true, "sql.CreateSlot": true, "sql.ResetSetting": true, "sql.Reload": true,
	"sql.Checkpoint": true, "sql.Promote": true, "sql.DropSlot": true,
}

// newLoudWorld returns an empty engine (no network, image, container or
// data) for cluster c whose calls of observeMethods are allowed; store's
// record changes show among the calls.
func newLoudWorld(t *testing.T, c *spec.Cluster, store *MemoryStore) *loudWorld {
	w := &loudWorld{t: t, c: c, store: store, allowed: map[string]bool{}, fail: map[string]error{},
		cts: map[string]*loudCt{}, data: map[string]*loudData{}, roles: map[string]RoleState{}}
	w.allow(observeMethods...)
	w.last, _ = store.Load(c.Name)
	return w
}

// loudVerifier is the fake SCRAM verifier of password.
func loudVerifier(password string) string { return "SCRAM-SHA-256$fake:" + password }

// deps are the adapters over the world and its store.
func (w *loudWorld) deps() Deps {
	return Deps{
		Runtimes: map[string]Runtime{"": &loudRuntime{w}},
		DB:       &loudDB{w},
		Matches:  func(v, password string) bool { return v == loudVerifier(password) },
		Verifier: func(password string) (string, error) { return loudVerifier(password), nil },
		Store:    w.store,
	}
}

// allow lets the test call methods ("ContainerStart", "sql.Reload", ...).
func (w *loudWorld) allow(methods ...string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, m := range methods {
		w.allowed[m] = true
	}
}

// only allows the observation's methods and methods, nothing else.
func (w *loudWorld) only(methods ...string) {
	w.mu.Lock()
	w.allowed = map[string]bool{}
	w.mu.Unlock()
	w.allow(observeMethods...)
	w.allow(methods...)
}

// failOn makes the calls that read as call (a method and its first
// arguments, as recorded) fail with err.
func (w *loudWorld) failOn(call string, err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.fail[call] = err
}

// take returns the calls recorded so far and forgets them.
func (w *loudWorld) take() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	calls := w.calls
	w.calls = nil
	return calls
}

// acts returns the recorded calls that change something, and the record's
// changes, in order; writes to several nodes at once (which run side by
// side) in the order of their text.
func acts(calls []string) []string {
	var out []string
	for _, c := range calls {
		method, _, _ := strings.Cut(c, " ")
		if mutating[method] || method == "record" {
			out = append(out, c)
		}
	}
	for i := 0; i < len(out); {
		j := i
		for j < len(out) && strings.HasPrefix(out[j], "WriteFiles ") {
			j++
		}
		if j > i {
			slices.Sort(out[i:j])
			i = j
		} else {
			i++
		}
	}
	return out
}

// short prints a path as the calls show it: relative to PGDATA when inside.
func short(path string) string {
	if rest, ok := strings.CutPrefix(path, PGDATA+"/"); ok {
		return rest
	}
	return path
}

// recordEntry is a change of the record from prev to st, as a call; where
// the nodes are placed shows when that changed.
func recordEntry(st, prev ClusterState) string {
	e := fmt.Sprintf("record acting=%s epoch=%d keep=%s rounds=%d", st.Acting, st.Epoch, st.Keep, st.Rounds)
	if !maps.Equal(st.Placed, prev.Placed) {
		e += " placed=" + strings.Join(slices.Sorted(maps.Keys(st.Placed)), ",")
	}
	return e
}

// placed is where the world's nodes are, as a record keeps it: every node
// of the file with a container, on the local engine.
func (w *loudWorld) placed() map[string]Placement {
	w.mu.Lock()
	defer w.mu.Unlock()
	m := map[string]Placement{}
	for _, n := range w.c.Nodes {
		if w.cts[n.Container] != nil {
			m[n.Name] = Placement{}
		}
	}
	if len(m) == 0 {
		return nil
	}
	return m
}

// placeRecord adds where the world's nodes are to the stored record, as a
// pacsd that saw them once keeps it.
func (w *loudWorld) placeRecord(store *MemoryStore) {
	st, err := store.Load(w.c.Name)
	if err != nil || st.Acting == "" {
		return
	}
	st.Placed = w.placed()
	_ = store.Save(w.c.Name, st)
	w.last = st
}

// call records a call and says whether it may go on: nil, or the error it
// must return (not allowed: the test fails; or made to fail by failOn).
func (w *loudWorld) call(method string, args ...string) error {
	text := strings.Join(append([]string{method}, args...), " ")
	w.mu.Lock()
	if st, err := w.store.Load(w.c.Name); err == nil && !st.Same(w.last) {
		w.calls = append(w.calls, recordEntry(st, w.last))
		w.last = st
	}
	w.calls = append(w.calls, text)
	allowed := w.allowed[method]
	var err error
	for key, e := range w.fail {
		if text == key || strings.HasPrefix(text, key+" ") {
			err = e
		}
	}
	hook := w.onCall
	w.mu.Unlock()
	if !allowed {
		w.t.Errorf("unexpected call %s: this test does not allow %s", text, method)
		return fmt.Errorf("unexpected call %s", text)
	}
	if hook != nil {
		hook(text)
	}
	return err
}

// The model. Its helpers are called with w.mu held.

// nodeOfContainer names the node whose container is called name.
func (w *loudWorld) nodeOfContainer(name string) string {
	for _, n := range w.c.Nodes {
		if n.Container == name {
			return n.Name
		}
	}
	return ""
}

func (w *loudWorld) byID(id string) (*loudCt, error) {
	for _, ct := range w.cts {
		if ct.id == id {
			return ct, nil
		}
	}
	return nil, fmt.Errorf("no such container: %q", id)
}

// dataOf returns node's data location, created (empty) when absent, as an
// engine creates a volume that a container mounts.
func (w *loudWorld) dataOf(node string) *loudData {
	d := w.data[node]
	if d == nil {
		d = &loudData{files: map[string][]byte{}, slots: map[string]bool{}, settings: map[string]Setting{}}
		w.data[node] = d
	}
	return d
}

func (d *loudData) holdsCluster() bool {
	_, ok := d.files[VersionPath]
	return ok
}

// control renders the head of pg_control as ParseControl reads it.
func (d *loudData) control() []byte {
	state := d.state
	if d.up && d.recovery {
		state = DBInArchiveRecovery
	} else if d.up {
		state = DBInProduction
	}
	b := make([]byte, 64)
	le := binary.LittleEndian
	le.PutUint32(b[8:], 1300)
	le.PutUint32(b[16:], uint32(state))
	le.PutUint64(b[32:], d.checkpoint)
	le.PutUint32(b[48:], d.timeline)
	return b
}

// readData reads paths of node's data (and the container's own files).
func (w *loudWorld) readData(ct *loudCt, paths []string) map[string][]byte {
	d := w.dataOf(ct.node)
	out := map[string][]byte{}
	for _, p := range paths {
		switch {
		case p == ControlPath && d.holdsCluster():
			out[p] = d.control()
		case strings.HasPrefix(p, DataMount+"/"):
			if b, ok := d.files[p]; ok {
				out[p] = slices.Clone(b)
			}
		default:
			if b, ok := ct.files[p]; ok {
				out[p] = slices.Clone(b)
			}
		}
	}
	return out
}

func (w *loudWorld) place(ct *loudCt, files []FileWrite) {
	d := w.dataOf(ct.node)
	for _, f := range files {
		if strings.HasPrefix(f.Path, DataMount+"/") {
			d.files[f.Path] = slices.Clone(f.Content)
		} else {
			ct.files[f.Path] = slices.Clone(f.Content)
		}
	}
}

func (w *loudWorld) create(cs ContainerSpec) *loudCt {
	ct := &loudCt{id: "id-" + cs.Name, name: cs.Name, node: cs.Labels[LabelNode], labels: maps.Clone(cs.Labels), mount: cs.Mount,
		status: "created", aliases: slices.Sorted(slices.Values(cs.Aliases)), files: map[string][]byte{}}
	w.cts[cs.Name] = ct
	w.place(ct, cs.Files)
	return ct
}

// initdb is the image's first start on empty data: a new cluster, the
// superuser from POSTGRES_PASSWORD_FILE, and what the init scripts install.
func (w *loudWorld) initdb(ct *loudCt, d *loudData) {
	d.files[VersionPath] = []byte("15\n")
	conf := []byte("# postgresql.conf\n")
	if _, ok := ct.files[initScriptPath]; ok {
		for name, path := range map[string]string{"pg_hba.conf": HBAPath, "pacsd.conf": ParamsPath, "pacsd.pgpass": PassfilePath,
			"server.crt": ServerCertPath, "server.key": ServerKeyPath, "pacsd-ca.crt": RootCertPath} {
			d.files[path] = slices.Clone(ct.files[initFilesDir+"/"+name])
		}
		conf, _ = pgconf.EnsureInclude(conf)
	}
	d.files[ConfPath] = conf
	d.timeline, d.wal, d.checkpoint, d.state = 1, 0x1000000, 0x1000000, DBShutdowned
	w.roles[w.c.Superuser.Name] = RoleState{Login: true, Superuser: true, Verifier: loudVerifier(string(ct.files[superuserPasswordPath]))}
}

// upstreamOf reads the node a standby streams from out of its pacsd.conf.
func (w *loudWorld) upstreamOf(d *loudData) string {
	ci := strings.Trim(parseConf(d.files[ParamsPath])["primary_conninfo"], "'")
	for _, f := range strings.Fields(ci) {
		if host, ok := strings.CutPrefix(f, "host="); ok {
			return w.nodeOfContainer(host)
		}
	}
	return ""
}

func (w *loudWorld) start(ct *loudCt) {
	ct.running, ct.status = true, "running"
	d := w.dataOf(ct.node)
	if !d.holdsCluster() {
		w.initdb(ct, d)
	}
	_, d.recovery = d.files[SignalPath]
	d.up, d.upstream = true, w.upstreamOf(d)
	w.checkOnePrimary()
}

// checkOnePrimary is safety invariant 1: never two writable servers.
func (w *loudWorld) checkOnePrimary() {
	var writable []string
	for _, n := range w.c.Nodes {
		if d := w.data[n.Name]; d != nil && d.up && !d.recovery {
			writable = append(writable, n.Name)
		}
	}
	if len(writable) > 1 {
		w.t.Errorf("two writable servers at once: %v", writable)
	}
}

// streams reports whether node's server streams from its upstream.
func (w *loudWorld) streams(node string) bool {
	d := w.data[node]
	if d == nil || !d.up || !d.recovery || d.lagging {
		return false
	}
	u := w.data[d.upstream]
	return u != nil && u.up && !u.recovery
}

// follow brings a streaming standby up to its upstream.
func (w *loudWorld) follow(node string) {
	if d := w.data[node]; w.streams(node) && !d.stuck {
		u := w.data[d.upstream]
		d.wal, d.timeline = u.wal, u.timeline
	}
}

func (w *loudWorld) stop(ct *loudCt) {
	ct.running, ct.paused, ct.status = false, false, "exited"
	d := w.dataOf(ct.node)
	if !d.up {
		return
	}
	if d.recovery {
		d.state, d.checkpoint = DBShutdownedInRecovery, d.wal
	} else {
		// A fast shutdown writes a shutdown checkpoint, and the WAL
		// senders send everything to the standbys that stream.
		d.checkpoint, d.wal, d.state = d.wal, d.wal+0x68, DBShutdowned
		for _, n := range w.c.Nodes {
			w.follow(n.Name)
		}
	}
	d.up = false
}

func (w *loudWorld) dbState(node string) *DBState {
	d := w.data[node]
	w.follow(node)
	st := &DBState{Version: 150000, InRecovery: d.recovery, Timeline: int64(d.timeline), WAL: d.wal,
		Settings: maps.Clone(d.settings), Roles: maps.Clone(w.roles), Slots: map[string]bool{}}
	for slot := range d.slots {
		st.Slots[slot] = false
	}
	if d.recovery {
		st.ReceivedWAL = d.wal
		if w.streams(node) {
			st.Receiver = "streaming"
		}
		return st
	}
	for _, n := range w.c.Nodes {
		if o := w.data[n.Name]; o != nil && o.upstream == node && w.streams(n.Name) {
			st.Streaming = append(st.Streaming, n.Name)
			if _, ok := d.slots[pgconf.SlotName(w.c.Name, n.Name)]; ok {
				st.Slots[pgconf.SlotName(w.c.Name, n.Name)] = true
			}
		}
	}
	return st
}

// seedConverged builds the converged cluster with acting as its primary,
// every server on timeline tl, as if Apply had built it.
func (w *loudWorld) seedConverged(acting string, tl uint32) {
	w.mu.Lock()
	defer w.mu.Unlock()
	c := w.c
	w.network, w.owned, w.image = true, true, true
	w.roles = map[string]RoleState{
		c.Superuser.Name:     {Login: true, Superuser: true, Verifier: loudVerifier(c.Superuser.Password.Reveal())},
		c.Replication.User:   {Login: true, Replication: true, Verifier: loudVerifier(c.Replication.Password.Reveal())},
		"pacsd_undeclared_x": {Login: true},
	}
	for _, r := range c.Roles {
		if r.Ensure != "absent" {
			w.roles[r.Name] = RoleState{Login: r.Login, MemberOf: r.MemberOf, Verifier: loudVerifier(r.Password.Reveal())}
		}
	}
	order := []*spec.Node{c.Node(acting)}
	for _, n := range c.Nodes {
		if n.Name != acting {
			order = append(order, n)
		}
	}
	for _, n := range order {
		d := w.dataOf(n.Name)
		d.files[VersionPath] = []byte("15\n")
		d.files[ConfPath], _ = pgconf.EnsureInclude([]byte("# postgresql.conf\n"))
		for p, b := range NodeFiles(c, n.Name, acting) {
			d.files[p] = b
		}
		for p, b := range testCerts(w.t, w.store, c, n) {
			d.files[p] = b
		}
		d.timeline, d.wal, d.checkpoint = tl, 0x3000000, 0x3000000
		if n.Name == acting {
			for _, o := range c.Nodes {
				if o.Name != acting {
					d.slots[pgconf.SlotName(c.Name, o.Name)] = true
				}
			}
		}
		cs := ContainerSpecFor(c, n, n.Name == acting)
		w.start(w.create(cs))
	}
}

// loudRuntime is the world's engine.
type loudRuntime struct{ w *loudWorld }

func (r *loudRuntime) NetworkInspect(_ context.Context, name, cluster string) (*NetworkState, error) {
	w := r.w
	if err := w.call("NetworkInspect", name, cluster); err != nil {
		return nil, err
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.network {
		return nil, nil
	}
	return &NetworkState{ID: "net-" + name, Owned: w.owned}, nil
}

func (r *loudRuntime) NetworkCreate(_ context.Context, name string, labels map[string]string) error {
	w := r.w
	if err := w.call("NetworkCreate", name); err != nil {
		return err
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.network, w.owned = true, labels[LabelCluster] == w.c.Name
	return nil
}

func (r *loudRuntime) ImageInspect(_ context.Context, ref string) (*ImageState, error) {
	w := r.w
	if err := w.call("ImageInspect", ref); err != nil {
		return nil, err
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.image {
		return nil, nil
	}
	return &ImageState{ID: "sha256:image", Major: 15}, nil
}

func (r *loudRuntime) ImagePull(_ context.Context, ref string, progress func(string)) error {
	w := r.w
	if err := w.call("ImagePull", ref); err != nil {
		return err
	}
	progress("Pulling from library/postgres")
	w.mu.Lock()
	defer w.mu.Unlock()
	w.image = true
	return nil
}

func (r *loudRuntime) ContainerInspect(_ context.Context, name, cluster, node string) (*ContainerState, error) {
	w := r.w
	if err := w.call("ContainerInspect", name); err != nil {
		return nil, err
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	ct := w.cts[name]
	if ct == nil {
		return nil, nil
	}
	st := &ContainerState{ID: ct.id, Name: ct.name, Owned: ct.labels[LabelCluster] == cluster && ct.labels[LabelNode] == node,
		Running: ct.running, Paused: ct.paused, Status: ct.status, Labels: maps.Clone(ct.labels),
		Aliases: slices.Clone(ct.aliases), Mount: &Mount{Volume: ct.mount.Volume, HostDir: ct.mount.HostDir}}
	if ct.running && !ct.paused {
		st.Addr = ct.name + ":5432"
	}
	return st, nil
}

func (r *loudRuntime) ContainerCreate(_ context.Context, cs ContainerSpec) (string, error) {
	w := r.w
	var placed []string
	for _, f := range cs.Files {
		placed = append(placed, short(f.Path))
	}
	if err := w.call("ContainerCreate", cs.Name, strings.Join(placed, ",")); err != nil {
		return "", err
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.cts[cs.Name] != nil {
		return "", fmt.Errorf("Conflict. The container name %q is already in use", cs.Name)
	}
	return w.create(cs).id, nil
}

func (r *loudRuntime) ContainerStart(_ context.Context, id string) error {
	w := r.w
	if err := w.call("ContainerStart", id); err != nil {
		return err
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	ct, err := w.byID(id)
	if err != nil {
		return err
	}
	w.start(ct)
	return nil
}

func (r *loudRuntime) ContainerStop(_ context.Context, id string, timeout time.Duration) error {
	w := r.w
	if err := w.call("ContainerStop", id); err != nil {
		return err
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	ct, err := w.byID(id)
	if err != nil {
		return err
	}
	w.stop(ct)
	return nil
}

func (r *loudRuntime) ContainerRemove(_ context.Context, id string) error {
	w := r.w
	if err := w.call("ContainerRemove", id); err != nil {
		return err
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	ct, err := w.byID(id)
	if err != nil {
		return err
	}
	if ct.running {
		return fmt.Errorf("cannot remove container %q: it is running", ct.name)
	}
	delete(w.cts, ct.name)
	return nil
}

func (r *loudRuntime) NetworkAliases(_ context.Context, id, netName string, aliases []string) error {
	w := r.w
	if err := w.call("NetworkAliases", id, strings.Join(aliases, ",")); err != nil {
		return err
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	ct, err := w.byID(id)
	if err != nil {
		return err
	}
	ct.aliases = slices.Sorted(slices.Values(aliases))
	return nil
}

func (r *loudRuntime) ReadFiles(_ context.Context, id string, paths []string) (map[string][]byte, error) {
	w := r.w
	if err := w.call("ReadFiles", id); err != nil {
		return nil, err
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	ct, err := w.byID(id)
	if err != nil {
		return nil, err
	}
	return w.readData(ct, paths), nil
}

func (r *loudRuntime) WriteFiles(_ context.Context, id string, files []FileWrite) error {
	w := r.w
	var paths []string
	for _, f := range files {
		paths = append(paths, short(f.Path))
	}
	if err := w.call("WriteFiles", id, strings.Join(paths, ",")); err != nil {
		return err
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	ct, err := w.byID(id)
	if err != nil {
		return err
	}
	w.place(ct, files)
	return nil
}

// alterRole is the statement of sqltext.PasswordScript.
var alterRole = regexp.MustCompile(`ALTER ROLE "?([^" ]+)"? PASSWORD '([^']*)'`)

// Exec runs psql -f FILE (the statement setRoleLocal places) and rm -f FILE.
func (r *loudRuntime) Exec(_ context.Context, id, user string, cmd []string) (string, int, error) {
	w := r.w
	if err := w.call("Exec", append([]string{id, user}, cmd...)...); err != nil {
		return "", -1, err
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	ct, err := w.byID(id)
	if err != nil {
		return "", -1, err
	}
	file := cmd[len(cmd)-1]
	switch cmd[0] {
	case "psql":
		m := alterRole.FindSubmatch(ct.files[file])
		if m == nil || !ct.running {
			return "psql: error: no statement the fake knows", 1, nil
		}
		st := w.roles[string(m[1])]
		st.Verifier = string(m[2])
		w.roles[string(m[1])] = st
	case "rm":
		delete(ct.files, file)
	default:
		return "", 127, nil
	}
	return "", 0, nil
}

// RunOnce runs the one-offs of oneoff.go on the model: a base backup
// copies the source's data, a rewind makes the data follow the source, a
// move aside empties PGDATA; then the staged files are installed.
func (r *loudRuntime) RunOnce(_ context.Context, o OneOff) (int, string, error) {
	w := r.w
	if err := w.call("RunOnce", o.Name); err != nil {
		return -1, "", err
	}
	o.Progress("1000/4000 kB (25%), 0/1 tablespace")
	w.mu.Lock()
	defer w.mu.Unlock()
	d := w.dataOf(o.Labels[LabelNode])
	args := o.Cmd[4:]
	staged := map[string][]byte{}
	for _, f := range o.Files {
		staged[f.Path] = f.Content
	}
	install := func(pairs []string) {
		for i := 0; i+1 < len(pairs); i += 2 {
			d.files[pairs[i+1]] = slices.Clone(staged[pairs[i]])
		}
	}
	source := func(host string) *loudData {
		if s := w.data[w.nodeOfContainer(host)]; s != nil && s.up && !s.recovery {
			return s
		}
		return nil
	}
	switch o.Labels[LabelOneOff] {
	case "basebackup":
		s := source(args[6])
		if s == nil {
			return 1, "pg_basebackup: error: connection to server at " + args[6] + " failed", nil
		}
		for p := range d.files {
			if strings.HasPrefix(p, PGDATA+"/") && p != SignalPath {
				return 3, PGDATA + " is not empty; refusing to overwrite data", nil
			}
		}
		// Only PGDATA is written; what lies beside it (data moved aside)
		// stays, and the marker and the count go once the build is done.
		delete(d.files, SignalPath)
		delete(d.files, BuildingMarker)
		delete(d.files, BuildAttemptsPath)
		d.files[VersionPath], d.files[ConfPath] = slices.Clone(s.files[VersionPath]), slices.Clone(s.files[ConfPath])
		d.timeline, d.wal, d.checkpoint, d.state = s.timeline, s.wal, s.wal, DBShutdownedInRecovery
		install(args[12:])
	case "rewind":
		host, _, _ := strings.Cut(strings.TrimPrefix(args[6], "host="), " ")
		s := source(host)
		if s == nil || !d.holdsCluster() {
			return 1, "pg_rewind: error: could not connect to the source server", nil
		}
		d.timeline, d.wal, d.checkpoint, d.state = s.timeline, s.wal, s.wal, DBShutdownedInRecovery
		d.files[SignalPath] = []byte{}
		install(args[7:])
	case "move-aside":
		// PGDATA aside, under the name given, never over anything; the
		// marker and the other paths given removed.
		aside := args[1]
		for p := range d.files {
			if strings.HasPrefix(p, aside+"/") {
				return 3, aside + " exists already; nothing was moved", nil
			}
		}
		moved := false
		for p, b := range d.files {
			if strings.HasPrefix(p, PGDATA+"/") {
				d.files[aside+strings.TrimPrefix(p, PGDATA)] = b
				delete(d.files, p)
				moved = true
			}
		}
		for _, p := range append([]string{BuildingMarker}, args[3:]...) {
			delete(d.files, p)
		}
		if moved {
			o.Progress("moved aside to " + aside)
		}
	default:
		return 2, "the fake runs no one-off " + o.Labels[LabelOneOff], nil
	}
	return 0, "", nil
}

func (r *loudRuntime) RemoveOneOffs(_ context.Context, cluster, node string) ([]string, error) {
	if err := r.w.call("RemoveOneOffs", node); err != nil {
		return nil, err
	}
	return nil, nil
}

func (r *loudRuntime) NodeContainers(_ context.Context, cluster, node string) ([]string, error) {
	w := r.w
	if err := w.call("NodeContainers", node); err != nil {
		return nil, err
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	var names []string
	for _, ct := range w.cts {
		if ct.labels[LabelCluster] == cluster && ct.labels[LabelNode] == node && !IsOneOff(ct.labels) {
			names = append(names, ct.name)
		}
	}
	slices.Sort(names)
	return names, nil
}

func (r *loudRuntime) DataInspect(_ context.Context, image string, m Mount) (DataState, error) {
	w := r.w
	if err := w.call("DataInspect", m.Volume+m.HostDir); err != nil {
		return DataState{Unknown: true}, err
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, n := range w.c.Nodes {
		if n.Volume != m.Volume || n.Data != m.HostDir {
			continue
		}
		d := w.data[n.Name]
		if d == nil {
			return DataState{}, nil
		}
		st := DataState{Exists: true}
		st.Major, _ = strconv.Atoi(strings.TrimSpace(string(d.files[VersionPath])))
		_, st.Partial = d.files[BuildingMarker]
		if b, ok := d.files[BuildAttemptsPath]; ok {
			st.BuildAttempts = ParseBuildAttempts(b)
		}
		if d.holdsCluster() {
			ctl, _ := ParseControl(d.control())
			st.Control = &ctl
		}
		return st, nil
	}
	return DataState{}, nil
}

// loudDB connects to the world's servers.
type loudDB struct{ w *loudWorld }

func (db *loudDB) Connect(_ context.Context, addr, user string, password spec.Secret, database string) (DBConn, error) {
	w := db.w
	if err := w.call("Connect", addr); err != nil {
		return nil, err
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	ct := w.cts[strings.TrimSuffix(addr, ":5432")]
	if ct == nil || !ct.running || ct.paused || !w.dataOf(ct.node).up {
		return nil, fmt.Errorf("dial tcp %s: connect: connection refused", addr)
	}
	if r, ok := w.roles[user]; ok && r.Verifier != loudVerifier(password.Reveal()) {
		return nil, fmt.Errorf("%w: FATAL: password authentication failed for user %q (SQLSTATE 28P01)", ErrServerRefused, user)
	}
	return &loudConn{w: w, node: ct.node}, nil
}

// loudConn is a connection to one node's server.
type loudConn struct {
	w    *loudWorld
	node string
}

// server returns the node's data while its server runs.
func (c *loudConn) server() (*loudData, error) {
	if d := c.w.data[c.node]; d != nil && d.up {
		return d, nil
	}
	return nil, errors.New("FATAL: terminating connection due to administrator command")
}

func (c *loudConn) State(context.Context) (*DBState, error) {
	w := c.w
	if err := w.call("sql.State", c.node); err != nil {
		return nil, err
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if _, err := c.server(); err != nil {
		return nil, err
	}
	return w.dbState(c.node), nil
}

func (c *loudConn) Health(context.Context) (*DBState, error) {
	w := c.w
	if err := w.call("sql.Health", c.node); err != nil {
		return nil, err
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if _, err := c.server(); err != nil {
		return nil, err
	}
	st := w.dbState(c.node)
	return &DBState{InRecovery: st.InRecovery, WAL: st.WAL, ReceivedWAL: st.ReceivedWAL, SyncStandbys: st.SyncStandbys}, nil
}

// writable returns the node's server when it accepts writes.
func (c *loudConn) writable() (*loudData, error) {
	d, err := c.server()
	if err != nil {
		return nil, err
	}
	if d.recovery {
		return nil, errors.New("ERROR: cannot execute this statement in a read-only transaction (SQLSTATE 25006)")
	}
	return d, nil
}

func (c *loudConn) SetRole(_ context.Context, r RoleSpec) error {
	w := c.w
	if err := w.call("sql.SetRole", c.node, r.Name); err != nil {
		return err
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if _, err := c.writable(); err != nil {
		return err
	}
	st := w.roles[r.Name]
	st.Login, st.Replication, st.Superuser = r.Login, r.Replication, r.Superuser
	for _, m := range r.MemberOf {
		if !slices.Contains(st.MemberOf, m) {
			st.MemberOf = append(st.MemberOf, m)
		}
	}
	if r.Verifier != "" {
		st.Verifier = r.Verifier
	}
	w.roles[r.Name] = st
	return nil
}

func (c *loudConn) DropRole(_ context.Context, name string) error {
	return c.change("sql.DropRole", true, func(*loudData) { delete(c.w.roles, name) }, name)
}

func (c *loudConn) CreateSlot(_ context.Context, name string) error {
	return c.change("sql.CreateSlot", true, func(d *loudData) { d.slots[name] = true }, name)
}

func (c *loudConn) DropSlot(_ context.Context, name string) error {
	return c.change("sql.DropSlot", true, func(d *loudData) { delete(d.slots, name) }, name)
}

func (c *loudConn) ResetSetting(_ context.Context, name string) error {
	return c.change("sql.ResetSetting", false, func(d *loudData) { delete(d.settings, name) }, name)
}

// change records the call method(args), then applies edit to the node's
// server under the world's lock; writable says that the server must accept
// writes.
func (c *loudConn) change(method string, writable bool, edit func(d *loudData), args ...string) error {
	w := c.w
	if err := w.call(method, append([]string{c.node}, args...)...); err != nil {
		return err
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	get := c.server
	if writable {
		get = c.writable
	}
	d, err := get()
	if err != nil {
		return err
	}
	edit(d)
	return nil
}

func (c *loudConn) Reload(context.Context) error {
	return c.change("sql.Reload", false, func(d *loudData) {
		if d.recovery {
			d.upstream = c.w.upstreamOf(d) // primary_conninfo is reloadable
		}
	})
}

func (c *loudConn) Checkpoint(context.Context) error {
	return c.change("sql.Checkpoint", false, func(d *loudData) { d.checkpoint = d.wal })
}

func (c *loudConn) Promote(context.Context) error {
	w := c.w
	if err := w.call("sql.Promote", c.node); err != nil {
		return err
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	d, err := c.server()
	if err != nil {
		return err
	}
	if !d.recovery {
		return errors.New("ERROR: recovery is not in progress (SQLSTATE 55000)")
	}
	w.follow(c.node)
	d.recovery, d.upstream = false, ""
	d.timeline++
	d.wal += 0x28
	delete(d.files, SignalPath)
	w.checkOnePrimary()
	return nil
}

func (c *loudConn) ReadFiles(_ context.Context, paths, digests []string) (map[string][]byte, error) {
	w := c.w
	if err := w.call("sql.ReadFiles", c.node); err != nil {
		return nil, err
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if _, err := c.server(); err != nil {
		return nil, err
	}
	for _, ct := range w.cts {
		if ct.node == c.node && ct.running {
			files := w.readData(ct, paths)
			for _, p := range digests {
				if b, ok := files[p]; ok {
					s := sha256.Sum256(b)
					files[p] = s[:]
				}
			}
			return files, nil
		}
	}
	return nil, errors.New("the server runs in no container")
}

func (c *loudConn) Close() {
	_ = c.w.call("sql.Close", c.node)
}

// EngineID: the fake engine does not say its ID (nodes are placed by host
// and endpoint), unless the test gave it one.
func (r *loudRuntime) EngineID(context.Context) (string, error) {
	if err := r.w.call("EngineID"); err != nil {
		return "", err
	}
	r.w.mu.Lock()
	defer r.w.mu.Unlock()
	return r.w.engineID, nil
}
