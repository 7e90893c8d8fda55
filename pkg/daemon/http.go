package daemon

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/pacsd/pacsd/pkg/reconcile"
)

// HTTP limits: a client that sends its request slowly, keeps idle
// connections or sends huge headers holds no more than these.
const (
	httpReadHeaderTimeout = 5 * time.Second
	httpReadTimeout       = 10 * time.Second
	httpWriteTimeout      = 30 * time.Second
	httpIdleTimeout       = 60 * time.Second
	httpMaxHeaderBytes    = 16 << 10
)

// newHTTPServer is the daemon's HTTP server for h, with the limits above.
func newHTTPServer(h http.Handler) *http.Server {
	return &http.Server{Handler: h, ReadHeaderTimeout: httpReadHeaderTimeout, ReadTimeout: httpReadTimeout,
		WriteTimeout: httpWriteTimeout, IdleTimeout: httpIdleTimeout, MaxHeaderBytes: httpMaxHeaderBytes}
}

// serveHTTP serves Handler on ln until the returned server is shut down:
// over TLS when the spec in force has daemon.tls (with the certificate and
// client CA of the spec in force at each handshake, so that a reload
// replaces them), plain HTTP otherwise.
func (d *Daemon) serveHTTP(ln net.Listener) *http.Server {
	srv := newHTTPServer(d.Handler())
	srv.ErrorLog = log.New(serverLog{d.log}, "", 0)
	s := d.security.Load()
	serve := func() error { return srv.Serve(ln) }
	if s.server != nil {
		srv.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12, GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			return d.security.Load().server, nil
		}}
		serve = func() error { return srv.ServeTLS(ln, "", "") }
	}
	go func() {
		if err := serve(); err != nil && !errors.Is(err, http.ErrServerClosed) {
			d.log.Error("the HTTP server stopped", "error", err)
		}
	}()
	auth := "none (loopback: what reads is open, POST /failsafe refused)"
	if s.authenticates() {
		auth = s.how()
	}
	d.log.Info("serving the status page /, /healthz, /readyz, /metrics, /status, /events and the load balancer's checks",
		"address", ln.Addr().String(), "tls", s.server != nil, "authentication", auth)
	return srv
}

// serverLog takes the HTTP server's own lines into the daemon's log: a
// failed TLS handshake (plain HTTP, a client certificate of another CA, a
// scanner) at debug level, anything else (a handler's panic) as a warning.
type serverLog struct{ log *slog.Logger }

func (s serverLog) Write(p []byte) (int, error) {
	msg := strings.TrimSpace(string(p))
	level := slog.LevelWarn
	if strings.Contains(msg, "TLS handshake error") {
		level = slog.LevelDebug
	}
	s.log.Log(context.Background(), level, "HTTP server: "+msg)
	return len(p), nil
}

// serveEvents answers the event history as a JSON array, oldest first:
// ?cluster=NAME (default every cluster), ?since=RFC3339 time or a duration
// back from now ("1h"), ?limit=N (the newest N).
func (d *Daemon) serveEvents(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	var since time.Time
	if s := q.Get("since"); s != "" {
		t, err := ParseSince(s, time.Now())
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		since = t
	}
	limit := 0
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			http.Error(w, "limit must be a positive number of events", http.StatusBadRequest)
			return
		}
		limit = n
	}
	es, err := d.Events(q.Get("cluster"), since)
	if err != nil {
		http.Error(w, "the event history cannot be read: "+err.Error(), http.StatusServiceUnavailable)
		return
	}
	if limit > 0 && len(es) > limit {
		es = es[len(es)-limit:]
	}
	if es == nil {
		es = []reconcile.Event{}
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(es)
}

// ParseSince reads a --since value: an RFC 3339 time, or a duration back
// from now ("90m").
func ParseSince(s string, now time.Time) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	if dur, err := time.ParseDuration(s); err == nil && dur >= 0 {
		return now.Add(-dur), nil
	}
	return time.Time{}, fmt.Errorf("since %q is neither a time (RFC 3339, e.g. 2026-12-02T10:00:00Z) nor a duration back from now (e.g. 1h, 30m)", s)
}

// Handler serves /healthz (200 while the loop runs), /readyz (200 once the
// first pass has ended and the last pass of every cluster succeeded, else
// 503 with the reasons), /metrics (Prometheus), /status (JSON), and the
// load balancer's checks of a node, /primary, /replica, /read-write and
// /read-only (200 or 503, see serveCheck). Every endpoint but /healthz
// asks for the token or a client certificate when daemon.token_file or
// daemon.tls.client_ca is set (authenticate).
func (d *Daemon) Handler() http.Handler { return d.authenticate(d.routes()) }

// routes is Handler without authentication.
func (d *Daemon) routes() http.Handler {
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
		st := d.Status()
		if d.hosted != nil {
			// One deadline for every cluster, read side by side: etcd that
			// does not answer delays /status by 2 s, not 2 s a cluster.
			ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
			var wg sync.WaitGroup
			for name, cs := range st.Clusters {
				wg.Add(1)
				go func() {
					defer wg.Done()
					cs.Coordination = d.coordinationStatus(ctx, name)
					if l := cs.Coordination.Leader; l != "" {
						cs.Controller = "the pacsd of host " + l + " leads (etcd)"
					} else {
						cs.Controller = "no pacsd leads (etcd: " + orElse(cs.Coordination.Error, "no leader elected") + ")"
					}
				}()
			}
			wg.Wait()
			cancel()
		}
		_ = enc.Encode(st)
	})
	mux.HandleFunc("GET /events", d.serveEvents)
	mux.Handle("GET /{$}", pageHandler())
	mux.Handle("GET /web/", pageHandler())
	for _, check := range reconcile.LBChecks {
		mux.HandleFunc("GET /"+check, func(w http.ResponseWriter, r *http.Request) { d.serveCheck(w, r, check) })
	}
	mux.HandleFunc("POST /failsafe", func(w http.ResponseWriter, r *http.Request) {
		if d.hosted == nil {
			http.Error(w, "pacsd does not run on every host (no daemon.etcd)", http.StatusNotFound)
			return
		}
		var req FailsafeRequest
		if err := json.NewDecoder(io.LimitReader(r.Body, 1<<16)).Decode(&req); err != nil {
			http.Error(w, "not a failsafe request: "+err.Error(), http.StatusBadRequest)
			return
		}
		a := d.failsafeAnswer(req, r.RemoteAddr)
		w.Header().Set("Content-Type", "application/json")
		if !a.OK {
			w.WriteHeader(http.StatusConflict)
		}
		_ = json.NewEncoder(w).Encode(a)
	})
	return mux
}
