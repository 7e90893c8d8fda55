package reconcile

import (
	"context"
	"errors"
	"testing"
	"time"
)

// TestMemoryStoreLock: one holder at a time per name; a done context is one
// try; a busy lock matches ErrLocked, as the file store's does.
func TestMemoryStoreLock(t *testing.T) {
	m := &MemoryStore{}
	unlock, err := m.Lock(context.Background(), "pacs")
	if err != nil || !m.Held("pacs") {
		t.Fatalf("Lock: %v, held %v", err, m.Held("pacs"))
	}
	other, err := m.Lock(context.Background(), "pacs.work.db2")
	if err != nil {
		t.Fatalf("another name: %v", err)
	}
	other()
	once, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := m.Lock(once, "pacs"); !errors.Is(err, ErrLocked) || !errors.Is(err, context.Canceled) {
		t.Errorf("one try of a held lock: %v; want ErrLocked", err)
	}
	done := make(chan error, 1)
	go func() {
		u, err := m.Lock(context.Background(), "pacs")
		if err == nil {
			u()
		}
		done <- err
	}()
	select {
	case <-done:
		t.Fatal("a second holder got the lock while it was held")
	case <-time.After(50 * time.Millisecond):
	}
	unlock()
	unlock() // a second release is harmless
	if err := <-done; err != nil {
		t.Errorf("the waiting holder: %v", err)
	}
	if m.Held("pacs") {
		t.Error("the lock is still held after both released it")
	}
}
