// "My orders": this tablet's orders, newest first, with each line's state, a void per line (with
// its undo countdown), "Fire course N" and a Rush toggle. Updated in place, keyed by command id
// and line number: a board update rewrites only the text that changed, so a button keeps its
// node (and a press on it its release) however often the board moves. Owns no state: `ctx` has it.

import { el } from './conn.js';
import { modLabel, tableLabel } from './labels.js';
import { setAttr, setClass, setHidden, setText, syncList } from './keyed.js';
import { voidKey } from './voids.js';

const LABELS = { sending: 'sending…', placed: 'placed', in_progress: 'cooking', ready: 'ready', completed: 'done', rejected: 'rejected' };

/**
 * ctx: {orders, live(o), statusOf(o), voids, onVoid(o, line), onUndo(key), onFire(o, course), onRush(o, rush),
 * onEdit(o)}.
 */
export function renderMine(list, ctx) {
  syncList(list, ctx.orders, (o) => o.cmd, () => makeOrder(ctx), (node, o) => updateOrder(node, o, ctx));
}

function makeOrder(ctx) {
  const li = el(
    'li',
    { class: 'order' },
    el(
      'div',
      { class: 'row' },
      el('span', { class: 'ticket' }),
      el('span', { class: 'table' }),
      el('span', { class: 'status' }),
      el('button', { class: 'rush', hidden: '', 'aria-pressed': 'false' }, 'Rush'),
    ),
    el('div', { class: 'error', role: 'alert', hidden: '' }),
    el('ul', { class: 'lines' }),
    el('button', { class: 'edit', hidden: '' }, 'Back to the cart'),
  );
  const edit = li.querySelector('button.edit');
  edit.addEventListener('click', () => edit.data && ctx.onEdit(edit.data));
  const rush = li.querySelector('button.rush');
  rush.addEventListener('click', () => rush.data && ctx.onRush(...rush.data));
  const fire = el('button', { class: 'fire', hidden: '' });
  fire.addEventListener('click', () => {
    const { o, course } = fire.data || {};
    if (o && course) ctx.onFire(o, course);
  });
  li.append(fire);
  return li;
}

function updateOrder(li, o, ctx) {
  const cur = ctx.live(o);
  const status = ctx.statusOf(o);
  setClass(li, `order ${status}`);
  setAttr(li, 'data-cmd', o.cmd);
  setAttr(li, 'data-status', status);
  setAttr(li, 'data-order', o.order_id || '');
  const [row, error, lines, edit, fire] = li.children;
  // A refused order goes back to the cart to be fixed, not typed again.
  edit.data = status === 'rejected' && o.body ? o : null;
  setHidden(edit, !edit.data);
  setText(row.children[0], o.ticket ? `#${o.ticket}` : '—');
  setText(row.children[1], tableLabel(o.table));
  setText(row.children[2], LABELS[status] || status);
  const rush = row.children[3];
  const open = !!cur && cur.status !== 'completed';
  rush.data = open ? [o, !cur.rush] : null;
  setHidden(rush, !open);
  setAttr(rush, 'aria-pressed', String(!!(cur && cur.rush)));
  setText(rush, cur && cur.rush ? 'Rush ✓' : 'Rush');
  setAttr(li, 'data-rush', cur && cur.rush ? 'true' : null);
  setText(error, o.error || '');
  setHidden(error, !o.error);
  const shown = cur ? cur.lines.map((l) => ({ ...l, key: `n${l.n}` })) : o.lines.map((l, i) => ({ ...l, key: `i${i}` }));
  syncList(lines, shown, (l) => l.key, () => makeLine(ctx), (node, l) => updateLine(node, o, l, cur, ctx));
  const held = cur ? cur.lines.filter((l) => l.status === 'held').map((l) => l.course) : [];
  const next = held.length ? Math.min(...held) : null;
  fire.data = { o, course: next };
  setText(fire, next ? `Fire course ${next}` : '');
  setHidden(fire, !next);
}

function makeLine(ctx) {
  const voidBtn = el('button', { class: 'void', hidden: '' }, 'Void');
  const undoBtn = el('button', { class: 'undo', hidden: '' }, 'Undo');
  voidBtn.addEventListener('click', () => voidBtn.data && ctx.onVoid(voidBtn.data.o, voidBtn.data.l));
  undoBtn.addEventListener('click', () => undoBtn.data && ctx.onUndo(undoBtn.data));
  // The countdown and Undo take the void button's place on the same row: nothing below moves.
  return el(
    'li',
    { class: 'line' },
    el('div', { class: 'main' }, el('span', { class: 'what' }), el('span', { class: 'voiding', hidden: '' }), voidBtn, undoBtn),
    el('div', { class: 'detail', hidden: '' }),
    el('div', { class: 'allergy', hidden: '' }),
  );
}

function updateLine(row, o, l, cur, ctx) {
  const [main, detail, allergy] = row.children;
  const [what, voiding, voidBtn, undoBtn] = main.children;
  const key = cur ? voidKey(o.order_id, l.n) : null;
  const left = key ? ctx.voids.secondsLeft(key) : null;
  const sent = key ? ctx.voids.sent.has(key) && l.status !== 'voided' : false;
  const state = l.status === 'voided' ? 'voided' : left !== null ? 'pending-void' : sent ? 'voiding' : l.status || '';
  setClass(row, `line ${state}`);
  setAttr(row, 'data-n', cur ? l.n : null);
  setAttr(row, 'data-status', l.status || null);
  setText(what, `${l.qty}× ${l.name}${l.course > 1 ? ` (C${l.course})` : ''}`);
  const extra = [...(l.mods || []).map(modLabel), ...(l.notes ? [l.notes] : [])].join(', ');
  setText(detail, extra);
  setHidden(detail, !extra);
  setText(allergy, l.allergy ? `Allergy: ${l.allergy}` : '');
  setHidden(allergy, !l.allergy);
  setText(voiding, left !== null ? `Voiding in ${left} s` : sent ? 'Voiding…' : '');
  setHidden(voiding, left === null && !sent);
  const canVoid = !!cur && l.status !== 'voided' && l.status !== 'ready' && cur.status !== 'completed';
  voidBtn.data = { o, l };
  undoBtn.data = key;
  setHidden(voidBtn, !(canVoid && left === null && !sent));
  setHidden(undoBtn, left === null || l.status === 'voided');
}
