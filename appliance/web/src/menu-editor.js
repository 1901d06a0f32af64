// /admin's menu: the items by category (name, price, station, prep, 86'd or not), each with an
// 86 toggle (`set_stock`), Edit (item-form.js, `set_item`) and Remove, which waits 5 seconds
// with an Undo before `remove_item` is sent; "Add item" opens the form empty. The list follows
// the retained menu topic in place, keyed by category and item id.

import { el } from './conn.js';
import { money } from './labels.js';
import { setAttr, setClass, setText, syncList } from './keyed.js';
import { ItemForm } from './item-form.js';
import { Countdown, VersionWait } from './countdown.js';

export const REMOVE_UNDO_MS = 5000;
/** The most items a menu may have (the box refuses more). */
const MAX_ITEMS = 300;

/** The section's shell; `MenuEditor` fills it. */
export function menuSection() {
  return el(
    'section',
    { id: 'menu', class: 'menu-admin' },
    el(
      'div',
      { class: 'menu-head' },
      el('h2', {}, 'Menu'),
      el('span', { id: 'menu-version', class: 'hint' }),
      el('button', { id: 'menu-add', class: 'primary' }, 'Add item'),
    ),
    el('div', { id: 'menu-form-slot' }),
    el('div', { id: 'menu-list' }),
  );
}

export class MenuEditor {
  /**
   * `root`: the section from `menuSection()`; `command(body)`: sends a command, resolves to its
   * reply; `flash(text, kind)`: a toast.
   */
  constructor(root, command, flash) {
    this.root = root;
    this.command = command;
    this.flash = flash;
    this.menu = { version: 0, items: [] };
    /** item id → {name, until}: removals counting down (Undo stops them). */
    this.removing = new Countdown({
      ms: REMOVE_UNDO_MS,
      due: (r, id) => this.sendRemove(id, r.name),
      changed: () => this.render(),
    });
    /**
     * item id → {kind: 'stock' | 'remove'}: a command sent, not yet shown: the row waits for the
     * menu version its reply names instead of showing the old state (countdown.js).
     */
    this.busy = new VersionWait();
    this.form = new ItemForm(
      (item) => this.command({ type: 'set_item', item }),
      (id) => this.menu.items.find((i) => i.id === id),
    );
    root.querySelector('#menu-form-slot').append(this.form.node);
    root.querySelector('#menu-add').addEventListener('click', () => this.form.open(null, this.menu));
  }

  update(menu) {
    this.menu = menu;
    const ids = new Set(menu.items.map((i) => i.id));
    for (const id of [...this.removing.keys()]) if (!ids.has(id)) this.removing.drop(id);
    this.busy.seen(menu.version);
    this.render();
  }

  render() {
    const { items, version } = this.menu;
    this.root.dataset.version = String(version);
    const add = this.root.querySelector('#menu-add');
    add.disabled = items.length >= MAX_ITEMS;
    add.title = add.disabled ? `A menu holds at most ${MAX_ITEMS} items: remove one first` : '';
    setText(this.root.querySelector('#menu-version'), `version ${version} · ${items.length} items · ${items.filter((i) => i.out).length} 86'd`);
    const cats = [...new Set(items.map((i) => i.category || 'other'))];
    syncList(
      this.root.querySelector('#menu-list'),
      cats,
      (c) => c,
      (c) =>
        el(
          'div',
          { class: 'menu-cat', 'data-category': c },
          el('h3', {}, c),
          el(
            'table',
            {},
            el('thead', {}, el('tr', {}, ...['Item', 'Price', 'Station', 'Prep', 'Stock', ''].map((h) => el('th', {}, h)))),
            el('tbody', {}),
          ),
        ),
      (node, c) =>
        syncList(
          node.querySelector('tbody'),
          items.filter((i) => (i.category || 'other') === c),
          (i) => i.id,
          (i) => this.makeRow(i.id),
          (row, i) => this.patchRow(row, i),
        ),
    );
  }

  makeRow(id) {
    const row = el(
      'tr',
      { 'data-item': id },
      el('td', { class: 'm-name' }),
      el('td', { class: 'm-price' }),
      el('td', { class: 'm-station' }),
      el('td', { class: 'm-prep' }),
      el('td', { class: 'm-state' }),
      el(
        'td',
        { class: 'm-actions' },
        el('button', { class: 'm-stock', onclick: () => this.toggleStock(id) }),
        el('button', { class: 'm-edit', onclick: () => this.edit(id) }, 'Edit'),
        el('button', { class: 'm-remove', onclick: () => this.remove(id) }, 'Remove'),
        el('span', { class: 'm-removing', hidden: '' }),
        el('button', { class: 'm-undo', hidden: '', onclick: () => this.undo(id) }, 'Undo'),
      ),
    );
    return row;
  }

  patchRow(row, i) {
    const left = this.secondsLeft(i.id);
    const busy = this.busy.get(i.id);
    const going = busy && busy.kind === 'remove';
    setText(row.querySelector('.m-name'), i.name);
    setText(row.querySelector('.m-price'), money(i.price));
    setText(row.querySelector('.m-station'), i.station);
    setText(row.querySelector('.m-prep'), i.prep_min ? `${i.prep_min} min` : '–');
    setText(row.querySelector('.m-state'), i.out ? "86'd" : 'available');
    setAttr(row, 'data-out', i.out ? 'true' : null);
    setAttr(row, 'data-removing', left !== null ? 'true' : null);
    setClass(row, [i.out ? 'out' : '', left !== null ? 'pending-remove' : ''].filter(Boolean).join(' '));
    const stock = row.querySelector('.m-stock');
    setText(stock, i.out ? 'Back on' : '86 it');
    setAttr(stock, 'aria-pressed', String(Boolean(i.out)));
    stock.disabled = Boolean(busy);
    for (const s of ['.m-stock', '.m-edit', '.m-remove']) row.querySelector(s).hidden = left !== null || going;
    const note = row.querySelector('.m-removing');
    note.hidden = left === null && !going;
    setText(note, going ? 'Removing…' : left === null ? '' : `Removing in ${left} s`);
    row.querySelector('.m-undo').hidden = left === null;
  }

  edit(id) {
    const item = this.menu.items.find((i) => i.id === id);
    if (item) this.form.open(item, this.menu);
  }

  async toggleStock(id) {
    const item = this.menu.items.find((i) => i.id === id);
    if (!item || this.busy.has(id)) return;
    this.busy.sent(id, { kind: 'stock' });
    this.render();
    const reply = await this.command({ type: 'set_stock', item: id, out: !item.out });
    this.busy.replied(id, reply, this.menu.version);
    if (!reply.ok) this.flash(`${item.name}: ${reply.error ? reply.error.message : 'refused'}`, 'error');
    this.render();
  }

  // ---------------------------------------------------------------- remove, with an undo window

  remove(id) {
    const item = this.menu.items.find((i) => i.id === id);
    if (item) this.removing.start(id, { name: item.name });
  }

  undo(id) {
    this.removing.undo(id);
  }

  secondsLeft(id) {
    return this.removing.secondsLeft(id);
  }

  async sendRemove(id, name) {
    this.busy.sent(id, { kind: 'remove' });
    this.render();
    const reply = await this.command({ type: 'remove_item', item: id });
    this.busy.replied(id, reply, this.menu.version);
    if (reply.ok) this.flash(`${name} removed from the menu`);
    else this.flash(`Cannot remove ${name}: ${reply.error ? reply.error.message : 'refused'}`, 'error');
    this.render();
  }
}
