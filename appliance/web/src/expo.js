// The expo screen: every open order with each station's progress; complete an order when it
// is ready; recall a station's bump (send it back). Same board discipline as the KDS.

import { obtainDevice, Link, badge, el, BoxClock } from './conn.js';
import { Follower } from './follow.js';
import { progress } from './board.js';
import { topics } from './wire.js';
import { CardList, agingThresholds } from './cards.js';

const $ = (id) => document.getElementById(id);
const { warn: WARN_MS, late: LATE_MS } = agingThresholds(new URLSearchParams(location.search));

let link;
let cards;
const clock = new BoxClock();
const follower = new Follower('expo', render);

function stationChip(order, p) {
  const state = p.fired > 0 ? 'cooking' : p.held > 0 && p.ready === 0 ? 'held' : p.held > 0 ? 'partial' : 'ready';
  const total = p.fired + p.ready + p.held;
  const chip = el(
    'button',
    { class: `station ${state}`, 'data-station': p.station, 'data-state': state, title: state === 'ready' ? 'tap to recall' : '' },
    el('span', { class: 'sname' }, p.station),
    el('span', { class: 'sprog' }, `${p.ready}/${total}`),
  );
  if (p.ready > 0) {
    chip.addEventListener('click', () => act({ type: 'recall', order_id: order.id, station: p.station }, 'Recall'));
  } else {
    chip.disabled = true;
  }
  return chip;
}

function buildCard(order) {
  const card = el(
    'article',
    { class: `card expo-card status-${order.status}`, 'data-status': order.status },
    el(
      'header',
      {},
      el('span', { class: 'ticket' }, `#${order.ticket}`),
      el('span', { class: 'table' }, `T${order.table}`),
      el('span', { class: 'age' }, ''),
    ),
    el('div', { class: 'stations' }, ...progress(order).map((p) => stationChip(order, p))),
    el(
      'ul',
      { class: 'lines' },
      ...order.lines.map((l) =>
        el(
          'li',
          { class: `line ${l.status}`, 'data-n': String(l.n) },
          el('span', { class: 'qty' }, `${l.qty}×`),
          el('span', { class: 'name' }, l.name),
          el('span', { class: 'tag' }, l.status === 'voided' ? 'VOID' : l.status === 'held' ? `C${l.course} held` : l.status),
          ...(l.mods.length || l.notes ? [el('span', { class: 'detail' }, [...l.mods, ...(l.notes ? [l.notes] : [])].join(' · '))] : []),
        ),
      ),
    ),
    el(
      'button',
      { class: order.status === 'ready' ? 'complete primary' : 'complete', onclick: () => act({ type: 'complete', order_id: order.id }, 'Complete') },
      order.status === 'ready' ? 'Complete' : 'Complete (not all ready)',
    ),
  );
  return card;
}

async function act(body, what) {
  const reply = await link.command(body).reply;
  if (!reply.ok) {
    const t = el('div', { class: 'toast error' }, `${what} refused: ${reply.error ? reply.error.message : ''}`);
    $('toasts').append(t);
    setTimeout(() => t.remove(), 6000);
  }
}

function render(changed) {
  badge($('conn'), link ? link.state : 'connecting', follower.screen.synced);
  const live = link && link.state === 'live' && follower.screen.synced;
  $('board').classList.toggle('stale', !live);
  if (!changed || changed.size === 0) return;
  cards.update(follower.screen.orders, changed);
  cards.tick(clock.now(), WARN_MS, LATE_MS);
  const all = [...follower.screen.orders.values()];
  $('count').textContent = String(all.length);
  $('ready-count').textContent = String(all.filter((o) => o.status === 'ready').length);
}

async function main() {
  document.body.classList.add('dark');
  document.body.append(
    el(
      'header',
      {},
      el('h1', {}, 'Expo'),
      el('span', { class: 'count-wrap' }, el('span', { id: 'count' }, '0'), ' open · ', el('span', { id: 'ready-count' }, '0'), ' ready'),
      el('span', { id: 'who', class: 'who' }),
      el('span', { id: 'conn', class: 'conn', 'data-state': 'connecting' }, 'connecting…'),
    ),
    el('main', { class: 'expo' }, el('section', { id: 'board', class: 'board stale' })),
    el('div', { id: 'toasts', class: 'toasts' }),
  );
  cards = new CardList($('board'), buildCard);
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
    },
    onMessage: (topic, value) => follower.message(topic, value),
  });
  follower.attach(link);
  link.start();
  setInterval(() => cards.tick(clock.now(), WARN_MS, LATE_MS), 1000);
}

main();
