package e2e

import (
	"strings"
	"testing"
	"time"
)

// TestE2EProbe proves the probe: a primary with a streaming standby passes,
// with the primary seen writable, the standby read-only, and the standby
// unreachable while paused without slowing the ticks down; two independent
// primaries are flagged, naming both.
func TestE2EProbe(t *testing.T) {
	e := Require(t)
	// An independent primary, starting while the seed is built.
	other := e.StartNode(NodeOptions{Name: "db3", Password: "other-" + e.RunID})
	s := e.SeedProcedure(SeedOptions{Password: "pacs-" + e.RunID, ReplicationPassword: "repl-" + e.RunID})
	primary, standby := s.Primary, s.Standby()

	p := e.StartProbe(func() []*Node { return []*Node{primary, standby} })
	time.Sleep(time.Second)
	standby.Pause()
	time.Sleep(time.Second)
	standby.Unpause()
	standby.WaitStreaming(10 * time.Second)
	time.Sleep(500 * time.Millisecond)
	r := p.Check(t)
	t.Log(r)
	elapsed := r.End.Sub(r.Start)
	if min := int(elapsed/ProbeInterval) * 8 / 10; r.Ticks < min {
		t.Errorf("%d ticks in %s, want at least %d: a paused node must not hold the probe up", r.Ticks, elapsed, min)
	}
	if r.Writable[primary.Name] < r.Ticks*8/10 {
		t.Errorf("primary %s writable at %d of %d ticks; last error %q", primary.Name, r.Writable[primary.Name], r.Ticks, r.LastErrors[primary.Name])
	}
	if r.Writable[standby.Name] != 0 || r.ReadOnly[standby.Name] == 0 || r.Unreachable[standby.Name] < 5 {
		t.Errorf("standby %s: writable %d, read-only %d, unreachable %d; want never writable, read-only, and unreachable while paused",
			standby.Name, r.Writable[standby.Name], r.ReadOnly[standby.Name], r.Unreachable[standby.Name])
	}
	if !strings.Contains(r.LastErrors[standby.Name], "read-write") {
		t.Errorf("standby %s refused the write with %q, want the read-write transaction refused", standby.Name, r.LastErrors[standby.Name])
	}

	other.WaitWritable(60 * time.Second)
	p = e.StartProbe(func() []*Node { return []*Node{primary, standby, other} })
	time.Sleep(time.Second)
	r = p.Stop()
	t.Log(r)
	f := &failures{TB: t}
	r.Check(f)
	if len(r.Overlaps) < r.Ticks/2 || len(f.msgs) != 1 || !strings.Contains(f.msgs[0], "writable db1, db3") {
		t.Errorf("two independent primaries at %d of %d ticks; Check reported %q", len(r.Overlaps), r.Ticks, f.msgs)
	}
}

// TestE2EProbeWaitsForSynchronousStandby: a primary whose commits wait for a
// synchronous standby that never comes (as a primary cut off from its
// standbys) is never seen writable: the probe's write goes through
// synchronous replication as a client's does. A write that only takes a
// transaction ID would commit there at once.
func TestE2EProbeWaitsForSynchronousStandby(t *testing.T) {
	e := Require(t)
	n := e.StartNode(NodeOptions{Name: "db1", Password: "pacs-" + e.RunID})
	n.WaitWritable(60 * time.Second)
	n.ExecSQL("ALTER SYSTEM SET synchronous_standby_names = 'nobody'")
	n.ExecSQL("SELECT pg_reload_conf()")
	var names string
	e.Eventually(60*time.Second, "db1 to answer", func() error { return n.TryQueryRow("SHOW synchronous_standby_names", []any{&names}) })
	if names != "nobody" {
		t.Fatalf("synchronous_standby_names = %q", names)
	}
	p := e.StartProbe(func() []*Node { return []*Node{n} })
	time.Sleep(2 * time.Second)
	r := p.Stop()
	t.Log(r)
	if r.Writable[n.Name] != 0 || r.Unreachable[n.Name] == 0 {
		t.Errorf("a primary waiting for a synchronous standby: writable at %d of %d ticks, unreachable at %d; want never writable",
			r.Writable[n.Name], r.Ticks, r.Unreachable[n.Name])
	}
}
