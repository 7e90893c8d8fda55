package daemon

import (
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strings"

	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Handler serves /healthz (200 while the loop runs), /readyz (200 once the
// first pass has ended and the last pass of every cluster succeeded, else
// 503 with the reasons), /metrics (Prometheus) and /status (JSON).
func (d *Daemon) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		if err := d.alive(); err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		if reasons := d.notReady(); len(reasons) > 0 {
			http.Error(w, strings.Join(reasons, "\n"), http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(d.m.reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /status", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		_ = enc.Encode(d.Status())
	})
	return mux
}

// Status returns a copy of the daemon's status.
func (d *Daemon) Status() Status {
	d.mu.Lock()
	defer d.mu.Unlock()
	st := d.st
	st.Clusters = make(map[string]*ClusterStatus, len(d.st.Clusters))
	for name, cs := range d.st.Clusters {
		c := *cs
		st.Clusters[name] = &c
	}
	return st
}

// notReady lists why the daemon is not ready; none when it is.
func (d *Daemon) notReady() []string {
	st := d.Status()
	if !st.Passed {
		return []string{"the first pass has not ended yet"}
	}
	var reasons []string
	for name, cs := range st.Clusters {
		if cs.Result != "ok" {
			reasons = append(reasons, fmt.Sprintf("cluster %q: last pass failed: %s", name, cs.Error))
		}
	}
	sort.Strings(reasons)
	return reasons
}
