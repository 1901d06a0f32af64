// The waiter's tablet: menu by category, modifiers, notes, course, table; send; the order shows
// "sending…" until the box's reply, then its ticket; "ready" notices when the kitchen bumps.
// Offline-first: every command sits in an IndexedDB outbox until its reply arrives.

import { obtainDevice, Link, badge, el } from './conn.js';
import { Outbox } from './outbox.js';
import { Follower } from './follow.js';
import { progress } from './board.js';
import { topics } from './wire.js';

const SCOPE = 'tablet';
const ORDERS_KEY = 'docket.orders.tablet';
const KEEP_ORDERS = 60;
const $ = (id) => document.getElementById(id);

let link;
let outbox;
let menu = { version: 0, items: [] };
let category = null;
/** The order being taken. */
let cart = { table: '', course: 1, lines: [] };
/** This tablet's orders, newest first (persisted). */
let mine = [];
const follower = new Follower('expo', onBoardChange);

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

function renderMenu() {
  const cats = [...new Set(menu.items.map((i) => i.category || 'other'))];
  if (!cats.includes(category)) category = cats[0] || null;
  $('categories').replaceChildren(
    ...cats.map((c) =>
      el(
        'button',
        {
          class: c === category ? 'cat active' : 'cat',
          'data-category': c,
          onclick: () => {
            category = c;
            renderMenu();
          },
        },
        c,
      ),
    ),
  );
  $('items').replaceChildren(
    ...menu.items
      .filter((i) => (i.category || 'other') === category)
      .map((i) =>
        el(
          'button',
          { class: 'item', 'data-item': i.id, onclick: () => addLine(i) },
          el('span', { class: 'name' }, i.name),
          el('span', { class: 'price' }, (i.price / 100).toFixed(2)),
        ),
      ),
  );
}

function addLine(item) {
  // Tapping the same plain item again counts it up instead of adding a line.
  const last = cart.lines[cart.lines.length - 1];
  if (last && last.item === item.id && last.course === cart.course && !last.mods.length && !last.notes.trim() && last.qty < 99) {
    last.qty += 1;
    renderCart();
    return;
  }
  cart.lines.push({ item: item.id, name: item.name, qty: 1, mods: [], notes: '', course: cart.course, offered: item.mods || [] });
  renderCart();
}

function renderCart() {
  $('table').value = cart.table;
  $('course').value = String(cart.course);
  $('cart').replaceChildren(
    ...cart.lines.map((l, i) =>
      el(
        'li',
        { class: 'cart-line', 'data-line': String(i) },
        el(
          'div',
          { class: 'row' },
          el('button', { class: 'qty', 'aria-label': 'less', onclick: () => qty(i, -1) }, '−'),
          el('span', { class: 'q' }, `${l.qty}×`),
          el('button', { class: 'qty', 'aria-label': 'more', onclick: () => qty(i, 1) }, '+'),
          el('span', { class: 'name' }, l.name),
          el('span', { class: 'course-tag' }, `C${l.course}`),
          el('button', { class: 'remove', 'aria-label': 'remove', onclick: () => removeLine(i) }, '✕'),
        ),
        el(
          'div',
          { class: 'mods' },
          ...l.offered.map((m) =>
            el(
              'button',
              {
                class: l.mods.includes(m) ? 'mod on' : 'mod',
                'data-mod': m,
                onclick: () => toggleMod(i, m),
              },
              m,
            ),
          ),
        ),
        el('input', {
          class: 'notes',
          placeholder: 'notes (allergies, doneness…)',
          maxlength: '200',
          value: l.notes,
          oninput: (e) => (cart.lines[i].notes = e.target.value),
        }),
      ),
    ),
  );
  $('send').disabled = cart.lines.length === 0;
}

function qty(i, d) {
  const l = cart.lines[i];
  l.qty = Math.min(99, Math.max(1, l.qty + d));
  renderCart();
}
function removeLine(i) {
  cart.lines.splice(i, 1);
  renderCart();
}
function toggleMod(i, m) {
  const l = cart.lines[i];
  l.mods = l.mods.includes(m) ? l.mods.filter((x) => x !== m) : [...l.mods, m];
  renderCart();
}

// ---------------------------------------------------------------- sending (through the outbox)

async function send() {
  const table = $('table').value.trim();
  if (!table) {
    $('cart-error').textContent = 'Table number first.';
    $('table').focus();
    return;
  }
  if (cart.lines.length === 0) return;
  $('cart-error').textContent = '';
  const lines = cart.lines.map((l) => {
    const line = { item: l.item, qty: l.qty };
    if (l.mods.length) line.mods = l.mods;
    if (l.notes.trim()) line.notes = l.notes.trim();
    if (l.course !== 1) line.course = l.course;
    return line;
  });
  const summary = cart.lines.map((l) => ({ name: l.name, qty: l.qty, course: l.course, mods: l.mods, notes: l.notes.trim() }));
  await submit({ type: 'place_order', table, lines }, { kind: 'order', table, lines: summary });
  cart = { table: '', course: 1, lines: [] };
  renderCart();
}

/** Stores the command in the outbox (durably) and only then shows it and sends it. */
async function submit(body, meta) {
  const { id, bytes } = link.seal(body);
  const entry = { id, bytes, body, meta, createdAt: Date.now() };
  await outbox.put(entry);
  if (meta.kind === 'order') {
    mine.unshift({ cmd: id, table: meta.table, lines: meta.lines, status: 'sending', createdAt: entry.createdAt, notified: [] });
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

function renderMine() {
  $('mine').replaceChildren(...mine.map(orderItem));
}

function statusOf(o) {
  if (o.status !== 'placed') return o.status;
  const cur = live(o);
  if (cur) return cur.status;
  // Off the expo board once the board has caught up with our own reply: completed.
  const sc = follower.screen;
  return sc.synced && o.seq && sc.last >= o.seq ? 'completed' : 'placed';
}

function orderItem(o) {
  const cur = live(o);
  const status = statusOf(o);
  const label = { sending: 'sending…', placed: 'placed', in_progress: 'cooking', ready: 'ready', completed: 'done', rejected: 'rejected' }[status] || status;
  const li = el(
    'li',
    { class: `order ${status}`, 'data-cmd': o.cmd, 'data-status': status, 'data-order': o.order_id || '' },
    el(
      'div',
      { class: 'row' },
      el('span', { class: 'ticket' }, o.ticket ? `#${o.ticket}` : '—'),
      el('span', { class: 'table' }, `T${o.table}`),
      el('span', { class: 'status' }, label),
    ),
  );
  if (o.error) li.append(el('div', { class: 'error' }, o.error));
  const lines = cur ? cur.lines.map((l) => ({ ...l })) : o.lines;
  li.append(
    el(
      'ul',
      { class: 'lines' },
      ...lines.map((l) => {
        const row = el('li', { class: `line ${l.status || ''}` }, `${l.qty}× ${l.name}${l.course > 1 ? ` (C${l.course})` : ''}`);
        const detail = [...(l.mods || []), ...(l.notes ? [l.notes] : [])].join(', ');
        if (detail) row.append(el('span', { class: 'detail' }, detail));
        if (cur && l.status !== 'voided' && l.status !== 'ready') {
          row.append(el('button', { class: 'void', onclick: () => voidLine(o, l) }, 'void'));
        }
        return row;
      }),
    ),
  );
  if (cur) {
    const held = cur.lines.filter((l) => l.status === 'held').map((l) => l.course);
    if (held.length) {
      const next = Math.min(...held);
      li.append(el('button', { class: 'fire', onclick: () => fire(o, next) }, `Fire course ${next}`));
    }
  }
  return li;
}

function voidLine(o, l) {
  submit({ type: 'void_line', order_id: o.order_id, line: l.n }, { kind: 'change', label: `void ${l.name}` });
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
        if (cur.status !== 'ready') toast(`#${cur.ticket} · table ${cur.table}: ${p.station} ready`);
      }
    }
    if (cur.status === 'ready' && !o.notified.includes('ready')) {
      o.notified.push('ready');
      toast(`#${cur.ticket} · table ${cur.table} is ready`, 'ready');
    }
  }
  if (touched) {
    saveMine();
  }
  renderMine();
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
        ),
        el('ul', { id: 'cart', class: 'cart-lines' }),
        el('div', { id: 'cart-error', class: 'error' }),
        el('button', { id: 'send', class: 'big primary', disabled: '' }, 'Send to kitchen'),
      ),
      el('section', { class: 'mine' }, el('h2', {}, 'My orders'), el('ul', { id: 'mine' })),
    ),
    el('div', { id: 'toasts', class: 'toasts' }),
  );
  $('table').addEventListener('input', (e) => (cart.table = e.target.value));
  $('course').addEventListener('change', (e) => (cart.course = Number(e.target.value)));
  $('send').addEventListener('click', send);

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
  for (const entry of await outbox.all()) track(entry);
  link.start();
  renderBanner();
}

main();
