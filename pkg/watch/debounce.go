package watch

import (
	"sync"
	"time"
)

// Debouncer pokes a Trigger once a burst of Poke calls has been quiet for a
// period, and at the latest a maximum wait after the burst's first Poke, so
// that a steady stream of pokes still gets through. It is safe for concurrent
// use. The zero value is not usable; use NewDebouncer.
type Debouncer struct {
	t           *Trigger
	quiet, most time.Duration

	mu      sync.Mutex
	timer   *time.Timer
	pending bool
	first   time.Time // first Poke of the pending burst
}

// NewDebouncer returns a Debouncer that pokes t after quiet, and at the
// latest most after a burst's first Poke (most is raised to quiet).
func NewDebouncer(t *Trigger, quiet, most time.Duration) *Debouncer {
	d := &Debouncer{t: t, quiet: quiet, most: max(most, quiet)}
	d.timer = time.AfterFunc(time.Hour, d.fire)
	d.timer.Stop()
	return d
}

// Poke starts a burst or extends the pending one.
func (d *Debouncer) Poke() {
	d.mu.Lock()
	defer d.mu.Unlock()
	now := time.Now()
	if !d.pending {
		d.pending, d.first = true, now
	}
	wait := d.quiet
	if left := d.first.Add(d.most).Sub(now); left < wait {
		wait = max(left, 0)
	}
	d.timer.Reset(wait)
}

// Stop drops the pending burst, if any, without poking.
func (d *Debouncer) Stop() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.pending = false
	d.timer.Stop()
}

func (d *Debouncer) fire() {
	d.mu.Lock()
	pending := d.pending
	d.pending = false
	d.mu.Unlock()
	if pending {
		d.t.Poke()
	}
}
