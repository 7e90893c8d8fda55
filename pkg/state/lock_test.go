package state

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestLock(t *testing.T) {
	s := &Store{Dir: t.TempDir()}
	unlock, err := s.Lock(context.Background(), "pacs")
	if err != nil {
		t.Fatal(err)
	}
	// Held: a try fails at once, a wait fails when its context ends.
	done, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.Lock(done, "pacs"); !errors.Is(err, ErrLocked) {
		t.Fatalf("try while held: got %v, want ErrLocked", err)
	}
	// Another cluster's lock is independent.
	other, err := s.Lock(done, "other")
	if err != nil {
		t.Fatalf("another cluster: %v", err)
	}
	other()
	// A waiter gets the lock once it is released.
	got := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		u, err := s.Lock(ctx, "pacs")
		if err == nil {
			u()
		}
		got <- err
	}()
	time.Sleep(50 * time.Millisecond)
	select {
	case err := <-got:
		t.Fatalf("the waiter got the lock while it was held: %v", err)
	default:
	}
	unlock()
	if err := <-got; err != nil {
		t.Fatalf("the waiter: %v", err)
	}
	if _, err := s.Lock(done, "../x"); err == nil {
		t.Error("a cluster name that cannot name a file was accepted")
	}
}
