package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pacsd/pacsd/internal/bench"
	"github.com/pacsd/pacsd/internal/e2e"
	"github.com/pacsd/pacsd/pkg/pgconf"
	"github.com/pacsd/pacsd/pkg/reconcile"
)

// benchTopology is newTopology for a measurement: its cluster, and with it
// every container, volume and network pacsd makes for it, is named
// bench-<run> (containers bench-<run>-<node>).
func benchTopology(t *testing.T, e *e2e.Env, nodes ...string) *topology {
	t.Helper()
	tp := newTopology(t, e, nodes...)
	tp.name = "bench-" + e.RunID
	e.Own(reconcile.LabelCluster, tp.name)
	tp.write(t)
	return tp
}

// pollFast calls cond every 20 ms until it returns nil, and fails the test
// after timeout; it returns when cond first held. Both sides of a scenario
// wait through it, so its interval costs them alike.
func pollFast(t *testing.T, timeout time.Duration, what string, cond func() error) time.Time {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := cond()
		if err == nil {
			return time.Now()
		}
		if time.Now().After(deadline) {
			t.Fatalf("waited %s for %s: %v", timeout, what, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// benchStreaming waits until every standby of tp streams and the primary
// sees each on its slot (checkStreaming, with pacsd's slot names for any
// cluster name).
func benchStreaming(t *testing.T, tp *topology) {
	t.Helper()
	p := tp.node(tp.primary)
	for _, n := range tp.nodes {
		if n == tp.primary {
			continue
		}
		pollFast(t, time.Minute, "standby "+n+" streaming", tp.node(n).Streaming)
		slot := pgconf.SlotName(tp.name, n)
		pollFast(t, time.Minute, "the slot of standby "+n+" active on the primary", func() error {
			var active string
			if err := p.TryQueryRow("SELECT coalesce((SELECT active::text FROM pg_replication_slots WHERE slot_name = $1), 'missing')",
				[]any{&active}, slot); err != nil {
				return err
			}
			if active != "true" {
				return fmt.Errorf("slot %s active: %s", slot, active)
			}
			return nil
		})
	}
}

// floorSteps are the steps of converging from nothing that pacsd cannot
// avoid either: the primary's first start (initdb included), the standby's
// base backup and the standby's start until it streams.
var floorSteps = []string{"start primary", "pg_basebackup", "start standby"}

// TestBenchApplyFromNothing measures `pacsd apply` from nothing to a primary
// and one streaming standby against two references taken in the same run:
//
//   - the seed's procedure by hand, as the fastest honest script does it
//     (internal/bench/scripts/converge.sh: readiness polled over TCP, no fixed
//     sleep; the harness polls the standby every 20 ms until it streams).
//     Target: a ratio of at most 0.8, because pacsd sets the parameters before
//     the first start instead of restarting.
//   - the floor: the sum of the script's steps pacsd cannot avoid either (the
//     primary's first start, the base backup, the standby's start). Target:
//     pacsd within 1.15 of it.
func TestBenchApplyFromNothing(t *testing.T) {
	bench.Require(t)
	var floors bench.Sample
	pacsd := func(t *testing.T) (d time.Duration) {
		t.Run("pacsd", func(t *testing.T) {
			e := e2e.Require(t)
			tp := benchTopology(t, e, "db1", "db2")
			start := time.Now()
			code, stdout, stderr := runCLI(t, nil, "apply", "-f", tp.path)
			if code != exitOK {
				t.Fatalf("pacsd apply: exit %d\n%s%s", code, stdout, stderr)
			}
			end := pollFast(t, time.Minute, "db2 streaming", tp.node("db2").Streaming)
			d = end.Sub(start)
			t.Logf("pacsd: %.2fs; where the time went (offsets from the start of apply):\n%s", d.Seconds(), timeline(stderr, start))
		})
		return d
	}
	byHand := func(t *testing.T) (d time.Duration) {
		t.Run("by-hand", func(t *testing.T) {
			e := e2e.Require(t)
			pw, replPW := "pacs-"+e.RunID, "repl-"+e.RunID
			secrets := t.TempDir()
			for name, content := range map[string]string{
				"superuser.password":   pw,
				"replication.password": replPW,
				"replication.pgpass":   "*:5432:*:replicator:" + strings.NewReplacer(`\`, `\\`, `:`, `\:`).Replace(replPW) + "\n",
			} {
				if err := os.WriteFile(filepath.Join(secrets, name), []byte(content), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			prefix := "bench-" + e.RunID
			env := []string{"IMAGE=" + e.Image, "PREFIX=" + prefix, "LABEL=" + e2e.LabelRun + "=" + e.RunID, "SECRETS=" + secrets}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
			defer cancel()
			start := time.Now()
			steps, _, err := bench.RunScript(ctx, bench.ConvergeScript, env)
			if err != nil {
				t.Fatal(err)
			}
			db2 := e.Container(prefix+"-db2", prefix+"-net", "pacs", pw, "pacsdb")
			end := pollFast(t, time.Minute, "db2 streaming (by hand)", db2.Streaming)
			steps.EndLast(end)
			d = end.Sub(start)
			floor, err := steps.Sum(floorSteps...)
			if err != nil {
				t.Fatal(err)
			}
			floors = append(floors, floor)
			t.Logf("by hand: %.2fs: %s; floor (%s) %.2fs", d.Seconds(), steps, strings.Join(floorSteps, " + "), floor.Seconds())
		})
		return d
	}
	const scenario = "pacsd apply from nothing to a primary and a streaming standby"
	p, b := bench.Compare(t, scenario, bench.Runs(5), pacsd, byHand)
	pacsdSide := bench.NewSide("pacsd apply, until the standby streams", p.Seconds())
	hand := bench.NewSide("the seed's procedure by hand (internal/bench/scripts/converge.sh)", b.Seconds())
	bench.Record(t, bench.NewRow("converge", scenario, "s", pacsdSide, &hand, bench.Ratio("<=", 0.8)))
	floor := bench.NewSide("floor: "+strings.Join(floorSteps, " + ")+" of the by-hand runs", floors.Seconds())
	bench.Record(t, bench.NewRow("converge-floor", scenario+", against the steps it cannot avoid", "s", pacsdSide, &floor, bench.Ratio("<=", 1.15)))
}
