// The KDS's "86" panel: the items this screen's station cooks (from the retained menu), each a
// big toggle that 86's it (sold out: the tablets grey it and the box refuses orders of it) or
// puts it back, with `set_stock`. The toggles are keyed by item id and patched in place from
// each new menu, so a toggle under a finger keeps its node. A refusal shows in the panel.

import { el } from './conn.js';
import { setAttr, setClass, setText, syncList } from './keyed.js';
import { VersionWait } from './countdown.js';

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
     * Toggles asked for and not yet shown: each stays dimmed until the menu version its reply
     * names arrives (the box sends the menu at most once a second; countdown.js).
     */
    this.asked = new VersionWait();
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
    this.asked.seen(menu.version);
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
    this.asked.sent(id);
    this.say('');
    this.update(this.menu);
    const reply = await this.command({ type: 'set_stock', item: id, out });
    this.asked.replied(id, reply, this.menu.version);
    if (!reply.ok) {
      const e = reply.error || {};
      this.say(`${out ? '86' : 'Back on'} ${item.name} refused: ${e.message || e.code || 'unknown error'}`);
    }
    this.update(this.menu);
  }
}
