// A station's kitchen display: tickets in arrival order with table, age (colour aging), lines,
// modifiers, notes and allergens; bump by touch or bump bar (a keyboard: digits select, Enter
// bumps, R recalls the last bumped); all-day counts; voids and added lines marked. The board
// comes from the retained snapshot, then events by seq, with a replay on any gap, and the badge
// says "live" only when it is in step with the box.

import { obtainDevice, Link, badge, el, BoxClock, perfMark } from './conn.js';
import { Follower } from './follow.js';
import { allDay, stationLines } from './board.js';
import { topics } from './wire.js';
import { CardList, agingThresholds } from './cards.js';

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
const station = (params.get('station') || '').trim();
const { warn: WARN_MS, late: LATE_MS } = agingThresholds(params);

let link;
let cards;
const clock = new BoxClock();
const follower = new Follower(station, render);
/** item id → allergens, from the menu. */
let allergens = new Map();
let menuVersion = null;
/** order id → line numbers present when this screen first showed the order. */
const firstSeen = new Map();
let selected = null;
/** Bumped order ids, most recent last (R recalls them in turn). */
const bumped = [];
/** The live `order_placed` event being rendered (set by follower.onEvent, taken by render). */
let placing = null;

function lineRow(order, l, first) {
  const cls = ['line', l.status];
  if (first && !first.has(l.n)) cls.push('added');
  const row = el(
    'li',
    { class: cls.join(' '), 'data-n': String(l.n) },
    el('span', { class: 'qty' }, `${l.qty}×`),
    el('span', { class: 'name' }, l.name),
  );
  if (l.status === 'voided') row.append(el('span', { class: 'tag void' }, 'VOID'));
  else if (cls.includes('added')) row.append(el('span', { class: 'tag new' }, 'NEW'));
  if (l.course > 1) row.append(el('span', { class: 'tag course' }, `C${l.course}`));
  const extra = el('div', { class: 'extra' });
  for (const m of l.mods) extra.append(el('div', { class: 'mod' }, `– ${m}`));
  if (l.notes) extra.append(el('div', { class: 'note' }, `⚑ ${l.notes}`));
  const alg = allergens.get(l.item) || [];
  if (alg.length) extra.append(el('div', { class: 'allergens' }, ...alg.map((a) => el('span', { class: 'allergen' }, a))));
  if (extra.childNodes.length) row.append(extra);
  return row;
}

function buildCard(order) {
  if (!firstSeen.has(order.id)) firstSeen.set(order.id, new Set(order.lines.map((l) => l.n)));
  const first = firstSeen.get(order.id);
  const card = el(
    'article',
    { class: 'card', tabindex: '-1' },
    el(
      'header',
      {},
      el('span', { class: 'ticket' }, `#${order.ticket}`),
      el('span', { class: 'table' }, `T${order.table}`),
      el('span', { class: 'age' }, ''),
    ),
    el('ul', { class: 'lines' }, ...stationLines(order, station).map((l) => lineRow(order, l, first))),
    el('button', { class: 'bump', onclick: (e) => (e.stopPropagation(), bump(order.id)) }, 'Bump'),
  );
  if (order.id === selected) card.classList.add('selected');
  card.addEventListener('click', () => select(order.id));
  return card;
}

function render(changed) {
  const placed = placing;
  placing = null;
  badge($('conn'), link ? link.state : 'connecting', follower.screen.synced);
  const live = link && link.state === 'live' && follower.screen.synced;
  $('board').classList.toggle('stale', !live);
  if (!changed || changed.size === 0) return;
  cards.update(follower.screen.orders, changed);
  // A new order's card is in the DOM: mark `docket:card` {command, order} for bench-render.mjs.
  if (placed && changed.has(placed.order_id) && cards.cards.get(placed.order_id)?.isConnected) {
    perfMark('docket:card', { command: placed.command, order: placed.order_id });
  }
  for (const id of changed) if (!follower.screen.orders.has(id)) firstSeen.delete(id);
  if (selected && !follower.screen.orders.has(selected)) selected = null;
  cards.tick(clock.now(), WARN_MS, LATE_MS);
  renderAllDay();
  $('count').textContent = String(follower.screen.orders.size);
}

function renderAllDay() {
  $('allday').replaceChildren(
    ...allDay(follower.screen.orders.values(), station).map(([name, n]) =>
      el('li', { 'data-item': name }, el('span', { class: 'n' }, String(n)), el('span', {}, name)),
    ),
  );
}

function select(id) {
  selected = id;
  for (const c of cards.list()) c.classList.toggle('selected', c.dataset.order === id);
  const c = cards.cards.get(id);
  if (c) c.scrollIntoView({ block: 'nearest' });
}

function notice(text) {
  const t = el('div', { class: 'toast error' }, text);
  $('toasts').append(t);
  setTimeout(() => t.remove(), 6000);
}

async function bump(id) {
  const card = cards.cards.get(id);
  if (!card || card.classList.contains('bumping')) return;
  card.classList.add('bumping');
  // Select the next ticket so a bump bar can keep going.
  const list = cards.list();
  const i = list.indexOf(card);
  const next = list[i + 1] || list[i - 1];
  select(next ? next.dataset.order : null);
  const reply = await link.command({ type: 'bump', order_id: id, station }).reply;
  if (reply.ok) {
    bumped.push(id);
    if (bumped.length > 50) bumped.shift();
  } else {
    const c = cards.cards.get(id);
    if (c) c.classList.remove('bumping');
    notice(`Bump refused: ${reply.error ? reply.error.message : 'unknown error'}`);
  }
}

async function recall() {
  const id = bumped.pop();
  if (!id) return notice('Nothing to recall');
  const reply = await link.command({ type: 'recall', order_id: id, station }).reply;
  if (!reply.ok) notice(`Recall refused: ${reply.error ? reply.error.message : 'unknown error'}`);
}

function onKey(e) {
  if (e.target instanceof HTMLInputElement) return;
  const list = cards.list();
  const at = list.findIndex((c) => c.dataset.order === selected);
  if (/^[0-9]$/.test(e.key)) {
    const n = e.key === '0' ? 9 : Number(e.key) - 1;
    if (list[n]) select(list[n].dataset.order);
  } else if (e.key === 'Enter' || e.key === ' ') {
    if (selected) bump(selected);
  } else if (e.key === 'ArrowRight' || e.key === 'ArrowDown') {
    const c = list[Math.min(list.length - 1, at + 1)];
    if (c) select(c.dataset.order);
  } else if (e.key === 'ArrowLeft' || e.key === 'ArrowUp') {
    const c = list[Math.max(0, at - 1)];
    if (c) select(c.dataset.order);
  } else if (e.key === 'r' || e.key === 'R' || e.key === 'Backspace' || e.key === '*') {
    recall();
  } else {
    return;
  }
  e.preventDefault();
}

async function main() {
  document.title = `Docket · ${station || 'KDS'}`;
  document.body.classList.add('dark');
  document.body.append(
    el(
      'header',
      {},
      el('h1', {}, `KDS · ${station || '?'}`),
      el('span', { class: 'count-wrap' }, el('span', { id: 'count' }, '0'), ' open'),
      el('span', { id: 'who', class: 'who' }),
      el('span', { id: 'conn', class: 'conn', 'data-state': 'connecting' }, 'connecting…'),
    ),
    el(
      'main',
      { class: 'kds' },
      el('section', { id: 'board', class: 'board stale' }),
      el('aside', { class: 'allday' }, el('h2', {}, 'All day'), el('ul', { id: 'allday' }), el('p', { class: 'hint' }, '1–9 select · Enter bump · R recall')),
    ),
    el('div', { id: 'toasts', class: 'toasts' }),
  );
  if (!/^[a-z0-9_-]{1,32}$/.test(station) || station === 'expo') {
    $('board').replaceChildren(el('p', { class: 'error' }, 'Open this page as /kds?station=NAME (for example /kds?station=grill).'));
    return;
  }
  cards = new CardList($('board'), buildCard);
  await clock.init();
  const scope = `kds.${station}`;
  const device = await obtainDevice(scope, `${station} screen`);
  $('who').textContent = device.id;
  follower.onEvent = (ev) => {
    if (follower.screen.synced) clock.observe(ev.at);
    placing = ev.type === 'order_placed' ? ev : null;
  };
  link = new Link(scope, device, {
    subscriptions: [[topics.menu, ...follower.subscriptions()[0]], follower.subscriptions()[1]],
    onSession: () => follower.session(),
    onState: () => render(null),
    // The box's clock, every 2 s: keeps ticket ages right even when no event comes.
    onStatus: (s) => {
      if (s && Number.isFinite(s.now_ms) && s.now_ms > 0) clock.observe(s.now_ms);
    },
    onMessage: (topic, value) => {
      if (topic === topics.menu) {
        if (value && Array.isArray(value.items) && value.version !== menuVersion) {
          // Re-rendered only when the menu really changed (it is re-sent on every reconnect).
          menuVersion = value.version;
          allergens = new Map(value.items.map((i) => [i.id, i.allergens || []]));
          render(new Set(follower.screen.orders.keys()));
        }
        return;
      }
      follower.message(topic, value);
    },
  });
  follower.attach(link);
  link.start();
  document.addEventListener('keydown', onKey);
  setInterval(() => cards.tick(clock.now(), WARN_MS, LATE_MS), 1000);
}

main();
