package main

import (
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/pacsd/pacsd/pkg/reconcile"
)

// newPauseCmd is 'pacsd pause CLUSTER': it puts a cluster in maintenance
// mode: every pacsd keeps observing and reporting it and takes no action on
// it (no repair, no failover) until 'pacsd resume'. It writes the cluster
// store (the state directory, or etcd), so it works whether the daemon runs
// or not, and records it in the event history.
func newPauseCmd(c *cli) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "pause CLUSTER [-f FILE]",
		Short: "maintenance: pacsd observes and reports the cluster, and takes no action on it",
		Long: `Puts CLUSTER (the file's only cluster when it is left out) in maintenance
mode: every pacsd keeps observing and reporting it (status, metrics, the
status page) and takes no action on it, no repair and no failover, until
'pacsd resume CLUSTER'. It writes the cluster store (daemon.state_dir, or
etcd with daemon.etcd), so it works whether the daemon runs or not, and it is
recorded in the event history. Pausing a paused cluster changes nothing.`,
		Example: `  pacsd pause pacs -f /etc/pacsd/pacs.hcl
  pacsd pause pacs && docker restart pacs-db2 && pacsd resume pacs`,
		Args:              atMostOne("cluster"),
		ValidArgsFunction: completeCluster,
	}
	path := c.fileFlag(cmd)
	cmd.RunE = action(func(args []string) int { return c.setPause("pause", *path, clusterOf(args), true) })
	return cmd
}

// newResumeCmd is 'pacsd resume CLUSTER': it ends a cluster's maintenance mode.
func newResumeCmd(c *cli) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "resume CLUSTER [-f FILE]",
		Short: "end maintenance: pacsd acts on the cluster again",
		Long: `Ends the maintenance mode of CLUSTER (the file's only cluster when it is
left out) that 'pacsd pause' began: pacsd repairs it again, and fails it over
when its failover is automatic. Recorded in the event history; resuming a
cluster that is not paused changes nothing.`,
		Example:           `  pacsd resume pacs -f /etc/pacsd/pacs.hcl`,
		Args:              atMostOne("cluster"),
		ValidArgsFunction: completeCluster,
	}
	path := c.fileFlag(cmd)
	cmd.RunE = action(func(args []string) int { return c.setPause("resume", *path, clusterOf(args), false) })
	return cmd
}

// setPause pauses (paused) or resumes the cluster name of the file at path,
// for the command cmd.
func (c *cli) setPause(cmd, path, name string, paused bool) int {
	f := c.loadSpec(cmd, path)
	if f == nil {
		return exitProblem
	}
	cl, err := pickCluster(f, name)
	if err != nil {
		fmt.Fprintf(c.stderr, "pacsd %s: %s: %v\n", cmd, path, err)
		return exitUsage
	}
	store, done, err := c.clusterStore(f)
	if err != nil {
		fmt.Fprintf(c.stderr, "pacsd %s: cannot open the cluster store: %v; nothing was changed\n", cmd, err)
		return exitProblem
	}
	defer done()
	before, err := store.LoadPause(cl.Name)
	if errors.Is(err, reconcile.ErrRecordDamaged) {
		// Damaged: the daemon takes it as not paused; what is asked now
		// replaces it.
		fmt.Fprintf(c.stderr, "pacsd %s: %v; it is replaced\n", cmd, err)
		before, err = reconcile.Pause{Paused: !paused}, nil
	}
	if err != nil {
		fmt.Fprintf(c.stderr, "pacsd %s: %v; nothing was changed\n", cmd, err)
		return exitProblem
	}
	host, _ := os.Hostname()
	ps := reconcile.Pause{Paused: paused, At: time.Now().UTC(), By: "pacsd " + cmd + " on " + host}
	if before.Paused != paused {
		if err := store.SavePause(cl.Name, ps); err != nil {
			fmt.Fprintf(c.stderr, "pacsd %s: cluster %q: %v\n", cmd, cl.Name, err)
			return exitProblem
		}
		e := reconcile.Event{At: ps.At, Cluster: cl.Name, Kind: cmd, Reason: "asked for on the command line (" + ps.By + ")", Result: "ok"}
		_ = store.AppendEvent(e) // the history is for reading; the pause is in place
	}
	if paused {
		fmt.Fprintf(c.stdout, "cluster %q is paused: pacsd keeps observing and reporting it, and takes no action on it (no repair, no failover) until 'pacsd resume %s'\n", cl.Name, cl.Name)
	} else {
		fmt.Fprintf(c.stdout, "cluster %q is resumed: pacsd acts on it again (repairs, and failover when it is automatic)\n", cl.Name)
	}
	return exitOK
}
