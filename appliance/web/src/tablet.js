// The waiter's tablet: menu by category, the cart (cart.js), send; the order shows "sending…"
// until the box's reply, then its ticket in "My orders" (mine.js, voids with an undo window in
// voids.js); "ready" notices when the kitchen bumps.
// Offline-first: every command sits in an IndexedDB outbox until its reply arrives.

import { obtainDevice, Link, badge, el } from './conn.js';
import { Outbox } from './outbox.js';
import { Follower } from './follow.js';
import { progress } from './board.js';
import { topics } from './wire.js';
import { money, tableLabel } from './labels.js';
import { Cart } from './cart.js';
import { renderMine as renderMineList } from './mine.js';
import { Voids } from './voids.js';
import { setAttr, setClass, setText, syncList } from './keyed.js';

const SCOPE = 'tablet';
const SERVER_KEY = 'docket.tablet.server';
const ORDERS_KEY = 'docket.orders.tablet';
const KEEP_ORDERS = 60;
const $ = (id) => document.getElementById(id);

let link;
let outbox;
let menu = { version: 0, items: [] };
let category = null;
/** The order being taken (made in main, once its list exists). */
let cart;
/** This tablet's orders, newest first (persisted). */
let mine = [];
const follower = new Follower('expo', onBoardChange);
const voids = new Voids(sendVoid, () => renderMine());

function loadMine() {
  try {
    mine = JSON.parse(localStorage.getItem(ORDERS_KEY) || '[]');
  } catch {
    mine = [];
  }
}

function saveMine() {
  mine = mine.slice(0, KEEP_ORDERS);
  localStorage.setItem(ORDERS_KEY, JSON.stringify(mine));
}

// ---------------------------------------------------------------- menu and cart

/** Categories and items, updated in place (a menu republished under a finger keeps its buttons). */
function renderMenu() {
  const cats = [...new Set(menu.items.map((i) => i.category || 'other'))];
  if (!cats.includes(category)) category = cats[0] || null;
  syncList(
    $('categories'),
    cats,
    (c) => c,
    (c) =>
      el(
        'button',
        {
          class: 'cat',
          'data-category': c,
          onclick: () => {
            category = c;
            renderMenu();
          },
        },
        c,
      ),
    (node, c) => setClass(node, c === category ? 'cat active' : 'cat'),
  );
  syncList(
    $('items'),
    menu.items.filter((i) => (i.category || 'other') === category),
    (i) => i.id,
    (i) => {
      const b = el(
        'button',
        { class: 'item', 'data-item': i.id },
        el('span', { class: 'name' }),
        el('span', { class: 'price' }),
        el('span', { class: 'sold-out', hidden: '' }, "86'd — sold out"),
      );
      b.addEventListener('click', () => addLine(b.item));
      return b;
    },
    (node, i) => {
      node.item = i;
      // An 86'd item stays in its place (greyed), so the buttons around it do not move.
      setClass(node, i.out ? 'item out' : 'item');
      setAttr(node, 'aria-disabled', i.out ? 'true' : null);
      setAttr(node, 'data-out', i.out ? 'true' : null);
      setText(node.children[0], i.name);
      setText(node.children[1], money(i.price));
      node.children[2].hidden = !i.out;
    },
  );
  // A cart line whose item was 86'd (or taken off the menu) meanwhile is marked, and blocks Send;
  // a new price shows on the lines already in the cart (the box charges the menu's price).
  const unavailable = new Set(menu.items.filter((i) => i.out).map((i) => i.id));
  const byId = new Map(menu.items.map((i) => [i.id, i]));
  let repriced = false;
  for (const l of cart.lines) {
    const it = byId.get(l.item);
    if (!it) unavailable.add(l.item);
    else if (Number(it.price) !== l.price) [l.price, repriced] = [Number(it.price) || 0, true];
  }
  if (repriced || !sameSet(unavailable, cart.soldOut)) {
    cart.soldOut = unavailable;
    cart.render();
    cartChanged();
    const marked = $('cart').querySelector('.cart-line[data-sold-out]');
    if (marked) marked.scrollIntoView({ block: 'nearest' });
  }
}

function sameSet(a, b) {
  return a.size === b.size && [...a].every((x) => b.has(x));
}

function addLine(item) {
  if (item.out) {
    showCartError(`${item.name} is 86'd (sold out)`);
    return;
  }
  cart.course = Number($('course').value) || 1;
  cart.add(item);
  cartChanged();
}

/** The total, Send's state and a stale "choose a …" message follow the cart. */
function cartChanged() {
  $('cart-total').textContent = cart.lines.length ? `Total ${money(cart.total())}` : '';
  const gone = cart.unavailable();
  $('send').disabled = cart.lines.length === 0 || gone.length > 0;
  if ($('cart-error').textContent && !cart.missing().length) showCartError('');
  // Why Send is off, beside it (the marked line may be scrolled out of the cart's view).
  if (gone.length) showCartError(`Sold out: ${gone.join(', ')}. Remove it to send.`);
}

function showCartError(text) {
  $('cart-error').textContent = text;
  $('cart-error').hidden = !text;
}

// ---------------------------------------------------------------- sending (through the outbox)

async function send() {
  const table = $('table').value.trim();
  if (!table) {
    showCartError('Table number first.');
    $('table').focus();
    return;
  }
  if (cart.lines.length === 0) return;
  const gone = cart.unavailable();
  if (gone.length) {
    showCartError(`Sold out: ${gone.join(', ')} (remove it)`);
    return;
  }
  const missing = cart.missing();
  if (missing.length) {
    showCartError(missing.join(' · '));
    return;
  }
  showCartError('');
  const lines = cart.wire();
  const body = { type: 'place_order', table, lines };
  const service = $('service').value;
  if (service !== 'dine_in') body.service = service;
  const server = $('server').value.trim();
  if (server) body.server = server;
  await submit(body, { kind: 'order', table, lines: cart.summary() });
  cart.clear();
  $('table').value = '';
  $('course').value = '1';
  $('service').value = 'dine_in';
  cart.render();
  cartChanged();
}

/** Stores the command in the outbox (durably) and only then shows it and sends it. */
async function submit(body, meta) {
  const { id, bytes } = link.seal(body);
  const entry = { id, bytes, body, meta, createdAt: Date.now() };
  await outbox.put(entry);
  if (meta.kind === 'order') {
    mine.unshift({ cmd: id, table: meta.table, lines: meta.lines, body, status: 'sending', createdAt: entry.createdAt, notified: [] });
    saveMine();
  }
  track(entry);
  renderMine();
}

const waiting = new Set();

function track(entry) {
  waiting.add(entry.id);
  renderBanner();
  // An order's first publish is marked `docket:send` (detail: command id) for bench-render.mjs.
  const mark = entry.body.type === 'place_order' ? 'docket:send' : null;
  link.send(entry.id, entry.bytes, mark).then((reply) => delivered(entry, reply));
}

async function delivered(entry, reply) {
  const code = !reply.ok && reply.error ? reply.error.code : null;
  if (code === 'internal' || code === 'storage_full' || code === 'rate_limited') {
    // Nothing was written: the same id goes again after a pause (the order stays "sending").
    if (code === 'storage_full') toast('The box is out of disk space: orders wait until a manager frees some', 'error');
    setTimeout(() => track(entry), code === 'storage_full' ? 10000 : 2000);
    return;
  }
  await outbox.delete(entry.id);
  waiting.delete(entry.id);
  const o = mine.find((m) => m.cmd === entry.id);
  if (o) {
    if (reply.ok) {
      Object.assign(o, { status: 'placed', order_id: reply.order_id, ticket: reply.ticket, seq: reply.seq });
    } else {
      Object.assign(o, { status: 'rejected', error: reply.error ? reply.error.message : 'rejected' });
    }
    saveMine();
  } else if (!reply.ok) {
    toast(`${entry.meta.label || entry.body.type} refused: ${reply.error ? reply.error.message : ''}`, 'error');
  }
  // A void the box took stays "Voiding…" until the board shows the line voided.
  if (entry.meta.voidKey && !reply.ok) voids.settled(entry.meta.voidKey);
  renderMine();
  renderBanner();
}

function renderBanner() {
  const b = $('banner');
  const n = waiting.size;
  const live = link && link.state === 'live';
  b.dataset.waiting = String(n);
  if (!live) {
    b.hidden = false;
    b.className = 'banner offline';
    b.textContent = `offline – ${n} ${n === 1 ? 'order' : 'orders'} waiting`;
  } else if (n > 0) {
    b.hidden = false;
    b.className = 'banner sending';
    b.textContent = `sending ${n}…`;
  } else {
    b.hidden = true;
    b.textContent = '';
  }
}

// ---------------------------------------------------------------- my orders and ready notices

function live(o) {
  return o.order_id ? follower.screen.orders.get(o.order_id) : null;
}

function statusOf(o) {
  if (o.status !== 'placed') return o.status;
  const cur = live(o);
  if (cur) return cur.status;
  // Off the expo board once the board has caught up with our own reply: completed.
  const sc = follower.screen;
  return sc.synced && o.seq && sc.last >= o.seq ? 'completed' : 'placed';
}

function renderMine() {
  renderMineList($('mine'), {
    orders: mine,
    live,
    statusOf,
    voids,
    onVoid: (o, l) => voids.start(o.order_id, l.n, l.name),
    onUndo: (key) => voids.undo(key),
    onFire: fire,
    onRush: rush,
    onEdit: edit,
  });
}

/** A refused order back in the cart (and off "My orders"), to fix what the box refused. */
function edit(o) {
  const missing = cart.restore(o.body.lines || [], menu.items || []);
  $('table').value = o.body.table || '';
  $('service').value = o.body.service || 'dine_in';
  mine = mine.filter((m) => m !== o);
  saveMine();
  renderMine();
  cartChanged();
  showCartError(missing.length ? `No longer on the menu: ${missing.join(', ')}` : '');
}

/** A void whose undo window ran out: into the outbox and off to the box. */
function sendVoid(v, key) {
  submit({ type: 'void_line', order_id: v.order_id, line: v.n }, { kind: 'change', label: `void ${v.name}`, voidKey: key });
}
function rush(o, on) {
  submit({ type: 'set_rush', order_id: o.order_id, rush: on }, { kind: 'change', label: on ? 'rush' : 'rush off' });
}
function fire(o, course) {
  submit({ type: 'fire_course', order_id: o.order_id, course }, { kind: 'change', label: `fire course ${course}` });
}

function onBoardChange(changed) {
  badge($('conn'), link ? link.state : 'connecting', follower.screen.synced);
  if (!changed) return;
  let touched = false;
  for (const o of mine) {
    if (!o.order_id || !changed.has(o.order_id)) continue;
    touched = true;
    const cur = follower.screen.orders.get(o.order_id);
    if (!cur) continue;
    for (const p of progress(cur)) {
      const key = `station:${p.station}`;
      if (p.ready > 0 && p.fired === 0 && p.held === 0 && !o.notified.includes(key)) {
        o.notified.push(key);
        if (cur.status !== 'ready') toast(`#${cur.ticket} · ${inWords(cur.table)}: ${p.station} ready`);
      }
    }
    if (cur.status === 'ready' && !o.notified.includes('ready')) {
      o.notified.push('ready');
      toast(`#${cur.ticket} · ${inWords(cur.table)} is ready`, 'ready');
    }
  }
  if (touched) {
    saveMine();
  }
  renderMine();
}

/** A table inside a sentence: "table 12", "Bar 3", "Takeaway". */
function inWords(table) {
  return tableLabel(table).replace(/^Table /, 'table ');
}

function toast(text, kind = 'info') {
  const t = el('div', { class: `toast ${kind}` }, text);
  $('toasts').append(t);
  setTimeout(() => t.remove(), kind === 'ready' ? 15000 : 6000);
}

// ---------------------------------------------------------------- start

async function main() {
  document.body.append(
    el(
      'header',
      {},
      el('h1', {}, 'Docket · Tablet'),
      el('span', { id: 'who', class: 'who' }),
      el('span', { id: 'conn', class: 'conn', 'data-state': 'connecting' }, 'connecting…'),
    ),
    el('div', { id: 'banner', class: 'banner', hidden: '' }),
    el(
      'main',
      { class: 'tablet' },
      el('section', { class: 'menu' }, el('nav', { id: 'categories' }), el('div', { id: 'items', class: 'items' })),
      el(
        'section',
        { class: 'cart' },
        el(
          'div',
          { class: 'row' },
          el('label', {}, 'Table ', el('input', { id: 'table', inputmode: 'numeric', maxlength: '16', size: '4' })),
          el(
            'label',
            {},
            'Course ',
            el('select', { id: 'course' }, ...[1, 2, 3, 4].map((c) => el('option', { value: String(c) }, String(c)))),
          ),
          el(
            'select',
            { id: 'service', 'aria-label': 'dine-in, takeaway or delivery' },
            ...[['dine_in', 'Dine-in'], ['takeaway', 'Takeaway'], ['delivery', 'Delivery']].map(([v, t]) => el('option', { value: v }, t)),
          ),
        ),
        el(
          'div',
          { class: 'row' },
          el('label', {}, 'Server ', el('input', { id: 'server', maxlength: '32', size: '10', placeholder: 'your name', autocomplete: 'off' })),
        ),
        el('ul', { id: 'cart', class: 'cart-lines' }),
        el('div', { id: 'cart-error', class: 'error refusal', role: 'alert', hidden: '' }),
        el('div', { id: 'cart-total', class: 'total' }),
        el('button', { id: 'send', class: 'big primary', disabled: '' }, 'Send to kitchen'),
      ),
      el('section', { class: 'mine' }, el('h2', {}, 'My orders'), el('ul', { id: 'mine' })),
    ),
    el('div', { id: 'toasts', class: 'toasts' }),
  );
  document.body.classList.add('tablet-page');
  cart = new Cart($('cart'), cartChanged);
  $('table').addEventListener('input', (e) => (cart.table = e.target.value));
  $('course').addEventListener('change', (e) => (cart.course = Number(e.target.value)));
  $('send').addEventListener('click', send);
  // The server's name stays on this tablet: it goes on every order they send.
  $('server').value = localStorage.getItem(SERVER_KEY) || '';
  $('server').addEventListener('input', (e) => localStorage.setItem(SERVER_KEY, e.target.value.trim()));

  loadMine();
  renderMine();
  outbox = await Outbox.open(SCOPE);
  const device = await obtainDevice(SCOPE, 'waiter tablet');
  $('who').textContent = device.id;
  link = new Link(SCOPE, device, {
    subscriptions: [[topics.menu, ...follower.subscriptions()[0]], follower.subscriptions()[1]],
    onSession: () => follower.session(),
    onState: () => {
      renderBanner();
      onBoardChange(null);
    },
    onMessage: (topic, value) => {
      if (topic === topics.menu) {
        if (value && Array.isArray(value.items)) {
          menu = value;
          renderMenu();
        }
        return;
      }
      follower.message(topic, value);
    },
  });
  follower.attach(link);
  for (const entry of await outbox.all()) {
    if (entry.meta.voidKey) voids.sent.add(entry.meta.voidKey);
    track(entry);
  }
  // Voids still counting down when the page was left: shown again, sent when their time is up.
  voids.load();
  renderMine();
  link.start();
  renderBanner();
}

main();
