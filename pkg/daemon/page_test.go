package daemon

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/pacsd/pacsd/internal/e2e"
	"github.com/pacsd/pacsd/pkg/reconcile"
)

// TestPageHandler: / is the page and /web/NAME its files, each with its
// type, the page's CSP, nosniff and no-cache; other paths are not found,
// other methods not allowed, and an unchanged file is not sent again. It
// goes through a mux registered as the daemon's Handler registers the page.
func TestPageHandler(t *testing.T) {
	mux := http.NewServeMux()
	mux.Handle("GET /{$}", pageHandler())
	mux.Handle("GET /web/", pageHandler())
	srv := httptest.NewServer(mux)
	defer srv.Close()

	get := func(method, path string, header ...string) (*http.Response, string) {
		t.Helper()
		req, err := http.NewRequest(method, srv.URL+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i+1 < len(header); i += 2 {
			req.Header.Set(header[i], header[i+1])
		}
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp, string(b)
	}

	for _, c := range []struct {
		path, contentType, contains string
	}{
		{"/", "text/html; charset=utf-8", `<script src="/web/page.js" defer></script>`},
		{"/web/page.js", "text/javascript; charset=utf-8", "fetch("},
		{"/web/page.css", "text/css; charset=utf-8", ".node"},
		{"/web/index.html", "text/html; charset=utf-8", `<link rel="stylesheet" href="/web/page.css">`},
	} {
		resp, body := get(http.MethodGet, c.path)
		if resp.StatusCode != http.StatusOK {
			t.Errorf("GET %s: %s", c.path, resp.Status)
			continue
		}
		checkPageHeaders(t, c.path, resp)
		if got := resp.Header.Get("Content-Type"); got != c.contentType {
			t.Errorf("GET %s: Content-Type %q, want %q", c.path, got, c.contentType)
		}
		if !strings.Contains(body, c.contains) {
			t.Errorf("GET %s: no %q in the body", c.path, c.contains)
		}
		etag := resp.Header.Get("ETag")
		if etag == "" {
			t.Errorf("GET %s: no ETag", c.path)
			continue
		}
		resp, _ = get(http.MethodGet, c.path, "If-None-Match", etag)
		if resp.StatusCode != http.StatusNotModified {
			t.Errorf("GET %s with its ETag: %s, want 304", c.path, resp.Status)
		}
		resp, body = get(http.MethodHead, c.path)
		if resp.StatusCode != http.StatusOK || body != "" {
			t.Errorf("HEAD %s: %s with %d bytes", c.path, resp.Status, len(body))
		}
	}

	for _, path := range []string{"/web/", "/web/missing.js", "/web/web/page.js", "/index.html", "/page.js", "/web/.%2e/page.go"} {
		resp, _ := get(http.MethodGet, path)
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s: %s, want 404", path, resp.Status)
		}
	}

	// The handler itself (the mux answers 405 before it for its routes).
	for _, method := range []string{http.MethodPost, http.MethodPut, http.MethodDelete} {
		rec := httptest.NewRecorder()
		pageHandler().ServeHTTP(rec, httptest.NewRequest(method, "/", nil))
		if rec.Code != http.StatusMethodNotAllowed || rec.Header().Get("Allow") != "GET, HEAD" {
			t.Errorf("%s /: %d, Allow %q; want 405, GET, HEAD", method, rec.Code, rec.Header().Get("Allow"))
		}
	}
	rec := httptest.NewRecorder()
	pageHandler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("pageHandler GET /: %d", rec.Code)
	}
	checkPageHeaders(t, "/ (pageHandler alone)", rec.Result())
}

func checkPageHeaders(t *testing.T, path string, resp *http.Response) {
	t.Helper()
	for name, want := range map[string]string{
		"Content-Security-Policy": "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'",
		"X-Content-Type-Options":  "nosniff",
		"Cache-Control":           "no-cache",
	} {
		if got := resp.Header.Get(name); got != want {
			t.Errorf("GET %s: %s %q, want %q", path, name, got, want)
		}
	}
}

// TestPageAssets: the page needs nothing from another origin, has no inline
// script or style (its CSP would refuse them), and its script never parses
// text as HTML.
func TestPageAssets(t *testing.T) {
	files := pageFiles()
	for _, name := range []string{"index.html", "page.js", "page.css"} {
		if _, ok := files[name]; !ok {
			t.Fatalf("web/%s is not embedded", name)
		}
	}
	html := string(files["index.html"].body)
	for _, m := range regexp.MustCompile(`(?i)\b(?:src|href)\s*=\s*"([^"]*)"`).FindAllStringSubmatch(html, -1) {
		if u := m[1]; !strings.HasPrefix(u, "/web/") && !strings.HasPrefix(u, "data:") {
			t.Errorf("index.html refers to %q: only /web/ files and data: URLs are served", u)
		}
	}
	for _, bad := range []*regexp.Regexp{
		regexp.MustCompile(`(?i)<script(?:\s[^>]*)?>\s*[^<\s]`), // a script with a body
		regexp.MustCompile(`(?i)<style`),
		regexp.MustCompile(`(?i)\sstyle\s*=`),
		regexp.MustCompile(`(?i)\son[a-z]+\s*=`),
	} {
		if loc := bad.FindString(html); loc != "" {
			t.Errorf("index.html has inline script or style (%q): the CSP refuses it", loc)
		}
	}
	for _, tag := range regexp.MustCompile(`(?i)<script[^>]*>`).FindAllString(html, -1) {
		if !strings.Contains(tag, ` src="/web/`) {
			t.Errorf("index.html has a script that is not one of the page's files: %s", tag)
		}
	}
	js := string(files["page.js"].body)
	for _, bad := range []string{"innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function", "setAttribute('style'", "http://", "https://"} {
		if bad == "http://" && strings.Count(js, bad) == strings.Count(js, "'http://www.w3.org/2000/svg'") {
			continue
		}
		if strings.Contains(js, bad) {
			t.Errorf("page.js uses %s", bad)
		}
	}
	if css := string(files["page.css"].body); strings.Contains(css, "url(") || strings.Contains(css, "@import") {
		t.Error("page.css loads something")
	}
}

// pageWait evaluates the expression js every 200 ms until it returns "",
// or fails the test after timeout with its last answer and the page's
// main element.
func pageWait(t *testing.T, ctx context.Context, timeout time.Duration, what, js string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var last string
	for {
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		got, err := chromedp.Run(cctx, chromedp.Evaluate[string](js))
		cancel()
		if err == nil && got == "" {
			return
		}
		last = got
		if err != nil {
			last = err.Error()
		}
		if time.Now().After(deadline) {
			html, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.querySelector('main') ? document.querySelector('main').outerHTML : document.documentElement.outerHTML`))
			t.Fatalf("waited %s for %s: %s\npage:\n%s", timeout, what, last, html)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// pageFixture serves the page, a /status and an /events that the test sets,
// and, while down is set, hangs up on /status and /events as a dead pacsd.
type pageFixture struct {
	mu     sync.Mutex
	status []byte
	events []byte
	down   bool
}

func (f *pageFixture) set(t *testing.T, st any, events []reconcile.Event) {
	t.Helper()
	s, err := json.Marshal(st)
	if err != nil {
		t.Fatal(err)
	}
	e, err := json.Marshal(events)
	if err != nil {
		t.Fatal(err)
	}
	f.mu.Lock()
	f.status, f.events = s, e
	f.mu.Unlock()
}

func (f *pageFixture) serve(which func(*pageFixture) []byte) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		body, down := which(f), f.down
		f.mu.Unlock()
		if down {
			if conn, _, err := http.NewResponseController(w).Hijack(); err == nil {
				conn.Close()
				return
			}
			http.Error(w, "down", http.StatusBadGateway)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(body)
	}
}

// fixtureStatus is a /status with two clusters: "pacs" (paused, a refused
// failover, the acting primary not the declared one, nodes on hosts a and b:
// a streaming synchronous standby and a stopped one whose why holds markup)
// and "lab" (no hosts: one group "local", a standby catching up).
func fixtureStatus(db3 reconcile.NodeView) map[string]any {
	now := time.Now().UTC()
	lagB, lagS, zero, slot := int64(12400), 0.3, int64(0), int64(3<<20)
	pacs := reconcile.ClusterView{Cluster: "pacs", Controller: "pacsd on this machine", Acting: "db1", Declared: "db2", Epoch: 4, Paused: true,
		ObservedAt: now.Format(time.RFC3339Nano), Nodes: []reconcile.NodeView{
			{Node: "db1", Host: "a", Container: "running", Role: "primary", Timeline: 2, LSN: "0/3000148"},
			{Node: "db2", Host: "a", Container: "running", Role: "standby", Timeline: 2, LSN: "0/3000000", LagBytes: &lagB, LagSeconds: &lagS,
				Replication: reconcile.ReplStreaming, Sync: true, Slot: "pacsd_pacs_db2", SlotRetained: &slot, SlotStatus: "reserved",
				PendingRestart: []string{"shared_buffers"},
				LastAction:     &reconcile.Event{At: now, Cluster: "pacs", Node: "db2", Kind: "start-container", Result: "ok"}},
			db3,
		}}
	lab := reconcile.ClusterView{Cluster: "lab", Acting: "x1", Declared: "x1", Epoch: 1, Nodes: []reconcile.NodeView{
		{Node: "x1", Container: "running", Role: "primary", Timeline: 1, LSN: "0/5000000"},
		{Node: "x2", Container: "running", Role: "standby", Timeline: 1, LSN: "0/4000000", LagBytes: &zero, Replication: reconcile.ReplCatchingUp,
			Why: "the WAL sender is in state catchup", Work: &reconcile.WorkView{Kind: "base-backup", Percent: 42, Left: "1m10s", Since: now.Format(time.RFC3339)}},
	}}
	cluster := func(v reconcile.ClusterView, extra map[string]any) map[string]any {
		b, _ := json.Marshal(v)
		m := map[string]any{}
		_ = json.Unmarshal(b, &m)
		m["last_pass"], m["duration"], m["result"], m["actions"] = now, "41ms", "ok", []string{}
		for k, x := range extra {
			m[k] = x
		}
		return m
	}
	return map[string]any{
		"file": "/etc/pacsd/pacs.hcl", "checksum": "0123456789abcdef0123", "loaded_at": now, "passed": true,
		"clusters": map[string]any{
			"pacs": cluster(pacs, map[string]any{"failover_refused": FailoverRefusal{Node: "db0", Error: "the old primary cannot be confirmed stopped", Since: now, Last: now, Attempts: 3}}),
			"lab":  cluster(lab, nil),
		},
		"engines": map[string]EngineStatus{"a": {Reachable: true, Since: now, CheckedAt: now}, "b": {Reachable: false, Error: "dial tcp 192.0.2.2:2376: i/o timeout", Since: now, CheckedAt: now}},
	}
}

// TestE2EStatusPageDraws drives the page in a headless chromium against a
// fixed /status and /events: boxes grouped by host with their roles and
// replication, the arrows and their labels, the paused cluster and the
// refused failover, text from the daemon shown as text (never as markup),
// the event history newest first, the banner while pacsd does not answer,
// and updates in place (the page is never reloaded).
func TestE2EStatusPageDraws(t *testing.T) {
	ctx := e2e.Browser(t)
	problems := e2e.BrowserProblems(ctx)

	f := &pageFixture{}
	evil := `<img src=x onerror="window.__pwned=1">`
	stopped := reconcile.NodeView{Node: "db3", Host: "b", Container: "exited", Role: "stopped", Slot: "pacsd_pacs_db3",
		Replication: reconcile.ReplNotConnected, Why: evil + "its server does not run"}
	t0 := time.Now().UTC().Add(-time.Minute)
	events := []reconcile.Event{
		{At: t0, Cluster: "pacs", Node: "db2", Kind: "start-container", Target: "pacs-db2", Reason: "its container stopped", Result: "ok", Duration: "1.2s"},
		{At: t0.Add(10 * time.Second), Cluster: "pacs", Kind: "failover-refused", Reason: evil, Result: "refused"},
		{At: t0.Add(20 * time.Second), Cluster: "lab", Node: "x2", Kind: "base-backup", Result: "failed: no space left on device"},
	}
	f.set(t, fixtureStatus(stopped), events)

	mux := http.NewServeMux()
	mux.Handle("GET /{$}", pageHandler())
	mux.Handle("GET /web/", pageHandler())
	mux.Handle("GET /status", f.serve(func(f *pageFixture) []byte { return f.status }))
	mux.Handle("GET /events", f.serve(func(f *pageFixture) []byte { return f.events }))
	srv := httptest.NewServer(mux)
	defer srv.Close()

	if err := chromedp.Do(ctx, chromedp.Navigate(srv.URL+"/")); err != nil {
		t.Fatal(err)
	}
	pageWait(t, ctx, 20*time.Second, "the clusters drawn", strings.ReplaceAll(`(() => {
		const evil = EVIL;
		const q = (s) => document.querySelector(s);
		const node = (c, n) => q('section[data-cluster="' + c + '"] [data-node="' + n + '"]');
		const arrow = (c, a, b) => q('section[data-cluster="' + c + '"] [data-from="' + a + '"][data-to="' + b + '"]');
		const label = (c, a, b) => { const x = arrow(c, a, b); return x ? x.querySelector('title').textContent : ''; };
		const want = [
			[node('pacs', 'db1') && node('pacs', 'db1').dataset.role, 'primary'],
			[node('pacs', 'db1') && node('pacs', 'db1').textContent.includes('PRIMARY'), true],
			[node('pacs', 'db2') && node('pacs', 'db2').dataset.role + '/' + node('pacs', 'db2').dataset.replication, 'standby/streaming'],
			[node('pacs', 'db3') && node('pacs', 'db3').dataset.role + '/' + node('pacs', 'db3').dataset.replication, 'stopped/not connected'],
			[node('pacs', 'db1') && node('pacs', 'db1').closest('[data-host]').dataset.host, 'a'],
			[node('pacs', 'db2') && node('pacs', 'db2').closest('[data-host]').dataset.host, 'a'],
			[node('pacs', 'db3') && node('pacs', 'db3').closest('[data-host]').dataset.host, 'b'],
			[node('lab', 'x2') && node('lab', 'x2').closest('[data-host]').textContent.startsWith('local'), true],
			[arrow('pacs', 'db1', 'db2') && arrow('pacs', 'db1', 'db2').dataset.state, 'streaming'],
			[label('pacs', 'db1', 'db2'), '12.1 kB, 0.3 s'],
			[arrow('pacs', 'db1', 'db3') && arrow('pacs', 'db1', 'db3').dataset.state, 'broken'],
			[label('pacs', 'db1', 'db3'), 'broken: ' + evil + 'its server does not run'],
			[arrow('lab', 'x1', 'x2') && arrow('lab', 'x1', 'x2').dataset.state, 'catching up'],
			[node('pacs', 'db3') && node('pacs', 'db3').textContent.includes(evil), true],
			[q('section[data-cluster="pacs"] .alert.paused') && q('section[data-cluster="pacs"] .alert.paused').textContent.startsWith('PAUSED'), true],
			[q('section[data-cluster="pacs"]').textContent.includes('Automatic failover of db0 refused'), true],
			[q('section[data-cluster="pacs"] dd.declared') && q('section[data-cluster="pacs"] dd.declared').textContent, 'db2'],
			[q('section[data-cluster="lab"] dd.declared'), null],
			[document.querySelectorAll('img').length, 0],
			[window.__pwned, undefined],
			[/^updated \d\d:\d\d:\d\d$/.test(q('#updated').textContent), true],
			[q('#banner').hidden, true],
			[Array.from(document.querySelectorAll('#event-rows tr')).map((r) => r.dataset.kind).join(','), 'base-backup,failover-refused,start-container'],
			[q('#event-rows tr:nth-child(2) td.ev-reason').textContent, evil],
		];
		for (const [i, [got, w]] of want.entries()) if (got !== w) return 'check ' + i + ': ' + JSON.stringify(got) + ', want ' + JSON.stringify(w);
		return '';
	})()`, "EVIL", jsString(evil)))

	// The arrows are drawn between the boxes: each starts under the
	// primary's box and ends under its standby's.
	pageWait(t, ctx, 5*time.Second, "the arrows placed", `(() => {
		const sec = document.querySelector('section[data-cluster="pacs"]');
		const svg = sec.querySelector('svg.arrows').getBoundingClientRect();
		for (const to of ['db2', 'db3']) {
			const a = sec.querySelector('[data-from="db1"][data-to="' + to + '"] .link').getBoundingClientRect();
			const p = sec.querySelector('[data-node="db1"]').getBoundingClientRect();
			const s = sec.querySelector('[data-node="' + to + '"]').getBoundingClientRect();
			const pcx = p.left + p.width / 2, scx = s.left + s.width / 2;
			const near = (x, y) => Math.abs(x - y) < 3;
			if (!near(a.left, Math.min(pcx, scx)) || !near(a.right, Math.max(pcx, scx))) return to + ': the arrow spans x ' + a.left + '..' + a.right + ', the boxes\' centers are ' + pcx + ', ' + scx;
			if (!near(a.top, Math.min(p.bottom, s.bottom + 9))) return to + ': the arrow starts at y ' + a.top + ', the boxes end at ' + p.bottom + ', ' + s.bottom;
			if (a.right > svg.right || a.bottom > svg.bottom) return to + ': the arrow leaves its drawing';
		}
		return '';
	})()`)

	if os.Getenv("PACSD_PAGE_SCREENSHOT") != "" { // a look at the page, for whoever changes it
		png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		if err == nil {
			err = os.WriteFile(os.Getenv("PACSD_PAGE_SCREENSHOT"), png, 0o644)
		}
		if err != nil {
			t.Errorf("screenshot: %v", err)
		}
	}

	if _, err := chromedp.Run(ctx, chromedp.Evaluate[int](`window.__marker = 1`)); err != nil {
		t.Fatal(err)
	}
	f.mu.Lock()
	f.down = true
	f.mu.Unlock()
	pageWait(t, ctx, 20*time.Second, "the banner", `(() => {
		const b = document.getElementById('banner');
		if (b.hidden || !b.textContent.includes('pacsd does not answer') || b.getBoundingClientRect().height === 0) return 'banner hidden: ' + b.hidden;
		return window.__marker === 1 ? '' : 'the page was reloaded';
	})()`)

	f.mu.Lock()
	f.down = false
	f.mu.Unlock()
	streaming := stopped
	lag := int64(0)
	streaming.Container, streaming.Role, streaming.Replication, streaming.Why, streaming.LagBytes = "running", "standby", reconcile.ReplStreaming, "", &lag
	f.set(t, fixtureStatus(streaming), events)
	pageWait(t, ctx, 20*time.Second, "db3 streaming, the banner gone, in place", `(() => {
		if (window.__marker !== 1) return 'the page was reloaded';
		if (!document.getElementById('banner').hidden) return 'the banner is still shown';
		const sec = document.querySelector('section[data-cluster="pacs"]');
		const n = sec.querySelector('[data-node="db3"]');
		const a = sec.querySelector('[data-from="db1"][data-to="db3"]');
		if (n.dataset.role !== 'standby' || n.dataset.replication !== 'streaming') return 'db3: ' + n.dataset.role + '/' + n.dataset.replication;
		if (a.dataset.state !== 'streaming') return 'arrow to db3: ' + a.dataset.state;
		return '';
	})()`)

	if p := problems(); len(p) > 0 {
		t.Errorf("the page's console:\n%s", strings.Join(p, "\n"))
	}
}

// jsString quotes s as a JavaScript string literal.
func jsString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}
