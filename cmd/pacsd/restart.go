package main

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/pacsd/pacsd/pkg/reconcile"
)

// newRestartCmd is 'pacsd restart NODE|CLUSTER': PostgreSQL of a node, or
// of every node of a cluster (the standbys one at a time, each back to
// streaming before the next, then the primary: in place, or with
// --switchover handed to a standby by a switchover), restarted under the
// cluster's lock, so that the daemon never takes a planned restart for a
// lost primary.
func newRestartCmd(c *cli) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "restart NODE|CLUSTER [-f FILE] [--cluster NAME] [--switchover] [--accept-commit-wait]",
		Short: "restart a node, or every node (standbys first), without a failover",
		Long: `Restarts PostgreSQL of NODE (its container: a fast shutdown, then a start) and
waits until it is back: a standby streaming from the acting primary again,
the primary taking writes again. It acts under the cluster's lock, so the
daemon's failover never takes the restart for a lost primary. Naming a
CLUSTER restarts every node of it: the standbys one at a time, each back to
streaming before the next, then the primary. The primary is restarted in
place, writes being refused meanwhile (the output says for how long), or,
with --switchover, its role is handed to a standby that streams (by the
rules of 'pacsd switchover': no acknowledged write is lost, writes stop for
a switchover's time) and it restarts as a standby.

Nothing is restarted while the acting primary does not take writes, nor,
for a whole cluster, while a standby does not stream. With synchronous
replication, a standby that is the only one streaming is not restarted
unless --accept-commit-wait says that every commit may wait (none is lost)
until it streams again. With pacsd on every host, the pacsd of each node's
host carries its restart out. Exit 0 when every node asked for is back, 1
when one was refused or did not come back (the output says which were
restarted).`,
		Example: `  pacsd restart db2 -f /etc/pacsd/pacs.hcl
  pacsd restart pacs --switchover      # every node of cluster pacs; the primary by switchover
  pacsd restart db1                    # the primary, in place: writes are refused while it restarts
  pacsd restart db2 --accept-commit-wait   # the only synchronous standby: commits wait meanwhile`,
		Args: oneNodeOrCluster,
	}
	nf := c.nodeFlags(cmd)
	cmd.ValidArgsFunction = completeNodeOrCluster
	switchover := cmd.Flags().Bool("switchover", false, "hand the primary's role to a standby by a switchover instead of restarting it in place (writes stop for a switchover's time, not a restart's)")
	acceptWait := cmd.Flags().Bool("accept-commit-wait", false, "restart a standby although every commit waits while it is down (synchronous replication, and it is the only standby that streams)")
	cmd.RunE = action(func(args []string) int {
		return c.restart(nf, args[0], reconcile.RestartQuery{Switchover: *switchover, AcceptCommitWait: *acceptWait, By: asker(cmd, args)})
	})
	return cmd
}

// restart restarts arg, a node or a cluster, as q asks.
func (c *cli) restart(nf nodeFlags, arg string, q reconcile.RestartQuery) int {
	t, code, ok := c.target("restart", nf, arg, true)
	if !ok {
		return code
	}
	q.Whole = t.whole
	asked := []string{t.node}
	if t.whole {
		asked = nil
		for _, n := range t.cluster.Nodes {
			asked = append(asked, n.Name)
		}
	}
	ctx, cancel := signalContext(10 * time.Minute)
	defer cancel()
	log := newLogger(c.stderr)
	var acting string
	var step func(ctx context.Context, node string, q reconcile.RestartQuery) (reconcile.RestartDone, error)
	if t.file.EveryHost() {
		h, err := c.hostedAsker(t.file, "restart")
		if err != nil {
			fmt.Fprintf(c.stderr, "pacsd restart: %v; nothing was restarted\n", err)
			return exitProblem
		}
		defer h.close()
		if acting, err = h.acting(t.cluster); err != nil {
			fmt.Fprintf(c.stderr, "pacsd restart: %v; nothing was restarted\n", err)
			return exitProblem
		}
		step = func(ctx context.Context, node string, q reconcile.RestartQuery) (reconcile.RestartDone, error) {
			return h.restart(ctx, t.cluster, node, q)
		}
	} else {
		var err error
		if acting, err = reconcile.ActingNow(ctx, t.cluster, t.deps); err != nil {
			fmt.Fprintf(c.stderr, "pacsd restart: %v; nothing was restarted\n", err)
			return exitProblem
		}
		step = func(ctx context.Context, node string, q reconcile.RestartQuery) (reconcile.RestartDone, error) {
			return reconcile.RestartNode(ctx, t.cluster, t.deps, node, q, log)
		}
	}
	done, err := reconcile.RestartAll(ctx, t.cluster, acting, asked, q, step)
	for _, r := range done {
		fmt.Fprintf(c.stdout, "cluster %q: %s\n", t.cluster.Name, restartSaid(r))
		if r.SwitchedTo != "" {
			nt := t
			nt.node = r.SwitchedTo
			nt.fileDiffers(c.stdout)
		}
	}
	if err != nil {
		fmt.Fprintf(c.stderr, "pacsd restart: %v\n", err)
		if len(done) > 0 {
			fmt.Fprintf(c.stderr, "pacsd restart: the nodes above were restarted; nothing more was\n")
		}
		return exitProblem
	}
	return exitOK
}

// restartSaid says what the restart of one node did.
func restartSaid(r reconcile.RestartDone) string {
	took := r.Took.Round(100 * time.Millisecond)
	switch {
	case r.SwitchedTo != "":
		return fmt.Sprintf("%s, the primary, handed its role to %s by a switchover (writes stopped for %s), then was restarted and streams from it as a standby (%s in all)", r.Node, r.SwitchedTo, r.WriteGap.Round(10*time.Millisecond), took)
	case r.WriteGap > 0:
		return fmt.Sprintf("%s, the primary, was restarted in place and takes writes again: writes were refused for %s", r.Node, r.WriteGap.Round(10*time.Millisecond))
	}
	return fmt.Sprintf("%s was restarted and streams again (%s)", r.Node, took)
}

// asker says who asks for a command, for the event history: the command
// line (its arguments and the flags given) and the machine it ran on.
func asker(cmd *cobra.Command, args []string) string {
	words := append([]string{"pacsd", cmd.Name()}, args...)
	cmd.Flags().Visit(func(f *pflag.Flag) {
		if f.Value.Type() == "bool" {
			words = append(words, "--"+f.Name)
		} else {
			words = append(words, "--"+f.Name+" "+f.Value.String())
		}
	})
	host, _ := os.Hostname()
	return strings.Join(words, " ") + " on " + host
}

// oneNodeOrCluster requires the NODE or CLUSTER argument.
func oneNodeOrCluster(cmd *cobra.Command, args []string) error {
	switch {
	case len(args) == 0:
		return fmt.Errorf("name the node or the cluster, such as 'pacsd %s db2'", cmd.Name())
	case len(args) > 1:
		return fmt.Errorf("unexpected argument %q: name one node or one cluster", args[1])
	}
	return nil
}

// completeNodeOrCluster completes the NODE|CLUSTER argument: the nodes of
// the file (as completeNode), then its clusters.
func completeNodeOrCluster(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
	nodes, dir := completeNode(cmd, args, toComplete)
	clusters, _ := completeCluster(cmd, args, toComplete)
	return append(nodes, clusters...), dir
}
