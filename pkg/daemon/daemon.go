package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

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
	// Coordination, when set, runs the daemon in the mode "every host"
	// (daemon.etcd): it drives only its host's engine, leads or follows
	// each cluster, and holds the primary's lease of the primaries of its
	// host (see Coordination).
	Coordination Coordination
	// Version is pacsd's version (pacsd_build_info).
	Version string
	// Watchdog is systemd's watchdog interval; zero means the one systemd
	// asks for (WatchdogSec), if any. WATCHDOG=1 is sent at half of it.
	Watchdog time.Duration
}

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
	// gates keeps a cluster's passes and the commands this process carries
	// out for the command line (requests) apart (cluster -> *sync.Mutex).
	gates sync.Map
	// ready holds the clusters whose first pass succeeded; only those are supervised.
	ready sync.Map
	// hosted is the mode "every host"; nil with one controller.
	hosted *hosted
	// views are the operator's views of the clusters; history the event
	// history.
	views   *views
	history *history
	// lost holds, per cluster, whether the failover supervisor finds its
	// acting primary lost (the view's refresh stands back meanwhile).
	lost sync.Map
	// pauses holds the last read of each cluster's maintenance mode.
	pauses sync.Map
	// holds are the clusters whose record could not be written
	// (recordhold.go).
	holds recordHolds
	// security is the HTTP endpoints' TLS and authentication of the spec
	// in force (auth.go).
	security atomic.Pointer[httpSecurity]
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
	d := &Daemon{o: o, log: o.Logger, path: abs, trigger: watch.NewTrigger(), m: newMetrics(o.Version),
		converged: map[string]bool{}, st: Status{File: abs, Clusters: map[string]*ClusterStatus{}},
		views: newViews(), history: newHistory()}
	d.events = watch.NewDebouncer(d.trigger, eventsQuiet, eventsMostWait)
	if o.Coordination != nil {
		d.hosted = newHosted(o.Coordination)
	}
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

// Run serves HTTP on ln (none when nil; HTTPS with daemon.tls), watches the
// file and the engine's events, checks the engines (watchEngines), and runs
// passes until ctx is done. It then cancels the running pass and the
// engines' check, waits for them at most ShutdownTimeout, and closes the
// HTTP server and the adapters.
// It never stops a database container. The error is non-nil only when the
// file cannot be watched at all, or the pass or the engines' check did not
// end in time.
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
		srv = d.serveHTTP(ln)
	}
	go func() {
		if err := w.Run(ctx); err != nil {
			d.log.Error("cannot watch the topology file; edits are taken on SIGHUP and at every resync", "error", err)
		}
	}()
	d.watchdog(ctx)
	d.follow()
	go d.supervise(ctx)
	go d.refreshViews(ctx)
	go d.writeHistory(ctx)
	hostedDone := make(chan struct{})
	go func() {
		defer close(hostedDone)
		if d.hosted != nil {
			d.runHosted(ctx)
		}
	}()
	defer func() { <-hostedDone }()
	engines := make(chan struct{})
	go func() {
		defer close(engines)
		d.watchEngines(ctx)
	}()
	done := make(chan struct{})
	go func() {
		defer close(done)
		d.loop(ctx)
	}()
	<-ctx.Done()
	var result error
	stopBy := time.After(d.o.ShutdownTimeout)
	select {
	case <-done:
	case <-stopBy:
		result = fmt.Errorf("while stopping: the running pass did not end within %s", d.o.ShutdownTimeout)
	}
	// The engine check stops at once with ctx; it is waited for so that it
	// asks no adapter once they are closed.
	select {
	case <-engines:
	case <-stopBy:
		if result == nil {
			result = fmt.Errorf("while stopping: the engines' check did not end within %s", d.o.ShutdownTimeout)
		}
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
