package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"slices"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/pacsd/pacsd/pkg/daemon"
	"github.com/pacsd/pacsd/pkg/docker"
	"github.com/pacsd/pacsd/pkg/postgres"
	"github.com/pacsd/pacsd/pkg/reconcile"
	"github.com/pacsd/pacsd/pkg/spec"
	"github.com/pacsd/pacsd/pkg/state"
)

// actingCommands are the commands that act on clusters, or observe them
// through every engine: with pacsd on every host, each host's service does.
// (restart, reinit and failover ask the service of the right host.)
var actingCommands = []string{"plan", "apply", "switchover"}

// Exit code of plan when changes are pending.
const exitPending = 2

// loadSpec parses the topology file and prints its diagnostics; nil when invalid.
func (c *cli) loadSpec(cmd, path string) *spec.File {
	file, diags := spec.ParseFile(path)
	if err := writeDiagnostics(c.stderr, path, diags); err != nil {
		fmt.Fprintf(c.stderr, "pacsd %s: while writing diagnostics: %v\n", cmd, err)
	}
	if diags.HasErrors() {
		fmt.Fprintf(c.stderr, "pacsd %s: %s is invalid (%s); nothing was changed\n", cmd, path, countDiags(diags))
		return nil
	}
	if file.EveryHost() && cmd == "switchover" {
		fmt.Fprintf(c.stderr, "pacsd switchover: %s runs pacsd on every host (daemon.etcd), where 'switchover' is not available as a command yet; nothing was done: to switch over, edit primary in the file on every host: the pacsd of the acting primary's host hands over once every host's file names the new primary ('curl http://LISTEN/status' on a host shows what waits)\n", path)
		return nil
	}
	if file.EveryHost() && slices.Contains(actingCommands, cmd) {
		fmt.Fprintf(c.stderr, "pacsd %s: %s runs pacsd on every host (daemon.etcd): the pacsd service of each host ('pacsd run --host NAME') acts on its own nodes, and '%s' is not available in that mode yet; nothing was done: edit the file and let the services follow it, and see 'curl http://LISTEN/status' on a host for the cluster's state\n", cmd, path, cmd)
		return nil
	}
	return file
}

// deps wires the adapters: one Docker engine per host block plus the local one.
func deps(f *spec.File, progress func(node, line string)) (reconcile.Deps, error) {
	d := reconcile.Deps{
		Runtimes: map[string]reconcile.Runtime{},
		DB:       postgres.New(),
		Matches:  postgres.VerifierMatches,
		Verifier: postgres.Verifier,
		Progress: progress,
	}
	store := &state.Store{Dir: f.Daemon.StateDir}
	d.Store, d.CAs = store, store
	d.Events = cliEvents(f, store)
	local, err := docker.New("", nil, "")
	if err != nil {
		return d, fmt.Errorf("while connecting to the local Docker engine: %w", err)
	}
	d.Runtimes[""] = local
	for _, h := range f.Hosts {
		var tls *docker.TLSFiles
		if h.TLS != nil {
			tls = &docker.TLSFiles{CA: h.TLS.CA, Cert: h.TLS.Cert, Key: h.TLS.Key}
		}
		var opts []docker.Option
		if h.SSH != nil {
			opts = append(opts, docker.WithSSH(docker.SSH{IdentityFile: h.SSH.IdentityFile, KnownHosts: h.SSH.KnownHosts}))
		}
		rt, err := docker.New(h.Docker, tls, h.Address, opts...)
		if err != nil {
			return d, fmt.Errorf("while connecting to the Docker engine of host %q (%s): %w", h.Name, h.Docker, err)
		}
		d.Runtimes[h.Name] = rt
	}
	return d, nil
}

// announcedStore is a cluster store whose Lock says on w, for the command
// cmd, that another pacsd process holds a cluster's lock, before it waits
// for it.
type announcedStore struct {
	reconcile.ClusterStore
	w   io.Writer
	cmd string
}

// CheckWrite is the store's (reconcile.CheckWrite).
func (s announcedStore) CheckWrite(cluster string) error {
	return reconcile.CheckWrite(s.ClusterStore, cluster)
}

// Lock takes the lock named cluster, saying so when it has to wait.
func (s announcedStore) Lock(ctx context.Context, cluster string) (func(), error) {
	if ctx.Err() != nil { // one try asked for: nothing to wait for, nothing to say
		return s.ClusterStore.Lock(ctx, cluster)
	}
	now, cancel := context.WithCancel(ctx)
	cancel() // one try
	unlock, err := s.ClusterStore.Lock(now, cluster)
	if err == nil || !errors.Is(err, reconcile.ErrLocked) {
		return unlock, err
	}
	fmt.Fprintf(s.w, "pacsd %s: cluster %q: another pacsd process (pacsd run, apply or switchover) is acting on it; waiting until it is done\n", s.cmd, cluster)
	return s.ClusterStore.Lock(ctx, cluster)
}

// applyWaiting is Apply for the command line: when another pacsd process (the
// daemon) runs long work on a node's data (a base backup, a rewind), it says
// so on w, waits until that work ends and converges again, instead of
// failing. busy, when not nil, is such an error an earlier call returned.
func applyWaiting(ctx context.Context, w io.Writer, cmd string, cl *spec.Cluster, d reconcile.Deps, log *slog.Logger, busy error) (reconcile.Result, error) {
	store := d.Store
	if a, ok := store.(announcedStore); ok {
		store = a.ClusterStore // this wait says what it waits for itself
	}
	return reconcile.ApplyWaiting(ctx, cl, d, log, busy, store, func(node string) {
		fmt.Fprintf(w, "pacsd %s: cluster %q: another pacsd process works on node %q's data; waiting until it is done\n", cmd, cl.Name, node)
	})
}

// jsonAction is one action of plan --json; it never holds a secret.
type jsonAction struct {
	Cluster string `json:"cluster"`
	Node    string `json:"node,omitempty"`
	Kind    string `json:"kind"`
	Class   string `json:"class,omitempty"`
	Target  string `json:"target"`
	Reason  string `json:"reason"`
}

// newPlanCmd is 'pacsd plan'.
func newPlanCmd(c *cli) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "plan [-f FILE] [--json]",
		Short: "show what apply would change (exit 2 when changes are pending)",
		Long: `Observes every node of every cluster of the file (containers, PostgreSQL,
replication) and prints, one line each, the actions 'pacsd apply' would carry
out and why. It changes nothing. Exit 0 when everything is in sync, 2 when
changes are pending, 1 when a cluster could not be observed or the file is
invalid. No password is ever printed.`,
		Example: `  pacsd plan -f /etc/pacsd/pacs.hcl
  pacsd plan --json | jq -r '.[] | "\(.kind) \(.target)"'
  pacsd plan >/dev/null; [ $? -eq 2 ] && echo "changes pending"`,
		Args:              noArgs,
		ValidArgsFunction: cobra.NoFileCompletions,
	}
	path := c.fileFlag(cmd)
	asJSON := cmd.Flags().Bool("json", false, "print the actions as JSON")
	cmd.RunE = action(func([]string) int { return c.plan(*path, *asJSON) })
	return cmd
}

// plan prints what apply would do: exit 0 when in sync, 2 when changes are
// pending, 1 on error.
func (c *cli) plan(path string, asJSON bool) int {
	f := c.loadSpec("plan", path)
	if f == nil {
		return exitProblem
	}
	d, err := deps(f, nil)
	if err != nil {
		fmt.Fprintf(c.stderr, "pacsd plan: %v\n", err)
		return exitProblem
	}
	ctx, cancel := signalContext(5 * time.Minute)
	defer cancel()
	var all []jsonAction
	failed := false
	for _, cl := range f.Clusters {
		obs, err := reconcile.Observe(ctx, cl, d)
		if err != nil {
			fmt.Fprintf(c.stderr, "pacsd plan: cluster %q: %v\n", cl.Name, err)
			failed = true
			continue
		}
		actions, problems := reconcile.Plan(cl, obs, d.Matches)
		if steps, ok := c.planAdoption(ctx, cl, d, obs, asJSON); ok {
			all = append(all, steps...)
			continue
		}
		if printProblems(c.stderr, "plan", problems) {
			failed = true
		}
		for _, a := range actions {
			all = append(all, jsonAction{a.Cluster, a.Node, string(a.Kind), string(a.Class), a.Target, a.Reason})
			if !asJSON {
				fmt.Fprintln(c.stdout, a.String())
			}
		}
	}
	if asJSON {
		if all == nil {
			all = []jsonAction{}
		}
		enc := json.NewEncoder(c.stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(all)
	} else if len(all) == 0 && !failed {
		fmt.Fprintln(c.stdout, "in sync: nothing to do")
	}
	switch {
	case failed:
		return exitProblem
	case len(all) > 0:
		return exitPending
	}
	return exitOK
}

// newApplyCmd is 'pacsd apply'.
func newApplyCmd(c *cli) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "apply [-f FILE]",
		Short: "converge every cluster of the file once",
		Long: `Converges every cluster of the file once, as the daemon does on each pass:
creates missing networks, volumes and containers, builds standbys with
pg_basebackup (progress shown), writes pg_hba.conf and the managed
parameters, creates roles, and puts back what drifted. It waits when another
pacsd process (the daemon) is acting on a cluster. Exit 0 when every cluster
converged, 1 when one did not (what failed, on which node, is said).`,
		Example: `  pacsd apply -f /etc/pacsd/pacs.hcl
  pacsd plan >/dev/null; [ $? -eq 2 ] && pacsd apply   # only when changes are pending`,
		Args:              noArgs,
		ValidArgsFunction: cobra.NoFileCompletions,
	}
	path := c.fileFlag(cmd)
	cmd.RunE = action(func([]string) int { return c.apply(*path) })
	return cmd
}

// apply converges every cluster of the file at path and reports what it did.
func (c *cli) apply(path string) int {
	f := c.loadSpec("apply", path)
	if f == nil {
		return exitProblem
	}
	log := newLogger(c.stderr)
	bar := newProgress(c.stderr)
	d, err := deps(f, bar.line)
	if err != nil {
		fmt.Fprintf(c.stderr, "pacsd apply: %v\n", err)
		return exitProblem
	}
	d.Store = announcedStore{d.Store, c.stderr, "apply"}
	ctx, cancel := signalContext(10 * time.Minute)
	defer cancel()
	code := exitOK
	for _, cl := range f.Clusters {
		res, err := applyWaiting(ctx, c.stderr, "apply", cl, d, log, nil)
		bar.done()
		if err != nil {
			fmt.Fprintf(c.stderr, "pacsd apply: %v\n", err)
			code = exitProblem
			continue
		}
		fmt.Fprintf(c.stdout, "cluster %q: converged (%d actions)\n", cl.Name, len(res.Done))
	}
	return code
}

// signalContext is cancelled by SIGINT/SIGTERM, or when the work made no
// progress for idle (a base backup of hours runs as long as it copies).
func signalContext(idle time.Duration) (context.Context, context.CancelFunc) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	ctx, cancel := reconcile.WithIdleTimeout(ctx, idle)
	return ctx, func() { cancel(); stop() }
}

// newLogger logs text on a terminal, JSON otherwise.
func newLogger(w io.Writer) *slog.Logger {
	h, _ := logHandler(w, "")
	return slog.New(h)
}

// logHandler writes log records to w in format: "text", "json", or ""
// for text on a terminal and JSON otherwise.
func logHandler(w io.Writer, format string) (slog.Handler, error) {
	switch {
	case format == "text", format == "" && isTerminal(w):
		return slog.NewTextHandler(w, nil), nil
	case format == "json", format == "":
		return slog.NewJSONHandler(w, nil), nil
	}
	return nil, fmt.Errorf("--log-format %q: give text or json", format)
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// progress shows progress lines (pg_basebackup -P, image pulls) on one
// rewritten line on a terminal, and as plain lines otherwise.
type progress struct {
	w    io.Writer
	tty  bool
	open bool
	last time.Time
}

func newProgress(w io.Writer) *progress { return &progress{w: w, tty: isTerminal(w)} }

func (p *progress) line(node, line string) {
	if p.tty {
		fmt.Fprintf(p.w, "\r\033[K%s: %s", node, line)
		p.open = true
		return
	}
	// Not a terminal: at most one progress line a second.
	if time.Since(p.last) < time.Second {
		return
	}
	p.last = time.Now()
	fmt.Fprintf(p.w, "progress node=%s %s\n", node, line)
}

func (p *progress) done() {
	if p.open {
		fmt.Fprintln(p.w)
		p.open = false
	}
}

// newSwitchoverCmd is 'pacsd switchover NODE'.
func newSwitchoverCmd(c *cli) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "switchover NODE [-f FILE] [--cluster NAME]",
		Short: "make NODE the primary now (no acknowledged write is lost)",
		Long: `Makes NODE, a standby, the primary of its cluster now: the old primary stops
with a fast shutdown (its WAL senders hand everything to the standbys), NODE
replays up to the old primary's shutdown checkpoint, is recorded as the acting
primary and only then promoted; the other standbys follow NODE and the old
primary rejoins as a standby. When NODE does not catch up, the old primary is
started again and nothing changed. No acknowledged write is lost. Then the
cluster is converged. When the file names another primary, pacsd says so:
edit primary in the file so that it says what runs. Exit 0 when NODE is the
primary, 1 when it is not or the rest did not converge.`,
		Example: `  pacsd switchover db2 -f /etc/pacsd/pacs.hcl
  pacsd switchover db2 --cluster pacs   # the file has several clusters with a node db2`,
		Args: oneNode,
	}
	nf := c.nodeFlags(cmd)
	cmd.RunE = action(func(args []string) int { return c.switchover(nf, args[0]) })
	return cmd
}

// switchover makes node the primary of its cluster now, then converges.
func (c *cli) switchover(nf nodeFlags, node string) int {
	t, code, ok := c.nodeTarget("switchover", nf, node)
	if !ok {
		return code
	}
	ctx, cancel := signalContext(10 * time.Minute)
	defer cancel()
	log := newLogger(c.stderr)
	res, err := reconcile.SwitchoverTo(ctx, t.cluster, t.node, t.deps, log)
	var busy *reconcile.NodeBusyError
	if errors.As(err, &busy) { // switched; the daemon rejoins a node meanwhile
		res, err = applyWaiting(ctx, c.stderr, "switchover", t.cluster, t.deps, log, err)
	}
	var left *reconcile.NodesLeftError
	if errors.As(err, &left) {
		fmt.Fprintf(c.stderr, "pacsd switchover: %q is the primary; the rest converged (%d actions) but for nodes whose Docker engine does not answer:\n%v\n", t.node, len(res.Done), err)
		t.fileDiffers(c.stdout)
		return exitProblem
	}
	if err != nil {
		fmt.Fprintf(c.stderr, "pacsd switchover: %v\n", err)
		return exitProblem
	}
	fmt.Fprintf(c.stdout, "cluster %q: %q is the primary; converged (%d actions)\n", t.cluster.Name, t.node, len(res.Done))
	t.fileDiffers(c.stdout)
	return exitOK
}

// nodeTarget is the node a command such as switchover or failover acts on,
// or, for restart, a whole cluster.
type nodeTarget struct {
	node string
	// whole is set when the argument names a cluster (node is "").
	whole   bool
	cluster *spec.Cluster
	file    *spec.File
	// deps are the adapters, with one controller; with pacsd on every host
	// (file.EveryHost()) none are wired: the host's pacsd acts.
	deps reconcile.Deps
}

// fileDiffers tells the operator to edit the file when it names another primary.
func (t nodeTarget) fileDiffers(w io.Writer) {
	if t.cluster.Primary != t.node {
		fmt.Fprintf(w, "the file still names %q as primary: edit it to %q so that it says what runs\n", t.cluster.Primary, t.node)
	}
}

// nodeFlags are the flags of a command that acts on one NODE of the file.
type nodeFlags struct {
	file    *string
	cluster *string
}

// nodeFlags registers -f/--file and --cluster on cmd, a command whose
// argument is NODE, and completes NODE and --cluster from the file.
func (c *cli) nodeFlags(cmd *cobra.Command) nodeFlags {
	nf := nodeFlags{file: c.fileFlag(cmd)}
	nf.cluster = cmd.Flags().String("cluster", "", "the cluster `NAME` of NODE, when the file has several")
	cmd.ValidArgsFunction = completeNode
	_ = cmd.RegisterFlagCompletionFunc("cluster", completeClusterFlag)
	return nf
}

// nodeTarget loads the file of nf for the command name, finds the cluster
// of node and wires the adapters, with a cluster lock that says when it
// waits for another pacsd process.
func (c *cli) nodeTarget(name string, nf nodeFlags, node string) (nodeTarget, int, bool) {
	return c.target(name, nf, node, false)
}

// target is nodeTarget; with clusterOK, arg may name a cluster instead of a
// node (the whole cluster). With pacsd on every host no adapters are
// wired: the pacsd of the right host acts.
func (c *cli) target(name string, nf nodeFlags, arg string, clusterOK bool) (nodeTarget, int, bool) {
	path, clusterName := nf.file, nf.cluster
	t := nodeTarget{node: arg}
	f := c.loadSpec(name, *path)
	if f == nil {
		return t, exitProblem, false
	}
	t.file = f
	for _, x := range f.Clusters {
		if (*clusterName == "" || x.Name == *clusterName) && x.Node(t.node) != nil {
			if t.cluster != nil {
				fmt.Fprintf(c.stderr, "pacsd %s: node %q is in clusters %q and %q; name one with --cluster\n", name, t.node, t.cluster.Name, x.Name)
				return t, exitUsage, false
			}
			t.cluster = x
		}
	}
	if clusterOK && *clusterName == "" {
		for _, x := range f.Clusters {
			if x.Name != arg {
				continue
			}
			if t.cluster != nil {
				fmt.Fprintf(c.stderr, "pacsd %s: %q names a cluster and a node of cluster %q; for the node, add --cluster %s\n", name, arg, t.cluster.Name, t.cluster.Name)
				return t, exitUsage, false
			}
			t.cluster, t.whole, t.node = x, true, ""
		}
	}
	if t.cluster == nil {
		if clusterOK {
			fmt.Fprintf(c.stderr, "pacsd %s: %s has no cluster and no node %q\n", name, *path, arg)
		} else {
			fmt.Fprintf(c.stderr, "pacsd %s: no cluster in %s has a node %q\n", name, *path, arg)
		}
		return t, exitProblem, false
	}
	if f.EveryHost() {
		return t, exitOK, true
	}
	d, err := deps(f, newProgress(c.stderr).line)
	if err != nil {
		fmt.Fprintf(c.stderr, "pacsd %s: %v\n", name, err)
		return t, exitProblem, false
	}
	d.Store = announcedStore{d.Store, c.stderr, name}
	t.deps = d
	return t, exitOK, true
}

// cliEvents records what a command (apply, switchover, failover) does in
// the event history of the state directory, with the file's checksum. An
// event the state directory cannot keep is dropped: the command's own
// output says what it did.
func cliEvents(f *spec.File, el daemon.EventLog) func(reconcile.Event) {
	sum := ""
	if b, err := os.ReadFile(f.Path); err == nil {
		s := sha256.Sum256(b)
		sum = hex.EncodeToString(s[:])[:12]
	}
	return func(e reconcile.Event) {
		if e.At.IsZero() {
			e.At = time.Now()
		}
		e.At, e.Checksum = e.At.UTC(), sum
		_ = el.AppendEvent(e)
	}
}
