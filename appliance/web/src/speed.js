// /admin's speed of service: today's ticket times per station (p50 and p90 against the late
// line), orders per quarter hour, and the late tickets, drawn as SVG on the page from
// GET /api/admin/speed (no external assets). "Today" starts at this browser's midnight: the
// restaurant's time zone is the tablet's, not necessarily the box's.

import { el } from './conn.js';
import { tableLabel } from './labels.js';

const NS = 'http://www.w3.org/2000/svg';
/** A ticket is late after this many minutes (the KDS's own default). */
export const LATE_MIN = 8;

function svg(tag, attrs = {}, ...children) {
  const e = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  for (const c of children) e.append(c);
  return e;
}

/** 372000 → "6:12". */
export function minSec(ms) {
  const s = Math.round(ms / 1000);
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')}`;
}

function clock(ms) {
  return new Date(ms).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
}

/** The query for today so far, from this browser's midnight. */
export function todayQuery(now = Date.now()) {
  const midnight = new Date(now);
  midnight.setHours(0, 0, 0, 0);
  return `from=${midnight.getTime()}&to=${now + 1}&late_min=${LATE_MIN}`;
}

/** The section's empty frame; `renderSpeed` fills it. */
export function speedSection() {
  return el(
    'section',
    { id: 'speed', class: 'speed' },
    el('h2', {}, 'Speed of service today'),
    el('p', { id: 'speed-summary', class: 'speed-summary' }, 'Loading…'),
    el('h3', {}, 'Ticket times by station (dark: median, light: 9 in 10 tickets faster)'),
    el('div', { id: 'speed-stations', class: 'chart' }),
    el('h3', {}, 'Orders every 15 minutes'),
    el('div', { id: 'speed-buckets', class: 'chart' }),
    el('h3', {}, 'Late tickets'),
    el('table', { class: 'late' }, el('tbody', { id: 'speed-late' })),
  );
}

/** Horizontal bars: p50 solid, p90 lighter behind it, the late line dashed. */
function stationChart(r) {
  const rowH = 44;
  const labelW = 120;
  const width = 760;
  const plotW = width - labelW - 280;
  // The scale fits the slowest p90 (a fast kitchen's bars stay readable); the late line is drawn
  // when it falls on the scale, and named beside it otherwise.
  const slowest = Math.max(...r.stations.map((s) => s.p90_ms), 1);
  const top = slowest * 1.25 >= r.late_ms ? Math.max(slowest, r.late_ms) * 1.1 : slowest * 1.25;
  const x = (ms) => labelW + (Math.min(ms, top) / top) * plotW;
  const height = r.stations.length * rowH + 24;
  const rows = r.stations.map((s, i) => {
    const y = i * rowH + 8;
    const late = s.p90_ms > r.late_ms;
    return svg(
      'g',
      { 'data-station': s.station },
      svg('text', { x: 0, y: y + 22, class: 'label' }, s.station),
      svg('rect', { x: labelW, y, width: Math.max(2, x(s.p90_ms) - labelW), height: 28, class: late ? 'p90 late' : 'p90' }),
      svg('rect', { x: labelW, y, width: Math.max(2, x(s.p50_ms) - labelW), height: 28, class: 'p50' }),
      svg('text', { x: labelW + plotW + 12, y: y + 22, class: 'value' }, `p50 ${minSec(s.p50_ms)} · p90 ${minSec(s.p90_ms)} · ${s.tickets} ${s.tickets === 1 ? 'ticket' : 'tickets'}`),
      svg('title', {}, `${s.station}: ${s.tickets} tickets, p50 ${minSec(s.p50_ms)}, p90 ${minSec(s.p90_ms)}, longest ${minSec(s.max_ms)}, ${s.late} late`),
    );
  });
  const late =
    r.late_ms <= top
      ? [
          svg('line', { x1: x(r.late_ms), x2: x(r.late_ms), y1: 0, y2: height - 18, class: 'late-line' }),
          svg('text', { x: x(r.late_ms), y: height - 4, class: 'axis', 'text-anchor': 'middle' }, `late: ${minSec(r.late_ms)}`),
        ]
      : [svg('text', { x: labelW + plotW, y: height - 4, class: 'axis', 'text-anchor': 'end' }, `all well under late (${minSec(r.late_ms)})`)];
  return svg(
    'svg',
    { viewBox: `0 0 ${width} ${height}`, role: 'img', 'aria-label': 'Ticket times by station: median and 90th percentile' },
    ...rows,
    ...late,
    svg('text', { x: labelW, y: height - 4, class: 'axis' }, '0:00'),
  );
}

/** Vertical bars: orders per quarter hour, only the hours that had any, hour ticks below. */
function bucketChart(r) {
  let b = r.buckets;
  const first = b.findIndex((q) => q.orders || q.tickets);
  if (first < 0) return el('p', { class: 'hint' }, 'No orders yet today.');
  b = b.slice(Math.max(0, first - (first % 4)));
  const width = 760;
  const height = 180;
  const barW = Math.max(2, Math.min(24, (width - 40) / b.length - 2));
  const top = Math.max(...b.map((q) => q.orders), 1);
  const plotH = height - 40;
  const bars = b.map((q, i) => {
    const h = (q.orders / top) * plotH;
    const x = 30 + i * (barW + 2);
    const parts = [
      svg('rect', { x, y: 10 + plotH - h, width: barW, height: Math.max(h, q.orders ? 2 : 0), class: 'orders' }),
      svg('title', {}, `${clock(q.start)}: ${q.orders} orders, ${q.tickets} tickets bumped`),
    ];
    if (new Date(q.start).getMinutes() === 0) {
      parts.push(svg('text', { x, y: height - 8, class: 'axis' }, clock(q.start)));
    }
    return svg('g', { 'data-start': q.start }, ...parts);
  });
  return svg(
    'svg',
    { viewBox: `0 0 ${width} ${height}`, role: 'img', 'aria-label': 'Orders every 15 minutes' },
    svg('text', { x: 0, y: 20, class: 'axis' }, String(top)),
    svg('line', { x1: 28, x2: width, y1: 10 + plotH, y2: 10 + plotH, class: 'base' }),
    ...bars,
  );
}

export function renderSpeed(r) {
  const tickets = r.stations.reduce((n, s) => n + s.tickets, 0);
  const late = r.stations.reduce((n, s) => n + s.late, 0);
  document.getElementById('speed-summary').textContent =
    `${r.orders} orders, ${tickets} station tickets, ${late} late (over ${minSec(r.late_ms)})` +
    (r.truncated ? ' (a very busy day: only the first part is counted)' : '');
  const stations = document.getElementById('speed-stations');
  stations.replaceChildren(r.stations.length ? stationChart(r) : el('p', { class: 'hint' }, 'No ticket bumped yet today.'));
  document.getElementById('speed-buckets').replaceChildren(bucketChart(r));
  document.getElementById('speed-late').replaceChildren(
    ...(r.late.length
      ? r.late.map((t) =>
          el(
            'tr',
            { 'data-ticket': String(t.ticket) },
            el('td', {}, clock(t.bumped_at)),
            el('td', { class: 'ticket' }, `#${t.ticket}`),
            el('td', {}, tableLabel(t.table)),
            el('td', {}, t.station),
            el('td', { class: 'took' }, minSec(t.ms)),
          ),
        )
      : [el('tr', {}, el('td', { class: 'hint' }, 'None late today.'))]),
  );
}
