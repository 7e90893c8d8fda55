package daemon

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"time"

	"github.com/hashicorp/hcl/v2"

	"github.com/pacsd/pacsd/pkg/reconcile"
	"github.com/pacsd/pacsd/pkg/spec"
)

// Reload asks for a pass that reads the topology file again even when its
// content did not change (files it refers to, such as passwords, may have),
// and that resets every cluster's backoff. It never blocks.
func (d *Daemon) Reload() {
	d.forced.Store(true)
	d.trigger.Poke()
}

// read returns the file's content and checksum; an unreadable file has a
// checksum of its error, so that the same error is reported once.
func (d *Daemon) read() ([]byte, string) {
	src, err := spec.ReadTopology(d.path)
	if err != nil {
		return nil, "error: " + err.Error()
	}
	s := sha256.Sum256(src)
	return src, hex.EncodeToString(s[:])
}

// reload reads the file and takes it when its content changed (or a reload
// was asked for) and it is good: valid, and nothing in it that
// spec.CheckAgainstPrevious refuses. Otherwise the last good spec stays. It
// reports whether it tried, having told systemd it reloads (after the first
// pass).
func (d *Daemon) reload() (tried bool) {
	forced := d.forced.Swap(false)
	src, sum := d.read()
	if sum == d.sum && !forced {
		return false
	}
	if d.passed() {
		d.o.Notify("RELOADING=1")
	}
	d.sum = sum
	if forced {
		d.resetBackoff()
	}
	next, diags := d.parse(src, sum)
	if !diags.HasErrors() {
		diags = append(diags, spec.CheckAgainstPrevious(d.file, next, d.acting())...)
	}
	d.logDiagnostics(diags)
	if diags.HasErrors() {
		d.refuse(fmt.Sprintf("the file is invalid (%d errors)", len(diags.Errs())))
		return true
	}
	sec, err := newHTTPSecurity(next.Daemon, d.security.Load())
	if err != nil {
		d.refuse(err.Error())
		return true
	}
	prev := d.file
	engines := prev == nil || forced || !sameEngines(prev, next)
	if engines {
		deps, err := d.o.Deps(next)
		if err != nil {
			d.refuse(err.Error())
			return true
		}
		closeDeps(d.deps)
		if deps.Store == nil {
			d.refuse("no cluster store is configured")
			return true
		}
		d.shared = deps.Store
		deps.Store = &lockedStore{ClusterStore: deps.Store, d: d}
		if d.hosted != nil {
			deps = d.hostedDeps(deps)
		}
		deps.Events = d.record
		deps.Observed = func(c *spec.Cluster, obs *reconcile.Observed) { d.observed(c, obs, nil) }
		deps.Work = d.progressed
		d.deps = deps
	}
	if prev != nil && (prev.Daemon.Listen != next.Daemon.Listen || prev.Daemon.StateDir != next.Daemon.StateDir || (prev.Daemon.TLS == nil) != (next.Daemon.TLS == nil)) {
		d.log.Warn("daemon.listen, daemon.state_dir and whether there is a daemon.tls block take effect when pacsd restarts", "listen", prev.Daemon.Listen, "state_dir", prev.Daemon.StateDir, "tls", prev.Daemon.TLS != nil)
	}
	d.security.Store(sec)
	d.file, d.fresh = next, true
	d.forgetViews(next)
	d.snap.Store(&snapshot{file: next, deps: d.deps, shared: d.shared})
	d.resetBackoff()
	// A stream that goes on misses nothing; one started again might.
	if engines || !slices.Equal(followed(prev), followed(next)) {
		d.follow()
	}
	d.m.reloadOK.Set(1)
	d.m.reloadTime.SetToCurrentTime()
	d.mu.Lock()
	d.st.Checksum, d.st.LoadedAt, d.st.ReloadError = sum, time.Now(), ""
	kept := map[string]*ClusterStatus{}
	for _, c := range next.Clusters {
		if st := d.st.Clusters[c.Name]; st != nil {
			kept[c.Name] = st
		}
	}
	d.st.Clusters = kept
	d.mu.Unlock()
	d.log.Info("topology file taken", "file", d.path, "checksum", sum[:12], "clusters", len(next.Clusters))
	return true
}

func (d *Daemon) parse(src []byte, sum string) (*spec.File, hcl.Diagnostics) {
	if src == nil {
		return nil, hcl.Diagnostics{{Severity: hcl.DiagError, Summary: "Cannot Read Topology File",
			Detail: fmt.Sprintf("pacsd could not read the topology file %s (%s).", d.path, sum)}}
	}
	return spec.Parse(src, d.path)
}

// refuse records that the file last saved is not in force.
func (d *Daemon) refuse(why string) {
	d.m.reloadOK.Set(0)
	d.mu.Lock()
	d.st.ReloadError = why
	d.mu.Unlock()
	if d.file != nil {
		d.log.Error("topology file refused; the last good one stays in force", "file", d.path, "reason", why)
	}
}

func (d *Daemon) logDiagnostics(diags hcl.Diagnostics) {
	for _, diag := range diags {
		level := slog.LevelWarn
		if diag.Severity == hcl.DiagError {
			level = slog.LevelError
		}
		attrs := []any{"summary", diag.Summary, "detail", diag.Detail}
		if s := diag.Subject; s != nil {
			attrs = append(attrs, "file", s.Filename, "line", s.Start.Line, "column", s.Start.Column)
		}
		d.log.Log(context.Background(), level, "topology file: "+diag.Summary, attrs...)
	}
}

// acting names the acting primary of each cluster whose record names one
// (reconcile.ActingPrimary without an observation): a cluster without a
// record is left out, as its acting primary is not known until a pass
// rebuilds the record.
func (d *Daemon) acting() map[string]string {
	m := map[string]string{}
	if d.file == nil {
		return m
	}
	for _, c := range d.file.Clusters {
		st, err := d.deps.Store.Load(c.Name)
		if err == nil {
			if acting, err := reconcile.ActingPrimary(c, st, nil); err == nil {
				m[c.Name] = acting
			}
		}
	}
	return m
}

// sameEngines reports whether two specs name the same engines, so that the
// adapters made for one serve the other.
func sameEngines(a, b *spec.File) bool {
	ja, erra := json.Marshal(a.Hosts)
	jb, errb := json.Marshal(b.Hosts)
	return erra == nil && errb == nil && bytes.Equal(ja, jb)
}

func closeDeps(deps reconcile.Deps) {
	for _, rt := range deps.Runtimes {
		if c, ok := rt.(io.Closer); ok {
			_ = c.Close()
		}
	}
}
