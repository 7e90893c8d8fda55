package watch

import (
	"sync"
	"testing"
)

func TestTriggerCoalesces(t *testing.T) {
	trig := NewTrigger()
	select {
	case <-trig.C():
		t.Fatal("a new trigger has a signal pending")
	default:
	}
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 100 {
				trig.Poke()
			}
		}()
	}
	wg.Wait()
	select {
	case <-trig.C():
	default:
		t.Fatal("no signal pending after pokes")
	}
	select {
	case <-trig.C():
		t.Fatal("a second signal pending after one receive")
	default:
	}
	trig.Poke()
	select {
	case <-trig.C():
	default:
		t.Fatal("no signal pending after a poke following a receive")
	}
}
