package state

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/pacsd/pacsd/pkg/reconcile"
)

// Requests of maintenance commands (reconcile.Request), with pacsd on
// every host: one key each, clusters/C/requests/ID, put by the command
// line with its session's lease (a command line that stops takes its
// request with it once its session expires), then taken and updated by
// the pacsd that carries it out, which keeps that lease.

func (e *Etcd) requestKey(cluster, id string) string {
	return e.key("clusters", cluster, "requests", id)
}

// PutRequest keeps r (its State is set to asked) until its asker's session
// ends.
func (e *Etcd) PutRequest(ctx context.Context, r reconcile.Request) error {
	s, err := e.Session(ctx)
	if err != nil {
		return err
	}
	r.State = reconcile.RequestAsked
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, e.o.OpTimeout)
	defer cancel()
	if _, err := e.cli.Put(ctx, e.requestKey(r.Cluster, r.ID), string(b), clientv3.WithLease(s.Lease())); err != nil {
		return unreachable(fmt.Sprintf("asking for %s of node %q of cluster %q", r.Command, r.Node, r.Cluster), err)
	}
	return nil
}

// GetRequest returns the request id of cluster; false when it is gone.
func (e *Etcd) GetRequest(ctx context.Context, cluster, id string) (reconcile.Request, bool, error) {
	r, _, ok, err := e.getRequest(ctx, cluster, id)
	return r, ok, err
}

func (e *Etcd) getRequest(ctx context.Context, cluster, id string) (reconcile.Request, int64, bool, error) {
	ctx, cancel := context.WithTimeout(ctx, e.o.OpTimeout)
	defer cancel()
	resp, err := e.cli.Get(ctx, e.requestKey(cluster, id))
	if err != nil {
		return reconcile.Request{}, 0, false, unreachable(fmt.Sprintf("reading the request %s of cluster %q", id, cluster), err)
	}
	if len(resp.Kvs) == 0 {
		return reconcile.Request{}, 0, false, nil
	}
	var r reconcile.Request
	if err := json.Unmarshal(resp.Kvs[0].Value, &r); err != nil {
		return reconcile.Request{}, 0, false, fmt.Errorf("while reading the request %s of cluster %q: %v", id, cluster, err)
	}
	return r, resp.Kvs[0].ModRevision, true, nil
}

// TakeRequest takes the request id of cluster for this pacsd's host when
// it is still asked for, in one transaction, so that one pacsd only ever
// carries it out; it returns the request as taken, and false when it was
// taken, cancelled or gone meanwhile.
func (e *Etcd) TakeRequest(ctx context.Context, cluster, id string) (reconcile.Request, bool, error) {
	r, rev, ok, err := e.getRequest(ctx, cluster, id)
	if err != nil || !ok || r.State != reconcile.RequestAsked {
		return r, false, err
	}
	r.State, r.TakenBy, r.Beat = reconcile.RequestRunning, e.o.Host, time.Now().UTC()
	b, err := json.Marshal(r)
	if err != nil {
		return r, false, err
	}
	k := e.requestKey(cluster, id)
	ctx, cancel := context.WithTimeout(ctx, e.o.OpTimeout)
	defer cancel()
	resp, err := e.cli.Txn(ctx).If(clientv3.Compare(clientv3.ModRevision(k), "=", rev)).Then(clientv3.OpPut(k, string(b), clientv3.WithIgnoreLease())).Commit()
	if err != nil {
		return r, false, unreachable(fmt.Sprintf("taking the request %s of cluster %q", id, cluster), err)
	}
	return r, resp.Succeeded, nil
}

// UpdateRequest writes r over its key while the key exists (its asker may
// have gone: then nothing is written, and that is no error).
func (e *Etcd) UpdateRequest(ctx context.Context, r reconcile.Request) error {
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	k := e.requestKey(r.Cluster, r.ID)
	ctx, cancel := context.WithTimeout(ctx, e.o.OpTimeout)
	defer cancel()
	if _, err := e.cli.Txn(ctx).If(clientv3.Compare(clientv3.CreateRevision(k), ">", 0)).Then(clientv3.OpPut(k, string(b), clientv3.WithIgnoreLease())).Commit(); err != nil {
		return unreachable(fmt.Sprintf("updating the request %s of cluster %q", r.ID, r.Cluster), err)
	}
	return nil
}

// CancelRequest removes the request id of cluster while no pacsd has
// taken it; false when one has (it goes on).
func (e *Etcd) CancelRequest(ctx context.Context, cluster, id string) (bool, error) {
	r, rev, ok, err := e.getRequest(ctx, cluster, id)
	if err != nil || !ok {
		return ok, err
	}
	if r.State != reconcile.RequestAsked {
		return false, nil
	}
	k := e.requestKey(cluster, id)
	ctx, cancel := context.WithTimeout(ctx, e.o.OpTimeout)
	defer cancel()
	resp, err := e.cli.Txn(ctx).If(clientv3.Compare(clientv3.ModRevision(k), "=", rev)).Then(clientv3.OpDelete(k)).Commit()
	if err != nil {
		return false, unreachable(fmt.Sprintf("cancelling the request %s of cluster %q", id, cluster), err)
	}
	return resp.Succeeded, nil
}

// DeleteRequest removes the request id of cluster.
func (e *Etcd) DeleteRequest(ctx context.Context, cluster, id string) error {
	ctx, cancel := context.WithTimeout(ctx, e.o.OpTimeout)
	defer cancel()
	if _, err := e.cli.Delete(ctx, e.requestKey(cluster, id)); err != nil {
		return unreachable(fmt.Sprintf("removing the request %s of cluster %q", id, cluster), err)
	}
	return nil
}

// WatchRequests calls asked with each request of cluster that is asked
// for, as it is put and, when the watch starts or starts again after a
// break (etcd did not answer), each one kept already, until ctx is done.
func (e *Etcd) WatchRequests(ctx context.Context, cluster string, asked func(reconcile.Request)) {
	pfx := e.key("clusters", cluster, "requests") + "/"
	each := func(value []byte) {
		var r reconcile.Request
		if json.Unmarshal(value, &r) == nil && r.State == reconcile.RequestAsked {
			asked(r)
		}
	}
	for ctx.Err() == nil {
		gctx, cancel := context.WithTimeout(ctx, e.o.OpTimeout)
		resp, err := e.cli.Get(gctx, pfx, clientv3.WithPrefix())
		cancel()
		if err == nil {
			for _, kv := range resp.Kvs {
				each(kv.Value)
			}
			wc := e.cli.Watch(clientv3.WithRequireLeader(ctx), pfx, clientv3.WithPrefix(), clientv3.WithRev(resp.Header.Revision+1))
			for resp := range wc {
				if resp.Err() != nil {
					break
				}
				for _, ev := range resp.Events {
					if ev.Type == clientv3.EventTypePut && strings.HasPrefix(string(ev.Kv.Key), pfx) {
						each(ev.Kv.Value)
					}
				}
			}
		}
		if ctx.Err() != nil {
			return
		}
		t := time.NewTimer(time.Second)
		select {
		case <-ctx.Done():
		case <-t.C:
		}
		t.Stop()
	}
}
