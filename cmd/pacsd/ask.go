package main

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/pacsd/pacsd/pkg/daemon"
	"github.com/pacsd/pacsd/pkg/reconcile"
	"github.com/pacsd/pacsd/pkg/spec"
	"github.com/pacsd/pacsd/pkg/state"
)

// hostedAsk asks, with pacsd on every host (daemon.etcd), the pacsd of
// the right host to carry out a maintenance command (daemon.Ask), and
// prints what it says.
type hostedAsk struct {
	e   *state.Etcd
	w   io.Writer
	cmd string
}

// askStore is state.Etcd as daemon.Ask uses it.
type askStore struct{ *state.Etcd }

func (s askStore) LeaseHost(ctx context.Context, cluster string) (string, error) {
	h, err := s.PrimaryLease(ctx, cluster)
	if err != nil || h == nil {
		return "", err
	}
	return h.Host, nil
}

func (s askStore) Reporting(ctx context.Context, cluster string) (map[string]bool, error) {
	reps, err := s.ClusterReports(ctx, cluster)
	if err != nil {
		return nil, err
	}
	hosts := map[string]bool{}
	for h := range reps {
		hosts[h] = true
	}
	return hosts, nil
}

// hostedAsker connects to the etcd of f for the command cmd.
func (c *cli) hostedAsker(f *spec.File, cmd string) (*hostedAsk, error) {
	var m everyHost
	host, _ := os.Hostname()
	m.host = "command line on " + host
	e, err := m.etcd(f)
	if err != nil {
		return nil, err
	}
	return &hostedAsk{e: e, w: c.stderr, cmd: cmd}, nil
}

func (h *hostedAsk) close() { _ = h.e.Close() }

// acting returns the acting primary of cl as etcd's record names it.
func (h *hostedAsk) acting(cl *spec.Cluster) (string, error) {
	st, err := h.e.Load(cl.Name)
	if err != nil {
		return "", err
	}
	return reconcile.ActingPrimary(cl, st, nil)
}

// ask has r carried out and prints what the pacsd that does it says.
func (h *hostedAsk) ask(ctx context.Context, cl *spec.Cluster, r reconcile.Request) (reconcile.Request, error) {
	return daemon.Ask(ctx, askStore{h.e}, cl, r, func(line string) {
		fmt.Fprintf(h.w, "pacsd %s: %s\n", h.cmd, line)
	})
}

func (h *hostedAsk) restart(ctx context.Context, cl *spec.Cluster, node string, q reconcile.RestartQuery) (reconcile.RestartDone, error) {
	r, err := h.ask(ctx, cl, reconcile.Request{Command: reconcile.CommandRestart, Node: node, Restart: q, By: q.By})
	if r.Restarted != nil {
		return *r.Restarted, err
	}
	return reconcile.RestartDone{Node: node}, err
}

func (h *hostedAsk) reinit(ctx context.Context, cl *spec.Cluster, node string, q reconcile.ReinitQuery) (reconcile.ReinitDone, error) {
	r, err := h.ask(ctx, cl, reconcile.Request{Command: reconcile.CommandReinit, Node: node, Rebuild: q, By: q.By})
	if r.Reinit != nil {
		return *r.Reinit, err
	}
	return reconcile.ReinitDone{Node: node}, err
}

// failoverHosted is 'pacsd failover NODE' with pacsd on every host: the
// pacsd that can fence the old primary carries it out, and every host's
// pacsd follows the new record.
func (c *cli) failoverHosted(ctx context.Context, t nodeTarget, o reconcile.ManualOptions, by string) int {
	h, err := c.hostedAsker(t.file, "failover")
	if err != nil {
		fmt.Fprintf(c.stderr, "pacsd failover: %v; nothing was done\n", err)
		return exitProblem
	}
	defer h.close()
	r, err := h.ask(ctx, t.cluster, reconcile.Request{Command: reconcile.CommandFailover, Node: t.node, Failover: o, By: by})
	if err != nil {
		fmt.Fprintf(c.stderr, "pacsd failover: %v\n", err)
		return exitProblem
	}
	fmt.Fprintf(c.stdout, "cluster %q: %q is the primary; the pacsd of every host follows the record in etcd ('pacsd status --host HOST' shows it)\n", t.cluster.Name, r.PromotedTo)
	t.fileDiffers(c.stdout)
	return exitOK
}
