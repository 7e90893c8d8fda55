package state

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"path"
	"strings"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
	"go.uber.org/zap"

	"github.com/pacsd/pacsd/pkg/reconcile"
)

// EtcdOptions configure an Etcd store.
type EtcdOptions struct {
	// Endpoints are the etcd members' client URLs.
	Endpoints []string
	// TLS verifies the members and authenticates pacsd (nil: plain http).
	TLS *tls.Config
	// Prefix is where pacsd keeps its keys ("/pacsd").
	Prefix string
	// Host is the host block of this pacsd.
	Host string
	// SessionTTL is the lifetime of this pacsd's session without renewal:
	// its locks, its leadership and its host reports go away that long
	// after it stops or is cut off. It is rounded up to whole seconds.
	SessionTTL time.Duration
	// OpTimeout bounds each call to etcd (default 2 s).
	OpTimeout time.Duration
}

// Etcd is the cluster store of the mode "every host" (daemon.etcd): every
// host's pacsd shares the cluster's record, last sight, locks, leadership,
// primary lease and host reports through etcd, which alone decides who
// holds what; pacsd implements no consensus of its own.
//
// Keys, under Prefix: clusters/C/record and clusters/C/seen (JSON, as the
// state directory's files), locks/NAME (a mutex per lock name),
// clusters/C/leader (the election), clusters/C/lease (the primary's lease:
// which node and host hold it), hosts/H/C (host H's report on cluster C).
//
// Save is a compare-and-swap against the revision of the record this
// process last read or wrote, and a change of the acting primary is written
// only while no pacsd holds the primary's lease (see AcquireLease): a
// primary is never replaced while its host may still run it, and a host
// never takes the lease for a node the record no longer names.
type Etcd struct {
	o   EtcdOptions
	cli *clientv3.Client

	mu   sync.Mutex
	sess *concurrency.Session
	// revs is the record's revision as this process last read or wrote
	// it, per cluster (0: none), and the acting primary it named.
	revs map[string]recordRev
	// held are the locks this process holds, by name.
	held map[string]*concurrency.Mutex
	// stale are the locks this process let go of whose release etcd did
	// not confirm yet, by name (see releaseLater).
	stale map[string]*concurrency.Mutex
}

type recordRev struct {
	rev    int64
	acting string
}

// ErrRecordChanged is matched by Save's error when another pacsd wrote the
// record since this one read it, or the primary's lease is still held
// while the acting primary would change: nothing was written.
var ErrRecordChanged = errors.New("the cluster's record changed in etcd since it was read")

// OpenEtcd connects to etcd. It does not wait for an answer: a member that
// does not answer fails the first call, within OpTimeout.
func OpenEtcd(o EtcdOptions) (*Etcd, error) {
	if len(o.Endpoints) == 0 {
		return nil, errors.New("while connecting to etcd: no endpoint is configured (daemon.etcd.endpoints)")
	}
	if o.OpTimeout == 0 {
		o.OpTimeout = 2 * time.Second
	}
	if o.SessionTTL <= 0 {
		o.SessionTTL = 10 * time.Second
	}
	o.Prefix = strings.TrimSuffix(o.Prefix, "/")
	cli, err := clientv3.New(clientv3.Config{
		Endpoints:            o.Endpoints,
		TLS:                  o.TLS,
		DialTimeout:          o.OpTimeout,
		DialKeepAliveTime:    o.OpTimeout,
		DialKeepAliveTimeout: o.OpTimeout,
		Logger:               zap.NewNop(),
	})
	if err != nil {
		return nil, fmt.Errorf("while connecting to etcd (%s): %w", strings.Join(o.Endpoints, ", "), err)
	}
	return &Etcd{o: o, cli: cli, revs: map[string]recordRev{}, held: map[string]*concurrency.Mutex{}, stale: map[string]*concurrency.Mutex{}}, nil
}

// Close ends the session (its locks, leadership and reports are let go at
// once) and the connection.
func (e *Etcd) Close() error {
	e.mu.Lock()
	s := e.sess
	e.sess = nil
	e.mu.Unlock()
	if s != nil {
		_ = s.Close() // revokes the session's lease (bounded by the session's own timeout)
	}
	return e.cli.Close()
}

// Host is the host block of this pacsd.
func (e *Etcd) Host() string { return e.o.Host }

func (e *Etcd) key(parts ...string) string {
	return e.o.Prefix + "/" + path.Join(parts...)
}

func (e *Etcd) ctx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), e.o.OpTimeout)
}

// unreachable wraps an error of a call to etcd with what to do.
func unreachable(what string, err error) error {
	return fmt.Errorf("while %s in etcd: %w; check that a quorum of etcd members answers from this host (daemon.etcd.endpoints)", what, err)
}

// Load returns the cluster's record (the zero state when none is stored);
// a record that is not one Save wrote matches reconcile.ErrRecordDamaged.
func (e *Etcd) Load(cluster string) (reconcile.ClusterState, error) {
	ctx, cancel := e.ctx()
	defer cancel()
	k := e.key("clusters", cluster, "record")
	resp, err := e.cli.Get(ctx, k)
	if err != nil {
		return reconcile.ClusterState{}, unreachable(fmt.Sprintf("reading the record of cluster %q", cluster), err)
	}
	var st reconcile.ClusterState
	var rev int64
	if len(resp.Kvs) == 1 {
		rev = resp.Kvs[0].ModRevision
		if err := decodeStrict(resp.Kvs[0].Value, &st, "epoch"); err != nil {
			e.remember(cluster, recordRev{rev: rev})
			return reconcile.ClusterState{}, fmt.Errorf("while reading the state of cluster %q: %w: etcd key %s: %v", cluster, reconcile.ErrRecordDamaged, k, err)
		}
		if st.Epoch < 0 {
			e.remember(cluster, recordRev{rev: rev})
			return reconcile.ClusterState{}, fmt.Errorf("while reading the state of cluster %q: %w: etcd key %s: the epoch %d is negative", cluster, reconcile.ErrRecordDamaged, k, st.Epoch)
		}
	}
	e.remember(cluster, recordRev{rev: rev, acting: st.Acting})
	return st, nil
}

func (e *Etcd) remember(cluster string, r recordRev) {
	e.mu.Lock()
	e.revs[cluster] = r
	e.mu.Unlock()
}

// decodeStrict decodes one JSON object with each of the keys required and
// only fields of v.
func decodeStrict(b []byte, v any, required ...string) error {
	var keys map[string]json.RawMessage
	if err := json.Unmarshal(b, &keys); err != nil {
		return err
	}
	if keys == nil {
		return errors.New("it is not a JSON object")
	}
	for _, k := range required {
		if _, ok := keys[k]; !ok {
			return fmt.Errorf("it has no %q", k)
		}
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	return dec.Decode(v)
}

// Save writes the cluster's record while this process holds the cluster's
// lock (Lock; checked in etcd, in the same transaction: a lock lost with an
// expired session writes nothing) and the record is still the one this
// process last read or wrote; when the acting primary changes, only while
// no pacsd holds the primary's lease. Otherwise nothing is written and the
// error matches ErrRecordChanged.
func (e *Etcd) Save(cluster string, st reconcile.ClusterState) error {
	b, err := json.Marshal(st)
	if err != nil {
		return err
	}
	e.mu.Lock()
	seen := e.revs[cluster]
	lock := e.held[cluster]
	e.mu.Unlock()
	if lock == nil {
		return fmt.Errorf("while saving the record of cluster %q: %w: this pacsd does not hold the cluster's lock in etcd; nothing was written", cluster, ErrRecordChanged)
	}
	k := e.key("clusters", cluster, "record")
	lease := e.key("clusters", cluster, "lease")
	// Still the lock's owner (its session may have expired meanwhile, and
	// another pacsd acted), and still the record this process read.
	conds := []clientv3.Cmp{lock.IsOwner(), clientv3.Compare(clientv3.ModRevision(k), "=", seen.rev)}
	replaces := seen.acting != "" && st.Acting != seen.acting
	if replaces {
		conds = append(conds, clientv3.Compare(clientv3.CreateRevision(lease), "=", 0))
	}
	ctx, cancel := e.ctx()
	defer cancel()
	resp, err := e.cli.Txn(ctx).If(conds...).Then(clientv3.OpPut(k, string(b))).Else(clientv3.OpGet(lease)).Commit()
	if err != nil {
		return unreachable(fmt.Sprintf("saving the record of cluster %q", cluster), err)
	}
	if !resp.Succeeded {
		if replaces {
			if kvs := resp.Responses[0].GetResponseRange().Kvs; len(kvs) == 1 {
				return fmt.Errorf("while saving the record of cluster %q: %w: %s still holds the primary's lease, so %q is not replaced by %q; nothing was written", cluster, ErrRecordChanged, holderOf(kvs[0].Value), seen.acting, st.Acting)
			}
		}
		return fmt.Errorf("while saving the record of cluster %q: %w (another host's pacsd wrote it); nothing was written: it is read again", cluster, ErrRecordChanged)
	}
	e.remember(cluster, recordRev{rev: resp.Header.Revision, acting: st.Acting})
	return nil
}

// LoadSeen returns the last sight of the cluster's healthy primary.
func (e *Etcd) LoadSeen(cluster string) (reconcile.LastSeen, error) {
	ctx, cancel := e.ctx()
	defer cancel()
	var ls reconcile.LastSeen
	resp, err := e.cli.Get(ctx, e.key("clusters", cluster, "seen"))
	if err != nil {
		return ls, unreachable(fmt.Sprintf("reading the last sight of cluster %q's primary", cluster), err)
	}
	if len(resp.Kvs) == 1 {
		if err := json.Unmarshal(resp.Kvs[0].Value, &ls); err != nil {
			return reconcile.LastSeen{}, fmt.Errorf("while reading the last sight of cluster %q's primary: %v", cluster, err)
		}
	}
	return ls, nil
}

// SaveSeen keeps the last sight of the cluster's healthy primary.
func (e *Etcd) SaveSeen(cluster string, ls reconcile.LastSeen) error {
	b, err := json.Marshal(ls)
	if err != nil {
		return err
	}
	ctx, cancel := e.ctx()
	defer cancel()
	if _, err := e.cli.Put(ctx, e.key("clusters", cluster, "seen"), string(b)); err != nil {
		return unreachable(fmt.Sprintf("saving the last sight of cluster %q's primary", cluster), err)
	}
	return nil
}

// Session returns this pacsd's session, a new one when the last ended (its
// lease expired while cut off from etcd). Its locks, leadership and reports
// end with it.
func (e *Etcd) Session(ctx context.Context) (*concurrency.Session, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.sess != nil {
		select {
		case <-e.sess.Done():
			e.sess = nil
		default:
			return e.sess, nil
		}
	}
	ttl := int(math.Ceil(e.o.SessionTTL.Seconds()))
	gctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), e.o.OpTimeout)
	defer cancel()
	g, err := e.cli.Grant(gctx, int64(ttl))
	if err != nil {
		return nil, unreachable("starting this pacsd's session", err)
	}
	s, err := concurrency.NewSession(e.cli, concurrency.WithLease(g.ID), concurrency.WithContext(context.WithoutCancel(ctx)))
	if err != nil {
		return nil, unreachable("starting this pacsd's session", err)
	}
	e.sess = s
	return s, nil
}

// Lock takes the lock name (a cluster's, or a node's work lock), shared by
// the pacsd of every host: an etcd mutex of this pacsd's session, so that a
// pacsd that stops or is cut off lets go of it when its session expires. It
// waits until ctx is done (one try when ctx is done already); then the
// error matches reconcile.ErrLocked.
func (e *Etcd) Lock(ctx context.Context, name string) (func(), error) {
	s, err := e.Session(ctx)
	if err != nil {
		return nil, err
	}
	// A lock of this name that this pacsd could not release yet has the
	// key a new one would take (the key is the session's): it is released
	// first, so that its later release never takes the new one with it.
	e.mu.Lock()
	if old := e.stale[name]; old != nil {
		uctx, cancel := e.ctx()
		err := old.Unlock(uctx)
		cancel()
		if err != nil {
			e.mu.Unlock()
			return nil, unreachable(fmt.Sprintf("releasing the lock %q this pacsd took before", name), err)
		}
		delete(e.stale, name)
	}
	e.mu.Unlock()
	m := concurrency.NewMutex(s, e.key("locks", name))
	if ctx.Err() != nil {
		tctx, cancel := e.ctx()
		defer cancel()
		switch err := m.TryLock(tctx); {
		case errors.Is(err, concurrency.ErrLocked):
			return nil, &BusyError{Path: "etcd " + e.key("locks", name), ctx: ctx.Err()}
		case err != nil:
			return nil, unreachable(fmt.Sprintf("taking the lock %q", name), err)
		}
	} else if err := m.Lock(ctx); err != nil {
		if ctx.Err() != nil {
			return nil, &BusyError{Path: "etcd " + e.key("locks", name), ctx: ctx.Err()}
		}
		return nil, unreachable(fmt.Sprintf("taking the lock %q", name), err)
	}
	e.mu.Lock()
	e.held[name] = m
	e.mu.Unlock()
	return func() {
		e.mu.Lock()
		if e.held[name] == m {
			delete(e.held, name)
		}
		e.mu.Unlock()
		uctx, cancel := e.ctx()
		err := m.Unlock(uctx)
		cancel()
		if err != nil {
			// etcd did not answer: the lock stays taken while this
			// pacsd's session lives, which may be for ever; it is
			// released as soon as etcd answers again.
			e.mu.Lock()
			e.stale[name] = m
			e.mu.Unlock()
			go e.releaseLater(name, m, s)
		}
	}, nil
}

// staleRetry is how often a lock whose release etcd did not confirm is
// released again.
var staleRetry = 500 * time.Millisecond

// releaseLater releases the lock name (m, of session s) until etcd
// confirms it, the session ends (and with it the lock), or a new Lock of
// the name released it first.
func (e *Etcd) releaseLater(name string, m *concurrency.Mutex, s *concurrency.Session) {
	for {
		select {
		case <-s.Done():
			e.mu.Lock()
			if e.stale[name] == m {
				delete(e.stale, name)
			}
			e.mu.Unlock()
			return
		case <-time.After(staleRetry):
		}
		e.mu.Lock()
		if e.stale[name] != m {
			e.mu.Unlock()
			return
		}
		uctx, cancel := e.ctx()
		err := m.Unlock(uctx)
		cancel()
		if err == nil {
			delete(e.stale, name)
		}
		e.mu.Unlock()
		if err == nil {
			return
		}
	}
}

// Campaign waits until this pacsd leads cluster (or ctx is done), then
// returns a channel closed when it no longer does (its session ended) and
// the resignation.
func (e *Etcd) Campaign(ctx context.Context, cluster string) (<-chan struct{}, func(), error) {
	s, err := e.Session(ctx)
	if err != nil {
		return nil, nil, err
	}
	el := concurrency.NewElection(s, e.key("clusters", cluster, "leader"))
	if err := el.Campaign(ctx, e.o.Host); err != nil {
		return nil, nil, unreachable(fmt.Sprintf("campaigning to lead cluster %q", cluster), err)
	}
	return s.Done(), func() {
		rctx, cancel := e.ctx()
		defer cancel()
		_ = el.Resign(rctx)
	}, nil
}

// Leader returns the host whose pacsd leads cluster, "" when none does.
func (e *Etcd) Leader(ctx context.Context, cluster string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, e.o.OpTimeout)
	defer cancel()
	resp, err := e.cli.Get(ctx, e.key("clusters", cluster, "leader")+"/", clientv3.WithPrefix(), clientv3.WithSort(clientv3.SortByCreateRevision, clientv3.SortAscend), clientv3.WithLimit(1))
	if err != nil {
		return "", unreachable(fmt.Sprintf("reading the leader of cluster %q", cluster), err)
	}
	if len(resp.Kvs) == 0 {
		return "", nil
	}
	return string(resp.Kvs[0].Value), nil
}

// LeaseHolder is who holds a cluster's primary lease.
type LeaseHolder struct {
	Node string `json:"node"`
	Host string `json:"host"`
}

func holderOf(b []byte) string {
	var h LeaseHolder
	if json.Unmarshal(b, &h) != nil {
		return "another pacsd"
	}
	return fmt.Sprintf("the pacsd of host %q (for node %q)", h.Host, h.Node)
}

// PrimaryLease returns who holds cluster's primary lease, nil when no one
// does (it expired or was given up, or was never taken).
func (e *Etcd) PrimaryLease(ctx context.Context, cluster string) (*LeaseHolder, error) {
	ctx, cancel := context.WithTimeout(ctx, e.o.OpTimeout)
	defer cancel()
	resp, err := e.cli.Get(ctx, e.key("clusters", cluster, "lease"))
	if err != nil {
		return nil, unreachable(fmt.Sprintf("reading the primary's lease of cluster %q", cluster), err)
	}
	if len(resp.Kvs) == 0 {
		return nil, nil
	}
	var h LeaseHolder
	if err := json.Unmarshal(resp.Kvs[0].Value, &h); err != nil {
		return nil, fmt.Errorf("while reading the primary's lease of cluster %q: %v", cluster, err)
	}
	return &h, nil
}

// leasedMark is the last acting primary and epoch for which a lease was
// taken: a primary never leased in its epoch (a cluster starting, a
// promotion whose host has not taken the lease yet) is not failed over for
// a missing lease.
type leasedMark struct {
	Node  string `json:"node"`
	Epoch int64  `json:"epoch"`
}

// Leased returns the node and epoch for which cluster's primary lease was
// last taken ("" when never).
func (e *Etcd) Leased(ctx context.Context, cluster string) (string, int64, error) {
	ctx, cancel := context.WithTimeout(ctx, e.o.OpTimeout)
	defer cancel()
	resp, err := e.cli.Get(ctx, e.key("clusters", cluster, "leased"))
	if err != nil {
		return "", 0, unreachable(fmt.Sprintf("reading for which primary cluster %q's lease was taken", cluster), err)
	}
	if len(resp.Kvs) == 0 {
		return "", 0, nil
	}
	var m leasedMark
	if err := json.Unmarshal(resp.Kvs[0].Value, &m); err != nil {
		return "", 0, fmt.Errorf("while reading for which primary cluster %q's lease was taken: %v", cluster, err)
	}
	return m.Node, m.Epoch, nil
}

// Lease is a primary's lease as its host's pacsd holds it.
type Lease struct {
	e       *Etcd
	cluster string
	Holder  LeaseHolder
	ID      clientv3.LeaseID
	TTL     time.Duration
}

// ErrLeaseRefused is matched by AcquireLease's error when the record does
// not name the node as the acting primary, or another host's pacsd holds
// the lease.
var ErrLeaseRefused = errors.New("the primary's lease is not for this host")

// AcquireLease takes cluster's primary lease for node, run by this host,
// for ttl: only while the record names node as the acting primary (or, with
// no record yet, when fileprimary is node), and the lease is free or held
// by this same host for node (a restarted pacsd takes over its
// predecessor's). The record and the lease are compared and written in one
// transaction, so that a failover that records another primary and a host
// that takes the lease never both succeed.
func (e *Etcd) AcquireLease(ctx context.Context, cluster, node, fileprimary string, ttl time.Duration) (*Lease, error) {
	ctx, cancel := context.WithTimeout(ctx, e.o.OpTimeout)
	defer cancel()
	rk, lk := e.key("clusters", cluster, "record"), e.key("clusters", cluster, "lease")
	resp, err := e.cli.Txn(ctx).Then(clientv3.OpGet(rk), clientv3.OpGet(lk)).Commit()
	if err != nil {
		return nil, unreachable(fmt.Sprintf("reading the record and lease of cluster %q", cluster), err)
	}
	rec, cur := resp.Responses[0].GetResponseRange().Kvs, resp.Responses[1].GetResponseRange().Kvs
	var rev, epoch int64
	acting := fileprimary
	if len(rec) == 1 {
		var st reconcile.ClusterState
		if err := decodeStrict(rec[0].Value, &st, "epoch"); err != nil {
			return nil, fmt.Errorf("cluster %q: %w: its record is damaged (%v)", cluster, ErrLeaseRefused, err)
		}
		rev, acting, epoch = rec[0].ModRevision, st.Acting, st.Epoch
		if acting == "" {
			acting = fileprimary
		}
	}
	if acting != node {
		return nil, fmt.Errorf("cluster %q: %w: the record names %q as the acting primary, not %q", cluster, ErrLeaseRefused, acting, node)
	}
	me := LeaseHolder{Node: node, Host: e.o.Host}
	val, _ := json.Marshal(me)
	conds := []clientv3.Cmp{clientv3.Compare(clientv3.ModRevision(rk), "=", rev)}
	var old clientv3.LeaseID
	if len(cur) == 1 {
		if !bytes.Equal(cur[0].Value, val) {
			return nil, fmt.Errorf("cluster %q: %w: %s holds it", cluster, ErrLeaseRefused, holderOf(cur[0].Value))
		}
		old = clientv3.LeaseID(cur[0].Lease)
		conds = append(conds, clientv3.Compare(clientv3.ModRevision(lk), "=", cur[0].ModRevision))
	} else {
		conds = append(conds, clientv3.Compare(clientv3.CreateRevision(lk), "=", 0))
	}
	secs := int64(math.Ceil(ttl.Seconds()))
	g, err := e.cli.Grant(ctx, secs)
	if err != nil {
		return nil, unreachable(fmt.Sprintf("granting the primary's lease of cluster %q", cluster), err)
	}
	mark, _ := json.Marshal(leasedMark{Node: node, Epoch: epoch})
	put, err := e.cli.Txn(ctx).If(conds...).Then(clientv3.OpPut(lk, string(val), clientv3.WithLease(g.ID)), clientv3.OpPut(e.key("clusters", cluster, "leased"), string(mark))).Commit()
	if err != nil || !put.Succeeded {
		rctx, rcancel := e.ctx()
		_, _ = e.cli.Revoke(rctx, g.ID)
		rcancel()
		if err != nil {
			return nil, unreachable(fmt.Sprintf("taking the primary's lease of cluster %q", cluster), err)
		}
		return nil, fmt.Errorf("cluster %q: %w: the record or the lease changed meanwhile", cluster, ErrLeaseRefused)
	}
	if old != 0 && old != g.ID {
		// The predecessor's lease (a pacsd of this host that stopped) no
		// longer holds the key; letting it go ends its session's keys too.
		rctx, rcancel := e.ctx()
		_, _ = e.cli.Revoke(rctx, old)
		rcancel()
	}
	return &Lease{e: e, cluster: cluster, Holder: me, ID: g.ID, TTL: time.Duration(secs) * time.Second}, nil
}

// ErrLeaseLost is matched by Renew's error when the lease no longer exists
// (it expired, or was revoked).
var ErrLeaseLost = errors.New("the primary's lease expired")

// Renew renews the lease once, within ctx.
func (l *Lease) Renew(ctx context.Context) error {
	resp, err := l.e.cli.KeepAliveOnce(ctx, l.ID)
	switch {
	case err != nil && strings.Contains(err.Error(), "requested lease not found"):
		return fmt.Errorf("cluster %q: %w", l.cluster, ErrLeaseLost)
	case err != nil:
		return unreachable(fmt.Sprintf("renewing the primary's lease of cluster %q", l.cluster), err)
	case resp.TTL <= 0:
		return fmt.Errorf("cluster %q: %w", l.cluster, ErrLeaseLost)
	}
	return nil
}

// Release gives the lease up: the key goes at once, and a failover may
// follow.
func (l *Lease) Release(ctx context.Context) error {
	if _, err := l.e.cli.Revoke(ctx, l.ID); err != nil && !strings.Contains(err.Error(), "requested lease not found") {
		return unreachable(fmt.Sprintf("giving up the primary's lease of cluster %q", l.cluster), err)
	}
	return nil
}

// PutReport publishes this host's report on a cluster, for its session's
// lifetime.
func (e *Etcd) PutReport(ctx context.Context, cluster string, r reconcile.HostReport) error {
	s, err := e.Session(ctx)
	if err != nil {
		return err
	}
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, e.o.OpTimeout)
	defer cancel()
	if _, err := e.cli.Put(ctx, e.key("hosts", e.o.Host, cluster), string(b), clientv3.WithLease(s.Lease())); err != nil {
		return unreachable(fmt.Sprintf("reporting host %q's nodes of cluster %q", e.o.Host, cluster), err)
	}
	return nil
}

// Reports returns host's reports on each cluster, none when its pacsd does
// not run (or is cut off from etcd since longer than its session's TTL).
func (e *Etcd) Reports(ctx context.Context, host string) (map[string]reconcile.HostReport, error) {
	ctx, cancel := context.WithTimeout(ctx, e.o.OpTimeout)
	defer cancel()
	pfx := e.key("hosts", host) + "/"
	resp, err := e.cli.Get(ctx, pfx, clientv3.WithPrefix())
	if err != nil {
		return nil, unreachable(fmt.Sprintf("reading host %q's reports", host), err)
	}
	out := map[string]reconcile.HostReport{}
	for _, kv := range resp.Kvs {
		var r reconcile.HostReport
		if err := json.Unmarshal(kv.Value, &r); err != nil {
			return nil, fmt.Errorf("while reading host %q's report %s: %v", host, kv.Key, err)
		}
		out[strings.TrimPrefix(string(kv.Key), pfx)] = r
	}
	return out, nil
}

// ClusterReports returns every host's report on cluster, by host: the
// hosts whose pacsd runs and reaches etcd.
func (e *Etcd) ClusterReports(ctx context.Context, cluster string) (map[string]reconcile.HostReport, error) {
	ctx, cancel := context.WithTimeout(ctx, e.o.OpTimeout)
	defer cancel()
	pfx := e.key("hosts") + "/"
	resp, err := e.cli.Get(ctx, pfx, clientv3.WithPrefix())
	if err != nil {
		return nil, unreachable(fmt.Sprintf("reading the hosts' reports on cluster %q", cluster), err)
	}
	out := map[string]reconcile.HostReport{}
	for _, kv := range resp.Kvs {
		host, c, ok := strings.Cut(strings.TrimPrefix(string(kv.Key), pfx), "/")
		if !ok || c != cluster {
			continue
		}
		var r reconcile.HostReport
		if err := json.Unmarshal(kv.Value, &r); err != nil {
			return nil, fmt.Errorf("while reading host %q's report %s: %v", host, kv.Key, err)
		}
		out[host] = r
	}
	return out, nil
}

// Watch calls changed whenever cluster's record, primary lease or lease
// mark changes, until ctx is done (not for host reports: every pass writes
// one). When the watch breaks (etcd does not answer), it calls changed too
// and watches again.
func (e *Etcd) Watch(ctx context.Context, cluster string, changed func()) {
	pfx := e.key("clusters", cluster) + "/"
	for ctx.Err() == nil {
		wc := e.cli.Watch(clientv3.WithRequireLeader(ctx), pfx, clientv3.WithPrefix())
		for resp := range wc {
			if resp.Err() != nil {
				break
			}
			for _, ev := range resp.Events {
				switch strings.TrimPrefix(string(ev.Kv.Key), pfx) {
				case "record", "lease", "leased":
					changed()
				}
			}
		}
		if ctx.Err() != nil {
			return
		}
		changed()
		t := time.NewTimer(time.Second)
		select {
		case <-ctx.Done():
		case <-t.C:
		}
		t.Stop()
	}
}
