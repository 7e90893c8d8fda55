package watch

// Trigger is a coalescing poke: any number of Poke calls before the consumer
// receives from C result in one pending signal. It is safe for concurrent use
// by any number of pokers; it is meant for one consumer. The zero value is not
// usable; use NewTrigger.
type Trigger struct {
	ch chan struct{}
}

// NewTrigger returns a Trigger with no signal pending.
func NewTrigger() *Trigger {
	return &Trigger{ch: make(chan struct{}, 1)}
}

// Poke leaves one signal pending on C, unless one is pending already. It
// never blocks.
func (t *Trigger) Poke() {
	select {
	case t.ch <- struct{}{}:
	default:
	}
}

// C returns the channel that delivers the pending signal. A receive consumes
// it: the next receive blocks until the next Poke. The channel is never
// closed.
func (t *Trigger) C() <-chan struct{} {
	return t.ch
}
