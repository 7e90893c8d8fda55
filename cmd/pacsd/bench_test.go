package main

import (
	"testing"
	"time"

	"github.com/pacsd/pacsd/internal/bench"
	"github.com/pacsd/pacsd/internal/e2e"
)

// TestBenchApplyFromNothing measures `pacsd apply` from nothing to a primary
// and one streaming standby against the seed's procedure done by hand with
// the same image (e2e.SeedProcedure), alternating the two. Target: a ratio of
// at most 0.8, because pacsd sets parameters before the first start instead
// of restarting.
func TestBenchApplyFromNothing(t *testing.T) {
	bench.Require(t)
	pacsd := func(t *testing.T) (d time.Duration) {
		t.Run("pacsd", func(t *testing.T) {
			e := e2e.Require(t)
			tp := newTopology(t, e, "db1", "db2")
			start := time.Now()
			tp.apply(t)
			tp.node("db2").WaitStreaming(time.Minute)
			d = time.Since(start)
		})
		return d
	}
	byHand := func(t *testing.T) (d time.Duration) {
		t.Run("by-hand", func(t *testing.T) {
			e := e2e.Require(t)
			start := time.Now()
			e.SeedProcedure(e2e.SeedOptions{Password: "pacs-" + e.RunID, ReplicationPassword: "repl-" + e.RunID})
			d = time.Since(start)
		})
		return d
	}
	bench.Compare(t, "apply from nothing to primary + streaming standby", bench.Runs(5), pacsd, byHand)
}
