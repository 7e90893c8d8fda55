package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	sd "github.com/coreos/go-systemd/v22/daemon"

	"github.com/pacsd/pacsd/pkg/reconcile"
)

// watchdogGrace is how long an Apply may overrun PassTimeout (it should
// return soon after its context is done) before the daemon counts as hung.
var watchdogGrace = time.Minute

// sdNotify sends states to systemd; outside systemd it does nothing.
func sdNotify(log *slog.Logger) func(string) {
	return func(state string) {
		if _, err := sd.SdNotify(false, state); err != nil {
			log.Debug("sd_notify failed", "state", state, "error", err)
		}
	}
}

// watchdog sends WATCHDOG=1 at half the interval systemd asks for, as long
// as the daemon is alive, until ctx is done.
func (d *Daemon) watchdog(ctx context.Context) {
	interval := d.o.Watchdog
	if interval == 0 {
		var err error
		if interval, err = sd.SdWatchdogEnabled(false); err != nil {
			d.log.Warn("cannot read systemd's watchdog settings", "error", err)
		}
	}
	if interval <= 0 {
		return
	}
	go func() {
		t := time.NewTicker(interval / 2)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				if err := d.alive(); err != nil {
					d.log.Error("not feeding systemd's watchdog", "error", err)
					continue
				}
				d.o.Notify("WATCHDOG=1")
			}
		}
	}()
}

// alive is nil while the loop runs and the running pass, if any, has made
// progress within its timeout: a base backup of hours that copies is alive.
func (d *Daemon) alive() error {
	if !d.looping.Load() {
		return errors.New("the loop does not run")
	}
	if pctx := d.passCtx.Load(); pctx != nil {
		if last := reconcile.LastProgress(*pctx); !last.IsZero() {
			if idle := time.Since(last); idle > d.o.PassTimeout+watchdogGrace {
				return fmt.Errorf("a pass has made no progress for %s, past its timeout of %s", idle.Round(time.Second), d.o.PassTimeout)
			}
		}
	}
	return nil
}
