// pacsd's status page. It asks the daemon for /status every 2 s and for
// /events every 5 s, and updates the page in place (it never reloads).
// Every text that comes from the daemon is set with textContent or as an
// attribute's value: nothing from it is ever parsed as HTML.
//
// Stable attributes for tools and tests: each node's box carries data-node,
// data-role (primary, standby, down, stopped, unknown) and data-replication
// (streaming, catching up, not connected, or empty); each arrow from the
// acting primary to another node data-from, data-to and data-state
// (streaming, catching up, broken).
'use strict';

(function () {
  const STATUS_EVERY = 2000;
  const EVENTS_EVERY = 5000;
  const FETCH_TIMEOUT = 5000;
  const EVENTS_LIMIT = 50;
  const SVG_NS = 'http://www.w3.org/2000/svg';

  // ---- DOM helpers

  // el makes an HTML element of class cls (none when empty) with children
  // kids: nodes, or strings taken as text.
  function el(tag, cls, ...kids) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    for (const k of kids) {
      if (k === null || k === undefined || k === false) continue;
      e.append(typeof k === 'string' ? document.createTextNode(k) : k);
    }
    return e;
  }

  // svg makes an SVG element with attributes attrs.
  function svg(tag, attrs) {
    const e = document.createElementNS(SVG_NS, tag);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, String(v));
    return e;
  }

  // setKids makes parent's children equal to kids, replacing only those that
  // differ (text being selected survives a refresh that changed nothing).
  function setKids(parent, kids) {
    kids.forEach((k, i) => {
      const old = parent.childNodes[i];
      if (!old) parent.append(k);
      else if (!old.isEqualNode(k)) parent.replaceChild(k, old);
    });
    while (parent.childNodes.length > kids.length) parent.lastChild.remove();
  }

  // keyed makes parent's children the elements named by keys (data-key), in
  // that order: it keeps those it has, makes the others with make(key) and
  // drops the rest. It returns them in the order of keys.
  function keyed(parent, keys, make) {
    const have = new Map();
    for (const c of Array.from(parent.children)) {
      if (c.dataset && c.dataset.key !== undefined) have.set(c.dataset.key, c);
      else c.remove();
    }
    const out = keys.map((key, i) => {
      let c = have.get(key);
      if (c) {
        have.delete(key);
      } else {
        c = make(key);
        c.dataset.key = key;
      }
      const at = parent.children[i];
      if (at !== c) parent.insertBefore(c, at || null);
      return c;
    });
    for (const c of have.values()) c.remove();
    return out;
  }

  function setAttr(e, name, value) {
    value = String(value);
    if (e.getAttribute(name) !== value) e.setAttribute(name, value);
  }

  function setText(e, text) {
    if (e.textContent !== text) e.textContent = text;
  }

  // ---- formats

  function pad(n) { return String(n).padStart(2, '0'); }

  // parseTime reads one of the daemon's times (RFC 3339, nanoseconds); null
  // for none, Go's zero time, or what it cannot read.
  function parseTime(s) {
    if (!s || typeof s !== 'string') return null;
    const d = new Date(s.replace(/(\.\d{3})\d+/, '$1'));
    if (isNaN(d.getTime()) || d.getUTCFullYear() < 1000) return null;
    return d;
  }

  function clock(d) { return pad(d.getHours()) + ':' + pad(d.getMinutes()) + ':' + pad(d.getSeconds()); }

  // when prints a time: HH:MM:SS today, YYYY-MM-DD HH:MM:SS before.
  function when(d) {
    if (!d) return '-';
    const now = new Date();
    if (d.toDateString() === now.toDateString()) return clock(d);
    return d.getFullYear() + '-' + pad(d.getMonth() + 1) + '-' + pad(d.getDate()) + ' ' + clock(d);
  }

  function ago(d) {
    if (!d) return '';
    const s = Math.max(0, Math.round((Date.now() - d.getTime()) / 1000));
    if (s < 90) return s + ' s ago';
    if (s < 5400) return Math.round(s / 60) + ' min ago';
    if (s < 172800) return Math.round(s / 3600) + ' h ago';
    return Math.round(s / 86400) + ' d ago';
  }

  // bytes prints a size as PostgreSQL's pg_size_pretty does (1 kB = 1024 B).
  function bytes(n) {
    if (typeof n !== 'number' || !isFinite(n)) return '-';
    const units = ['B', 'kB', 'MB', 'GB', 'TB', 'PB'];
    let v = Math.abs(n);
    let u = 0;
    while (v >= 1024 && u < units.length - 1) { v /= 1024; u++; }
    const txt = u === 0 || v >= 100 ? String(Math.round(v)) : v.toFixed(1).replace(/\.0$/, '');
    return (n < 0 ? '-' : '') + txt + ' ' + units[u];
  }

  function seconds(x) {
    if (typeof x !== 'number' || !isFinite(x)) return '';
    if (x < 10) return x.toFixed(1) + ' s';
    if (x < 120) return Math.round(x) + ' s';
    if (x < 7200) return Math.round(x / 60) + ' min';
    return (x / 3600).toFixed(1) + ' h';
  }

  // lag prints a standby's lag: "12 kB, 0.3 s"; "" when not known.
  function lag(n) {
    const parts = [];
    if (typeof n.lag_bytes === 'number') parts.push(bytes(n.lag_bytes));
    if (typeof n.lag_seconds === 'number') parts.push(seconds(n.lag_seconds));
    return parts.join(', ');
  }

  function clip(s, max) { return s.length > max ? (max > 1 ? s.slice(0, max - 1) : '') + '\u2026' : s; }

  function str(v) { return v === null || v === undefined ? '' : String(v); }

  // ---- the status

  const $ = (id) => document.getElementById(id);
  const clustersEl = $('clusters');
  const noticesEl = $('notices');
  const lastStatus = new Map(); // cluster name -> its last ClusterStatus, for redrawing arrows

  function renderStatus(st) {
    const file = $('file');
    const sum = str(st.checksum);
    setText(file, str(st.file) + (sum ? ' \u00b7 ' + sum.slice(0, 12) : ''));
    setAttr(file, 'title', 'topology file ' + str(st.file) + (sum ? ', checksum ' + sum : ''));

    const notes = [];
    if (st.reload_error) notes.push(el('p', 'notice bad', 'The last saved topology file was refused; the one loaded before stays in force: ' + st.reload_error));
    if (!st.passed) notes.push(el('p', 'notice', 'The first pass has not ended yet.'));
    const engines = st.engines || {};
    for (const name of Object.keys(engines).sort()) {
      const e = engines[name];
      if (e && !e.reachable) {
        const since = parseTime(e.since);
        notes.push(el('p', 'notice bad', 'The Docker engine of ' + (name === 'local' || name === '(local)' ? 'this machine' : 'host ' + name) +
          ' does not answer' + (since ? ' since ' + when(since) : '') + (e.error ? ': ' + e.error : '')));
      }
    }
    const clusters = st.clusters || {};
    const names = Object.keys(clusters).sort();
    if (names.length === 0) notes.push(el('p', 'notice', 'No cluster is declared in the topology file.'));
    setKids(noticesEl, notes);

    const secs = keyed(clustersEl, names, makeCluster);
    lastStatus.clear();
    names.forEach((name, i) => {
      const cs = clusters[name] || {};
      lastStatus.set(name, cs);
      renderCluster(secs[i], name, cs, engines);
    });
    // Arrows need the boxes laid out: draw them once every box is in place.
    names.forEach((name, i) => drawArrows(secs[i], clusters[name] || {}));
  }

  function makeCluster(name) {
    const sec = el('section', 'cluster');
    sec.dataset.cluster = name;
    sec.id = 'cluster-' + name;
    const head = el('header', 'cluster-head', el('h2', 'cluster-name', name), el('span', 'badges'));
    const topo = el('div', 'topology', el('div', 'hosts'));
    const arrows = svg('svg', { class: 'arrows', 'aria-hidden': 'true' });
    topo.append(arrows);
    sec.append(head, el('dl', 'facts'), el('div', 'alerts'), topo, el('p', 'observed muted'));
    return sec;
  }

  function badge(cls, text, title) {
    const b = el('span', 'badge ' + cls, text);
    if (title) b.title = title;
    return b;
  }

  function renderCluster(sec, name, cs, engines) {
    const nodes = Array.isArray(cs.nodes) ? cs.nodes : [];
    const acting = str(cs.acting);
    const declared = str(cs.declared);
    const refused = cs.failover_refused && cs.failover_refused.node ? cs.failover_refused : null;
    sec.classList.toggle('paused', !!cs.paused);
    sec.classList.toggle('refused', !!refused);

    // Header badges.
    const badges = [];
    if (cs.paused) badges.push(badge('paused', 'PAUSED', 'pacsd does not act on this cluster until it is resumed (pacsd resume)'));
    if (refused) badges.push(badge('bad', 'FAILOVER REFUSED'));
    const result = str(cs.result);
    if (result) badges.push(badge(result === 'ok' ? 'good' : result === 'partial' ? 'warn' : 'bad', 'last pass: ' + result));
    if (acting && declared && acting !== declared) badges.push(badge('warn', 'primary differs from the file'));
    setKids(sec.querySelector('.badges'), badges);

    // Facts.
    const facts = [];
    const fact = (k, v, cls) => { facts.push(el('div', 'fact', el('dt', '', k), el('dd', cls || '', v))); };
    fact('acting primary', acting || 'unknown', 'acting');
    if (declared && declared !== acting) fact('declared primary', declared, 'declared');
    fact('epoch', str(cs.epoch === undefined ? '' : cs.epoch));
    if (cs.controller) fact('controller', str(cs.controller));
    const co = cs.coordination;
    if (co) {
      fact('leader', co.leader ? 'pacsd on ' + co.leader : 'none');
      fact('primary lease', co.lease ? co.lease.node + ' on ' + co.lease.host : 'held by no pacsd', co.lease ? '' : 'warn');
      const hosts = Object.keys(co.hosts || {}).sort();
      if (hosts.length) fact('pacsd reporting', hosts.join(', '));
      if (co.error) fact('etcd', co.error, 'bad');
    }
    const last = parseTime(cs.last_pass);
    if (last) fact('last pass', when(last) + (cs.duration ? ' (' + cs.duration + ')' : ''));
    if (cs.failures) {
      const retry = parseTime(cs.retry_at);
      fact('failed passes', cs.failures + (retry ? ', next at ' + when(retry) : ''), 'bad');
    }
    if (cs.primary_seen && cs.primary_seen.node) {
      const at = parseTime(cs.primary_seen.at);
      const sync = (cs.primary_seen.sync_standbys || []).join(', ');
      fact('primary seen healthy', cs.primary_seen.node + ' at ' + str(cs.primary_seen.wal) + (at ? ', ' + when(at) : '') + (sync ? '; synchronous: ' + sync : ''));
    }
    setKids(sec.querySelector('.facts'), facts);

    // Alerts: what an operator must see first.
    const alerts = [];
    if (cs.paused) alerts.push(el('p', 'alert paused', 'PAUSED \u2014 pacsd does not act on this cluster (no repair, no failover) until it is resumed.'));
    if (refused) {
      const since = parseTime(refused.since);
      alerts.push(el('p', 'alert bad', 'Automatic failover of ' + refused.node + ' refused' +
        (since ? ' since ' + when(since) : '') + (refused.attempts ? ' (' + refused.attempts + ' attempts)' : '') + ': ' + str(refused.error)));
    }
    if (cs.problem) alerts.push(el('p', 'alert bad', 'Not observed: ' + cs.problem));
    if (cs.error) alerts.push(el('p', 'alert ' + (result === 'partial' ? 'warn' : 'bad'), 'Last pass: ' + cs.error));
    if (acting && nodes.length && !nodes.some((n) => n.node === acting)) alerts.push(el('p', 'alert warn', 'The acting primary ' + acting + ' is not a node of the file.'));
    setKids(sec.querySelector('.alerts'), alerts);

    // Nodes, grouped by host.
    const groups = [];
    const byHost = new Map();
    for (const n of nodes) {
      const host = str(n.host);
      if (!byHost.has(host)) { byHost.set(host, []); groups.push(host); }
      byHost.get(host).push(n);
    }
    const hostsEl = sec.querySelector('.hosts');
    const hostEls = keyed(hostsEl, groups.map((g) => 'host:' + g), makeHost);
    groups.forEach((host, i) => renderHost(hostEls[i], host, byHost.get(host), cs, engines));
    if (!nodes.length) setKids(hostsEl, [el('p', 'muted', cs.problem ? 'No node could be observed.' : 'No node seen yet.')]);

    const observed = parseTime(cs.observed_at);
    setText(sec.querySelector('.observed'), observed ? 'nodes observed at ' + when(observed) + ' (' + ago(observed) + ')' : '');
  }

  function makeHost(key) {
    const host = key.slice('host:'.length);
    const box = el('div', 'host', el('div', 'host-head'), el('div', 'host-nodes'));
    box.dataset.host = host;
    return box;
  }

  function renderHost(box, host, nodes, cs, engines) {
    const head = [el('span', 'host-name', host ? 'host ' + host : 'local')];
    const co = cs.coordination;
    if (co && host && co.leader === host) head.push(badge('good', 'leader'));
    if (co && host && co.lease && co.lease.host === host) head.push(badge('good', 'lease'));
    const e = engines[host || 'local'] || (host ? null : engines['(local)']);
    if (e && !e.reachable) head.push(badge('bad', 'engine does not answer', str(e.error)));
    setKids(box.querySelector('.host-head'), head);
    box.classList.toggle('unreachable', !!(e && !e.reachable));
    const boxes = keyed(box.querySelector('.host-nodes'), nodes.map((n) => str(n.node)), makeNode);
    nodes.forEach((n, i) => renderNode(boxes[i], n, cs));
  }

  function makeNode(name) {
    const box = el('div', 'node');
    box.dataset.node = name;
    return box;
  }

  const roles = ['primary', 'standby', 'down', 'stopped', 'unknown'];

  function renderNode(box, n, cs) {
    const role = roles.includes(n.role) ? n.role : 'unknown';
    const repl = str(n.replication);
    const isActing = str(n.node) === str(cs.acting);
    setAttr(box, 'data-role', role);
    setAttr(box, 'data-replication', repl);
    setAttr(box, 'data-container', str(n.container));
    setAttr(box, 'data-acting', isActing ? 'true' : 'false');
    setAttr(box, 'class', 'node role-' + role + (isActing ? ' acting' : '') +
      (repl ? ' repl-' + repl.replace(/ /g, '-') : '') + (n.work ? ' working' : ''));

    let roleText;
    if (role === 'primary') roleText = isActing ? '\u265B PRIMARY' : 'PRIMARY, not the acting one';
    else roleText = role.toUpperCase();
    const kids = [el('div', 'node-head', el('span', 'node-name', str(n.node)), el('span', 'role', roleText))];
    const line = (k, v, cls) => kids.push(el('div', 'kv' + (cls ? ' ' + cls : ''), el('span', 'k', k), el('span', 'v', v)));

    line('container', str(n.container) || 'unknown', n.container === 'running' ? '' : 'warn');
    if (n.timeline || n.lsn) line('timeline / LSN', (n.timeline ? 'TL ' + n.timeline : '-') + ' \u00b7 ' + (n.lsn || '-'));
    if (repl) line('replication', repl + (n.sync ? ' (sync)' : ''), repl === 'streaming' ? 'good' : repl === 'catching up' ? 'warn' : 'bad');
    const l = lag(n);
    if (l) line('lag', l);
    if (n.slot) {
      const lost = n.slot_status === 'lost' || n.slot_status === 'unreserved';
      line('slot', n.slot, lost ? 'bad' : '');
      if (typeof n.slot_retained_bytes === 'number' || n.slot_status) {
        line('WAL retained', (typeof n.slot_retained_bytes === 'number' ? bytes(n.slot_retained_bytes) : '-') +
          (n.slot_status ? ' (' + n.slot_status + ')' : ''), lost ? 'bad' : '');
      }
    }
    if (Array.isArray(n.pending_restart) && n.pending_restart.length) line('restart pending', n.pending_restart.join(', '), 'warn');
    if (n.work) {
      const w = n.work;
      const pct = typeof w.percent === 'number' ? Math.max(0, Math.min(100, w.percent)) : 0;
      const bar = el('progress', 'work-bar');
      bar.max = 100;
      bar.value = pct;
      const since = parseTime(w.since);
      kids.push(el('div', 'work', el('span', 'k', str(w.kind)), el('span', 'v', pct.toFixed(0) + '%' +
        (w.left ? ', ' + w.left + ' left' : '') + (since ? ', since ' + when(since) : '')), bar));
    }
    if (n.why) kids.push(el('div', 'why', str(n.why)));
    if (n.last_action && n.last_action.kind) {
      const a = n.last_action;
      const at = parseTime(a.at);
      const d = el('div', 'last-action muted', 'last: ' + a.kind + ' ' + str(a.result) + (at ? ', ' + when(at) : ''));
      if (a.reason) d.title = a.reason;
      kids.push(d);
    }
    setKids(box, kids);
  }

  // drawArrows draws an arrow from the acting primary's box to every other
  // node's box. Each runs down from under the primary's box to a lane of its
  // own under the row of hosts, along it, and up to the node's box; the
  // nearest node gets the highest lane, so that no two arrows cross. Its
  // label sits on its lane, shortened to the lane's length (the whole text
  // is its tooltip).
  function drawArrows(sec, cs) {
    const topo = sec.querySelector('.topology');
    const arrows = topo.querySelector('svg.arrows');
    const acting = str(cs.acting);
    const nodes = Array.isArray(cs.nodes) ? cs.nodes : [];
    const boxOf = (name) => {
      for (const b of topo.querySelectorAll('.node')) if (b.dataset.node === name) return b;
      return null;
    };
    const pbox = acting ? boxOf(acting) : null;
    const links = [];
    if (pbox) {
      for (const n of nodes) {
        if (str(n.node) === acting) continue;
        const b = boxOf(str(n.node));
        if (b) links.push({ n: n, box: b });
      }
    }
    const first = 26; // from the bottom of the hosts to the first lane
    const step = 24; // between lanes
    const head = 9; // the arrowhead's length
    const bend = 8; // the radius of the corners
    topo.style.paddingBottom = (links.length ? first + step * (links.length - 1) + 10 : 0) + 'px'; // CSSOM: allowed by the page's CSP
    arrows.setAttribute('width', '0');
    arrows.setAttribute('height', '0');

    const base = topo.getBoundingClientRect();
    const rel = (e) => {
      const r = e.getBoundingClientRect();
      const x = r.left - base.left - topo.clientLeft + topo.scrollLeft;
      const y = r.top - base.top - topo.clientTop + topo.scrollTop;
      return { cx: Math.round(x + r.width / 2), bottom: Math.round(y + r.height) };
    };
    const hostsBottom = rel(topo.querySelector('.hosts')).bottom;
    const p = pbox ? rel(pbox) : null;
    for (const l of links) {
      l.r = rel(l.box);
      l.dist = Math.abs(l.r.cx - p.cx);
    }
    links.sort((a, b) => a.dist - b.dist);

    arrows.setAttribute('width', String(topo.scrollWidth));
    arrows.setAttribute('height', String(topo.scrollHeight));
    const groups = keyed(arrows, links.map((l) => acting + '\u2192' + str(l.n.node)), () => {
      const g = svg('g');
      const text = svg('text', { class: 'label' });
      text.append(svg('title'), document.createTextNode(''));
      g.append(svg('path', { class: 'link' }), svg('path', { class: 'head' }), svg('circle', { class: 'tail', r: 3.5 }), text);
      return g;
    });
    links.forEach((l, i) => {
      const g = groups[i];
      const n = l.n;
      const repl = str(n.replication);
      const state = repl === 'streaming' ? 'streaming' : repl === 'catching up' ? 'catching up' : 'broken';
      let label;
      if (state === 'streaming') label = lag(n) || 'streaming';
      else if (state === 'catching up') label = 'catching up' + (lag(n) ? ': ' + lag(n) : '');
      else label = 'broken: ' + (str(n.why) || repl || 'state unknown');
      setAttr(g, 'data-from', acting);
      setAttr(g, 'data-to', str(n.node));
      setAttr(g, 'data-state', state);
      setAttr(g, 'class', 'arrow ' + state.replace(/ /g, '-') + (n.sync ? ' sync' : ''));

      const x1 = p.cx;
      const y1 = p.bottom;
      const x2 = l.r.cx;
      const y2 = l.r.bottom + head;
      const y = hostsBottom + first + step * i;
      const dir = x2 >= x1 ? 1 : -1;
      const r = Math.min(bend, Math.abs(x2 - x1) / 2);
      const [path, tip, tail, text] = g.children;
      setAttr(path, 'd', 'M ' + x1 + ' ' + y1 + ' V ' + (y - r) + ' Q ' + x1 + ' ' + y + ' ' + (x1 + dir * r) + ' ' + y +
        ' H ' + (x2 - dir * r) + ' Q ' + x2 + ' ' + y + ' ' + x2 + ' ' + (y - r) + ' V ' + y2);
      setAttr(tip, 'd', 'M ' + x2 + ' ' + (y2 - head) + ' L ' + (x2 - 5) + ' ' + (y2 + 1) + ' L ' + (x2 + 5) + ' ' + (y2 + 1) + ' Z');
      setAttr(tail, 'cx', x1);
      setAttr(tail, 'cy', y1 + 2);
      setAttr(text, 'x', (x1 + x2) / 2);
      setAttr(text, 'y', y - 5);
      setText(text.firstChild, label);
      fitLabel(g, text, label, Math.abs(x2 - x1) - 2 * bend - 12);
    });
  }

  // fitLabel sets the label's visible text: as much of label as fits in
  // width pixels, with an ellipsis when shortened.
  function fitLabel(g, text, label, width) {
    const key = label + '\u0000' + Math.round(width);
    if (g.dataset.fit === key) return;
    const shown = text.lastChild;
    const fits = (n) => {
      shown.textContent = n >= label.length ? label : clip(label, n);
      return n === 0 || text.getComputedTextLength() <= width;
    };
    if (!fits(label.length)) {
      let lo = 0;
      let hi = label.length - 1;
      while (lo < hi) {
        const mid = (lo + hi + 1) >> 1;
        if (fits(mid)) lo = mid;
        else hi = mid - 1;
      }
      fits(lo);
    }
    g.dataset.fit = key;
  }

  window.addEventListener('resize', () => {
    for (const sec of clustersEl.querySelectorAll('section.cluster')) {
      const last = lastStatus.get(sec.dataset.cluster);
      if (last) drawArrows(sec, last);
    }
  });

  // ---- the event history

  function renderEvents(list) {
    const rows = list.slice().reverse().map((ev) => {
      const at = parseTime(ev.at);
      const t = el('td', 'ev-time', when(at));
      if (at) t.title = at.toISOString();
      const kind = el('td', 'ev-kind', str(ev.kind));
      if (ev.target) kind.append(el('span', 'ev-target muted', ' ' + ev.target));
      const result = str(ev.result);
      const cls = result === 'ok' ? 'good' : result.startsWith('failed') ? 'bad' : result === 'refused' ? 'warn' : 'muted';
      const res = el('td', 'ev-result ' + cls, result + (ev.duration ? ' (' + ev.duration + ')' : ''));
      const reason = el('td', 'ev-reason', str(ev.reason));
      if (ev.checksum) reason.title = 'topology file checksum ' + ev.checksum;
      const tr = el('tr', '', t, el('td', 'ev-cluster', str(ev.cluster)), el('td', 'ev-node', str(ev.node)), kind, res, reason);
      tr.dataset.kind = str(ev.kind);
      return tr;
    });
    setKids($('event-rows'), rows);
    eventsNote(rows.length ? '' : 'No event yet.');
  }

  function eventsNote(text) {
    const note = $('events-note');
    setText(note, text);
    note.hidden = !text;
  }

  // ---- polling

  // get fetches url from the daemon; it throws when the daemon does not
  // answer (within FETCH_TIMEOUT).
  async function get(url) {
    const ctl = new AbortController();
    const timer = setTimeout(() => ctl.abort(), FETCH_TIMEOUT);
    try {
      const resp = await fetch(url, { cache: 'no-store', signal: ctl.signal, headers: { Accept: 'application/json' } });
      return { ok: resp.ok, status: resp.status, text: await resp.text() };
    } catch (e) {
      throw new Error(e && e.name === 'AbortError' ? 'no answer within ' + FETCH_TIMEOUT / 1000 + ' s' : str(e && e.message ? e.message : e));
    } finally {
      clearTimeout(timer);
    }
  }

  // failing holds, per endpoint, since when and why pacsd does not answer it.
  const failing = { status: null, events: null };

  function fail(what, why) {
    failing[what] = { since: (failing[what] && failing[what].since) || new Date(), why: why };
    showBanner();
  }

  function answered(what) {
    failing[what] = null;
    showBanner();
  }

  function showBanner() {
    const f = failing.status || failing.events;
    $('banner').hidden = !f;
    setText($('banner-detail'), f ? 'since ' + clock(f.since) + ': ' + f.why : '');
    document.body.classList.toggle('stale', !!failing.status);
    $('updated').classList.toggle('stale', !!failing.status);
  }

  function drawProblem(what, e) {
    // A bug of the page, or an answer it does not understand: say so, do
    // not blame pacsd.
    setKids(noticesEl, [el('p', 'notice bad', 'This page could not draw ' + what + ': ' + str(e && e.message ? e.message : e))]);
  }

  // parse reads an answer's JSON; a wrong answer is drawn as the page's
  // problem (pacsd did answer).
  function parse(what, text) {
    try {
      return JSON.parse(text);
    } catch (e) {
      drawProblem(what, new Error('its answer is not JSON (' + str(e && e.message) + ')'));
      return undefined;
    }
  }

  async function pollStatus() {
    let r = null;
    try {
      r = await get('/status');
    } catch (e) {
      fail('status', str(e && e.message ? e.message : e));
    }
    if (r && !r.ok) fail('status', 'it answered /status with HTTP ' + r.status + (r.text ? ': ' + clip(r.text.trim(), 200) : ''));
    if (r && r.ok) {
      answered('status');
      const st = parse('the status', r.text);
      if (st && typeof st === 'object') {
        try {
          renderStatus(st);
          setText($('updated'), 'updated ' + clock(new Date()));
          const loading = $('loading');
          if (loading) loading.remove();
        } catch (e) {
          drawProblem('the status', e);
        }
      }
    }
    setTimeout(pollStatus, STATUS_EVERY);
  }

  async function pollEvents() {
    let r = null;
    try {
      r = await get('/events?limit=' + EVENTS_LIMIT);
      answered('events');
    } catch (e) {
      fail('events', str(e && e.message ? e.message : e));
    }
    if (r && !r.ok) eventsNote('The event history is not available: HTTP ' + r.status + (r.text ? ': ' + clip(r.text.trim(), 200) : ''));
    if (r && r.ok) {
      const list = parse('the event history', r.text);
      if (list !== undefined) {
        try {
          renderEvents(Array.isArray(list) ? list : []);
        } catch (e) {
          drawProblem('the event history', e);
        }
      }
    }
    setTimeout(pollEvents, EVENTS_EVERY);
  }

  pollStatus();
  pollEvents();
})();
