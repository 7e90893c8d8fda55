package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/pacsd/pacsd/pkg/daemon"
	"github.com/pacsd/pacsd/pkg/docker"
	"github.com/pacsd/pacsd/pkg/postgres"
	"github.com/pacsd/pacsd/pkg/reconcile"
	"github.com/pacsd/pacsd/pkg/spec"
	"github.com/pacsd/pacsd/pkg/state"
)

// everyHost is the wiring of the mode "every host" (daemon.etcd): the
// connection to etcd, opened with the first spec and kept across reloads
// (its session holds this pacsd's locks, leadership and leases).
type everyHost struct {
	host string

	mu   sync.Mutex
	e    *state.Etcd
	conf string // the etcd block e was opened with
}

// hostOf returns the host this pacsd runs on: --host, else $PACSD_HOST.
func hostOf(flagValue string, getenv func(string) string) string {
	if flagValue != "" {
		return flagValue
	}
	return getenv("PACSD_HOST")
}

// checkHost says what is wrong with host for f in the mode "every host".
func checkHost(f *spec.File, host string) error {
	if host == "" {
		return errors.New("the file runs pacsd on every host (daemon.etcd): say which host this one is with --host NAME or PACSD_HOST=NAME (a host block of the file)")
	}
	if !slices.ContainsFunc(f.Hosts, func(h *spec.Host) bool { return h.Name == host }) {
		var names []string
		for _, h := range f.Hosts {
			names = append(names, h.Name)
		}
		return fmt.Errorf("--host %q names no host block of the file (hosts: %v)", host, names)
	}
	return nil
}

// etcd returns the connection for f's etcd block, opening it the first
// time. A changed etcd block takes effect when pacsd restarts.
func (m *everyHost) etcd(f *spec.File) (*state.Etcd, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	conf := fmt.Sprintf("%v %v", f.Daemon.Etcd.Endpoints, *f.Daemon.Etcd)
	if m.e != nil && conf != m.conf {
		return nil, errors.New("daemon.etcd changed: the connection to etcd (and with it this pacsd's locks, leadership and leases) is kept until pacsd restarts; restart it to take the new etcd block ('systemctl restart pacsd'), or put the block back")
	}
	if m.e != nil {
		return m.e, nil
	}
	var tc *tls.Config
	if t := f.Daemon.Etcd.TLS; t != nil {
		var err error
		if tc, err = etcdTLS(t); err != nil {
			return nil, err
		}
	}
	ttl := spec.MaxFailoverTTL
	for _, c := range f.Clusters {
		ttl = min(ttl, c.Failover.TTL.Duration)
	}
	e, err := state.OpenEtcd(state.EtcdOptions{Endpoints: f.Daemon.Etcd.Endpoints, TLS: tc, Prefix: f.Daemon.Etcd.Prefix, Host: m.host, SessionTTL: ttl})
	if err != nil {
		return nil, err
	}
	m.e, m.conf = e, conf
	return e, nil
}

// etcdTLS is the client TLS configuration of daemon.etcd.tls.
func etcdTLS(t *spec.TLS) (*tls.Config, error) {
	pair, err := tls.LoadX509KeyPair(t.Cert, t.Key)
	if err != nil {
		return nil, fmt.Errorf("while reading daemon.etcd.tls (cert %s, key %s): %w", t.Cert, t.Key, err)
	}
	ca, err := os.ReadFile(t.CA)
	if err != nil {
		return nil, fmt.Errorf("while reading daemon.etcd.tls.ca: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(ca) {
		return nil, fmt.Errorf("daemon.etcd.tls.ca %s holds no PEM certificate", t.CA)
	}
	return &tls.Config{Certificates: []tls.Certificate{pair}, RootCAs: pool, MinVersion: tls.VersionTLS12}, nil
}

// deps wires the adapters of the mode "every host": this host's engine,
// the other hosts seen through their pacsd's reports, and etcd as the
// cluster store.
func (m *everyHost) deps(f *spec.File, progress func(node, line string)) (reconcile.Deps, error) {
	d := reconcile.Deps{
		Runtimes: map[string]reconcile.Runtime{},
		DB:       postgres.New(),
		Matches:  postgres.VerifierMatches,
		Verifier: postgres.Verifier,
		Progress: progress,
	}
	if err := checkHost(f, m.host); err != nil {
		return d, err
	}
	e, err := m.etcd(f)
	if err != nil {
		return d, err
	}
	d.Store, d.CAs = e, e
	for _, h := range f.Hosts {
		if h.Name != m.host {
			d.Runtimes[h.Name] = &state.Remote{E: e, Host: h.Name}
			continue
		}
		var tls *docker.TLSFiles
		if h.TLS != nil {
			tls = &docker.TLSFiles{CA: h.TLS.CA, Cert: h.TLS.Cert, Key: h.TLS.Key}
		}
		var opts []docker.Option
		if h.SSH != nil {
			opts = append(opts, docker.WithSSH(docker.SSH{IdentityFile: h.SSH.IdentityFile, KnownHosts: h.SSH.KnownHosts}))
		}
		// Without a docker attribute: DOCKER_HOST, else the default socket.
		rt, err := docker.New(h.Docker, tls, "", opts...)
		if err != nil {
			return d, fmt.Errorf("while connecting to the Docker engine of this host %q: %w", h.Name, err)
		}
		d.Runtimes[h.Name] = rt
	}
	return d, nil
}

// close ends the session with etcd.
func (m *everyHost) close() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.e != nil {
		_ = m.e.Close()
		m.e = nil
	}
}

// coordination is state.Etcd as the daemon's Coordination.
type coordination struct{ m *everyHost }

var _ daemon.Coordination = coordination{}

func (c coordination) etcd() (*state.Etcd, error) {
	c.m.mu.Lock()
	defer c.m.mu.Unlock()
	if c.m.e == nil {
		return nil, errors.New("etcd is not connected yet")
	}
	return c.m.e, nil
}

func (c coordination) Host() string { return c.m.host }

func (c coordination) Campaign(ctx context.Context, cluster string) (<-chan struct{}, func(), error) {
	e, err := c.etcd()
	if err != nil {
		return nil, nil, err
	}
	return e.Campaign(ctx, cluster)
}

func (c coordination) Leader(ctx context.Context, cluster string) (string, error) {
	e, err := c.etcd()
	if err != nil {
		return "", err
	}
	return e.Leader(ctx, cluster)
}

func (c coordination) LeaseHolder(ctx context.Context, cluster string) (string, string, error) {
	e, err := c.etcd()
	if err != nil {
		return "", "", err
	}
	h, err := e.PrimaryLease(ctx, cluster)
	if err != nil || h == nil {
		return "", "", err
	}
	return h.Node, h.Host, nil
}

func (c coordination) Watch(ctx context.Context, cluster string, changed func()) {
	e, err := c.etcd()
	if err != nil {
		<-ctx.Done()
		return
	}
	e.Watch(ctx, cluster, changed)
}

func (c coordination) Leased(ctx context.Context, cluster string) (string, int64, error) {
	e, err := c.etcd()
	if err != nil {
		return "", 0, err
	}
	return e.Leased(ctx, cluster)
}

func (c coordination) AcquireLease(ctx context.Context, cluster, node, fileprimary string, ttl time.Duration) (daemon.PrimaryLease, error) {
	e, err := c.etcd()
	if err != nil {
		return nil, err
	}
	l, err := e.AcquireLease(ctx, cluster, node, fileprimary, ttl)
	if err != nil {
		return nil, err
	}
	return lease{l}, nil
}

func (c coordination) PutReport(ctx context.Context, cluster string, r reconcile.HostReport) error {
	e, err := c.etcd()
	if err != nil {
		return err
	}
	return e.PutReport(ctx, cluster, r)
}

func (c coordination) Hosts(ctx context.Context, cluster string) (map[string]reconcile.HostReport, error) {
	e, err := c.etcd()
	if err != nil {
		return nil, err
	}
	return e.ClusterReports(ctx, cluster)
}

func (c coordination) MoveLeaderOff(ctx context.Context, address string, rank func(string) int) (string, error) {
	e, err := c.etcd()
	if err != nil {
		return "", err
	}
	return e.MoveLeaderOff(ctx, address, rank)
}

// lease is state.Lease as the daemon's PrimaryLease.
type lease struct{ l *state.Lease }

func (l lease) Renew(ctx context.Context) error {
	err := l.l.Renew(ctx)
	if errors.Is(err, state.ErrLeaseLost) {
		return fmt.Errorf("%w: %w", daemon.ErrLeaseLost, err)
	}
	return err
}

func (l lease) Release(ctx context.Context) error { return l.l.Release(ctx) }

var _ daemon.Requests = coordination{}

func (c coordination) WatchRequests(ctx context.Context, cluster string, asked func(reconcile.Request)) {
	e, err := c.etcd()
	if err != nil {
		<-ctx.Done()
		return
	}
	e.WatchRequests(ctx, cluster, asked)
}

func (c coordination) TakeRequest(ctx context.Context, cluster, id string) (reconcile.Request, bool, error) {
	e, err := c.etcd()
	if err != nil {
		return reconcile.Request{}, false, err
	}
	return e.TakeRequest(ctx, cluster, id)
}

func (c coordination) UpdateRequest(ctx context.Context, r reconcile.Request) error {
	e, err := c.etcd()
	if err != nil {
		return err
	}
	return e.UpdateRequest(ctx, r)
}
