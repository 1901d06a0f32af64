// /admin's kitchen printers: every station of the menu with its printer (address, mode, paper)
// or "no printer"; Add / Edit in a form (address, the mode as three big choices, 80 or 58 mm
// paper) sent with PUT /api/admin/printers/{station}; Remove waits 5 s with an Undo before the
// DELETE; each station's live status (printing or not and why, the printer's condition, waiting,
// printed, the alarm) from the 2-second poll and the status topic, patched in place by station;
// and a reprint (a ticket by its number, or a station's last N) through the MQTT `reprint`.

import { el } from './conn.js';
import { Countdown } from './countdown.js';
import { setAttr, setClass, setHidden, setText, syncList } from './keyed.js';
import {
  LAST_DEFAULT, MODES, MODE_WORDS, PAPERS, alarmText, checkPrinter, parseLast, refusalText, setupText,
  statusLine, ticketOrderId,
} from './printing.js';

export const REMOVE_UNDO_MS = 5000;

/** The section's shell; `Printers` fills it. */
export function printersSection() {
  return el(
    'section',
    { id: 'printers', class: 'printers-admin' },
    el('h2', {}, 'Kitchen printers'),
    el('p', { id: 'printers-note', class: 'hint' }),
    el('p', { id: 'printers-error', class: 'error', role: 'alert', hidden: '' }),
    el(
      'table',
      {},
      el('thead', {}, el('tr', {}, ...['Station', 'Printer', 'Now', ''].map((h) => el('th', {}, h)))),
      el('tbody', { id: 'printer-rows' }),
    ),
    el('div', { id: 'printer-form-slot' }),
    el('div', { id: 'reprint', class: 'reprint-admin', hidden: '' }),
  );
}

export class Printers {
  /**
   * `root`: the section; `api(method, path, body)`: the admin API (throws {status, code,
   * message}); `command(body)`: an MQTT command, resolves to its reply; `flash(text, kind)`.
   */
  constructor(root, api, command, flash) {
    Object.assign(this, { root, api, command, flash });
    this.data = { printers: [], status: [], stations: [] };
    this.live = null; // the status topic's printing (newer than the poll's between polls)
    /** station → {until}: removals counting down (Undo stops them; countdown.js). */
    this.removing = new Countdown({
      ms: REMOVE_UNDO_MS,
      due: (_r, station) => this.sendRemove(station),
      changed: () => this.render(),
    });
    this.form = new PrinterForm((station, body) => this.save(station, body));
    root.querySelector('#printer-form-slot').append(this.form.node);
    this.buildReprint();
  }

  /** GET /api/admin/printers, every 2 s. */
  async refresh() {
    try {
      this.load(await this.api('GET', '/api/admin/printers'));
      this.error('');
    } catch (e) {
      if (e.status === 401 || e.status === 403) throw e;
      this.error(e.status === 404 ? 'This box does not offer the printers API yet (update docketd).' : `Cannot read the printers: ${e.message}`);
    }
  }

  load(data) {
    this.data = { printers: data.printers || [], status: data.status || [], stations: data.stations || [] };
    this.live = null;
    setText(
      this.root.querySelector('#printers-note'),
      `A station's tickets print when none of its screens has been live for ${data.fallback_after_secs ?? '?'} s (fallback), always, or never (off).`,
    );
    this.render();
  }

  /** The status topic's `printing` (absent: none). */
  status(printing) {
    this.live = Array.isArray(printing) ? printing : [];
    this.render();
  }

  error(text) {
    const p = this.root.querySelector('#printers-error');
    setText(p, text);
    setHidden(p, !text);
  }

  printer(station) {
    return this.data.printers.find((p) => p.station === station) || null;
  }

  state(station) {
    return (this.live || this.data.status).find((p) => p.station === station) || null;
  }

  render() {
    const names = [...new Set([...this.data.stations, ...this.data.printers.map((p) => p.station)])].sort();
    syncList(this.root.querySelector('#printer-rows'), names, (s) => s, (s) => this.makeRow(s), (row, s) => this.patchRow(row, s));
    this.patchReprint();
  }

  makeRow(station) {
    return el(
      'tr',
      { 'data-station': station },
      el('td', { class: 'pr-name' }, station),
      el('td', { class: 'pr-setup' }),
      el('td', { class: 'pr-status' }, el('span', { class: 'pr-line' }), el('strong', { class: 'pr-alarm', hidden: '' })),
      el(
        'td',
        { class: 'pr-actions' },
        el('button', { class: 'pr-edit', onclick: () => this.form.open(station, this.printer(station)) }),
        el('button', { class: 'pr-remove', onclick: () => this.remove(station) }, 'Remove'),
        el('span', { class: 'pr-removing', hidden: '' }),
        el('button', { class: 'pr-undo', hidden: '', onclick: () => this.undo(station) }, 'Undo'),
      ),
    );
  }

  patchRow(row, station) {
    const pr = this.printer(station);
    const st = this.state(station);
    const left = this.secondsLeft(station);
    setText(row.querySelector('.pr-setup'), setupText(pr));
    setAttr(row, 'data-printer', pr ? pr.mode : null);
    setAttr(row, 'data-printing', st ? String(st.printing) : null);
    setAttr(row, 'data-alarm', st && st.alarm ? 'true' : null);
    setClass(row, [pr ? '' : 'no-printer', st && st.alarm ? 'alarm' : '', left !== null ? 'pending-remove' : ''].filter(Boolean).join(' '));
    setText(row.querySelector('.pr-line'), pr ? statusLine(st) : '–');
    const alarm = row.querySelector('.pr-alarm');
    setHidden(alarm, !(st && st.alarm));
    setText(alarm, st && st.alarm ? `ALARM: ${alarmText(st)}` : '');
    const edit = row.querySelector('.pr-edit');
    setText(edit, pr ? 'Edit' : 'Add printer');
    setHidden(edit, left !== null);
    setHidden(row.querySelector('.pr-remove'), !pr || left !== null);
    const note = row.querySelector('.pr-removing');
    setHidden(note, left === null);
    setText(note, left === null ? '' : `Removing in ${left} s`);
    setHidden(row.querySelector('.pr-undo'), left === null);
  }

  async save(station, body) {
    const data = await this.api('PUT', `/api/admin/printers/${encodeURIComponent(station)}`, body);
    this.load(data);
    this.flash(`${station}: printer ${setupText(body)}`);
  }

  // ---------------------------------------------------------------- remove, with an undo window

  remove(station) {
    this.removing.start(station, {});
  }

  undo(station) {
    this.removing.undo(station);
  }

  secondsLeft(station) {
    return this.removing.secondsLeft(station);
  }

  async sendRemove(station) {
    try {
      this.load(await this.api('DELETE', `/api/admin/printers/${encodeURIComponent(station)}`));
      this.flash(`${station}: printer removed`);
    } catch (e) {
      this.flash(`Cannot remove the ${station}'s printer: ${e.message}`, 'error');
    }
  }

  // ---------------------------------------------------------------- reprint

  buildReprint() {
    const box = this.root.querySelector('#reprint');
    this.rp = {
      station: el('select', { id: 'reprint-station', 'aria-label': 'station' }),
      ticket: el('input', { id: 'reprint-ticket', inputmode: 'numeric', placeholder: 'ticket #', size: '8', 'aria-label': 'ticket number' }),
      last: el('input', { id: 'reprint-last', inputmode: 'numeric', value: String(LAST_DEFAULT), size: '3', 'aria-label': 'how many' }),
      msg: el('p', { id: 'reprint-msg', class: 'hint', role: 'status' }),
    };
    const { station, ticket, last, msg } = this.rp;
    box.append(
      el('h3', {}, 'Reprint'),
      el(
        'div',
        { class: 'reprint-row' },
        el('label', {}, 'Station ', station),
        el('label', {}, 'Ticket ', ticket),
        el('button', { id: 'reprint-ticket-go', onclick: () => this.reprintTicket() }, 'Reprint ticket'),
        el('span', { class: 'or' }, 'or the last'),
        last,
        el('button', { id: 'reprint-last-go', onclick: () => this.reprintLast() }, 'Reprint last N'),
      ),
      msg,
    );
  }

  patchReprint() {
    const names = this.data.printers.filter((p) => p.mode !== 'off').map((p) => p.station);
    setHidden(this.root.querySelector('#reprint'), names.length === 0);
    syncList(this.rp.station, names, (s) => s, (s) => el('option', { value: s }, s), () => {});
  }

  say(text, bad) {
    setText(this.rp.msg, text);
    setClass(this.rp.msg, bad ? 'error' : 'hint');
  }

  async reprintTicket() {
    const station = this.rp.station.value;
    const id = ticketOrderId(this.rp.ticket.value);
    if (!id) return this.say(`"${this.rp.ticket.value}" is not a ticket number (e.g. 42)`, true);
    const reply = await this.command({ type: 'reprint', station, order_id: id });
    if (reply.ok) this.say(`Ticket #${Number(id.slice(2))} sent to the ${station}'s printer`);
    else this.say(`Reprint refused: ${refusalText(reply, station)}`, true);
  }

  async reprintLast() {
    const station = this.rp.station.value;
    const n = parseLast(this.rp.last.value);
    if (!n) return this.say(`"${this.rp.last.value}" is not a number from 1 to 20`, true);
    const reply = await this.command({ type: 'reprint', station, last: n });
    if (reply.ok) this.say(`The ${station}'s last ${n} ticket${n === 1 ? '' : 's'} sent to its printer`);
    else this.say(`Reprint refused: ${refusalText(reply, station)}`, true);
  }
}

/** The Add / Edit form: one at a time, kept as typed through refreshes and refusals. */
class PrinterForm {
  constructor(save) {
    this.save = save;
    this.station = null;
    this.mode = 'fallback';
    this.paper = 80;
    this.address = el('input', { id: 'pf-address', placeholder: '192.168.1.50:9100', size: '24', autocomplete: 'off' });
    // A correction clears the complaint about what was typed before.
    this.address.addEventListener('input', () => this.show({}));
    this.modes = el('div', { class: 'pf-choices pf-modes', role: 'radiogroup', 'aria-label': 'mode' },
      ...MODES.map((m) => el('button', { type: 'button', class: 'pf-choice', 'data-mode': m, role: 'radio', onclick: () => this.pick('mode', m) },
        el('strong', {}, MODE_WORDS[m][0]), el('span', {}, MODE_WORDS[m][1]))));
    this.papers = el('div', { class: 'pf-choices pf-papers', role: 'radiogroup', 'aria-label': 'paper' },
      ...PAPERS.map((p) => el('button', { type: 'button', class: 'pf-choice', 'data-paper': String(p), role: 'radio', onclick: () => this.pick('paper', p) },
        el('strong', {}, `${p} mm`))));
    this.errors = { address: el('p', { class: 'error pf-error', 'data-field': 'address', hidden: '' }), form: el('p', { class: 'error pf-error', 'data-field': 'form', hidden: '' }) };
    this.title = el('h3', {});
    this.saveButton = el('button', { id: 'pf-save', class: 'primary', onclick: () => this.submit() }, 'Save');
    this.node = el(
      'div',
      { id: 'printer-form', class: 'printer-form', hidden: '' },
      this.title,
      el('label', { class: 'pf-label' }, 'Address (host:port)', this.address),
      this.errors.address,
      el('div', { class: 'pf-label' }, 'Mode'),
      this.modes,
      el('div', { class: 'pf-label' }, 'Paper'),
      this.papers,
      this.errors.form,
      el('div', { class: 'pf-buttons' }, this.saveButton, el('button', { id: 'pf-cancel', onclick: () => this.close() }, 'Cancel')),
    );
  }

  open(station, printer) {
    this.station = station;
    this.address.value = printer ? printer.address : '';
    this.mode = printer ? printer.mode : 'fallback';
    this.paper = printer ? printer.paper_mm : 80;
    setText(this.title, printer ? `Printer of the ${station}` : `Add a printer for the ${station}`);
    this.node.dataset.station = station;
    this.show({});
    this.paint();
    this.node.hidden = false;
    this.address.focus();
  }

  close() {
    this.node.hidden = true;
    this.station = null;
  }

  pick(what, v) {
    if (what === 'mode') this.mode = v;
    else this.paper = v;
    this.paint();
  }

  paint() {
    for (const b of this.modes.children) setAttr(b, 'aria-checked', String(b.dataset.mode === this.mode));
    for (const b of this.papers.children) setAttr(b, 'aria-checked', String(Number(b.dataset.paper) === this.paper));
  }

  show(errors) {
    for (const [k, p] of Object.entries(this.errors)) {
      setText(p, errors[k] || '');
      setHidden(p, !errors[k]);
    }
  }

  async submit() {
    const checked = checkPrinter({ address: this.address.value, mode: this.mode, paper_mm: this.paper });
    if (checked.errors) {
      const { address, ...rest } = checked.errors;
      return this.show({ address, form: Object.values(rest).join('; ') });
    }
    this.saveButton.disabled = true;
    try {
      await this.save(this.station, checked.value);
      this.close();
    } catch (e) {
      // Kept as typed: the box's reason under the address (bad_printer) or the form.
      this.show(e.code === 'bad_printer' ? { address: e.message } : { form: e.code === 'unknown_station' ? `The menu has no station ${this.station}` : e.message });
    } finally {
      this.saveButton.disabled = false;
    }
  }
}
