package docker

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strings"
	"sync"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/client"

	"github.com/pacsd/pacsd/pkg/reconcile"
)

// TLSFiles names the PEM files that authenticate pacsd to a tcp:// engine and
// the engine to pacsd.
type TLSFiles struct {
	CA   string // the certificate authority that signed the engine's certificate
	Cert string // pacsd's client certificate
	Key  string // the client certificate's private key
}

// Timeouts bound the engine calls of a Runtime, each call on its own. A zero
// field takes its default.
type Timeouts struct {
	// Inspect bounds one inspect, list or stat call (default 15s).
	Inspect time.Duration
	// Change bounds one create, start, remove or exec call (default 60s).
	Change time.Duration
	// Copy bounds one copy of files to or from a container (default 2m).
	Copy time.Duration
	// Pull bounds one image pull (default 30m).
	Pull time.Duration
	// Probe bounds a probe container from creation to removal (default 2m).
	Probe time.Duration
}

// DefaultTimeouts are the timeouts New gives a Runtime.
var DefaultTimeouts = Timeouts{
	Inspect: 15 * time.Second,
	Change:  60 * time.Second,
	Copy:    2 * time.Minute,
	Pull:    30 * time.Minute,
	Probe:   2 * time.Minute,
}

// DefaultStopGrace is how long the engine waits for PostgreSQL to finish a
// fast shutdown before it kills the container, when the container is stopped
// by anyone but pacsd (docker stop by hand, the engine shutting down).
const DefaultStopGrace = 60 * time.Second

// Runtime is reconcile.Runtime over one Docker engine. Create it with New; its
// exported fields may be changed before first use, not after.
type Runtime struct {
	// Timeouts bound each engine call.
	Timeouts Timeouts
	// StopGrace is the stop timeout given to every container ContainerCreate
	// creates (DefaultStopGrace when zero).
	StopGrace time.Duration
	// Labels are put on the probe containers the Runtime creates on its own
	// (to read an image's postgres uid, to inspect data); such containers are
	// always removed when they finish.
	Labels map[string]string

	cli         *client.Client
	hostAddress string

	mu       sync.Mutex
	engineID string                       // the engine's ID, once it said
	owners   map[string]owner             // image ID -> its postgres user
	netTags  map[string]map[string]string // network ID -> its labels (immutable in Docker)
}

var (
	_ reconcile.Runtime      = (*Runtime)(nil)
	_ reconcile.AdoptRuntime = (*Runtime)(nil)
)

// New returns a Runtime for the engine at endpoint: "" means the environment
// (DOCKER_HOST, DOCKER_CERT_PATH, DOCKER_TLS_VERIFY) or else the local socket;
// unix:///path is a local socket; tcp://host:port is a remote engine, with TLS
// when tls is not nil; ssh://user@host[:port][/path/to/docker.sock] is the
// engine's unix socket on a host (/var/run/docker.sock when no path is given),
// reached through an ssh connection the way DOCKER_HOST=ssh:// is for the
// docker CLI, with the key and known_hosts files of WithSSH (the ssh agent and
// ~/.ssh by default; see SSH). Over ssh, one connection serves every request
// and is replaced when it ends or stops answering; each connection and each
// forwarding through it is bounded by SSH.DialTimeout, so that calls to an
// unreachable host fail in seconds. hostAddress is the address other hosts
// use to reach the ports the engine publishes; "" means the engine is local
// and containers are reached on their network addresses.
//
// New does not contact the engine. For ssh:// it checks what a connection
// would use as the topology file's parser does (spec.ParseSSHEndpoint,
// LoadSSHKeys, LoadKnownHosts): the key files, and that known_hosts holds the
// host's key.
func New(endpoint string, tls *TLSFiles, hostAddress string, opts ...Option) (*Runtime, error) {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	clientOpts := []client.Opt{client.WithAPIVersionNegotiation()}
	switch {
	case endpoint == "":
		clientOpts = append(clientOpts, client.FromEnv)
	case strings.HasPrefix(endpoint, "unix://"), strings.HasPrefix(endpoint, "tcp://"):
		clientOpts = append(clientOpts, client.WithHost(endpoint))
	case strings.HasPrefix(endpoint, "ssh://"):
		if tls != nil {
			return nil, fmt.Errorf("while connecting to the Docker engine at %s: TLS files are only used with tcp:// endpoints; ssh:// authenticates with ssh keys", redactedEndpoint(endpoint))
		}
		d, err := newSSHDialer(endpoint, o.ssh)
		if err != nil {
			return nil, fmt.Errorf("while connecting to the Docker engine at %s: %w", redactedEndpoint(endpoint), err)
		}
		clientOpts = append(clientOpts, d.clientOptions()...)
	default:
		return nil, fmt.Errorf("while connecting to the Docker engine at %q: unknown endpoint; use unix:///path/to/docker.sock, tcp://host:port or ssh://user@host", endpoint)
	}
	if o.ssh != nil && !strings.HasPrefix(endpoint, "ssh://") {
		return nil, fmt.Errorf("while connecting to the Docker engine at %q: ssh settings are only used with ssh:// endpoints", endpoint)
	}
	if tls != nil {
		if !strings.HasPrefix(endpoint, "tcp://") {
			return nil, fmt.Errorf("while connecting to the Docker engine at %q: TLS files are only used with tcp:// endpoints", endpoint)
		}
		clientOpts = append(clientOpts, client.WithTLSClientConfig(tls.CA, tls.Cert, tls.Key))
	}
	cli, err := client.NewClientWithOpts(clientOpts...)
	if err != nil {
		return nil, fmt.Errorf("while setting up the Docker client for %q: %w", redactedEndpoint(endpoint), err)
	}
	return &Runtime{
		Timeouts:    DefaultTimeouts,
		StopGrace:   DefaultStopGrace,
		cli:         cli,
		hostAddress: hostAddress,
		owners:      map[string]owner{},
		netTags:     map[string]map[string]string{},
	}, nil
}

// timeouts returns r.Timeouts with defaults in place of zero fields.
func (r *Runtime) timeouts() Timeouts {
	t, d := r.Timeouts, DefaultTimeouts
	for _, f := range []struct{ v, def *time.Duration }{
		{&t.Inspect, &d.Inspect}, {&t.Change, &d.Change}, {&t.Copy, &d.Copy}, {&t.Pull, &d.Pull}, {&t.Probe, &d.Probe},
	} {
		if *f.v <= 0 {
			*f.v = *f.def
		}
	}
	return t
}

// Close releases the client's connections.
func (r *Runtime) Close() error { return r.cli.Close() }

// EngineID returns the engine's ID (docker info's ID), kept after the first
// answer.
func (r *Runtime) EngineID(ctx context.Context) (string, error) {
	r.mu.Lock()
	id := r.engineID
	r.mu.Unlock()
	if id != "" {
		return id, nil
	}
	ctx, cancel := context.WithTimeout(ctx, r.timeouts().Inspect)
	defer cancel()
	info, err := r.cli.Info(ctx)
	if err != nil {
		return "", fmt.Errorf("while asking the Docker engine at %s for its ID: %w", r.cli.DaemonHost(), err)
	}
	r.mu.Lock()
	r.engineID = info.ID
	r.mu.Unlock()
	return info.ID, nil
}

// Ping checks that the engine answers.
func (r *Runtime) Ping(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, r.timeouts().Inspect)
	defer cancel()
	if _, err := r.cli.Ping(ctx); err != nil {
		return fmt.Errorf("while reaching the Docker engine at %s: %w", r.cli.DaemonHost(), err)
	}
	return nil
}

// isNotFound reports whether err says the object asked for does not exist.
func isNotFound(err error) bool { return err != nil && cerrdefs.IsNotFound(err) }

// short shortens a container or image ID for messages; names pass unchanged.
func short(id string) string {
	id = strings.TrimPrefix(id, "sha256:")
	if len(id) == 64 && !strings.ContainsAny(id, "-_.") {
		return id[:12]
	}
	return id
}

// randomSuffix returns 8 hex digits for names of temporary objects.
func randomSuffix() string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
