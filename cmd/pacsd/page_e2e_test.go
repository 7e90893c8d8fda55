package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/pacsd/pacsd/internal/e2e"
	"github.com/pacsd/pacsd/pkg/reconcile"
)

// pageView is what the status page shows of one cluster, as a browser
// reads it from the page's stable attributes.
type pageView struct {
	// Marker is window.__marker: set by the test, lost if the page reloads.
	Marker  *int                `json:"marker"`
	Updated string              `json:"updated"`
	Banner  bool                `json:"banner"` // "pacsd does not answer" is shown
	Found   bool                `json:"found"`  // the cluster's section is drawn
	Nodes   map[string]pageNode `json:"nodes"`
	// Arrows maps "FROM>TO" to the arrow's data-state and label.
	Arrows map[string]pageArrow `json:"arrows"`
	// Seen is what the page showed of the watched node and its arrow,
	// each change recorded by a MutationObserver the test installs.
	Seen []pageSeen `json:"seen"`
	// Events are the rows of the event history, newest first.
	Events []pageEvent `json:"events"`
}

type pageNode struct {
	Role        string `json:"role"`
	Replication string `json:"replication"`
	Host        string `json:"host"`
	Text        string `json:"text"`
}

type pageArrow struct {
	State string `json:"state"`
	Label string `json:"label"`
}

type pageSeen struct {
	Role        string `json:"role"`
	Replication string `json:"replication"`
	Arrow       string `json:"arrow"`
	Label       string `json:"label"`
}

type pageEvent struct {
	Cluster string `json:"cluster"`
	Node    string `json:"node"`
	Kind    string `json:"kind"`
	Result  string `json:"result"`
}

// pageViewJS reads a pageView of the cluster named CLUSTER.
const pageViewJS = `(() => {
	const name = CLUSTER;
	const sec = Array.from(document.querySelectorAll('section[data-cluster]')).find((s) => s.dataset.cluster === name);
	const v = {
		marker: window.__marker === undefined ? null : window.__marker,
		updated: document.getElementById('updated').textContent,
		banner: !document.getElementById('banner').hidden,
		found: !!sec, nodes: {}, arrows: {}, seen: window.__seen || [], events: [],
	};
	if (sec) {
		for (const b of sec.querySelectorAll('[data-node]')) {
			const host = b.closest('[data-host]');
			v.nodes[b.dataset.node] = { role: b.dataset.role || '', replication: b.dataset.replication || '', host: host ? host.dataset.host : '?', text: b.textContent };
		}
		for (const a of sec.querySelectorAll('[data-from]')) {
			const title = a.querySelector('title');
			v.arrows[a.dataset.from + '>' + a.dataset.to] = { state: a.dataset.state || '', label: title ? title.textContent : '' };
		}
	}
	for (const tr of document.querySelectorAll('#event-rows tr')) {
		const td = tr.querySelectorAll('td');
		if (td.length >= 5) v.events.push({ cluster: td[1].textContent, node: td[2].textContent, kind: tr.dataset.kind || '', result: td[4].textContent });
	}
	return v;
})()`

// pageWatchJS sets window.__marker and records in window.__seen every
// change of what the page shows of node NODE of cluster CLUSTER and of the
// arrow from FROM to it.
const pageWatchJS = `(() => {
	const name = CLUSTER, node = NODE, from = FROM;
	window.__marker = 1;
	window.__seen = [];
	const look = () => {
		const sec = Array.from(document.querySelectorAll('section[data-cluster]')).find((s) => s.dataset.cluster === name);
		const b = sec && Array.from(sec.querySelectorAll('[data-node]')).find((x) => x.dataset.node === node);
		const a = sec && Array.from(sec.querySelectorAll('[data-from]')).find((x) => x.dataset.from === from && x.dataset.to === node);
		const title = a && a.querySelector('title');
		const s = { role: b ? b.dataset.role : '', replication: b ? b.dataset.replication : '', arrow: a ? a.dataset.state : '', label: title ? title.textContent : '' };
		const last = window.__seen[window.__seen.length - 1];
		if (!last || last.role !== s.role || last.replication !== s.replication || last.arrow !== s.arrow) window.__seen.push(s);
	};
	look();
	new MutationObserver(look).observe(document.body, { subtree: true, childList: true, attributes: true, attributeFilter: ['data-role', 'data-replication', 'data-state'] });
	return 1;
})()`

// jsQuote quotes s as a JavaScript string literal.
func jsQuote(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// lagLabel is an arrow's label for a streaming standby: its lag in bytes
// and, when known, seconds ("12 kB, 0.3 s").
var lagLabel = regexp.MustCompile(`^[0-9.]+ (B|kB|MB|GB|TB)(, [0-9.]+ (s|min|h))?$`)

// TestE2EStatusPage drives the status page at / in a headless chromium
// against pacsd run on a primary and two standbys: the page draws db1 as
// the primary and db2 and db3 as streaming standbys with an arrow from db1
// to each, labelled with its lag; once db2's container is killed (again
// each time it runs, until the page has shown it) it shows db2 not
// streaming and the arrow broken, then, once pacsd has brought db2 back,
// streaming again; all of it in place (the page is never reloaded),
// with the event history showing pacsd's repair of db2, and no exception
// nor anything refused by the page's CSP in the browser's console.
func TestE2EStatusPage(t *testing.T) {
	e := e2e.Require(t)
	tp := newTopology(t, e, "db1", "db2", "db3")
	r := startDaemon(t, tp, "10s")
	took := r.waitReady(t, 5*time.Minute)
	t.Logf("from nothing to /readyz 200: %.1fs", took.Seconds())
	tp.checkStreaming(t)

	ctx := e2e.Browser(t)
	problems := e2e.BrowserProblems(ctx)

	url := "http://" + r.listen + "/"
	if err := chromedp.Do(ctx, chromedp.Navigate(url)); err != nil {
		t.Fatalf("opening %s: %v", url, err)
	}
	read := strings.ReplaceAll(pageViewJS, "CLUSTER", jsQuote(tp.name))
	wait := func(what string, cond func(v pageView) error) (pageView, time.Duration) {
		t.Helper()
		start := time.Now()
		var v pageView
		err := e2e.Poll(2*time.Minute, func() error {
			cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			var err error
			if v, err = chromedp.Run(cctx, chromedp.Evaluate[pageView](read)); err != nil {
				return err
			}
			return cond(v)
		})
		if err != nil {
			cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			html, herr := chromedp.Run(cctx, chromedp.Evaluate[string](`(() => {
				const s = Array.from(document.querySelectorAll('section[data-cluster]')).find((s) => s.dataset.cluster === `+jsQuote(tp.name)+`);
				return (s ? s.outerHTML : '(no section for the cluster) ' + document.body.outerHTML);
			})()`))
			if herr != nil {
				html = "(cannot read the page: " + herr.Error() + ")"
			}
			st, _ := json.Marshal(v.Seen)
			t.Fatalf("waited 2m for the page to show %s: %v\nwhat the page showed of db2: %s\nthe cluster's section:\n%s", what, err, st, html)
		}
		return v, time.Since(start)
	}
	noReload := func(v pageView) error {
		if v.Marker == nil || *v.Marker != 1 {
			return fmt.Errorf("the page was reloaded (window.__marker is %v)", v.Marker)
		}
		return nil
	}
	streams := func(v pageView, standby string) error {
		n, ok := v.Nodes[standby]
		if !ok {
			return fmt.Errorf("no box for %s", standby)
		}
		if n.Role != "standby" || n.Replication != "streaming" {
			return fmt.Errorf("%s: role %q, replication %q", standby, n.Role, n.Replication)
		}
		a, ok := v.Arrows["db1>"+standby]
		if !ok {
			return fmt.Errorf("no arrow from db1 to %s", standby)
		}
		if a.State != "streaming" || !lagLabel.MatchString(a.Label) {
			return fmt.Errorf("the arrow from db1 to %s: %q, label %q", standby, a.State, a.Label)
		}
		return nil
	}

	v, took := wait("db1 primary, db2 and db3 streaming from it", func(v pageView) error {
		switch {
		case !v.Found:
			return fmt.Errorf("no section for cluster %s", tp.name)
		case v.Banner:
			return fmt.Errorf("the banner says pacsd does not answer")
		case !regexp.MustCompile(`^updated \d\d:\d\d:\d\d$`).MatchString(v.Updated):
			return fmt.Errorf("no time of update: %q", v.Updated)
		case v.Nodes["db1"].Role != "primary" || !strings.Contains(v.Nodes["db1"].Text, "PRIMARY"):
			return fmt.Errorf("db1: %+v", v.Nodes["db1"])
		}
		for _, n := range []string{"db1", "db2", "db3"} {
			if h := v.Nodes[n].Host; h != "" {
				return fmt.Errorf("%s is drawn on host %q, not in the local group", n, h)
			}
		}
		if err := streams(v, "db2"); err != nil {
			return err
		}
		return streams(v, "db3")
	})
	t.Logf("the page showed the cluster streaming %.1fs after it was opened: db1>db2 %q, db1>db3 %q", took.Seconds(), v.Arrows["db1>db2"].Label, v.Arrows["db1>db3"].Label)

	watch := strings.NewReplacer("CLUSTER", jsQuote(tp.name), "NODE", jsQuote("db2"), "FROM", jsQuote("db1")).Replace(pageWatchJS)
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[int](watch)); err != nil {
		t.Fatal(err)
	}

	// pacsd starts a killed standby again within about a second and its
	// view shows it not streaming for less than that, often between two of
	// the page's polls (every 2 s): until the page has shown db2 broken,
	// db2 is killed again each time it runs, as a standby that keeps
	// crashing.
	killed := time.Now()
	db2 := tp.container("db2")
	if err := e.Docker.ContainerKill(e.Ctx(time.Minute), db2, "KILL"); err != nil {
		t.Fatal(err)
	}
	stopKilling, kills := make(chan struct{}), make(chan int, 1)
	go func() {
		n := 1
		defer func() { kills <- n }()
		for {
			select {
			case <-stopKilling:
				return
			case <-time.After(200 * time.Millisecond):
			}
			kctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			if c, err := e.Docker.ContainerInspect(kctx, db2); err == nil && c.State != nil && c.State.Running {
				if e.Docker.ContainerKill(kctx, db2, "KILL") == nil {
					n++
				}
			}
			cancel()
		}
	}()
	keptDown := false
	defer func() {
		if !keptDown {
			close(stopKilling)
			<-kills
		}
	}()
	var broken pageSeen
	wait("db2 not streaming and its arrow broken", func(v pageView) error {
		if err := noReload(v); err != nil {
			return err
		}
		i := slices.IndexFunc(v.Seen, func(s pageSeen) bool {
			return s.Arrow == "broken" && (s.Role == "stopped" || s.Role == "down" || s.Replication == "not connected")
		})
		if i < 0 {
			return fmt.Errorf("db2 was not shown broken; shown: %+v", v.Seen)
		}
		broken = v.Seen[i]
		return nil
	})
	keptDown = true
	close(stopKilling)
	t.Logf("the page showed db2 %s/%q, arrow %q, %.1fs after the first kill (%d kills)", broken.Role, broken.Replication, broken.Label, time.Since(killed).Seconds(), <-kills)
	if !strings.HasPrefix(broken.Label, "broken: ") {
		t.Errorf("the broken arrow's label is %q, want broken: WHY", broken.Label)
	}

	v, _ = wait("db2 streaming again", func(v pageView) error {
		if err := noReload(v); err != nil {
			return err
		}
		if err := streams(v, "db2"); err != nil {
			return err
		}
		return streams(v, "db3")
	})
	t.Logf("the page showed db2 streaming again %.1fs after the first kill; it showed db2 as %+v", time.Since(killed).Seconds(), v.Seen)
	if v.Nodes["db1"].Role != "primary" {
		t.Errorf("db1 after db2 came back: %+v", v.Nodes["db1"])
	}

	// The event history: pacsd's repair of db2 shows in the table.
	code, body, err := r.get("/events?cluster=" + tp.name)
	var events []reconcile.Event
	if err == nil && code == http.StatusOK {
		err = json.Unmarshal([]byte(body), &events)
	} else if err == nil {
		err = fmt.Errorf("%d %s", code, body)
	}
	if err != nil {
		t.Fatalf("/events: %v", err)
	}
	i := slices.IndexFunc(events, func(ev reconcile.Event) bool { return ev.Node == "db2" && ev.At.After(killed) })
	if i < 0 {
		t.Fatalf("/events has no event for db2 since the kill: %+v", events)
	}
	repair := events[i]
	wait(fmt.Sprintf("the event %s of db2 in the history", repair.Kind), func(v pageView) error {
		if err := noReload(v); err != nil {
			return err
		}
		if !slices.ContainsFunc(v.Events, func(ev pageEvent) bool {
			return ev.Cluster == tp.name && ev.Node == "db2" && ev.Kind == repair.Kind
		}) {
			return fmt.Errorf("no row for it in %+v", v.Events)
		}
		return nil
	})

	if console := problems(); len(console) > 0 {
		t.Errorf("the page's console:\n%s", strings.Join(console, "\n"))
	}
}
