package daemon

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"runtime/debug"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/hcl/v2"

	"github.com/pacsd/pacsd/pkg/reconcile"
	"github.com/pacsd/pacsd/pkg/spec"
	"github.com/pacsd/pacsd/pkg/watch"
)

// Defaults of Options.
const (
	DefaultPassTimeout     = 10 * time.Minute
	DefaultShutdownTimeout = 30 * time.Second
)

// ApplyFunc converges one cluster; reconcile.Apply is the one pacsd uses.
type ApplyFunc func(ctx context.Context, c *spec.Cluster, d reconcile.Deps, log *slog.Logger) (reconcile.Result, error)

// Event is what a container engine reports about one of a cluster's objects.
type Event struct {
	Type   string // container, network, ...
	Action string // die, stop, kill, oom, destroy, disconnect, start, ...
	Name   string // the object's name, when known
}

// FollowFunc follows rt's events about the objects of cluster, calling event
// for each, until ctx is done (it then returns nil) or the stream breaks (it
// returns why). A runtime that has no events returns when ctx is done.
type FollowFunc func(ctx context.Context, rt reconcile.Runtime, cluster string, event func(Event)) error

// Options configure a Daemon. Path, Logger and Deps are required.
type Options struct {
	// Path is the topology file.
	Path string
	// Logger receives every line the daemon and reconcile log.
	Logger *slog.Logger
	// Deps returns the adapters for a spec, which may depend on the spec's
	// hosts only. It is called for the first spec, for a new spec whose hosts
	// differ and on Reload; the Runtimes it replaces are closed when they
	// implement io.Closer.
	Deps func(f *spec.File) (reconcile.Deps, error)
	// Apply converges one cluster; nil means reconcile.Apply.
	Apply ApplyFunc
	// Follow follows engine events; nil means no events (the resync ticker,
	// file changes and Reload still drive passes).
	Follow FollowFunc
	// Notify sends a state to the service manager; nil means sd_notify,
	// which does nothing when the process does not run under systemd.
	Notify func(state string)
	// PassTimeout is how long one cluster's pass may go without progress
	// (an action done, a base backup's bytes moving) before it is given up;
	// zero means DefaultPassTimeout. A pass that makes progress is never cut.
	PassTimeout time.Duration
	// ShutdownTimeout bounds the wait for the running pass when Run's context
	// is done; zero means DefaultShutdownTimeout.
	ShutdownTimeout time.Duration
	// Debounce is the file watcher's; zero means its default.
	Debounce time.Duration
	// Watchdog is systemd's watchdog interval; zero means the one systemd
	// asks for (WatchdogSec), if any. WATCHDOG=1 is sent at half of it.
	Watchdog time.Duration
}

// Engine events settle for eventsQuiet, and at most eventsMostWait, before
// they start a pass.
const (
	eventsQuiet    = 50 * time.Millisecond
	eventsMostWait = 250 * time.Millisecond
)

// Daemon keeps every cluster of one topology file converged. Create it with
// New, then call Run once; Reload and Handler may be called at any time.
type Daemon struct {
	o       Options
	log     *slog.Logger
	path    string
	trigger *watch.Trigger
	// events pokes trigger once a burst of engine events is over: one
	// `docker rm -f` (kill, die, destroy) is one pass, which does not compete
	// with the engine for the container it is removing.
	events *watch.Debouncer
	// shared is the cluster store shared with other pacsd processes, as the
	// adapters provide it; owned by the loop, published in snap.
	shared reconcile.ClusterStore
	m      *metrics

	forced  atomic.Bool // a reload was asked for
	looping atomic.Bool // the loop runs
	// passCtx is the running pass's context (nil when none): its last
	// progress tells the service watchdog that a long pass is alive.
	passCtx atomic.Pointer[context.Context]

	// Owned by the loop (and New before it).
	sum       string     // checksum of the content last read, taken or not
	file      *spec.File // the last good spec
	deps      reconcile.Deps
	fresh     bool            // file was taken since the last pass
	converged map[string]bool // clusters whose primary pacsd has brought up
	runCtx    context.Context
	unfollow  context.CancelFunc
	retry     *time.Timer

	mu sync.Mutex // guards st
	st Status

	// snap is the spec and adapters in force, for the failover supervisor.
	snap atomic.Pointer[snapshot]
	// locks serializes a cluster's passes and failovers (cluster -> *sync.Mutex).
	locks sync.Map
	// ready holds the clusters whose first pass succeeded; only those are supervised.
	ready sync.Map
}

// Status is what /status reports.
type Status struct {
	// File is the topology file and the checksum of its last good content.
	File     string    `json:"file"`
	Checksum string    `json:"checksum"`
	LoadedAt time.Time `json:"loaded_at"`
	// ReloadError says why the last content saved was refused; "" when it was taken.
	ReloadError string `json:"reload_error,omitempty"`
	// Passed is set once the first pass has ended.
	Passed   bool                      `json:"passed"`
	Clusters map[string]*ClusterStatus `json:"clusters"`
}

// ClusterStatus is the outcome of a cluster's last pass.
type ClusterStatus struct {
	LastPass time.Time `json:"last_pass"`
	Duration string    `json:"duration"`
	Result   string    `json:"result"` // ok or error
	Error    string    `json:"error,omitempty"`
	Actions  []string  `json:"actions"`
	// Failures counts failed passes in a row; RetryAt is when the next one
	// may run (backoff).
	Failures int        `json:"failures,omitempty"`
	RetryAt  *time.Time `json:"retry_at,omitempty"`
}

// New loads the topology file and the adapters for it. An invalid file is an
// error (its diagnostics are logged): the daemon must not start on it, and
// nothing has been touched.
func New(o Options) (*Daemon, error) {
	if o.Path == "" || o.Logger == nil || o.Deps == nil {
		return nil, errors.New("while creating the daemon: Path, Logger and Deps are required")
	}
	if o.Apply == nil {
		o.Apply = reconcile.Apply
	}
	if o.Notify == nil {
		o.Notify = sdNotify(o.Logger)
	}
	if o.PassTimeout == 0 {
		o.PassTimeout = DefaultPassTimeout
	}
	if o.ShutdownTimeout == 0 {
		o.ShutdownTimeout = DefaultShutdownTimeout
	}
	abs, err := filepath.Abs(o.Path)
	if err != nil {
		return nil, fmt.Errorf("while making %s absolute: %w", o.Path, err)
	}
	d := &Daemon{o: o, log: o.Logger, path: abs, trigger: watch.NewTrigger(), m: newMetrics(),
		converged: map[string]bool{}, st: Status{File: abs, Clusters: map[string]*ClusterStatus{}}}
	d.events = watch.NewDebouncer(d.trigger, eventsQuiet, eventsMostWait)
	if d.reload(); d.file == nil {
		d.mu.Lock()
		defer d.mu.Unlock()
		return nil, fmt.Errorf("while loading %s: %s; nothing was changed", o.Path, d.st.ReloadError)
	}
	return d, nil
}

// Spec returns the spec in force. It is meant for the caller of New, before
// Run (for the state directory and the listen address).
func (d *Daemon) Spec() *spec.File { return d.file }

// Reload asks for a pass that reads the topology file again even when its
// content did not change (files it refers to, such as passwords, may have),
// and that resets every cluster's backoff. It never blocks.
func (d *Daemon) Reload() {
	d.forced.Store(true)
	d.trigger.Poke()
}

// Run serves HTTP on ln (none when nil), watches the file and the engine's
// events, and runs passes until ctx is done. It then cancels the running
// pass, waits for it at most ShutdownTimeout, and closes the HTTP server and
// the adapters. It never stops a database container. The error is non-nil
// only when the file cannot be watched at all or the pass did not end in time.
func (d *Daemon) Run(ctx context.Context, ln net.Listener) error {
	w, err := watch.New(d.path, d.trigger, watch.Options{Debounce: d.o.Debounce, Logger: d.log})
	if err != nil {
		return fmt.Errorf("while watching the topology file: %w", err)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	d.runCtx = ctx
	var srv *http.Server
	if ln != nil {
		srv = &http.Server{Handler: d.Handler(), ReadHeaderTimeout: 5 * time.Second}
		go func() {
			if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				d.log.Error("the HTTP server stopped", "error", err)
			}
		}()
		d.log.Info("serving /healthz, /readyz, /metrics and /status", "address", ln.Addr().String())
	}
	go func() {
		if err := w.Run(ctx); err != nil {
			d.log.Error("cannot watch the topology file; edits are taken on SIGHUP and at every resync", "error", err)
		}
	}()
	d.watchdog(ctx)
	d.follow()
	go d.supervise(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		d.loop(ctx)
	}()
	<-ctx.Done()
	var result error
	select {
	case <-done:
	case <-time.After(d.o.ShutdownTimeout):
		result = fmt.Errorf("while stopping: the running pass did not end within %s", d.o.ShutdownTimeout)
	}
	if srv != nil {
		sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer scancel()
		_ = srv.Shutdown(sctx)
	}
	if result == nil {
		closeDeps(d.deps)
	}
	d.log.Info("stopped; the database containers keep running")
	return result
}

// loop runs a pass whenever the trigger is poked; the resync ticker and the
// end of a cluster's backoff only poke it.
func (d *Daemon) loop(ctx context.Context) {
	d.looping.Store(true)
	defer d.looping.Store(false)
	resync := d.file.Daemon.Resync.Duration
	tick := time.NewTicker(resync)
	defer tick.Stop()
	d.retry = time.NewTimer(time.Hour)
	d.retry.Stop()
	d.trigger.Poke() // the first pass
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			d.trigger.Poke()
		case <-d.retry.C:
			d.trigger.Poke()
		case <-d.trigger.C():
			d.pass(ctx)
			if r := d.file.Daemon.Resync.Duration; r != resync {
				resync = r
				tick.Reset(r)
			}
		}
	}
}

// pass loads the file when it changed, then converges each cluster that is
// not in backoff.
func (d *Daemon) pass(ctx context.Context) {
	reloading := d.reload()
	fromFile := d.fresh
	d.fresh = false
	for _, c := range d.file.Clusters {
		if ctx.Err() != nil {
			return
		}
		if at := d.retryAt(c.Name); !at.IsZero() && time.Now().Before(at) {
			d.log.Debug("cluster in backoff; skipped", "cluster", c.Name, "retry_at", at)
			continue
		}
		d.converge(ctx, c, fromFile)
	}
	if ctx.Err() != nil {
		return
	}
	summary := d.finishPass()
	if reloading || !d.passed() {
		d.o.Notify("READY=1\nSTATUS=" + summary)
	} else {
		d.o.Notify("STATUS=" + summary)
	}
	d.mu.Lock()
	d.st.Passed = true
	d.mu.Unlock()
}

// read returns the file's content and checksum; an unreadable file has a
// checksum of its error, so that the same error is reported once.
func (d *Daemon) read() ([]byte, string) {
	src, err := spec.ReadTopology(d.path)
	if err != nil {
		return nil, "error: " + err.Error()
	}
	s := sha256.Sum256(src)
	return src, hex.EncodeToString(s[:])
}

// reload reads the file and takes it when its content changed (or a reload
// was asked for) and it is good: valid, and nothing in it that
// spec.CheckAgainstPrevious refuses. Otherwise the last good spec stays. It
// reports whether it tried, having told systemd it reloads (after the first
// pass).
func (d *Daemon) reload() (tried bool) {
	forced := d.forced.Swap(false)
	src, sum := d.read()
	if sum == d.sum && !forced {
		return false
	}
	if d.passed() {
		d.o.Notify("RELOADING=1")
	}
	d.sum = sum
	if forced {
		d.resetBackoff()
	}
	next, diags := d.parse(src, sum)
	if !diags.HasErrors() {
		diags = append(diags, spec.CheckAgainstPrevious(d.file, next, d.acting())...)
	}
	d.logDiagnostics(diags)
	if diags.HasErrors() {
		d.refuse(fmt.Sprintf("the file is invalid (%d errors)", len(diags.Errs())))
		return true
	}
	prev := d.file
	engines := prev == nil || forced || !sameEngines(prev, next)
	if engines {
		deps, err := d.o.Deps(next)
		if err != nil {
			d.refuse(err.Error())
			return true
		}
		closeDeps(d.deps)
		if deps.Store == nil {
			d.refuse("no cluster store is configured")
			return true
		}
		d.shared = deps.Store
		deps.Store = &lockedStore{ClusterStore: deps.Store, d: d}
		d.deps = deps
	}
	if prev != nil && (prev.Daemon.Listen != next.Daemon.Listen || prev.Daemon.StateDir != next.Daemon.StateDir) {
		d.log.Warn("daemon.listen and daemon.state_dir take effect when pacsd restarts", "listen", prev.Daemon.Listen, "state_dir", prev.Daemon.StateDir)
	}
	d.file, d.fresh = next, true
	d.snap.Store(&snapshot{file: next, deps: d.deps, shared: d.shared})
	d.resetBackoff()
	// A stream that goes on misses nothing; one started again might.
	if engines || !slices.Equal(followed(prev), followed(next)) {
		d.follow()
	}
	d.m.reloadOK.Set(1)
	d.m.reloadTime.SetToCurrentTime()
	d.mu.Lock()
	d.st.Checksum, d.st.LoadedAt, d.st.ReloadError = sum, time.Now(), ""
	kept := map[string]*ClusterStatus{}
	for _, c := range next.Clusters {
		if st := d.st.Clusters[c.Name]; st != nil {
			kept[c.Name] = st
		}
	}
	d.st.Clusters = kept
	d.mu.Unlock()
	d.log.Info("topology file taken", "file", d.path, "checksum", sum[:12], "clusters", len(next.Clusters))
	return true
}

func (d *Daemon) parse(src []byte, sum string) (*spec.File, hcl.Diagnostics) {
	if src == nil {
		return nil, hcl.Diagnostics{{Severity: hcl.DiagError, Summary: "Cannot Read Topology File",
			Detail: fmt.Sprintf("pacsd could not read the topology file %s (%s).", d.path, sum)}}
	}
	return spec.Parse(src, d.path)
}

// refuse records that the file last saved is not in force.
func (d *Daemon) refuse(why string) {
	d.m.reloadOK.Set(0)
	d.mu.Lock()
	d.st.ReloadError = why
	d.mu.Unlock()
	if d.file != nil {
		d.log.Error("topology file refused; the last good one stays in force", "file", d.path, "reason", why)
	}
}

func (d *Daemon) logDiagnostics(diags hcl.Diagnostics) {
	for _, diag := range diags {
		level := slog.LevelWarn
		if diag.Severity == hcl.DiagError {
			level = slog.LevelError
		}
		attrs := []any{"summary", diag.Summary, "detail", diag.Detail}
		if s := diag.Subject; s != nil {
			attrs = append(attrs, "file", s.Filename, "line", s.Start.Line, "column", s.Start.Column)
		}
		d.log.Log(context.Background(), level, "topology file: "+diag.Summary, attrs...)
	}
}

// acting names the acting primary of each cluster whose record names one
// (reconcile.ActingPrimary without an observation): a cluster without a
// record is left out, as its acting primary is not known until a pass
// rebuilds the record.
func (d *Daemon) acting() map[string]string {
	m := map[string]string{}
	if d.file == nil {
		return m
	}
	for _, c := range d.file.Clusters {
		st, err := d.deps.Store.Load(c.Name)
		if err == nil {
			if acting, err := reconcile.ActingPrimary(c, st, nil); err == nil {
				m[c.Name] = acting
			}
		}
	}
	return m
}

// sameEngines reports whether two specs name the same engines, so that the
// adapters made for one serve the other.
func sameEngines(a, b *spec.File) bool {
	ja, erra := json.Marshal(a.Hosts)
	jb, errb := json.Marshal(b.Hosts)
	return erra == nil && errb == nil && bytes.Equal(ja, jb)
}

// followed lists the event streams a spec needs: one per cluster and host.
func followed(f *spec.File) []string {
	var keys []string
	if f == nil {
		return keys
	}
	for _, c := range f.Clusters {
		for _, n := range c.Nodes {
			keys = append(keys, c.Name+"\x00"+n.Host)
		}
	}
	slices.Sort(keys)
	return slices.Compact(keys)
}

func closeDeps(deps reconcile.Deps) {
	for _, rt := range deps.Runtimes {
		if c, ok := rt.(io.Closer); ok {
			_ = c.Close()
		}
	}
}

// converge runs one cluster's pass and records its outcome.
func (d *Daemon) converge(ctx context.Context, c *spec.Cluster, fromFile bool) {
	pctx, cancel := reconcile.WithIdleTimeout(ctx, d.o.PassTimeout)
	defer cancel()
	start := time.Now()
	d.passCtx.Store(&pctx)
	res, err := d.safeApply(pctx, c)
	d.passCtx.Store(nil)
	took := time.Since(start)
	if err != nil && ctx.Err() != nil {
		d.log.Info("pass interrupted by shutdown", "cluster", c.Name, "actions", len(res.Done))
		return
	}
	result := "ok"
	if err != nil {
		result = "error"
	}
	d.m.passes.WithLabelValues(c.Name, result).Inc()
	d.m.duration.WithLabelValues(c.Name, result).Observe(took.Seconds())
	st := &ClusterStatus{LastPass: start, Duration: took.Round(time.Millisecond).String(), Result: result, Actions: []string{}}
	for _, a := range res.Done {
		d.m.actions.WithLabelValues(string(a.Kind), "ok").Inc()
		st.Actions = append(st.Actions, a.String())
	}
	if !fromFile && len(res.Done) > 0 {
		d.m.drift.WithLabelValues(c.Name).Add(float64(len(res.Done)))
		d.log.Info("drift repaired", "cluster", c.Name, "actions", len(res.Done))
	}
	attrs := []any{"cluster", c.Name, "actions", len(res.Done), "duration", st.Duration}
	if err == nil {
		d.converged[c.Name] = true
		d.ready.Store(c.Name, true)
		level := slog.LevelDebug
		if len(res.Done) > 0 {
			level = slog.LevelInfo
		}
		d.log.Log(ctx, level, "cluster converged", attrs...)
	} else {
		if k := failedKind(err); k != "" {
			d.m.actions.WithLabelValues(k, "error").Inc()
		}
		st.Error = err.Error()
		st.Failures = d.failures(c.Name) + 1
		at := time.Now().Add(backoffDelay(st.Failures, MinBackoff, MaxBackoff))
		st.RetryAt = &at
		d.armRetry(at)
		d.log.Error("pass failed", append(attrs, "error", st.Error, "failures", st.Failures, "retry_at", at)...)
	}
	d.mu.Lock()
	d.st.Clusters[c.Name] = st
	d.mu.Unlock()
}

// safeApply runs Apply and turns a panic into an error, logged with its stack.
func (d *Daemon) safeApply(ctx context.Context, c *spec.Cluster) (res reconcile.Result, err error) {
	defer func() {
		if r := recover(); r != nil {
			d.log.Error("panic in a pass", "cluster", c.Name, "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
			err = fmt.Errorf("while converging cluster %q: panic: %v", c.Name, r)
		}
	}()
	return d.o.Apply(ctx, c, d.deps, d.log)
}

// armRetry pokes the trigger at t, unless an earlier retry is armed.
func (d *Daemon) armRetry(t time.Time) {
	next := t
	d.mu.Lock()
	for _, st := range d.st.Clusters {
		if st.RetryAt != nil && st.RetryAt.After(time.Now()) && st.RetryAt.Before(next) {
			next = *st.RetryAt
		}
	}
	d.mu.Unlock()
	if d.retry != nil {
		d.retry.Reset(time.Until(next))
	}
}

func (d *Daemon) retryAt(cluster string) time.Time {
	d.mu.Lock()
	defer d.mu.Unlock()
	if st := d.st.Clusters[cluster]; st != nil && st.RetryAt != nil {
		return *st.RetryAt
	}
	return time.Time{}
}

func (d *Daemon) failures(cluster string) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	if st := d.st.Clusters[cluster]; st != nil {
		return st.Failures
	}
	return 0
}

// resetBackoff lets every cluster's next pass run at once.
func (d *Daemon) resetBackoff() {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, st := range d.st.Clusters {
		st.Failures, st.RetryAt = 0, nil
	}
}

func (d *Daemon) passed() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.st.Passed
}

// finishPass returns a one-line summary of the state for systemd's STATUS.
func (d *Daemon) finishPass() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	var failing []string
	for name, st := range d.st.Clusters {
		if st.Result != "ok" {
			failing = append(failing, name)
		}
	}
	sort.Strings(failing)
	s := fmt.Sprintf("%d of %d clusters converged", len(d.st.Clusters)-len(failing), len(d.file.Clusters))
	if len(failing) > 0 {
		s += fmt.Sprintf("; failing: %v", failing)
	}
	if d.st.ReloadError != "" {
		s += "; file refused: " + d.st.ReloadError
	}
	return s
}

// follow (re)starts following the engine's events of every cluster of the
// spec in force, one stream per cluster and host, once Run has started.
func (d *Daemon) follow() {
	if d.runCtx == nil || d.o.Follow == nil {
		return
	}
	if d.unfollow != nil {
		d.unfollow()
	}
	ctx, cancel := context.WithCancel(d.runCtx)
	d.unfollow = cancel
	for _, c := range d.file.Clusters {
		hosts := map[string]bool{}
		for _, n := range c.Nodes {
			hosts[n.Host] = true
		}
		for host := range hosts {
			if rt := d.deps.Runtimes[host]; rt != nil {
				go d.followOne(ctx, rt, c.Name, host)
			}
		}
	}
}

// followOne follows one stream; when it breaks, it logs, pokes (events may
// have been missed) and subscribes again after a backoff.
func (d *Daemon) followOne(ctx context.Context, rt reconcile.Runtime, cluster, host string) {
	failures := 0
	for {
		start := time.Now()
		err := d.o.Follow(ctx, rt, cluster, func(ev Event) {
			if worthAPass(ev) {
				d.log.Info("engine event; observing again", "cluster", cluster, "type", ev.Type, "action", ev.Action, "name", ev.Name)
				d.events.Poke()
			}
		})
		if ctx.Err() != nil {
			return
		}
		if err == nil {
			err = errors.New("the event stream ended")
		}
		if time.Since(start) > time.Minute {
			failures = 0
		}
		failures++
		delay := backoffDelay(failures, minEventsBackoff, maxEventsBackoff)
		d.log.Warn("lost the engine's events; observing again and subscribing again", "cluster", cluster, "host", host, "error", err.Error(), "retry_in", delay.String())
		d.trigger.Poke()
		select {
		case <-ctx.Done():
			return
		case <-time.After(delay):
		}
		d.trigger.Poke()
	}
}

// worthAPass tells the events that mean an object of pacsd's may have gone,
// or come back: a fenced node started by hand or by the engine is looked at
// at once (it comes back in recovery, and a pass makes it follow).
func worthAPass(ev Event) bool {
	switch ev.Type {
	case "container":
		switch ev.Action {
		case "die", "stop", "kill", "oom", "destroy", "start", "unpause", "restart":
			return true
		}
	case "network":
		return ev.Action == "disconnect" || ev.Action == "destroy"
	}
	return false
}
