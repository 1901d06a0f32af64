// Expo's printing strip, from the appliance status's `printing` (every 2 s): one chip per station
// with a kitchen printer ("GRILL · printing (no screen)", the printer's condition when not ok)
// and its "reprint last N" (1–20), and above the board a red alarm per station whose tickets
// nothing shows (no live screen, a printer that can't print), saying what to do. The chips are
// keyed by station and patched in place. Nothing shows on a site without printers. Also the
// ticket cards' Reprint: straight to the one printing station, or a choice of them.

import { el } from './conn.js';
import { setAttr, setClass, setHidden, setText, syncList } from './keyed.js';
import {
  LAST_DEFAULT, LAST_MAX, alarmText, chipState, chipText, conditionText, printingStationsOf, refusalText,
} from './printing.js';

export class PrintStrip {
  /**
   * `command(body)`: sends a command, resolves to its reply; `say(text, kind)`: a toast;
   * `onStations()`: the set of printing stations changed (cards re-patch their Reprint).
   */
  constructor(command, say, onStations = () => {}) {
    this.command = command;
    this.say = say;
    this.onStations = onStations;
    this.printing = [];
    this.key = '';
    this.chips = el('div', { class: 'print-chips' });
    this.alarms = el('div', { id: 'print-alarms', class: 'print-alarms', role: 'alert', hidden: '' });
    this.strip = el(
      'section',
      { id: 'printing', class: 'print-strip', 'aria-label': 'kitchen printers', hidden: '' },
      el('span', { class: 'print-title' }, 'Printers'),
      this.chips,
    );
  }

  /** The status's `printing` (absent: no printer at this site). */
  update(printing) {
    this.printing = Array.isArray(printing) ? printing : [];
    setHidden(this.strip, this.printing.length === 0);
    syncList(this.chips, this.printing, (p) => p.station, (p) => this.makeChip(p.station), (n, p) => this.patchChip(n, p));
    const alarmed = this.printing.filter((p) => p.alarm);
    setHidden(this.alarms, alarmed.length === 0);
    syncList(
      this.alarms,
      alarmed,
      (p) => p.station,
      (p) => el('p', { class: 'print-alarm', 'data-station': p.station }),
      (n, p) => setText(n, `⚠ ${alarmText(p)}`),
    );
    const key = this.stations().join(',');
    if (key !== this.key) {
      this.key = key;
      this.onStations();
    }
  }

  /** The stations whose tickets can be reprinted (a printer not off). */
  stations() {
    return this.printing.filter((p) => p.mode !== 'off').map((p) => p.station);
  }

  makeChip(station) {
    const n = el('select', { class: 'print-n', 'aria-label': `how many of the ${station}'s last tickets` });
    for (let i = 1; i <= LAST_MAX; i++) n.append(el('option', { value: String(i) }, String(i)));
    n.value = String(LAST_DEFAULT);
    const go = el('button', { class: 'print-last' });
    const label = () => setText(go, `Reprint last ${n.value}`);
    n.addEventListener('change', label);
    label();
    go.addEventListener('click', () => this.reprintLast(station, Number(n.value), go));
    return el(
      'div',
      { class: 'print-chip', 'data-station': station },
      el('span', { class: 'print-doing' }),
      el('span', { class: 'print-cond' }),
      el('span', { class: 'print-waiting' }),
      el('span', { class: 'print-reprint' }, n, go),
    );
  }

  patchChip(node, p) {
    const state = chipState(p);
    setClass(node, `print-chip ${state}`);
    setAttr(node, 'data-state', state);
    setText(node.querySelector('.print-doing'), chipText(p));
    const cond = conditionText(p);
    const c = node.querySelector('.print-cond');
    setHidden(c, !cond);
    setText(c, cond ? `⚠ ${cond}` : '');
    const w = node.querySelector('.print-waiting');
    setHidden(w, !(p.waiting > 0));
    setText(w, `${p.waiting} waiting`);
    setHidden(node.querySelector('.print-reprint'), p.mode === 'off');
  }

  async reprintLast(station, n, button) {
    if (button.disabled) return;
    button.disabled = true;
    const reply = await this.command({ type: 'reprint', station, last: n });
    button.disabled = false;
    if (reply.ok) this.say(`Reprinting the ${station}'s last ${n} ticket${n === 1 ? '' : 's'}`, 'info');
    else this.say(`Reprint refused: ${refusalText(reply, station)}`, 'error');
  }

  // ------------------------------------------------------------------ a ticket card's Reprint

  /** A card's Reprint area: the button, and the choice of station when several print. */
  cardPart(orderId) {
    const pick = el('div', { class: 'print-pick', hidden: '' });
    const button = el('button', { class: 'reprint' }, 'Reprint');
    button.addEventListener('click', () => this.tapReprint(orderId(), part));
    const part = el('div', { class: 'card-reprint' }, button, pick);
    return part;
  }

  /** Shows the Reprint for an order whose stations (`names`) include a printing one. */
  patchCard(part, names) {
    const st = printingStationsOf(names, this.printing);
    part.dataset.stations = st.join(',');
    setHidden(part, st.length === 0);
    const button = part.querySelector('.reprint');
    setText(button, st.length === 1 ? `Reprint (${st[0]})` : 'Reprint…');
    if (st.length === 0) setHidden(part.querySelector('.print-pick'), true);
  }

  tapReprint(orderId, part) {
    const st = (part.dataset.stations || '').split(',').filter(Boolean);
    const pick = part.querySelector('.print-pick');
    if (st.length === 1) {
      this.reprintOrder(orderId, st[0], part);
      return;
    }
    if (!pick.hidden) {
      pick.hidden = true;
      return;
    }
    pick.replaceChildren(
      el('span', { class: 'print-pick-q' }, 'Reprint at:'),
      ...st.map((s) => el('button', { class: 'print-at', 'data-station': s, onclick: () => this.reprintOrder(orderId, s, part) }, s)),
      el('button', { class: 'print-cancel', onclick: () => (pick.hidden = true) }, 'Cancel'),
    );
    pick.hidden = false;
  }

  async reprintOrder(orderId, station, part) {
    part.querySelector('.print-pick').hidden = true;
    const button = part.querySelector('.reprint');
    button.disabled = true;
    const reply = await this.command({ type: 'reprint', station, order_id: orderId });
    button.disabled = false;
    if (reply.ok) this.say(`Reprinting ${orderId.replace(/^o-0*/, '#')} at the ${station}`, 'info');
    else this.say(`Reprint refused: ${refusalText(reply, station)}`, 'error');
  }
}
