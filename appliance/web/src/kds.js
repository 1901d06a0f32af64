// A station's kitchen display: tickets in arrival order with table, age (colour aging), lines,
// modifiers in words, notes, the guest's allergy as an alarm and the menu's allergens as quiet
// tags; bump by touch or bump bar (a keyboard: the digit shown on a card selects it, Enter bumps,
// R recalls the last bumped); all-day counts; voids and added lines marked. Cards are patched in
// place and hold still while the screen is pressed (cards.js). The board comes from the
// retained snapshot, then events by seq, with a replay on any gap, and the badge says "live"
// only when it is in step with the box.

import { obtainDevice, Link, badge, el, BoxClock, perfMark } from './conn.js';
import { Follower } from './follow.js';
import { allDay, stationLines } from './board.js';
import { topics } from './wire.js';
import { CardList, agingThresholds, setText, syncKeyed } from './cards.js';
import { tableLabel } from './labels.js';
import { patchLine } from './ticket.js';

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

/** Tags after a line's name: VOID, NEW (added after the screen first showed it), its course. */
function lineTags(l, first) {
  const tags = [];
  if (l.status === 'voided') tags.push(['VOID', 'void']);
  else if (first && !first.has(l.n)) tags.push(['NEW', 'new']);
  if (l.course > 1) tags.push([`C${l.course}`, 'course']);
  return tags;
}

function createCard() {
  const card = el(
    'article',
    { class: 'card', tabindex: '-1' },
    el(
      'header',
      {},
      el('span', { class: 'key', title: 'bump bar key' }),
      el('span', { class: 'ticket' }),
      el('span', { class: 'table' }),
      el('span', { class: 'age' }),
    ),
    el('ul', { class: 'lines' }),
    el('button', { class: 'bump', onclick: (e) => (e.stopPropagation(), bump(card.dataset.order)) }, 'Bump'),
  );
  card.addEventListener('click', () => select(card.dataset.order));
  return card;
}

function patchCard(card, order) {
  if (!firstSeen.has(order.id)) firstSeen.set(order.id, new Set(order.lines.map((l) => l.n)));
  const first = firstSeen.get(order.id);
  setText(card.querySelector('.ticket'), `#${order.ticket}`);
  setText(card.querySelector('.table'), tableLabel(order.table));
  syncKeyed(
    card.querySelector('.lines'),
    stationLines(order, station),
    (l) => l.n,
    () => el('li'),
    (li, l) => {
      const added = l.status !== 'voided' && !first.has(l.n);
      patchLine(li, l, { tags: lineTags(l, first), allergens: allergens.get(l.item) || [], cls: added ? ['added'] : [] });
    },
  );
  card.classList.toggle('selected', order.id === selected);
}

/** Each card shows the bump bar key that selects it: 1–9, then 0 for the tenth. */
function numberCards() {
  cards.list().forEach((c, i) => {
    const k = i < 10 ? String((i + 1) % 10) : '';
    setText(c.querySelector('.key'), k);
    c.dataset.keynum = k;
  });
}

function render(changed) {
  const placed = placing;
  placing = null;
  badge($('conn'), link ? link.state : 'connecting', follower.screen.synced);
  const live = link && link.state === 'live' && follower.screen.synced;
  $('board').classList.toggle('stale', !live);
  if (!changed || changed.size === 0) return;
  cards.update(changed);
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

function keyHint() {
  const k = (key, what) => el('li', {}, el('kbd', {}, key), ` ${what}`);
  return el('ul', { class: 'key-hint' }, k('1–9, 0', 'select the card with that number'), k('Enter', 'bump'), k('R', 'recall the last bumped'));
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
  document.body.classList.add('dark', 'kitchen');
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
      el('aside', { class: 'allday' }, el('h2', {}, 'All day'), el('ul', { id: 'allday' }), keyHint()),
    ),
    el('div', { id: 'toasts', class: 'toasts' }),
  );
  if (!/^[a-z0-9_-]{1,32}$/.test(station) || station === 'expo') {
    $('board').replaceChildren(el('p', { class: 'error' }, 'Open this page as /kds?station=NAME (for example /kds?station=grill).'));
    return;
  }
  cards = new CardList($('board'), {
    source: () => follower.screen.orders,
    create: createCard,
    patch: patchCard,
    onLayout: numberCards,
  });
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
