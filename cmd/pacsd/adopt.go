package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/pacsd/pacsd/pkg/reconcile"
	"github.com/pacsd/pacsd/pkg/spec"
)

// newAdoptCmd is 'pacsd adopt': PostgreSQL containers set up by hand (the
// dcm4chee image's README) taken over on their data, then converged.
func newAdoptCmd(c *cli) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "adopt [-f FILE] [--cluster NAME] [--dry-run]",
		Short: "take over PostgreSQL containers set up by hand, on their data",
		Long: `Takes over the PostgreSQL containers that each node of the file names
(container_name) and the data they keep (data: the host directory the
container mounts as its PGDATA; or volume), as the dcm4chee image's README
sets them up: a primary, standbys made with pg_basebackup -R, a trust line
for replication, the superuser's password in the environment.

First it checks what is there against the file and refuses, before
changing anything, with what does not match and what to do: containers
not found or pacsd's own, data locations other than the containers mount,
a PostgreSQL major version other than the image's, more than one node
taking writes or not the file's primary, nodes of different database
systems, a standby not streaming from the primary or on another timeline,
a superuser or database other than the containers'.

Then it replaces the containers one at a time, standbys first: a
replication slot on the primary keeps the WAL each standby needs; the old
container is stopped and renamed NAME-pre-pacsd (kept, its restart policy
set to no; never removed); the data is moved into pacsd's layout (the
location's entries into data/ below it, by renames on one file system:
nothing copied, nothing deleted; files the image's postgres user does not
own are given to it); pacsd's container is created on it with pacsd's
files in place (pg_hba.conf without trust on host lines, pacsd.conf, TLS,
the superuser's password in a file, not the environment) and started. The
primary last: a checkpoint, then the stop, so that writes stop for as
short a time as it can; the write gap is measured and printed. Then it
converges as 'pacsd apply' does (the replication role's password from the
file, slots, pg_basebackup -R's primary_conninfo reset, the standbys
streaming through their slots). It prints what it changed.

An adopt stopped half-way (interrupted, killed, a failure) leaves a state
that a second adopt finishes; 'apply' and 'run' refuse to act on a node
whose data is not adopted yet. With nothing to adopt it converges only.
--dry-run prints the steps and changes nothing ('pacsd plan' shows them
too). Exit 0 when every cluster is adopted and converged, 1 otherwise.`,
		Example: `  pacsd adopt -f /etc/pacsd/pacs.hcl --dry-run
  pacsd adopt -f /etc/pacsd/pacs.hcl`,
		Args:              noArgs,
		ValidArgsFunction: cobra.NoFileCompletions,
	}
	path := c.fileFlag(cmd)
	cluster := cmd.Flags().String("cluster", "", "adopt only the cluster `NAME`")
	_ = cmd.RegisterFlagCompletionFunc("cluster", completeClusterFlag)
	dry := cmd.Flags().Bool("dry-run", false, "print what adopt would do and change nothing")
	cmd.RunE = action(func([]string) int { return c.adopt(*path, *cluster, *dry) })
	return cmd
}

// adopt adopts and converges every cluster of the file (or the one named).
func (c *cli) adopt(path, only string, dry bool) int {
	f := c.loadSpec("adopt", path)
	if f == nil {
		return exitProblem
	}
	if f.EveryHost() {
		fmt.Fprintf(c.stderr, "pacsd adopt: %s runs pacsd on every host (daemon.etcd); adopt the containers with one controller first (a file without daemon.etcd), then start the services; nothing was done\n", path)
		return exitProblem
	}
	log := newLogger(c.stderr)
	bar := newProgress(c.stderr)
	d, err := deps(f, bar.line)
	if err != nil {
		fmt.Fprintf(c.stderr, "pacsd adopt: %v\n", err)
		return exitProblem
	}
	d.Store = announcedStore{d.Store, c.stderr, "adopt"}
	ctx, cancel := signalContext(10 * time.Minute)
	defer cancel()
	code, found := exitOK, false
	for _, cl := range f.Clusters {
		if only != "" && cl.Name != only {
			continue
		}
		found = true
		if !c.adoptCluster(ctx, cl, d, log, bar, dry) {
			code = exitProblem
		}
	}
	if !found {
		fmt.Fprintf(c.stderr, "pacsd adopt: %s has no cluster %q\n", path, only)
		return exitProblem
	}
	return code
}

// adoptCluster adopts one cluster and reports on c's streams; false when it
// refused or failed.
func (c *cli) adoptCluster(ctx context.Context, cl *spec.Cluster, d reconcile.Deps, log *slog.Logger, bar *progress, dry bool) bool {
	plan, problems, err := planAdopt(ctx, cl, d)
	if err != nil {
		fmt.Fprintf(c.stderr, "pacsd adopt: cluster %q: %v\n", cl.Name, err)
		return false
	}
	if refused := printProblems(c.stderr, "adopt", problems); refused {
		fmt.Fprintf(c.stderr, "pacsd adopt: cluster %q: nothing was changed\n", cl.Name)
		return false
	}
	if len(plan.Steps) == 0 {
		fmt.Fprintf(c.stdout, "cluster %q: nothing to adopt (every container is pacsd's)\n", cl.Name)
	} else {
		fmt.Fprintf(c.stdout, "cluster %q: adoption steps, in order:\n", cl.Name)
		for _, s := range plan.Steps {
			for _, l := range s.Lines(cl) {
				fmt.Fprintln(c.stdout, "  "+l)
			}
		}
		fmt.Fprintln(c.stdout, "  then converge as 'pacsd apply' does: roles and passwords from the file, slots, ALTER SYSTEM overrides reset, standbys streaming")
	}
	if dry {
		fmt.Fprintf(c.stdout, "cluster %q: --dry-run: nothing was changed\n", cl.Name)
		return true
	}
	done, err := reconcile.Adopt(ctx, cl, d, log)
	bar.done()
	printAdopted(c.stdout, cl, done)
	if err != nil {
		fmt.Fprintf(c.stderr, "pacsd adopt: %v\n", err)
		return false
	}
	res, err := applyWaiting(ctx, c.stderr, "adopt", cl, d, log, nil)
	bar.done()
	if err != nil {
		fmt.Fprintf(c.stderr, "pacsd adopt: the containers are pacsd's, but converging failed: %v; run 'pacsd adopt' or 'pacsd apply' again\n", err)
		return false
	}
	for _, a := range res.Done {
		fmt.Fprintf(c.stdout, "  converge: %s\n", a.String())
	}
	fmt.Fprintf(c.stdout, "cluster %q: adopted and converged (%d actions)\n", cl.Name, len(res.Done))
	return true
}

// planAdopt observes cluster cl for adopt and decides.
func planAdopt(ctx context.Context, cl *spec.Cluster, d reconcile.Deps) (reconcile.AdoptPlan, []reconcile.Problem, error) {
	o, err := reconcile.ObserveAdopt(ctx, cl, d)
	if err != nil {
		return reconcile.AdoptPlan{}, nil, err
	}
	plan, problems := reconcile.PlanAdopt(cl, o, d.Matches)
	return plan, problems, nil
}

// printProblems prints problems for cmd; true when one refuses.
func printProblems(w io.Writer, cmd string, problems []reconcile.Problem) bool {
	refused := false
	for _, p := range problems {
		if p.Warning {
			fmt.Fprintf(w, "pacsd %s: warning: %v\n", cmd, p)
			continue
		}
		fmt.Fprintf(w, "pacsd %s: %v\n", cmd, p)
		refused = true
	}
	return refused
}

// printAdopted reports what adopt changed, the write gap and the kept
// containers.
func printAdopted(w io.Writer, cl *spec.Cluster, done reconcile.AdoptDone) {
	for _, l := range done.Changes {
		fmt.Fprintf(w, "  changed: %s\n", l)
	}
	if done.WriteGap > 0 {
		fmt.Fprintf(w, "cluster %q: the primary took no writes for %s (from its stop until pacsd's container took writes)\n", cl.Name, done.WriteGap.Round(time.Millisecond))
	}
	for _, k := range done.Kept {
		secret := ""
		if len(k.SecretEnv) > 0 {
			secret = fmt.Sprintf(" (its environment still holds %s, which 'docker inspect' shows until it is removed)", strings.Join(k.SecretEnv, ", "))
		}
		if k.SharesData {
			secret += "; never start it again: it mounts the data pacsd's container runs on and would run a second server on it"
		}
		fmt.Fprintf(w, "cluster %q: container %s is kept, stopped%s; pacsd never removes it: once you no longer need it, remove it with\n  docker rm %s\n", cl.Name, k.Name, secret, k.Name)
	}
}

// planAdoption is plan's view of a cluster that holds containers or data
// not adopted yet: adopt's steps, printed (unless asJSON) and returned;
// false when obs shows nothing to adopt, or adopt refuses (plan then
// reports Plan's problems, which name 'pacsd adopt').
func (c *cli) planAdoption(ctx context.Context, cl *spec.Cluster, d reconcile.Deps, obs *reconcile.Observed, asJSON bool) ([]jsonAction, bool) {
	legacy := false
	for _, ns := range obs.Nodes {
		legacy = legacy || ns.Data.Unadopted || ns.Container != nil && !ns.Container.Owned
	}
	if !legacy {
		return nil, false
	}
	plan, problems, err := planAdopt(ctx, cl, d)
	if err != nil || len(plan.Steps) == 0 {
		return nil, false
	}
	if printProblems(c.stderr, "plan", problems) {
		return nil, false
	}
	var out []jsonAction
	for _, s := range plan.Steps {
		for _, l := range s.Lines(cl) {
			out = append(out, jsonAction{Cluster: cl.Name, Node: s.Node, Kind: "adopt", Target: s.Node, Reason: l})
			if !asJSON {
				fmt.Fprintln(c.stdout, l)
			}
		}
	}
	if !asJSON {
		fmt.Fprintf(c.stdout, "(cluster %q: run 'pacsd adopt' to carry these out; apply and run refuse until then)\n", cl.Name)
	}
	return out, true
}
