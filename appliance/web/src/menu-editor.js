// /admin's menu: the items by category (name, price, station, prep, 86'd or not), each with an
// 86 toggle (`set_stock`), Edit (item-form.js, `set_item`) and Remove, which waits 5 seconds
// with an Undo before `remove_item` is sent; "Add item" opens the form empty. The list follows
// the retained menu topic in place, keyed by category and item id.

import { el } from './conn.js';
import { money } from './labels.js';
import { setAttr, setClass, setText, syncList } from './keyed.js';
import { ItemForm } from './item-form.js';

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
    this.removing = new Map();
    /**
     * item id → {kind: 'stock' | 'remove', version}: a command sent, not yet shown. `version` is
     * the menu version its reply named (null until the reply): the box sends the menu at most
     * once a second, so the row waits for that version instead of showing the old state.
     */
    this.busy = new Map();
    this.timer = null;
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
    for (const id of this.removing.keys()) if (!ids.has(id)) this.removing.delete(id);
    for (const [id, b] of this.busy) if (b.version !== null && menu.version >= b.version) this.busy.delete(id);
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
    this.busy.set(id, { kind: 'stock', version: null });
    this.render();
    const reply = await this.command({ type: 'set_stock', item: id, out: !item.out });
    this.settle(id, reply);
    if (!reply.ok) this.flash(`${item.name}: ${reply.error ? reply.error.message : 'refused'}`, 'error');
    this.render();
  }

  /** A reply to a row's command: the row waits for the menu version it names, or is free again. */
  settle(id, reply) {
    const b = this.busy.get(id);
    if (b && reply.ok && Number.isInteger(reply.menu_version) && this.menu.version < reply.menu_version) b.version = reply.menu_version;
    else this.busy.delete(id);
  }

  // ---------------------------------------------------------------- remove, with an undo window

  remove(id) {
    const item = this.menu.items.find((i) => i.id === id);
    if (!item || this.removing.has(id)) return;
    this.removing.set(id, { name: item.name, until: Date.now() + REMOVE_UNDO_MS });
    this.schedule();
    this.render();
  }

  undo(id) {
    if (this.removing.delete(id)) this.render();
    this.schedule();
  }

  secondsLeft(id) {
    const r = this.removing.get(id);
    return r ? Math.max(1, Math.ceil((r.until - Date.now()) / 1000)) : null;
  }

  tick() {
    const now = Date.now();
    for (const [id, r] of this.removing) {
      if (r.until > now) continue;
      this.removing.delete(id);
      this.sendRemove(id, r.name);
    }
    this.schedule();
    this.render();
  }

  schedule() {
    if (this.removing.size === 0) {
      clearInterval(this.timer);
      this.timer = null;
    } else if (!this.timer) {
      this.timer = setInterval(() => this.tick(), 250);
    }
  }

  async sendRemove(id, name) {
    this.busy.set(id, { kind: 'remove', version: null });
    const reply = await this.command({ type: 'remove_item', item: id });
    this.settle(id, reply);
    if (reply.ok) this.flash(`${name} removed from the menu`);
    else this.flash(`Cannot remove ${name}: ${reply.error ? reply.error.message : 'refused'}`, 'error');
    this.render();
  }
}
