package main

import (
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/pacsd/pacsd/pkg/reconcile"
)

// runPause puts a cluster in maintenance mode: every pacsd keeps observing
// and reporting it and takes no action on it (no repair, no failover)
// until 'pacsd resume'. It writes the cluster store (the state directory,
// or etcd), so it works whether the daemon runs or not, and records it in
// the event history.
func runPause(c *cli, args []string) int { return setPause(c, "pause", args, true) }

// runResume ends a cluster's maintenance mode.
func runResume(c *cli, args []string) int { return setPause(c, "resume", args, false) }

func setPause(c *cli, cmd string, args []string, paused bool) int {
	fs := c.newFlags(cmd, "CLUSTER [-f FILE]")
	path := c.fileFlag(fs)
	name, code, ok := clusterArg(fs, args)
	if !ok {
		return code
	}
	f := c.loadSpec(cmd, *path)
	if f == nil {
		return exitProblem
	}
	cl, err := pickCluster(f, name)
	if err != nil {
		fmt.Fprintf(c.stderr, "pacsd %s: %s: %v\n", cmd, *path, err)
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
