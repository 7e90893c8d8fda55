package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/pacsd/pacsd/pkg/reconcile"
)

// TestE2EPauseHoldsFailover proves maintenance mode on a real cluster
// with automatic failover: while paused, a killed standby is not started
// again and a killed primary is not failed over (status, metrics and the
// history say why); once resumed, pacsd fails over at once, with no
// acknowledged write lost and never two writable nodes, and repairs the
// rest.
func TestE2EPauseHoldsFailover(t *testing.T) {
	b := newFailoverBed(t, true)
	e := b.tp.e
	ctx := e.Ctx(5 * time.Minute)
	name := b.tp.name

	code, out, errOut := runCLI(t, nil, "pause", name, "-f", b.r.path)
	if code != exitOK || !strings.Contains(out, "is paused") {
		t.Fatalf("pacsd pause: exit %d, %s%s", code, out, errOut)
	}
	waitFor(t, 30*time.Second, "the pause in /status and the metrics", func() error {
		st, err := b.r.status()
		if err != nil {
			return err
		}
		if cs := st.Clusters[name]; cs == nil || !cs.Paused {
			return fmt.Errorf("not paused in /status")
		}
		return b.r.metric(t, `pacsd_cluster_paused{cluster="`+name+`"} 1`)
	})

	// A killed standby stays down: no repair.
	if err := e.Docker.ContainerKill(ctx, b.tp.container("db3"), "KILL"); err != nil {
		t.Fatal(err)
	}
	// The primary killed: no failover.
	if err := e.Docker.ContainerKill(ctx, b.tp.container("db1"), "KILL"); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	waitFor(t, time.Minute, "the failover refused because the cluster is paused", func() error {
		return b.r.metric(t, `pacsd_failovers_total{cluster="`+name+`",result="refused"} 1`, `pacsd_failovers_total{cluster="`+name+`",result="refused"} 2`)
	})
	time.Sleep(3 * time.Second) // failover.after is 1s: a failover would be done by now
	for _, n := range b.tp.nodes {
		if err := b.tp.node(n).Writable(); err == nil {
			t.Fatalf("%s accepts writes while the cluster is paused and its primary was killed", n)
		}
	}
	for _, n := range []string{"db1", "db3"} {
		if c, err := e.Docker.ContainerInspect(ctx, b.tp.container(n)); err != nil || c.State.Running {
			t.Errorf("%s was started again while the cluster is paused (running %v, %v)", n, c.State.Running, err)
		}
	}
	st, err := b.r.status()
	if err != nil {
		t.Fatal(err)
	}
	if r := st.Clusters[name].FailoverRefused; !strings.Contains(r.Error, "is paused") || !strings.Contains(r.Error, "pacsd resume") {
		t.Errorf("the refusal in /status does not say the cluster is paused: %+v", r)
	}
	code, out, _ = runCLI(t, nil, "status", name, "-f", b.r.path)
	if code != exitOK || !strings.Contains(out, "PAUSED") {
		t.Errorf("pacsd status while paused: exit %d\n%s", code, out)
	}

	// Resumed: the failover happens, and the rest is repaired.
	code, out, errOut = runCLI(t, nil, "resume", name, "-f", b.r.path)
	if code != exitOK || !strings.Contains(out, "is resumed") {
		t.Fatalf("pacsd resume: exit %d, %s%s", code, out, errOut)
	}
	resumed := time.Now()
	p := b.failedOver(t, "db1", killed)
	t.Logf("from resume to a write on the new primary: %.2fs", time.Since(resumed).Seconds())
	b.rejoined(t, p)
	b.finish(t, p)

	code, out, _ = runCLI(t, nil, "events", name, "-f", b.r.path, "--json")
	var evs []reconcile.Event
	if code != exitOK || json.Unmarshal([]byte(out), &evs) != nil {
		t.Fatalf("pacsd events: exit %d\n%s", code, out)
	}
	kinds := map[string]bool{}
	for _, ev := range evs {
		kinds[ev.Kind] = true
	}
	for _, k := range []string{"pause", "paused", "failover-refused", "resume", "failover"} {
		if !kinds[k] {
			t.Errorf("the history has no %q event: %v", k, kinds)
		}
	}
}
