package daemon

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/pacsd/pacsd/pkg/reconcile"
	"github.com/pacsd/pacsd/pkg/watch"
)

// checkingStore is a cluster store whose record can be written or not.
type checkingStore struct {
	reconcile.MemoryStore
	full   bool
	checks int
}

func (s *checkingStore) CheckWrite(cluster string) error {
	s.checks++
	if s.full {
		return fmt.Errorf("%w: write .cluster-1.tmp: no space left on device", reconcile.ErrRecordNotWritten)
	}
	return nil
}

// TestRecordHold: an error that is not the record's holds nothing; the
// record's holds the cluster, said once; the store is tried again at most
// once every recordRetry, and once it can hold the record the cluster is
// released, said once, and a pass is poked.
func TestRecordHold(t *testing.T) {
	var log bytes.Buffer
	store := &checkingStore{full: true}
	d := &Daemon{log: slog.New(slog.NewTextHandler(&log, nil)), trigger: watch.NewTrigger(), history: newHistory()}
	d.snap.Store(&snapshot{shared: store})

	if why := d.holdRecord("pacs", errors.New("the engine does not answer")); why != nil || d.recordHeld("pacs") != nil {
		t.Fatalf("another error held the cluster: %v", why)
	}
	full := fmt.Errorf("while recording: %w: no space left on device", reconcile.ErrRecordNotWritten)
	why := d.holdRecord("pacs", full)
	if !errors.Is(why, errRecordHeld) || !strings.Contains(why.Error(), "no space left on device") || !strings.Contains(why.Error(), "acts on it again") {
		t.Fatalf("held: %v", why)
	}
	if again := d.holdRecord("pacs", full); !errors.Is(again, errRecordHeld) {
		t.Errorf("held again: %v", again)
	}
	if err := d.recordHeld("pacs"); !errors.Is(err, errRecordHeld) || store.checks != 0 {
		t.Errorf("right after the hold: %v, %d checks; want held, the store not tried yet", err, store.checks)
	}
	if err := d.recordHeld("other"); err != nil {
		t.Errorf("another cluster is held: %v", err)
	}
	d.holds.m["pacs"].tried = time.Now().Add(-recordRetry)
	if err := d.recordHeld("pacs"); !errors.Is(err, errRecordHeld) || store.checks != 1 {
		t.Errorf("a second on, the store still full: %v, %d checks; want held, the store tried once", err, store.checks)
	}
	store.full = false
	if err := d.recordHeld("pacs"); err == nil || store.checks != 1 {
		t.Errorf("right after a try: %v, %d checks; want held until recordRetry has passed", err, store.checks)
	}
	d.holds.m["pacs"].tried = time.Now().Add(-recordRetry)
	if err := d.recordHeld("pacs"); err != nil {
		t.Errorf("the store can hold the record again: %v; want released", err)
	}
	select {
	case <-d.trigger.C():
	default:
		t.Error("no pass was poked once the cluster was released")
	}
	for msg, want := range map[string]int{"pacsd holds the cluster": 1, "can be written again": 1} {
		if n := strings.Count(log.String(), msg); n != want {
			t.Errorf("said %q %d times, want %d:\n%s", msg, n, want, log.String())
		}
	}
}
