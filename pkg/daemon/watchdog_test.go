package daemon

import (
	"context"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pacsd/pacsd/pkg/reconcile"
	"github.com/pacsd/pacsd/pkg/spec"
)

// notifySocket is systemd's end of sd_notify: a unixgram socket whose
// datagrams it records with their time of arrival.
type notifySocket struct {
	mu  sync.Mutex
	got []notified
}

type notified struct {
	at    time.Time
	state string
}

// listenNotify makes the socket and points the process's sd_notify at it,
// with systemd's watchdog settings (WatchdogSec=interval), as systemd does
// for a unit's main process.
func listenNotify(t *testing.T, interval time.Duration) *notifySocket {
	t.Helper()
	path := filepath.Join(t.TempDir(), "notify")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	t.Setenv("NOTIFY_SOCKET", path)
	t.Setenv("WATCHDOG_USEC", strconv.FormatInt(interval.Microseconds(), 10))
	t.Setenv("WATCHDOG_PID", strconv.Itoa(os.Getpid()))
	s := &notifySocket{}
	go func() {
		b := make([]byte, 4096)
		for {
			n, err := conn.Read(b)
			if err != nil {
				return
			}
			s.mu.Lock()
			s.got = append(s.got, notified{time.Now(), string(b[:n])})
			s.mu.Unlock()
		}
	}()
	return s
}

// pings returns when each WATCHDOG=1 arrived in [from, to).
func (s *notifySocket) pings(from, to time.Time) []time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	var at []time.Time
	for _, n := range s.got {
		if n.state == "WATCHDOG=1" && !n.at.Before(from) && n.at.Before(to) {
			at = append(at, n.at)
		}
	}
	return at
}

// sawReady reports whether READY=1 arrived.
func (s *notifySocket) sawReady() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, n := range s.got {
		if strings.HasPrefix(n.state, "READY=1") {
			return true
		}
	}
	return false
}

// longestGap is the longest time in [from, to) without a ping.
func longestGap(pings []time.Time, from, to time.Time) time.Duration {
	var gap time.Duration
	last := from
	for _, p := range append(pings, to) {
		gap = max(gap, p.Sub(last))
		last = p
	}
	return gap
}

// TestWatchdogFreezeStopsPings runs the daemon's loop under systemd's
// watchdog as systemd sets it up (NOTIFY_SOCKET, WATCHDOG_USEC,
// WATCHDOG_PID; the real sd_notify, datagrams read from the socket): the
// pings arrive; a pass that runs for several times its timeout while it
// makes progress (a long base backup) keeps them coming; a pass that makes
// no progress and ignores its cancelled context (a hung call, a deadlock)
// stops them once PassTimeout and the grace have passed, so that systemd
// kills and restarts pacsd; when the pass ends, they come again.
func TestWatchdogFreezeStopsPings(t *testing.T) {
	const (
		interval    = time.Second // WatchdogSec: a ping every 500ms
		passTimeout = time.Second
		grace       = 500 * time.Millisecond
	)
	defer func(g time.Duration) { watchdogGrace = g }(watchdogGrace)
	watchdogGrace = grace
	sock := listenNotify(t, interval)

	type pass struct {
		progress bool          // report progress every 100ms until done
		done     chan struct{} // closed to end the pass
	}
	passes := make(chan pass, 1)
	started := make(chan struct{}, 1)
	f, err := newFixture(t, topology("4MB", "db1-data"))
	if err != nil {
		t.Fatal(err)
	}
	d, err := New(Options{
		Path:   f.path,
		Logger: slog.New(slog.NewTextHandler(f.log, nil)),
		Deps:   func(*spec.File) (reconcile.Deps, error) { return reconcile.Deps{Store: &reconcile.MemoryStore{}}, nil },
		Apply: func(ctx context.Context, _ *spec.Cluster, _ reconcile.Deps, _ *slog.Logger) (reconcile.Result, error) {
			var p pass
			select {
			case p = <-passes:
			default:
				return reconcile.Result{}, nil // a pass with nothing to do
			}
			started <- struct{}{}
			tick := time.NewTicker(100 * time.Millisecond)
			defer tick.Stop()
			for {
				select {
				case <-p.done: // the frozen pass ignores ctx: only this ends it
					return reconcile.Result{}, nil
				case <-tick.C:
					if p.progress {
						reconcile.Progressed(ctx)
					}
				}
			}
		},
		PassTimeout: passTimeout,
		Debounce:    20 * time.Millisecond,
	})
	if err != nil {
		t.Fatalf("New: %v\n%s", err, f.log)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stopped := make(chan error, 1)
	go func() { stopped <- d.Run(ctx, nil) }()
	waitFor(t, "READY=1 on the notify socket", sock.sawReady)

	// While the loop waits for work, and during a pass that progresses for
	// four times its timeout, no gap between pings reaches the interval.
	from := time.Now()
	time.Sleep(2 * time.Second)
	long := pass{progress: true, done: make(chan struct{})}
	passes <- long
	d.trigger.Poke()
	<-started
	time.Sleep(4 * passTimeout)
	close(long.done)
	to := time.Now()
	if pings := sock.pings(from, to); len(pings) < 8 || longestGap(pings, from, to) >= interval {
		t.Fatalf("idle, then in a pass that progresses: %d pings in %s, longest gap %s; want one every %s, no gap of %s (systemd would kill pacsd)\n%s",
			len(pings), to.Sub(from).Round(time.Millisecond), longestGap(pings, from, to).Round(time.Millisecond), interval/2, interval, f.log)
	}

	// A frozen pass: no progress, its context's cancellation ignored.
	frozen := pass{done: make(chan struct{})}
	passes <- frozen
	d.trigger.Poke()
	<-started
	frozeAt := time.Now()
	// Pings may come until PassTimeout+grace after the pass began, then
	// none: systemd kills pacsd one interval after the last.
	silentFrom := frozeAt.Add(passTimeout + grace + interval/2)
	time.Sleep(time.Until(silentFrom.Add(3 * interval)))
	silentTo := time.Now()
	if pings := sock.pings(silentFrom, silentTo); len(pings) != 0 {
		t.Fatalf("a pass frozen since %s: %d pings between %s and %s after it froze; want none (systemd must kill pacsd)\n%s",
			frozeAt.Format("15:04:05.000"), len(pings), silentFrom.Sub(frozeAt).Round(time.Millisecond), silentTo.Sub(frozeAt).Round(time.Millisecond), f.log)
	}
	if !strings.Contains(f.log.String(), "not feeding systemd's watchdog") {
		t.Errorf("the log does not say why the watchdog is not fed:\n%s", f.log)
	}

	// The pass ends: the pings come again.
	close(frozen.done)
	thawed := time.Now()
	waitFor(t, "a ping after the frozen pass ended", func() bool { return len(sock.pings(thawed, time.Now())) > 0 })
	cancel()
	if err := <-stopped; err != nil {
		t.Fatalf("Run: %v", err)
	}
}
