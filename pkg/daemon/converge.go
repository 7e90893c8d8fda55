package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sort"
	"time"

	"github.com/pacsd/pacsd/pkg/reconcile"
	"github.com/pacsd/pacsd/pkg/spec"
)

// converge runs one cluster's pass and records its outcome. A cluster on
// which this process carries out a command asked for on the command line
// (a request, with pacsd on every host) has no pass meanwhile: the
// command's own rounds converge it, and a pass from an observation made
// before them could act on what they changed (the pass that follows the
// command looks again).
func (d *Daemon) converge(ctx context.Context, c *spec.Cluster, fromFile bool) {
	gate := d.requestGate(c.Name)
	if !gate.TryLock() {
		d.log.Debug("a command asked for on the command line is carried out on the cluster; its pass waits", "cluster", c.Name)
		return
	}
	defer gate.Unlock()
	if d.paused(c.Name) {
		d.convergePaused(ctx, c)
		return
	}
	if why := d.recordHeld(c.Name); why != nil {
		d.convergeHeld(ctx, c, why)
		return
	}
	pctx, cancel := reconcile.WithIdleTimeout(ctx, d.o.PassTimeout)
	defer cancel()
	start := time.Now()
	d.passCtx.Store(&pctx)
	res, err := d.safeApply(pctx, c)
	d.passCtx.Store(nil)
	d.history.endPass(c.Name)
	took := time.Since(start)
	if err != nil && ctx.Err() != nil {
		d.log.Info("pass interrupted by shutdown", "cluster", c.Name, "actions", len(res.Done))
		return
	}
	result := "ok"
	var left *reconcile.NodesLeftError
	switch {
	case errors.As(err, &left):
		result = "partial"
	case err != nil:
		result = "error"
	}
	d.m.passes.WithLabelValues(c.Name, result).Inc()
	d.m.duration.WithLabelValues(c.Name, result).Observe(took.Seconds())
	st := &ClusterStatus{LastPass: start, Duration: took.Round(time.Millisecond).String(), Result: result, Actions: []string{}}
	for _, a := range res.Done {
		st.Actions = append(st.Actions, a.String())
		if !fromFile {
			d.m.drift.WithLabelValues(c.Name, string(a.Kind)).Inc()
		}
	}
	if !fromFile && len(res.Done) > 0 {
		d.log.Info("drift repaired", "cluster", c.Name, "actions", len(res.Done))
	}
	attrs := []any{"cluster", c.Name, "actions", len(res.Done), "duration", st.Duration}
	if err == nil {
		d.converged[c.Name] = true
		d.ready.Store(c.Name, true)
		level := slog.LevelDebug
		if len(res.Done) > 0 {
			level = slog.LevelInfo
		}
		d.log.Log(ctx, level, "cluster converged", attrs...)
	} else if left != nil {
		// The rest is converged; the nodes of an engine that does not
		// answer wait for it without a backoff that would delay the
		// repair of the others.
		st.Error = err.Error()
		d.log.Warn("cluster converged but for nodes whose Docker engine does not answer", append(attrs, "error", st.Error)...)
	} else if why := d.holdRecord(c.Name, err); why != nil {
		// Said once, by holdRecord; the next passes observe only.
		st.Result, st.Error = "held", why.Error()
		d.log.Error("pass failed", append(attrs, "error", err.Error())...)
	} else {
		st.Error = err.Error()
		st.Failures = d.failures(c.Name) + 1
		at := time.Now().Add(backoffDelay(st.Failures, MinBackoff, MaxBackoff))
		st.RetryAt = &at
		d.armRetry(at)
		d.log.Error("pass failed", append(attrs, "error", st.Error, "failures", st.Failures, "retry_at", at)...)
	}
	d.setClusterStatus(c.Name, st)
}

// safeApply runs Apply and turns a panic into an error, logged with its stack.
func (d *Daemon) safeApply(ctx context.Context, c *spec.Cluster) (res reconcile.Result, err error) {
	defer func() {
		if r := recover(); r != nil {
			d.log.Error("panic in a pass", "cluster", c.Name, "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
			err = fmt.Errorf("while converging cluster %q: panic: %v", c.Name, r)
		}
	}()
	return d.o.Apply(ctx, c, d.deps, d.log)
}

func (d *Daemon) passed() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.st.Passed
}

// finishPass reports refused failovers (once per pass), then returns a
// one-line summary of the state for systemd's STATUS. The engines are not
// checked here: watchEngines checks them on its own ticker, so that a long
// pass does not keep a silent engine reported as answering; the summary
// says what the last check found.
func (d *Daemon) finishPass() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.reportRefusals()
	var failing []string
	for name, st := range d.st.Clusters {
		if st.Result != "ok" {
			failing = append(failing, name)
		}
	}
	sort.Strings(failing)
	s := fmt.Sprintf("%d of %d clusters converged", len(d.st.Clusters)-len(failing), len(d.file.Clusters))
	if len(failing) > 0 {
		s += fmt.Sprintf("; failing: %v", failing)
	}
	if engines := d.unreachableEngines(); len(engines) > 0 {
		s += fmt.Sprintf("; engines unreachable: %v", engines)
	}
	if d.st.ReloadError != "" {
		s += "; file refused: " + d.st.ReloadError
	}
	return s
}
