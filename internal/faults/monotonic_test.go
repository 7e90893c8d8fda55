package faults

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// wallClock matches what makes or turns a time into one without the
// monotonic clock reading that time.Now carries (so that time.Since or Sub
// of it moves when the machine's clock is stepped): UTC, Local and In strip
// it, Round(0) is the idiom for stripping it, and times made from Unix
// numbers or parsed never had it.
var wallClock = regexp.MustCompile(`\.UTC\(\)|\.Local\(\)|\.In\(|\.Round\(0\)|time\.Unix(Milli|Micro)?\(|\.Unix(Nano|Milli|Micro)?\(\)|time\.Parse(InLocation)?\(`)

// wallClockUses are the uses of the wall clock in pkg/ that measure no
// time, by file and the text of the line, with why.
var wallClockUses = []struct{ file, line, why string }{
	{"daemon/view.go", `v.ObservedAt = time.Now().UTC().Format(time.RFC3339)`, "a time shown to the operator"},
	{"daemon/view.go", `w = &reconcile.WorkView{Kind: kind, Since: time.Now().UTC().Format(time.RFC3339)}`, "a time shown to the operator"},
	{"daemon/history.go", `e.At = e.At.UTC()`, "an event's time, kept in the history and shown"},
	{"daemon/http.go", `if t, err := time.Parse(time.RFC3339, s); err == nil {`, "the time an operator asks events since (/events?since=)"},
	{"state/etcd_events.go", `ns := time.Now().UnixNano()`, "orders the keys of the event history in etcd"},
	{"state/ca.go", `aside := fmt.Sprintf("%s.orphaned-%d", keyP, time.Now().Unix())`, "names a file set aside"},
	{"state/state.go", `if err := os.Rename(p, fmt.Sprintf("%s.damaged-%d", p, time.Now().Unix())); err != nil {`, "names a damaged record set aside"},
	{"reconcile/oneoff.go", `aside := AsidePrefix + time.Now().UTC().Format("20060102T150405Z")`, "names data moved aside"},
	{"daemon/requests.go", `r.Beat = time.Now().UTC()`, "a sign of life of a request in etcd: its asker looks only whether it changed, and times that on its own monotonic clock"},
	{"daemon/requests.go", `r.ID, r.Cluster, r.At = hex.EncodeToString(id), c.Name, time.Now().UTC()`, "when a request was asked, shown"},
	{"state/requests.go", `r.State, r.TakenBy, r.Beat = reconcile.RequestRunning, e.o.Host, time.Now().UTC()`, "a request's first sign of life (see daemon/requests.go)"},
	{"certs/certs.go", `what, a.cert.Subject.String(), a.cert.NotAfter.UTC().Format(timeFormat))`, "a certificate's validity, shown (certificates are valid in wall clock time)"},
	{"certs/certs.go", `return false, "the certificate is not valid before " + leaf.NotBefore.UTC().Format(timeFormat)`, "a certificate's validity, shown"},
	{"certs/certs.go", `return false, "the certificate expired " + leaf.NotAfter.UTC().Format(timeFormat)`, "a certificate's validity, shown"},
	{"certs/certs.go", `return false, "the cluster's CA is not valid before " + ca.NotBefore.UTC().Format(timeFormat)`, "a certificate's validity, shown"},
	{"certs/certs.go", `return false, "the cluster's CA expired " + ca.NotAfter.UTC().Format(timeFormat)`, "a certificate's validity, shown"},
	{"certs/certs.go", `return false, "the certificate expires " + leaf.NotAfter.UTC().Format(timeFormat) + " and is renewed after two thirds of its lifetime"`, "a certificate's validity, shown"},
}

// TestMonotonicTimers is the fault matrix's row "clock stepped", as far as
// it goes without stepping a shared machine's clock: every timer and every
// measured time in pkg/ (failover.after, the supervisor's checks, the idle
// timeout of a pass, backoffs, the lease's renewals) uses the monotonic
// clock. Timers and tickers always do, and so do time.Since and Sub of
// times from time.Now; what does not is listed by wallClock, and each such
// use in pkg/ must be one of wallClockUses, which measure nothing. Times
// that must outlive the process (the last sight of the primary in the
// state directory, an event's time) are wall clock by nature; the README
// says what a step of the clock does to them.
func TestMonotonicTimers(t *testing.T) {
	root := filepath.Join("..", "..", "pkg")
	seen := map[int]bool{}
	err := filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		rel = filepath.ToSlash(rel)
		for n, line := range strings.Split(string(b), "\n") {
			text := strings.TrimSpace(line)
			if strings.HasPrefix(text, "//") || !wallClock.MatchString(text) {
				continue
			}
			known := false
			for i, u := range wallClockUses {
				if u.file == rel && u.line == text {
					known, seen[i] = true, true
				}
			}
			if !known {
				t.Errorf("pkg/%s:%d: %s\n\tmeasures time with the wall clock, which a step of the machine's clock moves: "+
					"keep the time.Time from time.Now (time.Since, Sub and timers use its monotonic reading); "+
					"if it measures nothing, add it to wallClockUses with why", rel, n+1, text)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for i, u := range wallClockUses {
		if !seen[i] {
			t.Errorf("wallClockUses lists pkg/%s %q, which is no longer there: remove it", u.file, u.line)
		}
	}
}
