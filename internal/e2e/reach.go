package e2e

import (
	"context"
	"fmt"
	"sync"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/jackc/pgx/v5"
)

// addrBook finds nodes' addresses from background goroutines (the writer and
// the probe), where a failing test helper must not be called. It asks the
// engine each time, so a node cut off its network has no address; when the
// engine does not answer in time (an engine frozen or killed, see
// SecondEngine) it falls back to the last address it saw, because the
// container may well still run and serve there.
type addrBook struct {
	mu   sync.Mutex
	last map[string]string // container ID -> last address seen
}

// lookup returns the node's address on its network, asking the engine for at
// most timeout.
func (b *addrBook) lookup(ctx context.Context, n *Node, timeout time.Duration) (string, error) {
	ictx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	c, err := n.env.Docker.ContainerInspect(ictx, n.ID)
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.last == nil {
		b.last = map[string]string{}
	}
	if err != nil {
		if ip := b.last[n.ID]; ip != "" && ctx.Err() == nil && !cerrdefs.IsNotFound(err) {
			return ip, nil
		}
		return "", fmt.Errorf("while inspecting node %s: %w", n.Name, err)
	}
	ip := ""
	if c.NetworkSettings != nil {
		if ep, ok := c.NetworkSettings.Networks[n.Network]; ok && ep != nil {
			ip = ep.IPAddress
		}
	}
	b.last[n.ID] = ip
	if ip == "" {
		return "", fmt.Errorf("node %s is not attached to network %s", n.Name, n.Network)
	}
	return ip, nil
}

// connectAt opens a superuser connection to the node at ip; ctx bounds it.
func (n *Node) connectAt(ctx context.Context, ip string) (*pgx.Conn, error) {
	cfg, err := pgx.ParseConfig(n.dsnAt(ip, "", ""))
	if err != nil {
		return nil, fmt.Errorf("while parsing the address of node %s: %w", n.Name, err)
	}
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("while connecting to node %s: %w", n.Name, err)
	}
	return conn, nil
}

// closeConn closes conn without waiting long for a peer that may be frozen.
func closeConn(conn *pgx.Conn) {
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_ = conn.Close(ctx)
}
