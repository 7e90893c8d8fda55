package watch

import (
	"testing"
	"time"
)

func TestDebouncer(t *testing.T) {
	tr := NewTrigger()
	d := NewDebouncer(tr, 40*time.Millisecond, 200*time.Millisecond)

	// A burst pokes once, after it has been quiet.
	start := time.Now()
	for range 5 {
		d.Poke()
		time.Sleep(10 * time.Millisecond)
	}
	select {
	case <-tr.C():
		if took := time.Since(start); took < 80*time.Millisecond {
			t.Errorf("poked %s after the burst's start, before the burst was quiet", took)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("no poke after a burst")
	}
	select {
	case <-tr.C():
		t.Error("a burst poked twice")
	case <-time.After(100 * time.Millisecond):
	}

	// Pokes that never stop still get through by the maximum wait.
	start = time.Now()
	stop := time.After(600 * time.Millisecond)
	got := 0
loop:
	for {
		select {
		case <-stop:
			break loop
		case <-tr.C():
			got++
		case <-time.After(10 * time.Millisecond):
			d.Poke()
		}
	}
	if got < 2 {
		t.Errorf("steady pokes for %s gave %d pokes, want at least 2 (maximum wait 200ms)", time.Since(start).Round(time.Millisecond), got)
	}

	// Stop drops a pending burst.
	d.Stop()
	select {
	case <-tr.C(): // poked by the steady pokes before they stopped
	default:
	}
	d.Poke()
	d.Stop()
	select {
	case <-tr.C():
		t.Error("poked after Stop")
	case <-time.After(100 * time.Millisecond):
	}
}
