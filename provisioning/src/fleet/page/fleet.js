// The fleet view's page: polls /api/fleet and updates the DOM in place, keyed by site and
// station (a row keeps its node while its numbers change; nothing is rebuilt wholesale, so
// nothing flickers). Charts are plain SVG drawn here: no library, no network but this server.
// When the database (or the server) is away, the page says so and keeps the last data.
'use strict';

const POLL_MS = 3000;
/** Alerts listed at most; the rest are counted (a network outage can stall hundreds). */
const MAX_ALERTS = 30;
const FETCH_WITHIN_MS = 8000;
const SVG = 'http://www.w3.org/2000/svg';
const $ = (id) => document.getElementById(id);

// ---- formatting -------------------------------------------------------------------------

function ago(seconds) {
  const s = Math.max(0, Math.round(seconds));
  if (s < 90) return `${s} s`;
  const m = Math.round(s / 60);
  if (m < 90) return `${m} min`;
  const h = Math.floor(m / 60);
  if (h < 48) return `${h} h ${m % 60} min`;
  return `${Math.floor(h / 24)} days`;
}

function mmss(seconds) {
  if (seconds == null || !isFinite(seconds)) return '–';
  const s = Math.round(seconds);
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')}`;
}

function clock(ms) {
  return new Date(ms).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit', hour12: false });
}

function utcHour(ms) {
  return `${String(new Date(ms).getUTCHours()).padStart(2, '0')}:00`;
}

/** Sets text only when it changed (no needless layout). */
function setText(el, text) {
  if (el.textContent !== text) el.textContent = text;
}

function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text != null) e.textContent = text;
  return e;
}

function svgEl(tag, attrs) {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  return e;
}

function setAttrs(e, attrs) {
  for (const [k, v] of Object.entries(attrs)) {
    const s = String(v);
    if (e.getAttribute(k) !== s) e.setAttribute(k, s);
  }
}

/** Puts `nodes` into `parent` in this order, moving only the ones out of place; removes the
 *  rest. Nodes keep their identity (keyed updates). */
function placeInOrder(parent, nodes) {
  const keep = new Set(nodes);
  for (const child of [...parent.children]) if (!keep.has(child)) child.remove();
  nodes.forEach((n, i) => {
    if (parent.children[i] !== n) parent.insertBefore(n, parent.children[i] || null);
  });
}

/** The top of an axis of `ticks` steps holding `v`: each step 1, 2 or 5 times a power of ten
 *  (or, for times, a round number of seconds or minutes), so the labels read easily. */
function axisMax(v, ticks, time = false) {
  const want = Math.max(v, 1) / ticks;
  if (time) {
    const steps = [15, 30, 60, 120, 180, 300, 600, 900, 1800, 3600, 7200];
    return (steps.find((s) => s >= want) ?? Math.ceil(want / 3600) * 3600) * ticks;
  }
  const p = Math.pow(10, Math.floor(Math.log10(want)));
  return ([1, 2, 5, 10].find((m) => m * p >= want) ?? 10) * p * ticks;
}

// ---- charts -----------------------------------------------------------------------------

const W = 520, H = 300, LEFT = 58, RIGHT = 12, TOP = 16, BOTTOM = 34;
const PLOT_W = W - LEFT - RIGHT, PLOT_H = H - TOP - BOTTOM;

/** The frame of a chart (grid lines, y labels, x labels) made once, updated in place. */
function frame(svg, ticks) {
  if (svg.frame) return svg.frame;
  const f = { grid: [], ylabels: [], xlabels: [] };
  for (let i = 0; i <= ticks; i++) {
    const y = TOP + PLOT_H - (PLOT_H * i) / ticks;
    f.grid.push(svg.appendChild(svgEl('line', { class: i ? 'grid' : 'axis', x1: LEFT, x2: W - RIGHT, y1: y, y2: y })));
    f.ylabels.push(svg.appendChild(svgEl('text', { x: LEFT - 8, y: y + 5, 'text-anchor': 'end' })));
  }
  f.plot = svg.appendChild(svgEl('g'));
  f.xaxis = svg.appendChild(svgEl('g'));
  svg.frame = f;
  return f;
}

function yLabels(f, max, fmt) {
  const n = f.ylabels.length - 1;
  f.ylabels.forEach((t, i) => setText(t, fmt((max * i) / n)));
}

/** x labels every 6 hours under 24 hour slots. */
function hourLabels(f, hours) {
  const slot = PLOT_W / hours.length;
  const want = hours.map((h, i) => (i % 6 === 0 ? [i, utcHour(h)] : null)).filter(Boolean);
  while (f.xaxis.children.length < want.length) f.xaxis.appendChild(svgEl('text', { 'text-anchor': 'middle' }));
  [...f.xaxis.children].forEach((t, k) => {
    if (k >= want.length) return t.remove();
    const [i, label] = want[k];
    setAttrs(t, { x: LEFT + slot * i + slot / 2, y: H - 10 });
    setText(t, label);
  });
}

function drawOrders(svg, hours, counts) {
  const f = frame(svg, 4);
  const max = axisMax(Math.max(...counts), 4);
  yLabels(f, max, (v) => String(Math.round(v)));
  const slot = PLOT_W / counts.length;
  while (f.plot.children.length < counts.length) {
    const g = f.plot.appendChild(svgEl('g'));
    g.appendChild(svgEl('rect', { class: 'bar' }));
    g.appendChild(svgEl('title'));
  }
  counts.forEach((n, i) => {
    const g = f.plot.children[i];
    const h = (PLOT_H * n) / max;
    setAttrs(g.firstChild, { x: LEFT + slot * i + 2, width: Math.max(1, slot - 4), y: TOP + PLOT_H - h, height: h, 'data-value': n });
    setText(g.lastChild, `${utcHour(hours[i])} UTC: ${n} orders`);
  });
  hourLabels(f, hours);
}

/** Sync lag buckets: up to what age of last contact (seconds), and their labels. The last two
 * are stalled (past the stall threshold, 2 min by default). */
const LAG_BUCKETS = [
  [10, '< 10 s'],
  [60, '10–60 s'],
  [120, '1–2 min'],
  [600, '2–10 min'],
  [Infinity, '> 10 min'],
];

/** How many sites sit in each sync lag bucket: one bar per bucket, stalled ones red. */
function drawLag(svg, sites, drift, stallAfter) {
  const f = frame(svg, 4);
  const counts = LAG_BUCKETS.map(() => 0);
  for (const s of sites) {
    const age = s.seconds_since_contact + drift;
    counts[LAG_BUCKETS.findIndex(([upTo]) => age < upTo)] += 1;
  }
  const max = axisMax(Math.max(...counts), 4);
  yLabels(f, max, (v) => String(Math.round(v)));
  const slot = PLOT_W / counts.length;
  if (!f.plot.children.length) {
    LAG_BUCKETS.forEach(([, label], i) => {
      const g = f.plot.appendChild(svgEl('g', { 'data-bucket': label }));
      const late = LAG_BUCKETS[i - 1] ? LAG_BUCKETS[i - 1][0] >= stallAfter : false;
      g.appendChild(svgEl('rect', { class: late ? 'bar late' : 'bar' }));
      g.appendChild(svgEl('text', { class: 'value', 'text-anchor': 'middle' }));
      g.appendChild(svgEl('title'));
      const x = f.xaxis.appendChild(svgEl('text', { 'text-anchor': 'middle', x: LEFT + slot * i + slot / 2, y: H - 10 }));
      setText(x, label);
    });
  }
  counts.forEach((n, i) => {
    const [rect, value, title] = f.plot.children[i].children;
    const h = (PLOT_H * n) / max;
    setAttrs(rect, { x: LEFT + slot * i + 8, width: slot - 16, y: TOP + PLOT_H - h, height: h, 'data-value': n });
    setAttrs(value, { x: LEFT + slot * i + slot / 2, y: TOP + PLOT_H - h - 6 });
    setText(value, n ? String(n) : '');
    setText(title, `${LAG_BUCKETS[i][1]} since last contact: ${n} sites`);
  });
}

/** Grouped horizontal bars, p50 and p90 per station, keyed by station. */
function drawSpeed(svg, stations) {
  svg.rows ??= new Map();
  svg.legend ??= (() => {
    const g = svg.appendChild(svgEl('g'));
    g.appendChild(svgEl('rect', { class: 'bar p50', x: LEFT + 50, y: 4, width: 20, height: 16 }));
    g.appendChild(svgEl('text', { x: LEFT + 76, y: 19 })).textContent = 'p50';
    g.appendChild(svgEl('rect', { class: 'bar p90', x: LEFT + 130, y: 4, width: 20, height: 16 }));
    g.appendChild(svgEl('text', { x: LEFT + 156, y: 19 })).textContent = 'p90 (9 in 10 faster)';
    return g;
  })();
  const labelW = 100, x0 = labelW + 10, barW = W - x0 - 70;
  const max = axisMax(Math.max(...stations.map((s) => s.p90_seconds)), 4, true);
  const rowH = Math.min(90, (H - 34) / Math.max(stations.length, 1));
  const seen = new Set();
  stations.forEach((s, i) => {
    seen.add(s.station);
    let r = svg.rows.get(s.station);
    if (!r) {
      const g = svg.appendChild(svgEl('g', { 'data-station': s.station }));
      r = {
        g,
        label: g.appendChild(svgEl('text', { x: labelW, 'text-anchor': 'end' })),
        p50: g.appendChild(svgEl('rect', { class: 'bar p50' })),
        p90: g.appendChild(svgEl('rect', { class: 'bar p90' })),
        v50: g.appendChild(svgEl('text', { class: 'value' })),
        v90: g.appendChild(svgEl('text', { class: 'value' })),
        tip: g.appendChild(svgEl('title')),
      };
      svg.rows.set(s.station, r);
    }
    const y = 34 + i * rowH, bh = Math.max(6, rowH / 2 - 8);
    const w50 = (barW * s.p50_seconds) / max, w90 = (barW * s.p90_seconds) / max;
    setAttrs(r.label, { y: y + rowH / 2 });
    setText(r.label, s.station);
    setAttrs(r.p50, { x: x0, y, width: w50, height: bh, 'data-value': s.p50_seconds });
    setAttrs(r.p90, { x: x0, y: y + bh + 2, width: w90, height: bh, 'data-value': s.p90_seconds });
    setAttrs(r.v50, { x: x0 + w50 + 6, y: y + bh / 2 + 7 });
    setText(r.v50, mmss(s.p50_seconds));
    setAttrs(r.v90, { x: x0 + w90 + 6, y: y + bh + 2 + bh / 2 + 7 });
    setText(r.v90, mmss(s.p90_seconds));
    setText(r.tip, `${s.station}: ${s.tickets} tickets, p50 ${mmss(s.p50_seconds)}, p90 ${mmss(s.p90_seconds)}`);
  });
  for (const [k, r] of svg.rows) if (!seen.has(k)) { r.g.remove(); svg.rows.delete(k); }
}

/** One line per station (p90 per hour); gaps where an hour had no ticket. */
function drawP90(svg, legend, hours, stations) {
  const f = frame(svg, 5);
  const all = stations.flatMap((s) => s.p90_by_hour.filter((v) => v != null));
  const max = axisMax(Math.max(...all, 60), 5, true);
  yLabels(f, max, (v) => mmss(v));
  const slot = PLOT_W / hours.length;
  svg.lines ??= new Map();
  legend.items ??= new Map();
  const seen = new Set();
  stations.forEach((s, i) => {
    seen.add(s.station);
    let line = svg.lines.get(s.station);
    let item = legend.items.get(s.station);
    if (!line) {
      line = f.plot.appendChild(svgEl('path', { 'data-station': s.station }));
      svg.lines.set(s.station, line);
      item = legend.appendChild(el('li'));
      legend.items.set(s.station, item);
    }
    const cls = `c${i % 6}`;
    setAttrs(line, { class: `line ${cls}` });
    item.className = cls;
    setText(item, s.station);
    let d = '', pen = 'M';
    s.p90_by_hour.forEach((v, h) => {
      if (v == null) { pen = 'M'; return; }
      const x = LEFT + slot * h + slot / 2, y = TOP + PLOT_H - (PLOT_H * v) / max;
      d += `${pen}${x.toFixed(1)},${y.toFixed(1)} `;
      pen = 'L';
    });
    setAttrs(line, { d: d.trim() || 'M0,0', 'data-points': s.p90_by_hour.filter((v) => v != null).length });
  });
  for (const [k, line] of svg.lines) if (!seen.has(k)) {
    line.remove(); svg.lines.delete(k);
    legend.items.get(k)?.remove(); legend.items.delete(k);
  }
  placeInOrder(legend, stations.map((s) => legend.items.get(s.station)));
  hourLabels(f, hours);
}

// ---- alerts and sites ---------------------------------------------------------------------

const alertItems = new Map();

function drawAlerts(alerts, drift) {
  const list = $('alerts');
  $('no-alerts').hidden = alerts.length > 0;
  const more = alerts.length - MAX_ALERTS;
  $('more-alerts').hidden = more <= 0;
  setText($('more-alerts'), more > 0 ? `and ${more} more stalled sites: see the table below.` : '');
  const nodes = alerts.slice(0, MAX_ALERTS).map((a) => {
    let li = alertItems.get(a.site_id);
    if (!li) {
      li = el('li');
      li.dataset.site = a.site_id;
      li.append(el('span', 'site', a.site_id), el('span', 'for'));
      alertItems.set(a.site_id, li);
    }
    setText(li.lastChild, `STALLED: no contact for ${ago(a.stalled_for_seconds + drift)} (since ${clock(a.last_contact_ms)})`);
    return li;
  });
  const keep = new Set(nodes);
  for (const [k, li] of alertItems) if (!keep.has(li)) alertItems.delete(k);
  placeInOrder(list, nodes);
}

const rows = new Map();

function siteRow(id) {
  let r = rows.get(id);
  if (r) return r;
  const tr = el('tr');
  tr.dataset.site = id;
  const td = (cls) => tr.appendChild(el('td', cls));
  r = { tr, site: td('site'), state: el('span', 'state') };
  td('state-cell').appendChild(r.state);
  r.contact = td('contact');
  r.event = td('event');
  r.lastHour = td('num');
  const spark = svgEl('svg', { class: 'spark', viewBox: '0 0 160 30', preserveAspectRatio: 'none' });
  r.spark = spark.appendChild(svgEl('polyline'));
  td('spark-cell').appendChild(spark);
  r.speed = td('speed');
  r.version = td('version');
  setText(r.site, id);
  rows.set(id, r);
  return r;
}

function drawSites(sites, speedBySite, readAt, drift) {
  const nodes = sites.map((s) => {
    const r = siteRow(s.site_id);
    if (r.tr.className !== s.state) r.tr.className = s.state;
    r.state.className = `state ${s.state}`;
    setText(r.state, s.state.toUpperCase());
    setText(r.contact, `${ago(s.seconds_since_contact + drift)} ago`);
    if (s.newest_event_ms == null) {
      setText(r.event, 'none yet');
    } else {
      setText(r.event, `${ago((readAt - s.newest_event_ms) / 1000 + drift)} ago`);
      r.event.title = `box time ${new Date(s.newest_event_ms).toISOString()}`;
    }
    setText(r.lastHour, String(s.orders_last_hour));
    const max = Math.max(...s.orders_per_hour, 1);
    const pts = s.orders_per_hour.map((n, i) => `${(i * 160) / 23},${(28 - (26 * n) / max).toFixed(1)}`).join(' ');
    setAttrs(r.spark, { points: pts });
    const speed = speedBySite.get(s.site_id) || [];
    setText(r.speed, speed.map((x) => `${x.station} ${mmss(x.p50_seconds)} / ${mmss(x.p90_seconds)}`).join(' · ') || '–');
    setText(r.version, s.docketd_version || '–');
    return r.tr;
  });
  const keep = new Set(nodes);
  for (const [k, r] of rows) if (!keep.has(r.tr)) rows.delete(k);
  placeInOrder(document.querySelector('#sites tbody'), nodes);
}

// ---- the loop -----------------------------------------------------------------------------

let last = null; // { data, at: Date.now() when received }

function render() {
  if (!last) return;
  const { data } = last;
  // Ages advance while the page waits for the next reading (or for the database).
  const drift = (Date.now() - last.at) / 1000;
  setText($('n-live'), String(data.live));
  setText($('n-stalled'), String(data.stalled));
  $('n-stalled').parentElement.classList.toggle('none', data.stalled === 0);
  setText($('n-total'), String(data.sites.length));
  setText($('stall-after'), ago(data.stall_after_seconds));
  drawAlerts(data.alerts, drift);
  drawOrders($('chart-orders'), data.hours_ms, data.orders_per_hour);
  drawLag($('chart-lag'), data.sites, drift, data.stall_after_seconds);
  drawSpeed($('chart-speed'), data.stations);
  drawP90($('chart-p90'), $('p90-legend'), data.hours_ms, data.stations);
  const speedBySite = new Map();
  for (const s of data.speed) {
    if (!speedBySite.has(s.site_id)) speedBySite.set(s.site_id, []);
    speedBySite.get(s.site_id).push(s);
  }
  drawSites(data.sites, speedBySite, data.read_at_ms, drift);
}

function status(state, text, banner) {
  const conn = $('conn');
  conn.dataset.state = state;
  setText(conn, text);
  const b = $('banner');
  b.hidden = !banner;
  setText(b, banner || '');
}

async function poll() {
  const ctl = new AbortController();
  const timer = setTimeout(() => ctl.abort(), FETCH_WITHIN_MS);
  const kept = () => (last ? ` Showing the last data, read at ${clock(last.at)}.` : ' No data yet.');
  try {
    const res = await fetch('/api/fleet', { cache: 'no-store', signal: ctl.signal });
    const body = await res.json().catch(() => null);
    if (res.ok && body) {
      last = { data: body, at: Date.now() };
      status('live', `Updated ${clock(last.at)}`, body.redis && body.redis !== 'ok' ? `Redis: ${body.redis}` : '');
    } else {
      const why = (body && body.error) || `the server answered ${res.status}`;
      status('down', 'Database down', `${why[0].toUpperCase()}${why.slice(1)}.${kept()}`);
    }
  } catch (e) {
    status('down', 'Server not answering', `The fleet view server is not answering.${kept()}`);
  } finally {
    clearTimeout(timer);
  }
  render();
  setTimeout(poll, POLL_MS);
}

poll();
