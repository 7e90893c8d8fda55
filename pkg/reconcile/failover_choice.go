package reconcile

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/pacsd/pacsd/pkg/spec"
)

// StandbyHealth is what a failover saw of one standby: its server's state,
// or why it could not be read.
type StandbyHealth struct {
	Node string
	DB   *DBState
	Err  error
}

// FailoverChoice is the decision of ChooseFailoverTarget.
type FailoverChoice struct {
	// To is the standby to promote, "" when none qualifies.
	To string
	// Received is how far To has received WAL.
	Received uint64
	// Refused says, per standby not chosen, why it does not qualify.
	Refused []string
}

// ChooseFailoverTarget decides which standby replaces the lost primary old.
// It has no side effects. A standby qualifies when its server answers in
// recovery, it may lack no acknowledged commit that the rules can see
// (standbyRisks), and, among those, it has received the most WAL; of two
// at the same position the one declared first wins.
func ChooseFailoverTarget(c *spec.Cluster, old string, last LastSeen, standbys []StandbyHealth) FailoverChoice {
	var ch FailoverChoice
	if why := quorumRisk(c, old, last, standbys); why != "" {
		return FailoverChoice{Refused: []string{why}}
	}
	for _, n := range c.Nodes {
		if n.Name == old {
			continue
		}
		h := healthOf(standbys, n.Name)
		if why := standbyUnusable(h); why != "" {
			ch.Refused = append(ch.Refused, n.Name+": "+why)
			continue
		}
		if risks := standbyRisks(c, last, h); len(risks) > 0 {
			ch.Refused = append(ch.Refused, n.Name+": "+strings.Join(risks, "; "))
			continue
		}
		if got := received(h.DB); ch.To == "" || got > ch.Received {
			ch.To, ch.Received = n.Name, got
		}
	}
	return ch
}

// healthOf returns the health of node among hs; a node not looked at reads
// as not reachable.
func healthOf(hs []StandbyHealth, node string) StandbyHealth {
	for _, h := range hs {
		if h.Node == node {
			return h
		}
	}
	return StandbyHealth{Node: node, Err: errors.New("it was not checked")}
}

// received is how far a standby has WAL, received or replayed.
func received(db *DBState) uint64 { return max(db.ReceivedWAL, db.WAL) }

// standbyUnusable says why a standby cannot be promoted at all ("" when it can).
func standbyUnusable(h StandbyHealth) string {
	switch {
	case h.Err != nil:
		return h.Err.Error()
	case h.DB == nil:
		return "its server does not answer"
	case !h.DB.InRecovery:
		return "it is not in recovery (not a standby)"
	}
	return ""
}

// standbyRisks says why promoting a standby that answers may lose
// acknowledged commits: with synchronous replication, it was not one of the
// primary's synchronous standbys; with asynchronous replication, the
// primary's last position is unknown (pacsd did not see it healthy since it
// started or since the last promotion), so its lag cannot be bounded; and
// it is further behind that position than max_lag.
func standbyRisks(c *spec.Cluster, last LastSeen, h StandbyHealth) []string {
	var risks []string
	got := received(h.DB)
	known := last.positionKnown()
	switch {
	case c.Replication.Synchronous && !slices.Contains(last.SyncStandbys, h.Node):
		risks = append(risks, "it was not a synchronous standby of the primary when pacsd last saw it healthy (or pacsd never saw it healthy)")
	case !c.Replication.Synchronous && !known:
		why := "pacsd has not seen it healthy since it started or since the last promotion"
		switch {
		case last.WAL != 0 && last.LostAt.IsZero():
			why = "when it was lost is not known"
		case last.WAL != 0:
			why = fmt.Sprintf("pacsd last saw it healthy %s before it was lost, and it may have written more since", last.LostAt.Sub(last.At).Round(time.Millisecond))
		}
		risks = append(risks, fmt.Sprintf("the primary's last WAL position is unknown (%s), so a lag within max_lag %s cannot be confirmed; it has received up to %s", why, c.Failover.MaxLag, FormatLSN(got)))
	}
	if known && last.WAL > got && last.WAL-got > uint64(c.Failover.MaxLag) {
		risks = append(risks, fmt.Sprintf("%d bytes behind the primary's last known position %s (max_lag %s)", last.WAL-got, FormatLSN(last.WAL), c.Failover.MaxLag))
	}
	return risks
}

// SightTolerance is how much older than the moment the primary was found
// lost its last healthy sight may be for its WAL position to count as the
// primary's last: the supervisor looks several times a second, a saved
// sight is seconds old, and a busy archive writes megabytes meanwhile.
const SightTolerance = 3 * time.Second

// positionKnown reports whether last.WAL is the primary's last position:
// seen, and seen close enough to the moment it was lost (LostAt; unknown
// LostAt counts as now for the caller that sets it, see LastSeen).
func (last LastSeen) positionKnown() bool {
	return last.WAL != 0 && !last.At.IsZero() && !last.LostAt.IsZero() && last.LostAt.Sub(last.At) <= SightTolerance
}

// quorumRisk says, with synchronous replication, why no standby may be
// promoted while a synchronous standby of the primary cannot be checked: a
// commit is acknowledged once any of them has it ("ANY 1"), so the one that
// cannot be checked may hold commits the others lack. "" when all answer.
func quorumRisk(c *spec.Cluster, old string, last LastSeen, hs []StandbyHealth) string {
	if !c.Replication.Synchronous {
		return ""
	}
	for _, m := range last.SyncStandbys {
		if m == old || c.Node(m) == nil {
			continue
		}
		if why := standbyUnusable(healthOf(hs, m)); why != "" {
			return fmt.Sprintf("the synchronous standby %q cannot be checked (%s); it may hold acknowledged commits that the others lack", m, why)
		}
	}
	return ""
}

// aheadOf names the usable standbys that have received more WAL than to.
func aheadOf(c *spec.Cluster, old, to string, hs []StandbyHealth) []string {
	t := healthOf(hs, to)
	if t.DB == nil {
		return nil
	}
	var ahead []string
	for _, n := range c.Nodes {
		h := healthOf(hs, n.Name)
		if n.Name != old && n.Name != to && standbyUnusable(h) == "" && received(h.DB) > received(t.DB) {
			ahead = append(ahead, fmt.Sprintf("%q has received more WAL (%s against %s)", n.Name, FormatLSN(received(h.DB)), FormatLSN(received(t.DB))))
		}
	}
	return ahead
}
