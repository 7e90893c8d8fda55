package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// failures is a testing.TB that records failures instead of failing, to prove
// that a check fails when it should.
type failures struct {
	testing.TB
	msgs []string
}

func (f *failures) Helper() {}

func (f *failures) Errorf(format string, args ...any) {
	f.msgs = append(f.msgs, fmt.Sprintf(format, args...))
}

func (f *failures) Fatalf(format string, args ...any) {
	f.msgs = append(f.msgs, fmt.Sprintf(format, args...))
}

// waitAcked waits until the writer has more than n acknowledged commits.
func waitAcked(e *Env, w *Writer, n int, timeout time.Duration) {
	e.T.Helper()
	e.Eventually(timeout, fmt.Sprintf("more than %d acknowledged commits", n), func() error {
		if got := w.Acked(); got <= n {
			return fmt.Errorf("%d acknowledged", got)
		}
		return nil
	})
}

// TestE2EWriter proves the writer: given a standby and a primary, it settles
// on the primary, keeps writing across a restart of the primary, and every
// acknowledged commit is on the primary and, once replayed, on the standby;
// CheckNoLoss names a commit that went missing.
func TestE2EWriter(t *testing.T) {
	e := Require(t)
	s := e.SeedProcedure(SeedOptions{Password: "pacs-" + e.RunID, ReplicationPassword: "repl-" + e.RunID})
	primary, standby := s.Primary, s.Standby()
	table := "writer_" + e.RunID
	// The standby comes first: the writer must be refused there and move on.
	w := e.StartWriter(func() []*Node { return []*Node{standby, primary} }, table)
	waitAcked(e, w, 30, 20*time.Second)

	primary.Restart()
	before := w.Acked()
	waitAcked(e, w, before+30, 60*time.Second)
	r := w.Stop()
	t.Log(r)

	if r.ByNode[standby.Name] != 0 {
		t.Errorf("%d commits acknowledged by standby %s", r.ByNode[standby.Name], standby.Name)
	}
	if r.Errors == 0 || r.Failed == 0 {
		t.Errorf("no errors across a restart of the primary (errors %d, failed inserts %d); the restart was not seen", r.Errors, r.Failed)
	}
	if r.LongestGap < 100*time.Millisecond || r.LongestGap > 60*time.Second {
		t.Errorf("longest gap %s; a restart makes the primary unavailable for a while", r.LongestGap)
	}
	r.CheckNoLoss(t, primary)
	last := r.Acked[len(r.Acked)-1]
	standby.WaitRow(20*time.Second, fmt.Sprintf("SELECT EXISTS (SELECT 1 FROM %s WHERE seq = $1)", table), last)
	r.CheckNoLoss(t, standby)

	// A lost commit is named.
	lost := r.Acked[len(r.Acked)/2]
	primary.ExecSQL(fmt.Sprintf("DELETE FROM %s WHERE seq = $1", table), lost)
	f := &failures{TB: t}
	r.CheckNoLoss(f, primary)
	if len(f.msgs) != 1 || !strings.Contains(f.msgs[0], fmt.Sprintf("1 of %d acknowledged commits", len(r.Acked))) ||
		!strings.HasSuffix(f.msgs[0], fmt.Sprint(lost)) {
		t.Errorf("CheckNoLoss after deleting row %d reported %q", lost, f.msgs)
	}
}

func TestRanges(t *testing.T) {
	for _, c := range []struct {
		in   []int64
		want string
	}{
		{nil, ""},
		{[]int64{7}, "7"},
		{[]int64{1, 2, 3, 4, 7, 9, 10}, "1-4, 7, 9-10"},
	} {
		if got := ranges(c.in); got != c.want {
			t.Errorf("ranges(%v) = %q, want %q", c.in, got, c.want)
		}
	}
}
