package main

import (
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/pacsd/pacsd/pkg/reconcile"
	"github.com/pacsd/pacsd/pkg/spec"
)

// newFailoverCmd is 'pacsd failover NODE', the operator's failover: the
// acting primary is lost, and NODE, a standby, is made the primary. The old
// primary is fenced and confirmed stopped first, as by the daemon; a standby
// that may lack acknowledged commits is promoted only with --accept-loss,
// and what it may lack is said first.
func newFailoverCmd(c *cli) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "failover NODE [-f FILE] [--cluster NAME] [--accept-loss] [--confirm-fenced] [--from OLD]",
		Short: "make standby NODE the primary when the primary is lost (fenced first)",
		Long: `For when the acting primary is lost: fences it (its container stopped and
confirmed stopped, so that it can never take writes again), then promotes
NODE, a standby, and converges the rest. NODE is refused, and nothing is
promoted, when it may lack commits the primary acknowledged (beyond max_lag,
its position unknown, not synchronous, another standby ahead); what it may
lack is said, and --accept-loss promotes it anyway. When the old primary's
engine does not answer, its stop cannot be confirmed: make sure it cannot
take writes (power its host off), then give --confirm-fenced. With pacsd on
every host, the pacsd that can fence the old primary carries it out: the
holder of the primary's lease, else the pacsd of the old primary's host,
else, with automatic failover, the leader once the lease has expired; the
others follow the record in etcd. Exit 0 when NODE is the primary, 1 when
it is not.`,
		Example: `  pacsd failover db2 -f /etc/pacsd/pacs.hcl
  pacsd failover db2 --confirm-fenced   # the old primary's host is powered off
  pacsd failover db3 --accept-loss      # promote db3 though it may lack acknowledged commits
  pacsd failover db2 --from db1         # the state directory was lost; db1 was the primary`,
		Args: oneNode,
	}
	nf := c.nodeFlags(cmd)
	acceptLoss := cmd.Flags().Bool("accept-loss", false, "promote NODE even when it may lack acknowledged commits (beyond max_lag, position unknown, not synchronous, another standby ahead)")
	from := cmd.Flags().String("from", "", "`OLD`, the node that was the primary, when pacsd keeps no record of it (a lost or damaged state_dir while the primary is lost); it is fenced like any old primary")
	confirmFenced := cmd.Flags().Bool("confirm-fenced", false, "go on when the old primary's engine cannot confirm that it is stopped: you made sure it cannot accept writes (its host is powered off)")
	_ = cmd.RegisterFlagCompletionFunc("from", completeNodeFlag)
	cmd.RunE = action(func(args []string) int {
		return c.failover(nf, args[0], reconcile.ManualOptions{AcceptLoss: *acceptLoss, ConfirmFenced: *confirmFenced, From: *from}, asker(cmd, args))
	})
	return cmd
}

// failover fences the lost primary of node's cluster and promotes node.
func (c *cli) failover(nf nodeFlags, node string, opts reconcile.ManualOptions, by string) int {
	t, code, ok := c.nodeTarget("failover", nf, node)
	if !ok {
		return code
	}
	ctx, cancel := signalContext(10 * time.Minute)
	defer cancel()
	log := newLogger(c.stderr)
	cl := t.cluster
	if t.file.EveryHost() {
		return c.failoverHosted(ctx, t, opts, by)
	}
	to, old, err := reconcile.FailoverByHand(ctx, cl, t.deps, t.node, opts, by, log)
	if err != nil {
		fmt.Fprintf(c.stderr, "pacsd failover: %v\n", err)
		if errors.Is(err, reconcile.ErrNotFenced) {
			fmt.Fprintf(c.stderr, "pacsd failover: nothing was promoted\n")
		}
		return exitProblem
	}
	res, err := applyWaiting(ctx, c.stderr, "failover", cl, t.deps, log, nil)
	var left *reconcile.NodesLeftError
	if errors.As(err, &left) && opts.ConfirmFenced && onlyHostOf(cl, old, left) {
		// The old primary's host is the one expected to be cut off: the
		// promotion stands, and the daemon (or the next apply) fences it
		// first and makes it follow once its engine answers.
		fmt.Fprintf(c.stdout, "cluster %q: %q is the primary; the rest converged (%d actions) but for the nodes of the old primary's host, whose Docker engine does not answer: when it answers again, a running old primary is fenced first and rejoins as a standby:\n%v\n", cl.Name, to, len(res.Done), err)
		t.fileDiffers(c.stdout)
		return exitOK
	}
	if err != nil {
		fmt.Fprintf(c.stderr, "pacsd failover: %q is the primary, but converging the rest failed: %v; run 'pacsd apply' again\n", to, err)
		return exitProblem
	}
	fmt.Fprintf(c.stdout, "cluster %q: %q is the primary; converged (%d actions)\n", cl.Name, to, len(res.Done))
	t.fileDiffers(c.stdout)
	return exitOK
}

// onlyHostOf reports whether the nodes left are all on the host of node
// old, the old primary the operator confirmed stopped (--confirm-fenced):
// that host is expected to be cut off.
func onlyHostOf(cl *spec.Cluster, old string, left *reconcile.NodesLeftError) bool {
	on := cl.Node(old)
	if on == nil {
		return false
	}
	for _, p := range left.Problems {
		if n := cl.Node(p.Node); n == nil || n.Host != on.Host {
			return false
		}
	}
	return true
}
