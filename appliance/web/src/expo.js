// The expo screen: every open order with each station's progress; complete an order when it
// is ready (with an undo, and a question naming what is not made when it is not: completion.js);
// recall a station's bump (send it back). Compact cards in a panel that scrolls by itself, each
// card's Complete button at the same place under its header. Same board discipline as the KDS,
// and the same keyed cards that hold still while the screen is pressed (cards.js). Kitchen
// printers (print-strip.js): the printing strip and its alarms, a card's Reprint.

import { obtainDevice, Link, badge, el, BoxClock } from './conn.js';
import { Follower } from './follow.js';
import { progress } from './board.js';
import { topics } from './wire.js';
import { CardList, agingThresholds } from './cards.js';
import { setText, syncList } from './keyed.js';
import { tableLabel } from './labels.js';
import { patchLine, patchMeta } from './ticket.js';
import { Completion, UNDO_MS, notMadeText } from './completion.js';
import { PrintStrip } from './print-strip.js';

const $ = (id) => document.getElementById(id);
const { warn: WARN_MS, late: LATE_MS } = agingThresholds(new URLSearchParams(location.search));

let link;
let cards;
const strip = new PrintStrip(
  (body) => link.command(body).reply,
  (text, kind) => notice(text, kind),
  // A station's printer came or went: every card's Reprint follows.
  () => cards && cards.update(new Set(follower.screen.orders.keys())),
);
const clock = new BoxClock();
const follower = new Follower('expo', render);
const completion = new Completion({
  send: (id) => link.command({ type: 'complete', order_id: id }).reply,
  paint: (id) => {
    const card = cards.cards.get(id);
    const order = follower.screen.orders.get(id);
    if (card && order) paintActions(card, order);
  },
  refused: (reply) => notice(`Complete refused: ${reply.error ? reply.error.message : ''}`),
});

function chipState(p) {
  return p.fired > 0 ? 'cooking' : p.held > 0 && p.ready === 0 ? 'held' : p.held > 0 ? 'partial' : 'ready';
}

function createChip(card) {
  const chip = el('button', { class: 'station' }, el('span', { class: 'sname' }), el('span', { class: 'sprog' }));
  chip.addEventListener('click', () => {
    act({ type: 'recall', order_id: card.dataset.order, station: chip.dataset.station }, 'Recall');
  });
  return chip;
}

function patchChip(chip, p) {
  const state = chipState(p);
  chip.className = `station ${state}`;
  chip.dataset.station = p.station;
  chip.dataset.state = state;
  chip.title = p.ready > 0 ? 'tap to recall' : '';
  chip.disabled = !(p.ready > 0);
  setText(chip.querySelector('.sname'), p.station);
  setText(chip.querySelector('.sprog'), `${p.ready}/${p.fired + p.ready + p.held}`);
}

/** A line's state in words; a cooking line (the usual) has none, so the others stand out. */
function lineTags(l) {
  if (l.status === 'voided') return [['VOID', 'void']];
  if (l.status === 'held') return [[`C${l.course} held`, 'held']];
  if (l.status === 'ready') return [['✓ ready', 'ready']];
  return [];
}

/** Marks the order as a rush on every screen, or clears the mark (not destructive: tap again). */
async function toggleRush(card) {
  const order = follower.screen.orders.get(card.dataset.order);
  const button = card.querySelector('.rush-toggle');
  if (!order || button.disabled) return;
  button.disabled = true;
  const reply = await link.command({ type: 'set_rush', order_id: order.id, rush: !order.rush }).reply;
  button.disabled = false;
  if (!reply.ok) notice(`Rush refused: ${reply.error ? reply.error.message : ''}`);
}

function createCard() {
  const card = el('article', { class: 'card expo-card' });
  const id = () => card.dataset.order;
  card.append(
    el(
      'header',
      {},
      el('span', { class: 'ticket' }),
      el('span', { class: 'table' }),
      el('span', { class: 'age' }),
    ),
    el(
      'div',
      { class: 'actions' },
      // Complete at the same place on every card; Rush beside it (not destructive: tap again).
      el(
        'div',
        { class: 'action-row' },
        el('button', { class: 'complete', onclick: () => tapComplete(id()) }),
        el('button', { class: 'rush-toggle', onclick: () => toggleRush(card) }),
      ),
      strip.cardPart(id),
      el(
        'div',
        { class: 'ask', hidden: '' },
        el('p', { class: 'ask-text' }),
        el(
          'div',
          { class: 'ask-buttons' },
          el('button', { class: 'ask-cancel', onclick: () => completion.cancel(id()) }, 'Cancel'),
          el('button', { class: 'ask-confirm danger', onclick: () => completion.confirm(id()) }, 'Complete anyway'),
        ),
      ),
    ),
    el('div', { class: 'meta', hidden: '' }),
    el('div', { class: 'stations' }),
    el('ul', { class: 'lines' }),
  );
  return card;
}

function patchCard(card, order) {
  card.className = `card expo-card status-${order.status}${order.rush ? ' rush' : ''}`;
  const rush = card.querySelector('.rush-toggle');
  setText(rush, order.rush ? 'RUSH ✓' : 'Rush');
  rush.classList.toggle('on', Boolean(order.rush));
  rush.title = order.rush ? 'tap: no longer a rush' : 'tap: a rush, first on every screen';
  patchMeta(card.querySelector('.meta'), order);
  card.dataset.status = order.status;
  setText(card.querySelector('.ticket'), `#${order.ticket}`);
  setText(card.querySelector('.table'), tableLabel(order.table));
  syncList(card.querySelector('.stations'), progress(order), (p) => p.station, () => createChip(card), patchChip);
  syncList(
    card.querySelector('.lines'),
    order.lines,
    (l) => l.n,
    () => el('li'),
    (li, l) => patchLine(li, l, { tags: lineTags(l) }),
  );
  strip.patchCard(card.querySelector('.card-reprint'), progress(order).map((p) => p.station));
  paintActions(card, order);
}

/** The Complete button and the question, from the order and its completion state. */
function paintActions(card, order) {
  const s = completion.state(order.id);
  const button = card.querySelector('button.complete');
  const ask = card.querySelector('.ask');
  const ready = order.status === 'ready';
  button.hidden = s?.kind === 'ask';
  button.disabled = s?.kind === 'sending';
  button.className = `complete${s?.kind === 'undo' ? ' undo' : ready ? ' primary' : ''}`;
  if (s?.kind === 'undo') {
    const left = Math.max(1, Math.ceil((s.until - performance.now()) / 1000));
    setText(button, `Undo · completing in ${left} s`);
  } else if (s?.kind === 'sending') {
    setText(button, 'Completing…');
  } else {
    setText(button, ready ? 'Complete' : 'Complete (not all ready)');
  }
  ask.hidden = s?.kind !== 'ask';
  if (s?.kind === 'ask') setText(ask.querySelector('.ask-text'), notMadeText(order));
  card.classList.toggle('completing', s?.kind === 'undo' || s?.kind === 'sending');
}

function tapComplete(id) {
  const order = follower.screen.orders.get(id);
  if (order) completion.tap(order);
}

/** Redraws the undo countdowns. */
function tickUndo() {
  for (const [id, s] of completion.states) if (s.kind === 'undo') completion.paint(id);
}

function notice(text, kind = 'error') {
  const t = el('div', { class: `toast ${kind}` }, text);
  $('toasts').append(t);
  setTimeout(() => t.remove(), 6000);
}

async function act(body, what) {
  const reply = await link.command(body).reply;
  if (!reply.ok) notice(`${what} refused: ${reply.error ? reply.error.message : ''}`);
}

function render(changed) {
  badge($('conn'), link ? link.state : 'connecting', follower.screen.synced);
  const live = link && link.state === 'live' && follower.screen.synced;
  $('board').classList.toggle('stale', !live);
  if (!changed || changed.size === 0) return;
  for (const id of changed) {
    const order = follower.screen.orders.get(id);
    if (!order) completion.gone(id);
    else if (completion.changed(order)) notice(`#${order.ticket} is no longer all ready: not completed`);
  }
  cards.update(changed);
  cards.tick(clock.now(), WARN_MS, LATE_MS);
  const all = [...follower.screen.orders.values()];
  $('count').textContent = String(all.length);
  $('ready-count').textContent = String(all.filter((o) => o.status === 'ready').length);
}

async function main() {
  document.body.classList.add('dark', 'kitchen');
  document.body.append(
    el(
      'header',
      {},
      el('h1', {}, 'Expo'),
      el('span', { class: 'count-wrap' }, el('span', { id: 'count' }, '0'), ' open · ', el('span', { id: 'ready-count' }, '0'), ' ready'),
      el('span', { id: 'who', class: 'who' }),
      el('span', { id: 'conn', class: 'conn', 'data-state': 'connecting' }, 'connecting…'),
    ),
    strip.alarms,
    strip.strip,
    el('main', { class: 'expo' }, el('section', { id: 'board', class: 'board stale' })),
    el('div', { id: 'toasts', class: 'toasts' }),
  );
  cards = new CardList($('board'), { source: () => follower.screen.orders, create: createCard, patch: patchCard });
  await clock.init();
  const device = await obtainDevice('expo', 'expo screen');
  $('who').textContent = device.id;
  follower.onEvent = (ev) => {
    if (follower.screen.synced) clock.observe(ev.at);
  };
  link = new Link('expo', device, {
    subscriptions: follower.subscriptions(),
    onSession: () => follower.session(),
    onState: () => render(null),
    // The box's clock, every 2 s: keeps ticket ages right even when no event comes.
    onStatus: (s) => {
      if (s && Number.isFinite(s.now_ms) && s.now_ms > 0) clock.observe(s.now_ms);
      if (s && typeof s === 'object') strip.update(s.printing);
    },
    onMessage: (topic, value) => follower.message(topic, value),
  });
  follower.attach(link);
  link.start();
  setInterval(() => cards.tick(clock.now(), WARN_MS, LATE_MS), 1000);
  setInterval(tickUndo, Math.min(250, UNDO_MS));
}

main();
