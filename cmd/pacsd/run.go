package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/pacsd/pacsd/pkg/daemon"
	"github.com/pacsd/pacsd/pkg/docker"
	"github.com/pacsd/pacsd/pkg/reconcile"
	"github.com/pacsd/pacsd/pkg/spec"
)

// newRunCmd is 'pacsd run', the service: it keeps every cluster of the file
// converged until SIGTERM or SIGINT; SIGHUP reloads the file. Exit 0 after a
// clean stop, 1 when it cannot start (invalid file, another pacsd on the
// state directory, the listen address taken).
func newRunCmd(c *cli) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "run [-f FILE] [--host NAME] [--log-level LEVEL] [--log-format text|json]",
		Short: "keep every cluster converged to the file (the service)",
		Long: `The daemon: keeps every cluster of the file converged, reads the file again
when it is saved (and on SIGHUP), puts back what drifts, fails over when
failover is automatic, and serves /status, /metrics, the health endpoints and
the status page on daemon.listen. It runs until SIGTERM or SIGINT; stopping it
never stops a database container. With pacsd on every host (daemon.etcd),
--host (or PACSD_HOST) names the host block of this machine.

It logs to stderr, one line a record: as text on a terminal, else as JSON,
unless --log-format says which. Under systemd, whose journal is no
terminal, give --log-format text (in PACSD_OPTS of /etc/pacsd/pacsd.env) for
key=value lines people read with journalctl; keep JSON for a log collector
that parses it.

Exit 0 after a clean stop, 1 when it cannot start (invalid file, another
pacsd on the state directory, the listen address taken) or stopped on an
error.`,
		Example: `  pacsd run -f /etc/pacsd/pacs.hcl
  pacsd run --log-level debug --log-format text
  pacsd run -f /etc/pacsd/pacs.hcl --host b   # pacsd on every host: this is host b`,
		Args:              noArgs,
		ValidArgsFunction: cobra.NoFileCompletions,
	}
	path := c.fileFlag(cmd)
	levelName := cmd.Flags().String("log-level", "info", "log `LEVEL`: debug, info, warn or error")
	format := cmd.Flags().String("log-format", "", "log `FORMAT`: text or json (default: text on a terminal, else json)")
	hostName := cmd.Flags().String("host", "", "with pacsd on every host (daemon.etcd), the host block `NAME` of this host (env PACSD_HOST)")
	_ = cmd.RegisterFlagCompletionFunc("log-level", completeOneOf("debug", "info", "warn", "error"))
	_ = cmd.RegisterFlagCompletionFunc("log-format", completeOneOf("text", "json"))
	_ = cmd.RegisterFlagCompletionFunc("host", completeHost)
	cmd.RunE = action(func([]string) int {
		if cmd.Flags().Changed("log-format") && *format == "" {
			fmt.Fprintln(c.stderr, `pacsd run: --log-format "": give text or json`)
			return exitUsage
		}
		return c.runService(*path, *hostName, *levelName, *format)
	})
	return cmd
}

// runService runs the daemon on the file at path until SIGTERM or SIGINT
// and returns the exit code.
func (c *cli) runService(path, hostName, levelName, format string) int {
	var level slog.Level
	if err := level.UnmarshalText([]byte(levelName)); err != nil {
		fmt.Fprintf(c.stderr, "pacsd run: --log-level: %v\n", err)
		return exitUsage
	}
	handler, err := logHandler(c.stderr, format)
	if err != nil {
		fmt.Fprintf(c.stderr, "pacsd run: %v\n", err)
		return exitUsage
	}
	log := slog.New(leveled{Handler: handler, min: level})
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	return serve(ctx, path, hostOf(hostName, c.getenv), log, hup)
}

// serve runs the daemon on the file at path until ctx is done; every receive
// on hup reloads the file. It returns the exit code.
func serve(ctx context.Context, path, host string, log *slog.Logger, hup <-chan os.Signal) int {
	pl := &progressLog{log: log, last: map[string]time.Time{}}
	o := daemon.Options{
		Path:    path,
		Logger:  log,
		Deps:    func(f *spec.File) (reconcile.Deps, error) { return deps(f, pl.line) },
		Follow:  followDocker,
		Version: versionString(),
	}
	// With pacsd on every host (daemon.etcd), this pacsd drives its own
	// host's engine and shares the cluster's state through etcd.
	if f, diags := spec.ParseFile(path); !diags.HasErrors() && f.EveryHost() {
		if err := checkHost(f, host); err != nil {
			log.Error("pacsd run: " + err.Error())
			return exitProblem
		}
		m := &everyHost{host: host}
		defer m.close()
		o.Deps = func(f *spec.File) (reconcile.Deps, error) { return m.deps(f, pl.line) }
		o.Coordination = coordination{m}
	} else if host != "" && !diags.HasErrors() {
		log.Warn("--host (or PACSD_HOST) matters only with pacsd on every host (daemon.etcd); ignored", "host", host)
	}
	d, err := daemon.New(o)
	if err != nil {
		log.Error(err.Error())
		return exitProblem
	}
	f := d.Spec()
	if f.EveryHost() != (o.Coordination != nil) {
		log.Error("pacsd run: the file changed between two reads (daemon.etcd added or removed); start pacsd again")
		return exitProblem
	}
	lockDir := f.Daemon.StateDir
	if f.EveryHost() {
		lockDir = filepath.Join(lockDir, "host-"+host) // one pacsd per host, even with hosts sharing a file system
	}
	lock, err := daemon.Lock(lockDir)
	if err != nil {
		log.Error(err.Error())
		return exitProblem
	}
	defer lock.Unlock()
	ctx, stopLost := context.WithCancel(ctx)
	lost := make(chan error, 1)
	var keeping sync.WaitGroup
	keeping.Add(1)
	go func() {
		defer keeping.Done()
		keepLock(ctx, lock, lockDir, log, func(err error) { lost <- err; stopLost() })
	}()
	defer func() { stopLost(); keeping.Wait() }() // before the lock is let go
	ln, err := net.Listen("tcp", f.Daemon.Listen)
	if err != nil {
		log.Error(fmt.Sprintf("while listening on %s (daemon.listen): %v", f.Daemon.Listen, err))
		return exitProblem
	}
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				log.Info("SIGHUP: reading the topology file again")
				d.Reload()
			}
		}
	}()
	log.Info("pacsd started", "file", path, "state_dir", f.Daemon.StateDir, "pid", os.Getpid())
	if err := d.Run(ctx, ln); err != nil {
		log.Error(err.Error())
		return exitProblem
	}
	select {
	case err := <-lost:
		log.Error("pacsd stopped: " + err.Error())
		return exitProblem
	default:
	}
	return exitOK
}

// lockCheckEvery is how often the daemon checks that its lock on the state
// directory is still the one on the file there.
const lockCheckEvery = 2 * time.Second

// keepLock takes the daemon's lock on the state directory again whenever
// its file was removed or replaced (a state directory removed by hand), so
// that a second pacsd can never run beside this one; when it cannot, it
// calls lost, which stops this one.
func keepLock(ctx context.Context, lock *daemon.StateLock, stateDir string, log *slog.Logger, lost func(error)) {
	t := time.NewTicker(lockCheckEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		renewed, err := lock.Renew(stateDir)
		if err != nil {
			lost(err)
			return
		}
		if renewed {
			log.Warn("the state directory's lock file was removed or replaced; pacsd took the lock again", "lock", lock.Path())
		}
	}
}

// followDocker adapts the Docker runtime's events to the daemon.
func followDocker(ctx context.Context, rt reconcile.Runtime, cluster string, event func(daemon.Event)) error {
	dr, ok := rt.(*docker.Runtime)
	if !ok {
		<-ctx.Done()
		return nil
	}
	events, errs := dr.Events(ctx, cluster)
	for ev := range events {
		event(daemon.Event{Type: ev.Type, Action: ev.Action, Name: ev.Name})
	}
	return <-errs
}

// leveled drops records below min; the handler it wraps logs what it gets.
type leveled struct {
	slog.Handler
	min slog.Level
}

func (h leveled) Enabled(_ context.Context, l slog.Level) bool { return l >= h.min }

func (h leveled) WithAttrs(attrs []slog.Attr) slog.Handler {
	return leveled{Handler: h.Handler.WithAttrs(attrs), min: h.min}
}

func (h leveled) WithGroup(name string) slog.Handler {
	return leveled{Handler: h.Handler.WithGroup(name), min: h.min}
}

// progressLog logs progress lines (base backups, image pulls) as structured
// lines, at most one a second per node.
type progressLog struct {
	log  *slog.Logger
	mu   sync.Mutex
	last map[string]time.Time
}

func (p *progressLog) line(node, line string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if time.Since(p.last[node]) < time.Second {
		return
	}
	p.last[node] = time.Now()
	p.log.Info("progress", "node", node, "line", line)
}
