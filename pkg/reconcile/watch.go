package reconcile

import (
	"errors"
	"time"
)

// PrimaryWatch is what the failover supervisor remembers of one cluster's
// acting primary between its health checks: a small state machine over
// observed health (healthy, suspected, confirmed lost) with the lost timer.
// Its methods decide; they have no side effects. The supervisor (pkg/daemon)
// carries out what they decide: a check again under the cluster's lock, a
// failover (Failover), a log line.
type PrimaryWatch struct {
	// Node is the acting primary this is about; a check of another node
	// starts the watch anew.
	Node string
	// DownSince is when a check first found it lost, with or without the
	// lock; zero while it answers.
	DownSince time.Time
	// Confirmed says that a check under the cluster's lock found it lost
	// too (and the supervisor said so).
	Confirmed bool
	// RetryAfter holds the next failover back after a refused or failed one.
	RetryAfter time.Time
	// Last is the last sight of the primary healthy.
	Last LastSeen
}

// HealthCheck is one look at the acting primary (see Health).
type HealthCheck struct {
	At time.Time
	// Began is when the check was started, zero for At: the WAL position
	// it read is at least that new and may be older than At (a check
	// slowed down by a busy server), so a sight counts from Began.
	Began  time.Time
	Health *DBState
	Err    error
	// Locked says that the check ran under the cluster's lock: only such a
	// check confirms a primary lost (what a pass or a switchover does under
	// the lock, a restart, a stop, looks like a lost primary from outside).
	Locked bool
}

// Verdict is what the supervisor must do after a check.
type Verdict int

// The verdicts of PrimaryWatch.Observe.
const (
	// Healthy: it answers as a primary; keep its sight.
	Healthy Verdict = iota
	// Recovered: it answers again after it was confirmed lost; say so.
	Recovered
	// Recheck: it looks lost from outside the lock: take the cluster's
	// lock (at once or not now) and check again, Locked.
	Recheck
	// LostNow: confirmed lost for the first time; say so, and wait for
	// failover.after.
	LostNow
	// StillLost: confirmed lost, not yet for failover.after (or a failover
	// was refused and is held back); wait.
	StillLost
	// FailOver: lost for failover.after: fail over now, with Last.
	FailOver
)

var verdictNames = [...]string{"healthy", "recovered", "recheck", "lost", "still lost", "fail over"}

func (v Verdict) String() string { return verdictNames[v] }

// LostBecause says why a health check found the primary lost; nil when it
// answers as a primary. A server that refuses the login answers: that is
// drift for a pass to repair, never a failover.
func LostBecause(h *DBState, err error) error {
	if errors.Is(err, ErrServerRefused) || errors.Is(err, ErrCannotVerify) {
		return nil
	}
	if err == nil && h == nil {
		return errors.New("it reported nothing")
	}
	if err == nil && h.InRecovery {
		return errors.New("it is in recovery")
	}
	return err
}

// Observe takes one check of node, the acting primary, into the watch and
// returns the watch after it, the verdict, and why the primary counts as
// lost (nil when it does not). after is failover.after. A primary is failed
// over only when a check under the lock confirms it lost, it has been lost
// (counted from the first failed check, with or without the lock) for at
// least after, and no failover is held back.
func (w PrimaryWatch) Observe(node string, ch HealthCheck, after time.Duration) (PrimaryWatch, Verdict, error) {
	if w.Node != node {
		w = PrimaryWatch{Node: node} // a start, a switchover or a failover
	}
	lost := LostBecause(ch.Health, ch.Err)
	if lost == nil {
		v := Healthy
		if w.Confirmed {
			v = Recovered
		}
		w.DownSince, w.Confirmed = time.Time{}, false
		if ch.Health != nil {
			at := ch.Began
			if at.IsZero() {
				at = ch.At
			}
			w.Last = LastSeen{Node: node, WAL: ch.Health.WAL, SyncStandbys: ch.Health.SyncStandbys, At: at}
		}
		return w, v, nil
	}
	if w.DownSince.IsZero() {
		// Dated like a sight, from when the check began: a check that
		// hangs until its timeout began when the primary stopped
		// answering, and a sight and a loss dated alike keep their gap
		// honest (positionKnown).
		w.DownSince = ch.At
		if !ch.Began.IsZero() {
			w.DownSince = ch.Began
		}
	}
	if !ch.Locked {
		return w, Recheck, lost
	}
	v := StillLost
	if !w.Confirmed {
		w.Confirmed, v = true, LostNow
	}
	if ch.At.Sub(w.DownSince) >= after && !ch.At.Before(w.RetryAfter) {
		w.Last.Node, w.Last.LostAt = node, w.DownSince
		v = FailOver
	}
	return w, v, lost
}

// FailoverRetry is how long a refused or failed failover holds the next one
// back.
const FailoverRetry = 5 * time.Second

// FailedOver takes a failover's outcome into the watch: done or no longer
// needed (the acting primary changed) starts the watch anew; refused or
// failed holds the next try back for FailoverRetry.
func (w PrimaryWatch) FailedOver(now time.Time, err error) PrimaryWatch {
	if err == nil || errors.Is(err, ErrActingChanged) {
		return PrimaryWatch{}
	}
	w.RetryAfter = now.Add(FailoverRetry)
	return w
}
