package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/pacsd/pacsd/pkg/reconcile"
)

// newReinitCmd is 'pacsd reinit NODE': a standby rebuilt from a fresh base
// backup of the acting primary, its old data moved aside (kept, named
// with the time), started once the backup is complete and waited for until
// it streams. The acting primary is refused, with what to do instead.
func newReinitCmd(c *cli) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "reinit NODE [-f FILE] [--cluster NAME] [--accept-commit-wait]",
		Short: "rebuild a standby from a fresh base backup (its old data kept aside)",
		Long: `Rebuilds NODE, a standby: stops and removes its container, moves its data
aside beside it (data.aside-TIME in its volume or directory: kept, never
deleted; the output says where and how to remove it), takes a fresh base
backup from the acting primary (verified TLS, as every base backup), starts
it and waits until it streams. A rebuild stopped half-way is finished by
the daemon's next pass, 'pacsd apply' or a second reinit: data half built
is never started, and a copy moved aside is never moved over. The count of
base backups that did not finish is reset: a rebuild asked for is a fresh
try. The acting primary is refused (switch over first), and so is any node
while the acting primary does not take writes. With synchronous
replication, the only standby that streams is rebuilt only with
--accept-commit-wait: every commit waits (none is lost) until it streams
again, for as long as its base backup takes. With pacsd on every host,
the pacsd of NODE's host carries it out. Exit 0 when NODE streams again, 1
otherwise.`,
		Example: `  pacsd reinit db2 -f /etc/pacsd/pacs.hcl
  pacsd reinit db3 --cluster pacs`,
		Args: oneNode,
	}
	nf := c.nodeFlags(cmd)
	acceptWait := cmd.Flags().Bool("accept-commit-wait", false, "rebuild a standby although every commit waits until it streams again (synchronous replication, and it is the only standby that streams)")
	cmd.RunE = action(func(args []string) int {
		return c.reinit(nf, args[0], reconcile.ReinitQuery{AcceptCommitWait: *acceptWait, By: asker(cmd, args)})
	})
	return cmd
}

// reinit rebuilds node as q asks.
func (c *cli) reinit(nf nodeFlags, node string, q reconcile.ReinitQuery) int {
	t, code, ok := c.nodeTarget("reinit", nf, node)
	if !ok {
		return code
	}
	ctx, cancel := signalContext(10 * time.Minute)
	defer cancel()
	var done reconcile.ReinitDone
	var err error
	if t.file.EveryHost() {
		h, herr := c.hostedAsker(t.file, "reinit")
		if herr != nil {
			fmt.Fprintf(c.stderr, "pacsd reinit: %v; nothing was changed\n", herr)
			return exitProblem
		}
		defer h.close()
		done, err = h.reinit(ctx, t.cluster, t.node, q)
	} else {
		done, err = reconcile.Reinit(ctx, t.cluster, t.deps, t.node, q, newLogger(c.stderr))
	}
	if err != nil {
		fmt.Fprintf(c.stderr, "pacsd reinit: %v\n", err)
		return exitProblem
	}
	fmt.Fprintf(c.stdout, "cluster %q: %s was rebuilt from a fresh base backup and streams (%s)\n", t.cluster.Name, t.node, done.Took.Round(100*time.Millisecond))
	if done.Aside == "" {
		fmt.Fprintf(c.stdout, "it had no data to keep\n")
		return exitOK
	}
	fmt.Fprintf(c.stdout, "its old data is kept in %s; pacsd never deletes it: once you no longer need it, remove it there with\n  %s\n", done.Kept, done.Remove)
	return exitOK
}
