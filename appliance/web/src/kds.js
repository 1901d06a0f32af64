// A station's kitchen display: tickets in arrival order (a rush first, marked) with table, age
// (colour aging), lines, modifiers in words, notes, the guest's allergy as an alarm and the
// menu's allergens as quiet tags; bump a whole ticket by touch or bump bar (a keyboard: the digit
// shown on a card selects it, Enter bumps, R recalls the last bumped), or one line by tapping it
// (tapping a done line brings the ticket's done lines back); the recently bumped tickets to
// recall with a tap; all-day counts; voids and added lines marked; a chime (chime.js) and a flash
// for a new or changed ticket, and the text size, both set per screen. Cards are patched in
// place and hold still while the screen is pressed (cards.js). The board comes from the
// retained snapshot, then events by seq, with a replay on any gap, and the badge says "live"
// only when it is in step with the box.

import { obtainDevice, Link, badge, el, BoxClock, perfMark } from './conn.js';
import { Follower } from './follow.js';
import { allDay, stationLines } from './board.js';
import { topics } from './wire.js';
import { CardList, agingThresholds } from './cards.js';
import { setText, syncList } from './keyed.js';
import { tableLabel } from './labels.js';
import { patchLine, patchMeta } from './ticket.js';
import { Chime, chimeFor } from './chime.js';
import { lineStarts, waitText } from './prep.js';
import { StockPanel } from './stock.js';

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
/** item id → prep minutes, from the menu (prep.js). */
let prepMin = new Map();
let menuVersion = null;
/** The "86" panel: this station's items, each a sold-out toggle (stock.js). */
const stock = new StockPanel(station, (body) => link.command(body).reply);
/** order id → line numbers present when this screen first showed the order. */
const firstSeen = new Map();
let selected = null;
/** Bumped tickets {id, ticket, table}, most recent last (R and the recall list bring them back). */
const bumped = [];
/** Tickets the recall list shows. */
const RECALL_LIST = 5;
/** The live `order_placed` event being rendered (set by follower.onEvent, taken by render). */
let placing = null;
/** The live event being rendered once the board is in step (what the chime and flash are for). */
let alerting = null;
const chime = new Chime(`docket.kds.${station}.sound`);
const SCALE_KEY = `docket.kds.${station}.scale`;
/** Text size of this screen's tickets, 0.8–1.6 (A− / A+), remembered on the device. */
let scale = Math.min(1.6, Math.max(0.8, Number(localStorage.getItem(SCALE_KEY)) || 1));

/** Tags after a line's name: VOID, done, its wait, NEW (added after the screen first showed it), its course. */
function lineTags(l, first, wait) {
  const tags = [];
  if (l.status === 'voided') tags.push(['VOID', 'void']);
  else if (l.status === 'ready') tags.push(['✓ done', 'done']);
  else if (wait) tags.push([wait, 'wait']);
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
    el('div', { class: 'rush-tag', hidden: '' }, 'RUSH'),
    el('div', { class: 'meta', hidden: '' }),
    el('ul', { class: 'lines', onclick: (e) => tapLine(e, card) }),
    el('button', { class: 'bump', onclick: (e) => (e.stopPropagation(), bump(card.dataset.order)) }, 'Bump'),
  );
  card.addEventListener('click', () => select(card.dataset.order));
  return card;
}

/** A tap on a cooking line bumps that line alone; on a done line, brings the done lines back. */
async function tapLine(e, card) {
  const li = e.target.closest('li.line');
  if (!li || li.classList.contains('sending')) return;
  e.stopPropagation();
  const order_id = card.dataset.order;
  let body;
  if (li.classList.contains('fired')) body = { type: 'bump_line', order_id, line: Number(li.dataset.n) };
  else if (li.classList.contains('ready')) body = { type: 'recall', order_id, station };
  else return;
  li.classList.add('sending');
  const reply = await link.command(body).reply;
  li.classList.remove('sending');
  if (!reply.ok) notice(`${body.type === 'recall' ? 'Recall' : 'Line bump'} refused: ${reply.error ? reply.error.message : 'unknown error'}`);
}

function patchCard(card, order) {
  if (!firstSeen.has(order.id)) firstSeen.set(order.id, new Set(order.lines.map((l) => l.n)));
  const first = firstSeen.get(order.id);
  setText(card.querySelector('.ticket'), `#${order.ticket}`);
  setText(card.querySelector('.table'), tableLabel(order.table));
  const starts = lineStarts(order, prepMin);
  const now = clock.now();
  syncList(
    card.querySelector('.lines'),
    stationLines(order, station),
    (l) => l.n,
    () => el('li'),
    (li, l) => {
      const added = l.status !== 'voided' && !first.has(l.n);
      const wait = l.status === 'fired' && starts.has(l.n) ? waitText(starts.get(l.n), now) : null;
      const cls = [...(added ? ['added'] : []), ...(wait ? ['waiting'] : [])];
      patchLine(li, l, { tags: lineTags(l, first, wait), allergens: allergens.get(l.item) || [], cls });
    },
  );
  card.classList.toggle('selected', order.id === selected);
  card.classList.toggle('rush', Boolean(order.rush));
  card.querySelector('.rush-tag').hidden = !order.rush;
  patchMeta(card.querySelector('.meta'), order);
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
  const alert = alerting;
  alerting = null;
  const wasShown = alert ? cards.cards.has(alert.order_id) : false;
  cards.update(changed);
  if (alert && changed.has(alert.order_id) && follower.screen.orders.has(alert.order_id)) {
    announce(alert, wasShown);
  }
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

/** A chime and a flash for a ticket that is new here or changed by the front of house. */
function announce(ev, wasShown) {
  const kind = chimeFor(ev.type, wasShown);
  if (!kind) return;
  chime.play(kind);
  const b = $('sound');
  b.dataset[kind] = String(chime.played[kind]);
  const card = cards.cards.get(ev.order_id);
  if (!card) return;
  card.classList.remove('flash');
  void card.offsetWidth; // restart the animation
  card.classList.add('flash');
  setTimeout(() => card.classList.remove('flash'), 2500);
}

function paintSound() {
  const b = $('sound');
  b.textContent = chime.on ? 'Sound on' : 'Sound off';
  b.setAttribute('aria-pressed', String(chime.on));
}

function setScale(next) {
  scale = Math.round(Math.min(1.6, Math.max(0.8, next)) * 10) / 10;
  localStorage.setItem(SCALE_KEY, String(scale));
  $('board').style.zoom = String(scale);
  $('scale').textContent = `${Math.round(scale * 100)}%`;
}

/** The header's per-screen controls: sound on/off and its test, text size. */
function screenControls() {
  return el(
    'span',
    { class: 'screen-controls' },
    el('button', { id: 'sound', onclick: () => (chime.toggle(), paintSound()) }),
    el('button', { id: 'sound-test', onclick: () => (chime.unlock(), chime.play('new', true)) }, 'Test'),
    el('button', { id: 'smaller', 'aria-label': 'smaller text', onclick: () => setScale(scale - 0.1) }, 'A−'),
    el('span', { id: 'scale', class: 'scale' }),
    el('button', { id: 'larger', 'aria-label': 'larger text', onclick: () => setScale(scale + 0.1) }, 'A+'),
  );
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
  return el(
    'ul',
    { class: 'key-hint' },
    k('1–9, 0', 'select the card with that number'),
    k('Enter', 'bump'),
    k('R', 'recall the last bumped'),
    el('li', {}, 'Tap a line when that item alone is done'),
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
  const order = follower.screen.orders.get(id);
  const reply = await link.command({ type: 'bump', order_id: id, station }).reply;
  if (reply.ok) {
    bumped.push({ id, ticket: order ? order.ticket : reply.ticket, table: order ? order.table : '' });
    if (bumped.length > 50) bumped.shift();
    renderRecalls();
  } else {
    const c = cards.cards.get(id);
    if (c) c.classList.remove('bumping');
    notice(`Bump refused: ${reply.error ? reply.error.message : 'unknown error'}`);
  }
}

/** Brings back a bumped ticket: `id`, or the last bumped. */
async function recall(id) {
  const at = id ? bumped.findIndex((b) => b.id === id) : bumped.length - 1;
  if (at < 0) return notice('Nothing to recall');
  const [b] = bumped.splice(at, 1);
  renderRecalls();
  const reply = await link.command({ type: 'recall', order_id: b.id, station }).reply;
  if (!reply.ok) notice(`Recall refused: ${reply.error ? reply.error.message : 'unknown error'}`);
}

/** The recently bumped tickets, newest first, each a button that recalls it. */
function renderRecalls() {
  const recent = bumped.slice(-RECALL_LIST).reverse();
  $('recall-empty').hidden = recent.length > 0;
  syncList(
    $('recalls'),
    recent,
    (b) => b.id,
    (b) => el('li', {}, el('button', { class: 'recall', onclick: () => recall(b.id) })),
    (li, b) => setText(li.firstChild, `↶ #${b.ticket} ${tableLabel(b.table)}`),
  );
}

function onKey(e) {
  if (e.target instanceof HTMLInputElement) return;
  // While the 86 panel is open the bump bar's keys do not bump behind it; Escape closes it.
  if (!stock.panel.hidden) {
    if (e.key === 'Escape') stock.show(false);
    return;
  }
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
    recall(null);
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
      screenControls(),
      stock.button,
      el('span', { id: 'who', class: 'who' }),
      el('span', { id: 'conn', class: 'conn', 'data-state': 'connecting' }, 'connecting…'),
    ),
    el(
      'main',
      { class: 'kds' },
      el('section', { id: 'board', class: 'board stale' }),
      el(
        'aside',
        { class: 'allday' },
        el('h2', {}, 'All day'),
        el('ul', { id: 'allday' }),
        el('h2', {}, 'Recently bumped'),
        el('p', { id: 'recall-empty', class: 'hint' }, 'Nothing bumped yet'),
        el('ul', { id: 'recalls', class: 'recalls' }),
        keyHint(),
      ),
    ),
    stock.panel,
    el('div', { id: 'toasts', class: 'toasts' }),
  );
  if (!/^[a-z0-9_-]{1,32}$/.test(station) || station === 'expo') {
    $('board').replaceChildren(el('p', { class: 'error' }, 'Open this page as /kds?station=NAME (for example /kds?station=grill).'));
    return;
  }
  paintSound();
  setScale(scale);
  // Browsers allow sound only after a tap: the first tap anywhere on the screen unlocks it.
  document.addEventListener('pointerdown', () => chime.on && chime.unlock(), { once: true });
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
    alerting = follower.screen.synced ? ev : null;
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
          prepMin = new Map(value.items.filter((i) => i.prep_min > 0).map((i) => [i.id, i.prep_min]));
          stock.update(value);
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
  setInterval(() => {
    cards.tick(clock.now(), WARN_MS, LATE_MS);
    // Lines waiting for their start count down. Only cards with a waiting line change with time:
    // a new wait comes with an event, which patches its card then.
    for (const [id, card] of cards.cards) {
      const order = card.querySelector('.line.waiting') && follower.screen.orders.get(id);
      if (order) patchCard(card, order);
    }
  }, 1000);
}

main();
