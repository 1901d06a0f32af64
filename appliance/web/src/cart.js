// The order being taken: its lines (quantity, the item's modifier groups and free modifiers, an
// allergy, notes, course), the running total, and what is missing before it may be sent. The
// cart's list is updated in place, keyed per line, so a field keeps its focus and a button its
// node while the cart changes around them.

import { el } from './conn.js';
import { modLabel, money } from './labels.js';
import { setAttr, setClass, setText, syncList } from './keyed.js';
import { choose, count, pick, rule, unmet } from './choices.js';

/** Seats a line may name (the box takes 1-99; a table rarely has more than 12). */
const SEATS = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12];

let nextKey = 1;

export class Cart {
  /** `changed()` is called after every change made through the cart's own controls. */
  constructor(list, changed) {
    this.list = list;
    this.changed = changed;
    this.clear();
  }

  clear() {
    /** Item ids that cannot be ordered now (86'd or off the menu): their lines block Send. */
    this.soldOut = this.soldOut || new Set();
    this.table = '';
    this.course = 1;
    this.lines = [];
  }

  /**
   * Puts a refused order's lines back (`lines` as `place_order` carried them), so the waiter fixes
   * what the box refused instead of taking the order again. Items no longer on the menu are left
   * out; their names are returned.
   */
  restore(lines, items) {
    this.clear();
    const missing = [];
    for (const w of lines) {
      const item = items.find((i) => i.id === w.item);
      if (!item) {
        missing.push(w.item);
        continue;
      }
      this.course = w.course || 1;
      this.lines.push({ ...this.fresh(item), qty: w.qty || 1, mods: w.mods || [], notes: w.notes || '', allergy: w.allergy || '', seat: w.seat || 0 });
    }
    this.course = 1;
    this.render();
    return missing;
  }

  /** A new line of `item`: one, no choices yet, in the current course. */
  fresh(item) {
    return {
      key: String(nextKey++),
      item: item.id,
      name: item.name,
      price: Number(item.price) || 0,
      qty: 1,
      mods: [],
      notes: '',
      allergy: '',
      seat: 0,
      course: this.course,
      offered: item.mods || [],
      groups: Array.isArray(item.groups) ? item.groups : [],
    };
  }

  /** Adds an item; tapping the same plain item again counts it up instead. */
  add(item) {
    const last = this.lines[this.lines.length - 1];
    if (last && last.item === item.id && last.course === this.course && plain(last) && last.qty < 99) {
      last.qty += 1;
    } else {
      this.lines.push(this.fresh(item));
    }
    this.render();
  }

  total() {
    return this.lines.reduce((sum, l) => sum + l.price * l.qty, 0);
  }

  /** The names of the lines whose item is sold out (each must be removed before Send). */
  unavailable() {
    return this.lines.filter((l) => this.soldOut.has(l.item)).map((l) => l.name);
  }

  /** Each line's unmet groups, as sentences ("Ribeye 300g: choose a Doneness"). */
  missing() {
    return this.lines.flatMap((l) => unmet(l).map((g) => `${l.name}: ${choose(g)}`));
  }

  /** The lines as `place_order` wants them. */
  wire() {
    return this.lines.map((l) => {
      const line = { item: l.item, qty: l.qty };
      if (l.mods.length) line.mods = l.mods;
      if (l.notes.trim()) line.notes = l.notes.trim();
      if (l.allergy.trim()) line.allergy = l.allergy.trim();
      if (l.course !== 1) line.course = l.course;
      if (l.seat > 0) line.seat = l.seat;
      return line;
    });
  }

  /** What "My orders" shows until the board has the order. */
  summary() {
    return this.lines.map((l) => ({ name: l.name, qty: l.qty, course: l.course, mods: l.mods, notes: l.notes.trim(), allergy: l.allergy.trim() }));
  }

  render() {
    syncList(this.list, this.lines, (l) => l.key, (l) => this.makeLine(l), (node, l) => this.updateLine(node, l));
  }

  makeLine(l) {
    const act = (f) => () => {
      f();
      this.render();
      this.changed();
    };
    const offered = l.offered.filter((m) => !l.groups.some((g) => g.mods.includes(m)));
    const allergy = el('input', { class: 'allergy', placeholder: 'e.g. sesame', maxlength: '100', 'aria-label': 'allergy' });
    allergy.addEventListener('input', () => (l.allergy = allergy.value));
    const notes = el('input', { class: 'notes', placeholder: 'Notes (e.g. birthday candle)', maxlength: '200', 'aria-label': 'notes' });
    // The guest's seat, so the runner knows who gets what (none: the table shares it).
    const seat = el('select', { class: 'seat', 'aria-label': 'seat' }, el('option', { value: '0' }, 'Seat –'), ...SEATS.map((n) => el('option', { value: String(n) }, `Seat ${n}`)));
    seat.addEventListener('change', () => (l.seat = Number(seat.value) || 0));
    notes.addEventListener('input', () => (l.notes = notes.value));
    return el(
      'li',
      { class: 'cart-line' },
      el('div', { class: 'head' }, el('span', { class: 'name' }, l.name), el('span', { class: 'course-tag' }, `C${l.course}`)),
      el('div', { class: 'sold-out-mark', role: 'alert', hidden: '' }, 'Sold out — remove it'),
      el(
        'div',
        { class: 'row' },
        el('button', { class: 'qty', 'aria-label': 'less', onclick: act(() => (l.qty = Math.max(1, l.qty - 1))) }, '−'),
        el('span', { class: 'q' }),
        el('button', { class: 'qty', 'aria-label': 'more', onclick: act(() => (l.qty = Math.min(99, l.qty + 1))) }, '+'),
        seat,
        el('span', { class: 'line-price' }),
        el('button', { class: 'remove', 'aria-label': 'remove', onclick: act(() => this.lines.splice(this.lines.indexOf(l), 1)) }, '✕'),
      ),
      ...l.groups.map((g) =>
        el(
          'div',
          { class: 'group', 'data-group': g.name },
          el('span', { class: 'group-name' }, `${g.name} · ${rule(g)}`),
          ...g.mods.map((m) => modButton(m, g.name, act(() => (l.mods = pick(l, g, m))))),
        ),
      ),
      offered.length ? el('div', { class: 'mods' }, ...offered.map((m) => modButton(m, null, act(() => toggle(l, m))))) : '',
      el('label', { class: 'allergy-field' }, el('span', {}, 'Allergy'), allergy),
      notes,
    );
  }

  updateLine(node, l) {
    setAttr(node, 'data-line', this.lines.indexOf(l));
    const gaps = unmet(l).map((g) => g.name);
    setAttr(node, 'data-missing', gaps.length ? gaps.join(', ') : null);
    const out = this.soldOut.has(l.item);
    setAttr(node, 'data-sold-out', out ? 'true' : null);
    node.querySelector('.sold-out-mark').hidden = !out;
    setText(node.querySelector('.q'), `${l.qty}×`);
    setText(node.querySelector('.line-price'), money(l.price * l.qty));
    for (const b of node.querySelectorAll('button.mod')) {
      const on = l.mods.includes(b.dataset.mod);
      setClass(b, on ? 'mod on' : 'mod');
      setAttr(b, 'aria-pressed', String(on));
      const g = b.dataset.group ? l.groups.find((x) => x.name === b.dataset.group) : null;
      // A group at its maximum (of more than one) takes no more until one is taken off.
      b.disabled = !!g && g.max > 1 && !on && count(l, g) >= g.max;
    }
    const allergy = node.querySelector('.allergy');
    if (allergy.value !== l.allergy) allergy.value = l.allergy;
    const notes = node.querySelector('.notes');
    if (notes.value !== l.notes) notes.value = l.notes;
    const seat = node.querySelector('select.seat');
    if (seat.value !== String(l.seat)) seat.value = String(l.seat);
  }
}

function modButton(code, group, onclick) {
  const attrs = { class: 'mod', 'data-mod': code, 'aria-pressed': 'false', onclick };
  if (group) attrs['data-group'] = group;
  return el('button', attrs, modLabel(code));
}

function plain(l) {
  return !l.mods.length && !l.notes.trim() && !l.allergy.trim() && !l.seat && !l.groups.some((g) => g.min > 0);
}

function toggle(l, m) {
  l.mods = l.mods.includes(m) ? l.mods.filter((x) => x !== m) : [...l.mods, m];
}
