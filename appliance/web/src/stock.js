// The KDS's "86" panel: the items this screen's station cooks (from the retained menu), each a
// big toggle that 86's it (sold out: the tablets grey it and the box refuses orders of it) or
// puts it back, with `set_stock`. The toggles are keyed by item id and patched in place from
// each new menu, so a toggle under a finger keeps its node. A refusal shows in the panel.

import { el } from './conn.js';
import { setAttr, setClass, setText, syncList } from './keyed.js';

export class StockPanel {
  /**
   * `station`: this screen's station; `command(body)`: sends a command, resolves to its reply.
   */
  constructor(station, command) {
    this.station = station;
    this.command = command;
    this.items = [];
    this.menu = { version: 0, items: [] };
    /**
     * item id → the menu version that will show the change asked for (null: no reply yet). The
     * box sends the menu at most once a second, so a toggle stays dimmed until that version.
     */
    this.asked = new Map();
    this.list = el('ul', { id: 'stock-list', class: 'stock-list' });
    this.error = el('p', { id: 'stock-error', class: 'stock-error', role: 'alert', hidden: '' });
    this.empty = el('p', { class: 'hint', hidden: '' }, 'No item on the menu is cooked at this station.');
    this.panel = el(
      'div',
      { id: 'stock', class: 'stock-panel', role: 'dialog', 'aria-label': '86 items', hidden: '' },
      el(
        'div',
        { class: 'stock-head' },
        el('h2', {}, `86 an item · ${station}`),
        el('button', { id: 'stock-close', class: 'stock-close', onclick: () => this.show(false) }, 'Close'),
      ),
      el('p', { class: 'stock-hint' }, 'Tap an item to 86 it (sold out); tap again to put it back.'),
      this.error,
      this.empty,
      this.list,
    );
    this.button = el('button', { id: 'stock-open', class: 'stock-open', 'aria-expanded': 'false', onclick: () => this.show(this.panel.hidden) }, '86');
  }

  show(open) {
    this.panel.hidden = !open;
    this.button.setAttribute('aria-expanded', String(open));
    if (open) this.say('');
  }

  say(text) {
    setText(this.error, text);
    this.error.hidden = !text;
  }

  /** A new menu (`{version, items}`): this station's items, in menu order. */
  update(menu) {
    this.menu = menu;
    for (const [id, v] of this.asked) if (v !== null && menu.version >= v) this.asked.delete(id);
    this.items = menu.items.filter((i) => i.station === this.station);
    this.empty.hidden = this.items.length > 0;
    // The header button counts this station's 86'd items, so they are seen without opening it.
    const out = this.items.filter((i) => i.out).length;
    setText(this.button, out ? `86 (${out})` : '86');
    setClass(this.button, out ? 'stock-open some-out' : 'stock-open');
    syncList(
      this.list,
      this.items,
      (i) => i.id,
      (i) => {
        const b = el('button', { class: 'stock-toggle', 'data-item': i.id, 'aria-pressed': 'false' });
        b.addEventListener('click', () => this.toggle(b.dataset.item));
        return el('li', {}, b);
      },
      (li, i) => {
        const b = li.firstChild;
        const asked = this.asked.has(i.id);
        setText(b, `${i.name} — ${i.out ? "86'd" : 'available'}`);
        setClass(b, `stock-toggle ${i.out ? 'out' : 'available'}${asked ? ' sending' : ''}`);
        setAttr(b, 'aria-pressed', String(Boolean(i.out)));
        setAttr(b, 'data-out', i.out ? 'true' : 'false');
      },
    );
  }

  async toggle(id) {
    const item = this.items.find((i) => i.id === id);
    if (!item || this.asked.has(id)) return;
    const out = !item.out;
    this.asked.set(id, null);
    this.say('');
    this.update(this.menu);
    const reply = await this.command({ type: 'set_stock', item: id, out });
    if (reply.ok && Number.isInteger(reply.menu_version)) {
      this.asked.set(id, reply.menu_version);
    } else {
      this.asked.delete(id);
      const e = reply.error || {};
      if (!reply.ok) this.say(`${out ? '86' : 'Back on'} ${item.name} refused: ${e.message || e.code || 'unknown error'}`);
    }
    this.update(this.menu);
  }
}
