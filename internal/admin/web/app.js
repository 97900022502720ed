// modproxy admin dashboard. Plain JavaScript, no libraries: it reads the
// JSON API of the same origin, renders with DOM calls (never innerHTML, so
// module paths and audit reasons cannot inject markup) and draws its charts
// as inline SVG. Every number sits in an element with a stable id and its
// raw value in data-value, so tests can read both.
'use strict';

(function () {
  const TOKEN_KEY = 'modproxy-admin-token';
  const REFRESH_MS = 5000;
  const MAX_POINTS = 120; // chart points; per-minute buckets are summed into bins
  const SVG_NS = 'http://www.w3.org/2000/svg';

  const $ = (id) => document.getElementById(id);

  class AuthError extends Error {}

  let timer = null;
  let lastStatus = null;
  const auditFilter = { action: '', target: '' };

  // ---------- API ----------

  function token() {
    try {
      return sessionStorage.getItem(TOKEN_KEY) || '';
    } catch (e) {
      return '';
    }
  }

  async function api(path, method, body) {
    const headers = { Accept: 'application/json' };
    const t = token();
    if (t) headers.Authorization = 'Bearer ' + t;
    const init = { method: method || 'GET', headers, cache: 'no-store', credentials: 'same-origin' };
    if (body !== undefined) {
      headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    const res = await fetch(path, init);
    if (res.status === 401) throw new AuthError(t ? 'The token was refused.' : 'A token is required.');
    let data = null;
    try {
      data = await res.json();
    } catch (e) {
      data = null;
    }
    if (!res.ok) {
      throw new Error((data && data.error) || res.status + ' ' + res.statusText);
    }
    return data;
  }

  // ---------- formatting ----------

  const intFmt = new Intl.NumberFormat('en-US');

  function fmtInt(n) {
    return typeof n === 'number' && Number.isFinite(n) ? intFmt.format(n) : '–';
  }

  function fmtBytes(n) {
    if (typeof n !== 'number' || !Number.isFinite(n)) return '–';
    const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
    let v = n;
    let i = 0;
    while (Math.abs(v) >= 1024 && i < units.length - 1) {
      v /= 1024;
      i++;
    }
    const digits = i === 0 ? 0 : v < 10 ? 2 : v < 100 ? 1 : 0;
    return v.toFixed(digits) + ' ' + units[i];
  }

  function fmtSeconds(v) {
    if (typeof v !== 'number' || !Number.isFinite(v)) return '–';
    if (v === 0) return '0 s';
    if (v < 1) return (v * 1000).toFixed(v < 0.01 ? 1 : 0) + ' ms';
    return v.toFixed(v < 10 ? 2 : 1) + ' s';
  }

  function fmtRatio(r) {
    return typeof r !== 'number' || r < 0 ? '–' : (r * 100).toFixed(1) + '%';
  }

  function parseTime(s) {
    if (!s) return null;
    const d = new Date(s);
    return isNaN(d.getTime()) || d.getUTCFullYear() < 1971 ? null : d;
  }

  const pad = (n) => String(n).padStart(2, '0');

  function fmtClock(d) {
    return pad(d.getHours()) + ':' + pad(d.getMinutes());
  }

  function fmtTime(s) {
    const d = parseTime(s);
    if (!d) return 'never';
    return d.getFullYear() + '-' + pad(d.getMonth() + 1) + '-' + pad(d.getDate()) + ' ' + fmtClock(d);
  }

  function fmtAgo(s) {
    const d = parseTime(s);
    if (!d) return 'never';
    const sec = Math.round((Date.now() - d.getTime()) / 1000);
    if (sec < 60) return 'just now';
    if (sec < 3600) return Math.floor(sec / 60) + ' min ago';
    if (sec < 86400) return Math.floor(sec / 3600) + ' h ago';
    return Math.floor(sec / 86400) + ' d ago';
  }

  function fmtUntil(s) {
    const d = parseTime(s);
    if (!d) return '–';
    const sec = Math.round((d.getTime() - Date.now()) / 1000);
    if (sec <= 0) return 'due';
    if (sec < 3600) return 'in ' + Math.max(1, Math.floor(sec / 60)) + ' min';
    if (sec < 86400) return 'in ' + Math.floor(sec / 3600) + ' h';
    return 'in ' + Math.floor(sec / 86400) + ' d';
  }

  function shortHash(h) {
    if (!h) return '–';
    return h.length > 16 ? h.slice(0, 15) + '…' : h;
  }

  // ---------- DOM helpers ----------

  // el builds an element; string children become text nodes.
  function el(tag, attrs, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k === 'class') e.className = v;
      else if (k === 'text') e.textContent = v;
      else if (k === 'onclick') e.addEventListener('click', v);
      else e.setAttribute(k, v === true ? '' : String(v));
    }
    for (const c of children) {
      if (c !== null && c !== undefined) e.append(c);
    }
    return e;
  }

  function svg(tag, attrs) {
    const e = document.createElementNS(SVG_NS, tag);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, String(v));
    return e;
  }

  function setNum(id, value, text) {
    const e = $(id);
    e.textContent = text;
    e.dataset.value = String(value);
  }

  function fill(tbody, rows, cols, empty) {
    tbody.replaceChildren();
    if (!rows.length) {
      tbody.append(el('tr', { class: 'empty' }, el('td', { colspan: cols, text: empty })));
      return;
    }
    tbody.append(...rows);
  }

  function badge(text, kind, attrs) {
    return el('span', Object.assign({ class: 'badge ' + kind }, attrs || {}), text);
  }

  function toast(msg, isError) {
    const t = $('toast');
    t.textContent = msg;
    t.className = 'toast' + (isError ? ' error' : '');
    t.hidden = false;
    clearTimeout(toast.timer);
    toast.timer = setTimeout(() => {
      t.hidden = true;
    }, isError ? 12000 : 6000);
  }

  function showError(msg) {
    const b = $('global-error');
    b.textContent = msg;
    b.hidden = !msg;
  }

  // ---------- status ----------

  function renderStatus(s) {
    lastStatus = s;
    $('status-version').textContent = s.version || 'unknown';
    const mode = $('status-mode');
    mode.textContent = s.offline ? 'cache-only' : 'online';
    mode.className = 'badge ' + (s.offline ? 'warn' : 'ok');
    mode.dataset.value = String(!!s.offline);
    mode.hidden = false;
    const ver = $('status-verify');
    ver.textContent = s.verify ? 'checksums verified' : 'verification off';
    ver.className = 'badge ' + (s.verify ? 'ok' : 'warn');
    ver.dataset.value = String(!!s.verify);
    ver.hidden = false;

    const st = s.store || {};
    const bytes = st.bytes || 0;
    const cap = st.cap_bytes || 0;
    setNum('store-bytes', bytes, fmtBytes(bytes));
    setNum('store-cap', cap, cap > 0 ? fmtBytes(cap) : 'no cap');
    setNum('store-objects', st.objects || 0, fmtInt(st.objects || 0));
    setNum('store-versions', st.versions || 0, fmtInt(st.versions || 0));
    setNum('trash-bytes', s.trash_bytes || 0, fmtBytes(s.trash_bytes || 0));

    const pct = cap > 0 ? (bytes / cap) * 100 : -1;
    setNum('store-cap-percent', pct < 0 ? -1 : pct, pct < 0 ? 'unbounded' : pct.toFixed(1) + '% of cap');
    const bar = $('store-bar');
    const fillEl = $('store-bar-fill');
    const shown = pct < 0 ? 0 : Math.min(100, pct);
    fillEl.style.width = shown.toFixed(1) + '%';
    fillEl.className = 'bar-fill ' + (pct >= 95 ? 'bad' : pct >= 80 ? 'warn' : 'ok');
    bar.setAttribute('aria-valuenow', shown.toFixed(1));
    bar.setAttribute('aria-valuetext', pct < 0 ? 'no cap' : shown.toFixed(1) + ' percent of the cap');

    const gc = s.last_gc;
    const lastGC = $('last-gc');
    if (gc) {
      lastGC.textContent = fmtAgo(gc.finished) + ': ' + fmtInt(gc.evicted) + ' evicted, ' + fmtBytes(gc.bytes);
      lastGC.title = fmtTime(gc.finished);
      lastGC.dataset.value = String(gc.evicted);
    } else {
      lastGC.textContent = 'never';
      lastGC.dataset.value = '';
    }

    $('status-listen').textContent = s.listen || '–';
    $('status-cache-dir').textContent = s.cache_dir || '–';
    const started = $('status-started');
    started.textContent = fmtTime(s.started) + ' (' + fmtAgo(s.started).replace(' ago', '') + ' up)';
    started.dataset.value = s.started || '';
    const cfg = JSON.stringify({ config: s.config || {}, gc_policy: s.gc_policy || {} }, null, 2);
    const pre = $('status-config');
    if (pre.textContent !== cfg) pre.textContent = cfg;

    $('offline-state').textContent = s.offline ? 'on' : 'off';
    $('offline-state').dataset.value = String(!!s.offline);
    const tog = $('offline-toggle');
    tog.disabled = false;
    tog.textContent = s.offline ? 'Go back online…' : 'Switch to cache-only…';
  }

  // ---------- stats and charts ----------

  function bin(series) {
    const size = Math.max(1, Math.ceil(series.length / MAX_POINTS));
    const points = [];
    for (let i = 0; i < series.length; i += size) {
      const chunk = series.slice(i, i + size);
      const p = {
        start: parseTime(chunk[0].start), requests: 0, hits: 0, misses: 0, bytes: 0,
        errors: 0, fetches: 0, fetchErrors: 0, fetchSeconds: 0, fetchMax: 0,
      };
      for (const b of chunk) {
        p.requests += b.requests || 0;
        p.hits += b.hits || 0;
        p.misses += b.misses || 0;
        p.bytes += b.bytes || 0;
        p.errors += b.errors || 0;
        p.fetches += b.upstream_fetches || 0;
        p.fetchErrors += b.upstream_errors || 0;
        p.fetchSeconds += b.upstream_seconds || 0;
        p.fetchMax = Math.max(p.fetchMax, b.upstream_max_seconds || 0);
      }
      p.fetchMean = p.fetches ? p.fetchSeconds / p.fetches : 0;
      points.push(p);
    }
    return { size, points };
  }

  // niceMax rounds up to 1, 2 or 5 times a power of ten.
  function niceMax(v) {
    if (v <= 0) return 1;
    const p = Math.pow(10, Math.floor(Math.log10(v)));
    for (const m of [1, 2, 5, 10]) {
      if (m * p >= v) return m * p;
    }
    return 10 * p;
  }

  function drawChart(root, points, lines, fmtY, label) {
    const W = 800;
    const H = 200;
    const L = 64;
    const R = 12;
    const T = 10;
    const B = 24;
    root.replaceChildren();
    const title = svg('title');
    root.append(title);
    if (!points.length) {
      const t = svg('text', { x: W / 2, y: H / 2, 'text-anchor': 'middle', class: 'axis' });
      t.textContent = 'No traffic recorded yet';
      root.append(t);
      title.textContent = label + ': no data';
      root.setAttribute('aria-label', title.textContent);
      return;
    }
    let max = 0;
    for (const p of points) for (const l of lines) max = Math.max(max, p[l.key]);
    max = niceMax(max);
    const x = (i) => L + (points.length === 1 ? (W - L - R) / 2 : (i * (W - L - R)) / (points.length - 1));
    const y = (v) => T + (H - T - B) * (1 - v / max);

    for (let g = 0; g <= 4; g++) {
      const v = (max * g) / 4;
      root.append(svg('line', { x1: L, x2: W - R, y1: y(v), y2: y(v), class: 'gridline' }));
      const t = svg('text', { x: L - 6, y: y(v) + 4, 'text-anchor': 'end', class: 'axis' });
      t.textContent = fmtY(v);
      root.append(t);
    }
    const ticks = points.length > 2 ? [0, Math.floor((points.length - 1) / 2), points.length - 1] : [0, points.length - 1];
    for (const i of new Set(ticks)) {
      const d = points[i].start;
      if (!d) continue;
      const anchor = i === 0 ? 'start' : i === points.length - 1 ? 'end' : 'middle';
      const t = svg('text', { x: x(i), y: H - 6, 'text-anchor': anchor, class: 'axis' });
      t.textContent = fmtClock(d);
      root.append(t);
    }
    for (const l of lines) {
      const coords = points.map((p, i) => x(i).toFixed(1) + ',' + y(p[l.key]).toFixed(1));
      if (l.area) {
        const area = [x(0).toFixed(1) + ',' + y(0), ...coords, x(points.length - 1).toFixed(1) + ',' + y(0)];
        root.append(svg('polygon', { points: area.join(' '), class: 'area ' + l.cls }));
      }
      root.append(svg('polyline', { points: coords.join(' '), class: 'line ' + l.cls }));
    }
    title.textContent = label;
    root.setAttribute('aria-label', label);
  }

  function renderStats(st) {
    const hr = st.hit_ratio || {};
    for (const w of ['5m', '1h', '24h']) {
      const v = typeof hr[w] === 'number' ? hr[w] : -1;
      setNum('hit-ratio-' + w, v, fmtRatio(v));
      $('hit-ratio-' + w).title = v < 0 ? 'no traffic in this window' : '';
    }
    setNum('total-hits', st.total_hits || 0, fmtInt(st.total_hits || 0));
    setNum('total-misses', st.total_misses || 0, fmtInt(st.total_misses || 0));
    setNum('total-bytes', st.total_bytes || 0, fmtBytes(st.total_bytes || 0));

    const series = st.series || [];
    const sum = { requests: 0, hits: 0, misses: 0, bytes: 0 };
    for (const b of series) for (const k in sum) sum[k] += b[k] || 0;
    setNum('traffic-requests', sum.requests, fmtInt(sum.requests));
    setNum('traffic-hits', sum.hits, fmtInt(sum.hits));
    setNum('traffic-misses', sum.misses, fmtInt(sum.misses));
    setNum('traffic-bytes', sum.bytes, fmtBytes(sum.bytes));
    const hours = series.length / 60;
    $('traffic-window').textContent = series.length
      ? '(last ' + (hours >= 1 ? (Math.round(hours * 10) / 10) + ' h' : series.length + ' min') + ')'
      : '';

    const { size, points } = bin(series);
    for (const e of document.querySelectorAll('.bin-label')) e.textContent = size === 1 ? 'minute' : size + ' minutes';
    drawChart($('chart-requests'), points, [
      { key: 'requests', cls: 'req', area: true },
      { key: 'hits', cls: 'hit' },
      { key: 'misses', cls: 'miss' },
    ], fmtInt, 'Requests: ' + fmtInt(sum.requests) + ' total, ' + fmtInt(sum.hits) + ' hits, ' + fmtInt(sum.misses) + ' misses');
    drawChart($('chart-bytes'), points, [{ key: 'bytes', cls: 'bytes', area: true }], fmtBytes,
      'Bytes served: ' + fmtBytes(sum.bytes) + ' total');
    renderHealth(series, points);

    const topRow = (m, value, text, field) =>
      el('tr', { 'data-testid': 'top-module', 'data-module': m.module },
        el('td', {}, el('code', { title: m.module }, m.module)),
        el('td', { class: 'num', 'data-field': field, 'data-value': value }, text));
    fill($('top-size-body'), (st.top_by_size || []).map((m) => topRow(m, m.bytes, fmtBytes(m.bytes), 'top_bytes')), 2, 'Nothing cached yet');
    fill($('top-hits-body'), (st.top_by_hits || []).map((m) => topRow(m, m.hits, fmtInt(m.hits), 'top_hits')), 2, 'No hits yet');
  }

  // renderHealth draws the errors and upstream-latency charts and their
  // totals over the window.
  function renderHealth(series, points) {
    const t = { errors: 0, fetches: 0, fetchErrors: 0, seconds: 0, max: 0 };
    for (const b of series) {
      t.errors += b.errors || 0;
      t.fetches += b.upstream_fetches || 0;
      t.fetchErrors += b.upstream_errors || 0;
      t.seconds += b.upstream_seconds || 0;
      t.max = Math.max(t.max, b.upstream_max_seconds || 0);
    }
    const mean = t.fetches ? t.seconds / t.fetches : 0;
    setNum('traffic-errors', t.errors, fmtInt(t.errors));
    setNum('upstream-errors', t.fetchErrors, fmtInt(t.fetchErrors));
    setNum('upstream-fetches', t.fetches, fmtInt(t.fetches));
    setNum('upstream-mean', mean, t.fetches ? fmtSeconds(mean) : '–');
    setNum('upstream-max', t.max, t.fetches ? fmtSeconds(t.max) : '–');
    drawChart($('chart-errors'), points, [
      { key: 'errors', cls: 'err', area: true },
      { key: 'fetchErrors', cls: 'uperr' },
    ], fmtInt, 'Errors: ' + fmtInt(t.errors) + ' 5xx answers, ' + fmtInt(t.fetchErrors) + ' of ' + fmtInt(t.fetches) + ' upstream fetches failed');
    drawChart($('chart-upstream'), points, [
      { key: 'fetchMean', cls: 'upmean', area: true },
      { key: 'fetchMax', cls: 'upmax' },
    ], fmtSeconds, 'Upstream fetch time: mean ' + fmtSeconds(mean) + ', slowest ' + fmtSeconds(t.max));
  }

  // ---------- upstreams ----------

  const breakerKind = { closed: 'ok', available: 'ok', 'half-open': 'warn', open: 'bad' };

  function renderUpstreams(list) {
    fill($('upstreams-body'), list.map((u) =>
      el('tr', { 'data-testid': 'upstream', 'data-name': u.name },
        el('td', {}, el('code', {}, u.name)),
        el('td', {}, badge(u.breaker, breakerKind[u.breaker] || 'neutral', { 'data-testid': 'breaker', 'data-value': u.breaker })))),
    2, 'No upstreams (cache-only)');
  }

  // ---------- clients ----------

  function renderClients(list) {
    fill($('clients-body'), list.map((c) =>
      el('tr', { 'data-testid': 'client', 'data-name': c.identity },
        el('td', {}, el('code', {}, c.identity)),
        el('td', { class: 'num', 'data-value': c.requests }, fmtInt(c.requests)),
        el('td', { class: 'num', 'data-value': c.bytes }, fmtBytes(c.bytes)),
        el('td', { title: c.last_seen, class: 'nowrap' }, fmtAgo(c.last_seen)),
        el('td', {}, el('code', {}, c.last_module || '')))),
    5, 'No protocol requests yet');
  }

  // ---------- audit ----------

  function renderAudit(events) {
    fill($('audit-body'), events.map((e) =>
      el('tr', { 'data-testid': 'audit-row' },
        el('td', { title: e.time, class: 'nowrap' }, fmtTime(e.time)),
        el('td', {}, e.actor || ''),
        el('td', {}, badge(e.action || '', 'neutral')),
        el('td', {}, el('code', {}, e.target || '')),
        el('td', {}, e.reason || ''),
        el('td', { class: 'num', 'data-value': e.bytes || 0 }, e.bytes ? fmtBytes(e.bytes) : ''))),
    6, 'No audit events');
  }

  function auditPath() {
    const q = new URLSearchParams({ limit: '20' });
    if (auditFilter.action) q.set('action', auditFilter.action);
    if (auditFilter.target) q.set('target', auditFilter.target);
    return '/api/audit?' + q.toString();
  }

  // ---------- trash and pins ----------

  function renderTrash(entries) {
    fill($('trash-body'), entries.map((t) =>
      el('tr', { 'data-testid': 'trash-row', 'data-id': t.id },
        el('td', { class: 'nowrap', title: t.id }, fmtTime(t.created)),
        el('td', { class: 'reason' }, t.reason || ''),
        el('td', { class: 'num', title: (t.versions || []).join('\n') }, fmtInt((t.versions || []).length)),
        el('td', { class: 'num', 'data-value': t.bytes }, fmtBytes(t.bytes)),
        el('td', { class: 'nowrap', title: fmtTime(t.expires) }, fmtUntil(t.expires)),
        el('td', {}, el('button', { type: 'button', class: 'secondary small', onclick: () => restore(t) }, 'Restore…')))),
    6, 'The trash is empty');
  }

  async function restore(t) {
    const n = (t.versions || []).length;
    if (!window.confirm('Restore ' + n + ' version(s) (' + fmtBytes(t.bytes) + ') from trash batch ' + t.id + '?')) return;
    try {
      const r = await api('/api/trash/restore', 'POST', { id: t.id });
      toast('Restored ' + fmtInt((r.restored || []).length) + ' version(s), ' + fmtBytes(r.bytes) + '.');
      refresh();
    } catch (e) {
      handleActionError(e);
    }
  }

  function renderPins(p) {
    const items = [];
    for (const pat of p.patterns || []) items.push({ kind: 'pattern', value: pat });
    for (const set of p.sets || []) items.push({ kind: 'set', value: set });
    const list = $('pins-list');
    list.replaceChildren();
    if (!items.length) {
      list.append(el('li', { class: 'muted' }, 'No pins'));
      return;
    }
    for (const it of items) {
      list.append(el('li', { 'data-testid': 'pin', 'data-kind': it.kind },
        badge(it.kind === 'set' ? 'go.sum set' : 'pattern', 'neutral'), ' ',
        el('code', {}, it.value), ' ',
        el('button', { type: 'button', class: 'link', onclick: () => removePin(it), 'aria-label': 'Remove pin ' + it.value }, 'remove')));
    }
  }

  async function removePin(it) {
    if (!window.confirm('Remove the pin ' + it.value + '? Versions it kept may be evicted by the next GC.')) return;
    try {
      await api('/api/pins', 'DELETE', it.kind === 'set' ? { set: it.value } : { pattern: it.value });
      toast('Pin removed.');
      refresh();
    } catch (e) {
      handleActionError(e);
    }
  }

  // ---------- refresh loop ----------

  async function refresh() {
    clearTimeout(timer);
    if (document.hidden) {
      timer = setTimeout(refresh, REFRESH_MS);
      return;
    }
    const jobs = [
      ['status', () => api('/api/status').then(renderStatus)],
      ['stats', () => api('/api/stats').then(renderStats)],
      ['upstreams', () => api('/api/upstreams').then(renderUpstreams)],
      ['clients', () => api('/api/clients').then(renderClients)],
      ['audit', () => api(auditPath()).then(renderAudit)],
      ['trash', () => api('/api/trash').then(renderTrash)],
      ['pins', () => api('/api/pins').then(renderPins)],
    ];
    const results = await Promise.allSettled(jobs.map(([, f]) => f()));
    const auth = results.find((r) => r.status === 'rejected' && r.reason instanceof AuthError);
    if (auth) {
      showLogin(auth.reason.message);
      return;
    }
    const errors = [];
    results.forEach((r, i) => {
      if (r.status === 'rejected') errors.push(jobs[i][0] + ': ' + (r.reason && r.reason.message));
    });
    showError(errors.length ? 'Some data could not be loaded: ' + errors.join('; ') : '');
    $('last-updated').textContent = 'updated ' + new Date().toLocaleTimeString('en-GB');
    document.body.dataset.ready = 'true';
    timer = setTimeout(refresh, REFRESH_MS);
  }

  function handleActionError(e) {
    if (e instanceof AuthError) {
      showLogin(e.message);
      return;
    }
    toast(e.message, true);
  }

  // ---------- login ----------

  function showLogin(msg) {
    clearTimeout(timer);
    document.body.classList.add('locked');
    $('login').hidden = false;
    $('login-error').textContent = token() ? msg : '';
    $('token-forget').hidden = !token();
    $('last-updated').textContent = 'token required';
    document.body.dataset.ready = 'login';
    $('token-input').focus();
  }

  $('login-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const v = $('token-input').value.trim();
    if (!v) return;
    try {
      sessionStorage.setItem(TOKEN_KEY, v);
    } catch (e) {
      $('login-error').textContent = 'This browser does not allow session storage.';
      return;
    }
    $('token-input').value = '';
    $('login').hidden = true;
    document.body.classList.remove('locked');
    $('token-forget').hidden = false;
    refresh();
    searchModules($('module-q').value.trim());
  });

  $('token-forget').addEventListener('click', () => {
    try {
      sessionStorage.removeItem(TOKEN_KEY);
    } catch (e) {
      // nothing stored
    }
    window.location.reload();
  });

  // ---------- module search ----------

  function versionRow(v) {
    return el('tr', { 'data-testid': 'version', 'data-version': v.version },
      el('td', {}, el('code', {}, v.version), v.pinned ? ' ' : null, v.pinned ? badge('pinned', 'ok') : null),
      el('td', { class: 'num', 'data-field': 'bytes', 'data-value': v.bytes }, fmtBytes(v.bytes)),
      el('td', { 'data-field': 'zip_hash', 'data-value': v.zip_hash || '' }, el('code', { title: v.zip_hash || '' }, shortHash(v.zip_hash))),
      el('td', { 'data-field': 'mod_hash', 'data-value': v.mod_hash || '' }, el('code', { title: v.mod_hash || '' }, shortHash(v.mod_hash))),
      el('td', { class: 'nowrap', 'data-field': 'stored', 'data-value': v.stored }, fmtTime(v.stored)),
      el('td', { class: 'nowrap', 'data-field': 'last_access', 'data-value': v.last_access, title: fmtTime(v.last_access) }, fmtAgo(v.last_access)),
      el('td', { class: 'num', 'data-field': 'hits', 'data-value': v.hits }, fmtInt(v.hits)),
      el('td', { 'data-field': 'files' }, (v.files || []).join(' ')));
  }

  function renderModules(mods) {
    const out = $('module-results');
    out.replaceChildren();
    let nv = 0;
    for (const m of mods) {
      const versions = m.versions || [];
      nv += versions.length;
      const total = versions.reduce((a, v) => a + (v.bytes || 0), 0);
      out.append(el('div', { class: 'module', 'data-testid': 'module', 'data-path': m.path },
        el('div', { class: 'module-head' },
          el('h3', {}, el('code', {}, m.path)),
          el('span', { class: 'muted' }, fmtInt(versions.length) + ' version(s), ' + fmtBytes(total)),
          el('button', { type: 'button', class: 'link', onclick: () => preparePurge(m.path) }, 'purge…')),
        el('div', { class: 'scroll' },
          el('table', { class: 'data compact versions' },
            el('thead', {}, el('tr', {},
              ...['Version', 'Size', 'Zip hash', 'go.mod hash', 'Stored', 'Last access', 'Hits', 'Files'].map((h, i) =>
                el('th', { scope: 'col', class: i === 1 || i === 6 ? 'num' : null }, h)))),
            el('tbody', {}, ...versions.map(versionRow))))));
    }
    const st = $('module-status');
    st.textContent = mods.length ? fmtInt(mods.length) + ' module(s), ' + fmtInt(nv) + ' version(s)' : 'No cached module matches.';
    st.dataset.value = String(mods.length);
  }

  async function searchModules(q) {
    $('module-status').textContent = 'Searching…';
    try {
      renderModules(await api('/api/modules?' + new URLSearchParams({ q, limit: '50' }).toString()));
    } catch (e) {
      $('module-status').textContent = '';
      handleActionError(e);
    }
  }

  $('module-search').addEventListener('submit', (ev) => {
    ev.preventDefault();
    searchModules($('module-q').value.trim());
  });

  // ---------- GC ----------

  function kv(pairs) {
    return el('dl', { class: 'pairs small' }, ...pairs.map(([label, id, value, text]) =>
      el('div', {}, el('dt', {}, label), el('dd', { id, 'data-testid': id, 'data-value': value }, text))));
  }

  function renderPlan(p) {
    const items = p.items || [];
    const out = $('gc-output');
    out.replaceChildren(
      el('h3', {}, 'Plan of ' + fmtTime(p.created) + ' (nothing deleted)'),
      kv([
        ['Versions to evict', 'gc-plan-count', items.length, fmtInt(items.length)],
        ['Space freed', 'gc-plan-bytes', p.bytes, fmtBytes(p.bytes)],
        ['Store now', 'gc-plan-store', p.store_bytes, fmtBytes(p.store_bytes)],
        ['Store after', 'gc-plan-after', p.after_bytes, fmtBytes(p.after_bytes)],
        ['Kept by pins', 'gc-plan-pinned', p.pinned_kept, fmtInt(p.pinned_kept)],
      ]));
    if ((p.policy_notes || []).length) {
      out.append(el('ul', { class: 'notes' }, ...p.policy_notes.map((n) => el('li', {}, n))));
    }
    if (items.length) {
      const shown = items.slice(0, 100);
      out.append(el('div', { class: 'scroll short' }, el('table', { class: 'data compact' },
        el('thead', {}, el('tr', {}, el('th', { scope: 'col' }, 'Module'), el('th', { scope: 'col' }, 'Version'),
          el('th', { scope: 'col', class: 'num' }, 'Size'), el('th', { scope: 'col' }, 'Reason'))),
        el('tbody', {}, ...shown.map((it) => el('tr', { 'data-testid': 'gc-item' },
          el('td', {}, el('code', {}, it.module)), el('td', {}, el('code', {}, it.version)),
          el('td', { class: 'num', 'data-value': it.bytes }, fmtBytes(it.bytes)), el('td', {}, badge(it.reason, 'neutral'))))))));
      if (items.length > shown.length) out.append(el('p', { class: 'muted' }, 'and ' + fmtInt(items.length - shown.length) + ' more'));
    }
  }

  $('gc-plan').addEventListener('click', async () => {
    $('gc-output').replaceChildren(el('p', { class: 'muted' }, 'Planning…'));
    try {
      renderPlan(await api('/api/gc/plan'));
    } catch (e) {
      $('gc-output').replaceChildren();
      handleActionError(e);
    }
  });

  $('gc-run').addEventListener('click', async () => {
    if (!window.confirm('Run garbage collection now? Evicted versions go to the trash.')) return;
    try {
      const r = await api('/api/gc/run', 'POST');
      $('gc-output').replaceChildren(el('h3', {}, 'GC finished'), kv([
        ['Evicted', 'gc-run-evicted', r.evicted, fmtInt(r.evicted)],
        ['Space freed', 'gc-run-bytes', r.bytes, fmtBytes(r.bytes)],
        ['Skipped (busy)', 'gc-run-skipped', r.skipped, fmtInt(r.skipped)],
        ['Trash batch', 'gc-run-trash', r.trash_id || '', r.trash_id || '–'],
      ]));
      refresh();
    } catch (e) {
      handleActionError(e);
    }
  });

  // ---------- purge ----------

  function preparePurge(path) {
    $('purge-module').value = path;
    $('purge-versions').value = '';
    $('purge-reason').focus();
    $('purge-form').scrollIntoView({ block: 'center' });
  }

  $('purge-form').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const req = {
      module: $('purge-module').value.trim(),
      versions: $('purge-versions').value.trim(),
      reason: $('purge-reason').value.trim(),
      block: $('purge-block').checked,
      hard: $('purge-hard').checked,
    };
    if (!req.module || !req.reason) {
      toast('Purge needs a module path and a reason.', true);
      return;
    }
    const what = req.module + ' ' + (req.versions || '(all versions)');
    const how = req.hard ? 'The files are deleted permanently; this cannot be undone.' : 'The files go to the trash and can be restored.';
    const block = req.block ? ' Re-fetching them will be refused.' : '';
    if (!window.confirm('Purge ' + what + '?\n' + how + block)) return;
    try {
      const r = await api('/api/purge', 'POST', req);
      $('purge-output').replaceChildren(el('p', { class: 'ok-text', 'data-testid': 'purge-result' },
        'Purged ' + fmtInt((r.versions || []).length) + ' version(s), ' + fmtBytes(r.bytes) +
        (r.trash_id ? ' (trash batch ' + r.trash_id + ')' : '') + (r.blocked ? '; blocked.' : '.')));
      $('purge-reason').value = '';
      refresh();
    } catch (e) {
      handleActionError(e);
    }
  });

  // ---------- other controls ----------

  $('offline-toggle').addEventListener('click', async () => {
    if (!lastStatus) return;
    const on = !lastStatus.offline;
    const msg = on
      ? 'Switch to cache-only mode? Nothing will be fetched upstream; misses fail.'
      : 'Go back online? Misses will be fetched upstream again.';
    if (!window.confirm(msg)) return;
    try {
      await api('/api/offline', 'POST', { on });
      toast(on ? 'Cache-only mode is on.' : 'Back online.');
      refresh();
    } catch (e) {
      handleActionError(e);
    }
  });

  $('pin-form').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const value = $('pin-value').value.trim();
    if (!value) return;
    const body = $('pin-kind').value === 'set' ? { set: value } : { pattern: value };
    try {
      await api('/api/pins', 'POST', body);
      $('pin-value').value = '';
      toast('Pin added.');
      refresh();
    } catch (e) {
      handleActionError(e);
    }
  });

  $('audit-filter').addEventListener('submit', (ev) => {
    ev.preventDefault();
    auditFilter.action = $('audit-action').value.trim();
    auditFilter.target = $('audit-target').value.trim();
    refresh();
  });

  document.addEventListener('visibilitychange', () => {
    if (!document.hidden) refresh();
  });

  $('token-forget').hidden = !token();
  refresh();
  searchModules('');
})();
