package state

import (
	"context"
	"fmt"
	"net/url"
	"slices"
	"strings"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// MoveLeaderOff moves etcd's own leadership away from the member that runs
// at address (the acting primary's host) when that member leads, to the
// other member with the lowest rank that answers (rank is given each
// member's client address; ties go to the lowest member ID), and only when
// that rank is lower than the leading member's own. It returns the name of
// the member that now leads, "" when nothing was moved.
//
// When the member that leads etcd is lost with the primary's host, etcd
// elects another and then extends every lease by its full TTL: the
// primary's lease would expire an election and a TTL after the loss
// instead of a TTL. With the leadership elsewhere, losing the primary's
// host costs etcd no election. etcd carries out the transfer (MoveLeader);
// its members stay the ones the operator made.
func (e *Etcd) MoveLeaderOff(ctx context.Context, address string, rank func(address string) int) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*e.o.OpTimeout)
	defer cancel()
	members, err := e.cli.MemberList(ctx)
	if err != nil {
		return "", unreachable("listing etcd's members", err)
	}
	// status asks one member, bounded: a silent one does not use up the
	// whole call.
	status := func(ep string) (*clientv3.StatusResponse, error) {
		sctx, cancel := context.WithTimeout(ctx, e.o.OpTimeout/2)
		defer cancel()
		return e.cli.Status(sctx, ep)
	}
	var leader uint64
	for _, ep := range e.cli.Endpoints() {
		if st, err := status(ep); err == nil && st.Leader != 0 {
			leader = st.Leader
			break
		}
	}
	if leader == 0 {
		return "", fmt.Errorf("while moving etcd's leadership off %s: no member says which member leads", address)
	}
	var from []string
	type candidate struct {
		id   uint64
		name string
		rank int
		urls []string
	}
	var cands []candidate
	rankOf := func(addrs []string) int {
		r := rank(addrs[0])
		for _, a := range addrs[1:] {
			r = max(r, rank(a))
		}
		return r
	}
	own := 0
	for _, m := range members.Members {
		addrs := memberAddrs(m.ClientURLs)
		if m.ID == leader {
			if !slices.Contains(addrs, address) {
				return "", nil // the leader runs elsewhere already
			}
			from, own = m.ClientURLs, rankOf(addrs)
			continue
		}
		if m.IsLearner || len(addrs) == 0 {
			continue
		}
		cands = append(cands, candidate{id: m.ID, name: m.Name, rank: rankOf(addrs), urls: m.ClientURLs})
	}
	if len(from) == 0 {
		return "", nil
	}
	slices.SortFunc(cands, func(a, b candidate) int {
		if a.rank != b.rank {
			return a.rank - b.rank
		}
		switch {
		case a.id < b.id:
			return -1
		case a.id > b.id:
			return 1
		}
		return 0
	})
	// Only to a member that ranks better than the leader's own host (two
	// hosts that each run a primary would hand it back and forth) and
	// answers now (a transfer to a silent member stalls etcd's writes).
	var to *candidate
	for i := range cands {
		if cands[i].rank >= own {
			break
		}
		if _, err := status(cands[i].urls[0]); err == nil {
			to = &cands[i]
			break
		}
	}
	if to == nil {
		return "", nil
	}
	// Only the member that leads carries out a transfer: asked through a
	// connection to it alone.
	lc, err := clientv3.New(clientv3.Config{Endpoints: from, TLS: e.o.TLS, DialTimeout: e.o.OpTimeout, Logger: zap.NewNop()})
	if err != nil {
		return "", fmt.Errorf("while connecting to etcd's leader (%s): %w", strings.Join(from, ", "), err)
	}
	defer lc.Close()
	if _, err := lc.MoveLeader(ctx, to.id); err != nil {
		return "", unreachable(fmt.Sprintf("moving etcd's leadership off %s to member %q", address, to.name), err)
	}
	return to.name, nil
}

// memberAddrs returns the hosts (addresses) of a member's client URLs.
func memberAddrs(urls []string) []string {
	var out []string
	for _, u := range urls {
		if p, err := url.Parse(u); err == nil && p.Hostname() != "" {
			out = append(out, p.Hostname())
		}
	}
	return out
}
