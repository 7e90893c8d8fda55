package daemon

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/pacsd/pacsd/pkg/reconcile"
	"github.com/pacsd/pacsd/pkg/spec"
)

// Maintenance commands asked for on the command line with pacsd on every
// host (reconcile.Request): the command line keeps a request in etcd (Ask),
// and the pacsd that must carry it out takes it and carries it out with
// reconcile's executor (serveRequests), under the cluster's lock and, for a
// primary, under its lease, as its own passes and failovers are.

// Requests is what the daemon needs to carry out requests; a Coordination
// that implements it too (state.Etcd does, through cmd/pacsd) serves them.
type Requests interface {
	// WatchRequests calls asked with each request of cluster asked for,
	// until ctx is done.
	WatchRequests(ctx context.Context, cluster string, asked func(reconcile.Request))
	// TakeRequest takes a request for this host's pacsd, once: false when
	// another pacsd took it, or it is gone.
	TakeRequest(ctx context.Context, cluster, id string) (reconcile.Request, bool, error)
	// UpdateRequest writes a taken request's progress and result.
	UpdateRequest(ctx context.Context, r reconcile.Request) error
}

// requestBeat is how often the pacsd carrying out a request says it still
// works on it (and writes what it said meanwhile).
var requestBeat = time.Second

// serveRequests carries out, until ctx is done, the requests of cluster
// that are this pacsd's: for its host, or for the leader while it leads.
func (d *Daemon) serveRequests(ctx context.Context, cluster string) {
	rq, ok := d.hosted.co.(Requests)
	if !ok {
		<-ctx.Done()
		return
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	rq.WatchRequests(ctx, cluster, func(r reconcile.Request) {
		if r.Host != d.hosted.co.Host() && !(r.Leader && d.hosted.leading(cluster)) {
			return
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			d.carryOut(ctx, rq, r)
		}()
	})
}

// carryOut takes request r and carries it out, writing what it says and
// its result into it as it goes.
func (d *Daemon) carryOut(ctx context.Context, rq Requests, r reconcile.Request) {
	taken, ok, err := rq.TakeRequest(ctx, r.Cluster, r.ID)
	if err != nil || !ok {
		if err != nil {
			d.log.Warn("cannot take a request", "cluster", r.Cluster, "command", r.Command, "node", r.Node, "error", err.Error())
		}
		return
	}
	r = taken
	log := d.log.With("request", r.ID, "command", r.Command, "by", r.By)
	log.Info("carrying out a command asked for on the command line", "cluster", r.Cluster, "node", r.Node)
	var mu sync.Mutex
	say := func(line string) {
		mu.Lock()
		r.Say(line)
		mu.Unlock()
	}
	write := func() {
		mu.Lock()
		r.Beat = time.Now().UTC()
		cp := r
		cp.Lines = slices.Clone(r.Lines)
		mu.Unlock()
		wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
		defer cancel()
		if err := rq.UpdateRequest(wctx, cp); err != nil {
			log.Debug("cannot write the request's progress", "error", err.Error())
		}
	}
	beating := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		t := time.NewTicker(requestBeat)
		defer t.Stop()
		for {
			select {
			case <-beating:
				return
			case <-t.C:
				write()
			}
		}
	}()
	say(fmt.Sprintf("the pacsd of host %q took it", d.hosted.co.Host()))
	gate := d.requestGate(r.Cluster) // this host's pass of the cluster ends first, and waits
	gate.Lock()
	res, err := d.request(ctx, r, say, log)
	gate.Unlock()
	close(beating)
	<-stopped
	mu.Lock()
	r.State, r.Restarted, r.Reinit, r.PromotedTo = reconcile.RequestDone, res.Restarted, res.Reinit, res.PromotedTo
	if err != nil {
		var refused *reconcile.RefusedError
		r.Error, r.Refused = err.Error(), errors.As(err, &refused)
	}
	mu.Unlock()
	write()
	d.trigger.Poke() // a pass looks at what changed
}

// request carries r out with the spec and adapters in force.
func (d *Daemon) request(ctx context.Context, r reconcile.Request, say func(string), log *slog.Logger) (reconcile.Request, error) {
	var res reconcile.Request
	snap := d.snap.Load()
	c := clusterNamed(snap.file, r.Cluster)
	if c == nil {
		return res, fmt.Errorf("the file of host %q's pacsd has no cluster %q; nothing was done: the same file must be on every host", d.hosted.co.Host(), r.Cluster)
	}
	deps := snap.deps
	prog := deps.Progress
	deps.Progress = func(node, line string) {
		if prog != nil {
			prog(node, line)
		}
		say(node + ": " + line)
	}
	ctx, cancel := reconcile.WithIdleTimeout(ctx, d.o.PassTimeout)
	defer cancel()
	switch r.Command {
	case reconcile.CommandRestart:
		done, err := reconcile.RestartNode(ctx, c, deps, r.Node, r.Restart, log)
		res.Restarted = &done
		return res, err
	case reconcile.CommandReinit:
		done, err := reconcile.Reinit(ctx, c, deps, r.Node, r.Rebuild, log)
		res.Reinit = &done
		return res, err
	case reconcile.CommandFailover:
		if r.Failover.ConfirmFenced {
			return res, &reconcile.RefusedError{Why: "--confirm-fenced is for one controller, whose engines may not answer; with pacsd on every host the primary's lease, or the old primary's own pacsd, is the fence; nothing was done: leave it out"}
		}
		to, _, err := reconcile.FailoverByHand(ctx, c, deps, r.Node, r.Failover, r.By, log)
		res.PromotedTo = to
		if err == nil {
			d.clearFailoverRefusal(c.Name)
			d.resetBackoff()
			say(fmt.Sprintf("%q is the primary; every host's pacsd follows the record in etcd", to))
		}
		return res, err
	}
	return res, &reconcile.RefusedError{Why: fmt.Sprintf("this pacsd does not know the command %q (an older pacsd: upgrade it)", r.Command)}
}

// requestGate is the mutex that keeps cluster's passes and the requests
// this process carries out on it apart.
func (d *Daemon) requestGate(cluster string) *sync.Mutex {
	m, _ := d.gates.LoadOrStore(cluster, &sync.Mutex{})
	return m.(*sync.Mutex)
}

// fenceOwnPrimary is reconcile.Hosted.FenceOwn: node, of this host, is
// fenced through the local engine, then the primary's lease this pacsd
// holds for it, if any, is given up (and not taken for it again), so that
// the record may name another primary.
func (d *Daemon) fenceOwnPrimary(ctx context.Context, c *spec.Cluster, node string) error {
	if err := d.fenceOwn(ctx, c, node, c.Failover.TTL.Duration); err != nil {
		return err
	}
	l := d.hosted.leaseOf(c.Name)
	if l == nil || l.node != node {
		return nil
	}
	if err := d.releaseFenced(ctx, c, l); err != nil {
		return fmt.Errorf("%w: the primary's lease could not be given up (%v); it expires within %s", reconcile.ErrNotFenced, err, l.ttl)
	}
	return nil
}

// releaseFenced gives up lease l, whose primary this pacsd fenced: it is
// not taken again for that primary in that epoch.
func (d *Daemon) releaseFenced(ctx context.Context, c *spec.Cluster, l *heldLease) error {
	h := d.hosted
	h.mu.Lock()
	h.gaveUp[c.Name] = gaveUp{node: l.node, epoch: l.epoch}
	h.mu.Unlock()
	if !d.dropLease(c.Name, l) {
		return nil
	}
	rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	return l.lease.Release(rctx)
}

// AskStore is what the command line needs to ask for a maintenance
// command with pacsd on every host; state.Etcd provides it (cmd/pacsd
// adapts the lease and the reports).
type AskStore interface {
	// Load returns the cluster's record.
	Load(cluster string) (reconcile.ClusterState, error)
	// LeaseHost is the host whose pacsd holds the primary's lease ("" none).
	LeaseHost(ctx context.Context, cluster string) (string, error)
	// Reporting returns the hosts whose pacsd reports on cluster now.
	Reporting(ctx context.Context, cluster string) (map[string]bool, error)
	PutRequest(ctx context.Context, r reconcile.Request) error
	GetRequest(ctx context.Context, cluster, id string) (reconcile.Request, bool, error)
	CancelRequest(ctx context.Context, cluster, id string) (bool, error)
	DeleteRequest(ctx context.Context, cluster, id string) error
}

// Timeouts of Ask.
var (
	// AskTakeTimeout is how long a request may wait to be taken before
	// it is withdrawn.
	AskTakeTimeout = 30 * time.Second
	// AskBeatTimeout is how long the pacsd carrying out a request may go
	// without saying it still works on it.
	AskBeatTimeout = 30 * time.Second
	askPoll        = 200 * time.Millisecond
)

// Ask has the pacsd that must carry out r (reconcile.RequestHost decides
// which, from the record, the primary's lease and the hosts whose pacsd
// reports) carry it out, passes on what that pacsd says to say, and returns
// the request as it ended; its error is the command's (a
// *reconcile.RefusedError when refused). It withdraws the request when no
// pacsd takes it within AskTakeTimeout (nothing was done then), and gives
// up waiting when the pacsd that took it goes AskBeatTimeout without a
// sign of life, or ctx is done (the command goes on there; its event in
// the history says how it ended).
func Ask(ctx context.Context, s AskStore, c *spec.Cluster, r reconcile.Request, say func(string)) (reconcile.Request, error) {
	st, err := s.Load(c.Name)
	if err != nil {
		return r, err
	}
	acting, err := reconcile.ActingPrimary(c, st, nil)
	if err != nil {
		return r, err
	}
	leaseHost, err := s.LeaseHost(ctx, c.Name)
	if err != nil {
		return r, err
	}
	reporting, err := s.Reporting(ctx, c.Name)
	if err != nil {
		return r, err
	}
	if r.Host, r.Leader, err = reconcile.RequestHost(c, r.Command, r.Node, acting, leaseHost, reporting); err != nil {
		return r, err
	}
	id := make([]byte, 8)
	_, _ = rand.Read(id)
	r.ID, r.Cluster, r.At = hex.EncodeToString(id), c.Name, time.Now().UTC()
	who := fmt.Sprintf("the pacsd of host %q", r.Host)
	if r.Leader {
		who = "the pacsd that leads the cluster"
	}
	say(fmt.Sprintf("asking %s to carry it out (request %s)", who, r.ID))
	if err := s.PutRequest(ctx, r); err != nil {
		return r, err
	}
	asked, seen := time.Now(), 0
	var beat time.Time
	var beatSeen time.Time
	for {
		select {
		case <-ctx.Done():
			if ok, err := s.CancelRequest(context.WithoutCancel(ctx), c.Name, r.ID); err == nil && ok {
				return r, fmt.Errorf("%w; the request was withdrawn before any pacsd took it: nothing was done", ctx.Err())
			}
			return r, fmt.Errorf("%w; %s carries the command out all the same: 'pacsd events %s' shows how it ends", ctx.Err(), who, c.Name)
		case <-time.After(askPoll):
		}
		now, ok, err := s.GetRequest(ctx, c.Name, r.ID)
		switch {
		case err != nil:
			say("cannot read the request's progress: " + err.Error())
			continue
		case !ok:
			return r, fmt.Errorf("the request %s is gone from etcd (this command's etcd session ended?); 'pacsd events %s' shows whether it was carried out", r.ID, c.Name)
		}
		for _, l := range now.NewLines(seen) {
			say(l)
		}
		seen, r = now.Said, now
		switch {
		case r.State == reconcile.RequestAsked && time.Since(asked) > AskTakeTimeout:
			if ok, err := s.CancelRequest(ctx, c.Name, r.ID); err == nil && ok {
				return r, &reconcile.RefusedError{Why: fmt.Sprintf("%s did not take the request within %s, so it was withdrawn and nothing was done: check that pacsd runs there, reaches etcd and is as new as this command (its log, and 'pacsd status --host HOST')", who, AskTakeTimeout)}
			}
		case r.State == reconcile.RequestRunning:
			if !r.Beat.Equal(beat) {
				beat, beatSeen = r.Beat, time.Now()
			}
			if time.Since(beatSeen) > AskBeatTimeout {
				return r, fmt.Errorf("the pacsd of host %q took the request and gave no sign of life for %s (stopped, or cut off from etcd); what it did is in the history: 'pacsd events %s'", r.TakenBy, AskBeatTimeout, c.Name)
			}
		case r.State == reconcile.RequestDone:
			_ = s.DeleteRequest(context.WithoutCancel(ctx), c.Name, r.ID)
			switch {
			case r.Error == "":
				return r, nil
			case r.Refused:
				return r, &reconcile.RefusedError{Why: r.Error}
			}
			return r, errors.New(r.Error)
		}
	}
}
