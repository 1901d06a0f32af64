// /admin's webhooks: every integration device with its webhook (URL, state: ok or failing since
// when and why, events waiting) or "no webhook"; Set / Edit the URL in a small form sent with
// PUT /api/admin/webhooks/{device} (the secret the box makes is shown once, to copy into the
// receiver); "Send test" (POST …/test); Pause / Resume (POST …/pause, …/resume: the events wait
// on the box meanwhile); Remove waits 5 s with an Undo before the DELETE; the last 20 deliveries
// under each. Rows and log lines are keyed (by device, by delivery id) and patched
// in place on the 2-second poll.

import { el } from './conn.js';
import { Countdown } from './countdown.js';
import { setHidden, setText, setClass, syncList } from './keyed.js';
import { checkUrl, deliveryText, delivered, stateText } from './webhook-words.js';

export const REMOVE_UNDO_MS = 5000;

/** The section's shell; `Webhooks` fills it. */
export function webhooksSection() {
  return el(
    'section',
    { id: 'webhooks', class: 'webhooks-admin' },
    el('h2', {}, 'Webhooks'),
    el('p', { class: 'hint' }, 'Each integration (a POS, online ordering) can be told of every status change of the orders it placed: signed, in order, retried until its receiver takes them.'),
    el('p', { id: 'webhooks-error', class: 'error', role: 'alert', hidden: '' }),
    el('div', { id: 'webhook-secret', class: 'secret-once', role: 'status', hidden: '' }),
    el('div', { id: 'webhook-rows' }),
  );
}

export class Webhooks {
  /** `root`: the section; `api(method, path, body)`: the admin API; `flash(text, kind)`. */
  constructor(root, api, flash) {
    Object.assign(this, { root, api, flash });
    this.data = { webhooks: [], integrations: [] };
    this.editing = new Map(); // device → the URL being typed (kept through refreshes)
    this.removing = new Countdown({
      ms: REMOVE_UNDO_MS,
      due: (_r, device) => this.sendRemove(device),
      changed: () => this.render(),
    });
  }

  /** GET /api/admin/webhooks, every 2 s. */
  async refresh() {
    try {
      this.load(await this.api('GET', '/api/admin/webhooks'));
      this.error('');
    } catch (e) {
      if (e.status === 401 || e.status === 403) throw e;
      this.error(e.status === 404 ? 'This box does not offer webhooks yet (update docketd).' : `Cannot read the webhooks: ${e.message}`);
    }
  }

  load(data) {
    this.data = { webhooks: data.webhooks || [], integrations: data.integrations || [] };
    this.render();
  }

  error(text) {
    const p = this.root.querySelector('#webhooks-error');
    setText(p, text);
    setHidden(p, !text);
  }

  hook(device) {
    return this.data.webhooks.find((w) => w.device === device) || null;
  }

  render() {
    const names = [...new Set([...this.data.integrations, ...this.data.webhooks.map((w) => w.device)])].sort();
    syncList(this.root.querySelector('#webhook-rows'), names, (d) => d, (d) => this.makeRow(d), (row, d) => this.patchRow(row, d));
  }

  makeRow(device) {
    const url = el('input', { class: 'wh-url', placeholder: 'https://pos.example.com/hooks/docket', size: '40', autocomplete: 'off', 'aria-label': `${device} webhook URL` });
    url.addEventListener('input', () => this.editing.set(device, url.value));
    return el(
      'div',
      { class: 'webhook', 'data-device': device },
      el('h3', {}, device),
      el('p', { class: 'wh-state' }),
      el(
        'div',
        { class: 'wh-edit' },
        url,
        el('button', { class: 'wh-save primary', onclick: () => this.save(device) }, 'Save'),
        el('button', { class: 'wh-test', onclick: () => this.test(device) }, 'Send test'),
        el('button', { class: 'wh-pause', onclick: () => this.pauseOrResume(device) }, 'Pause'),
        el('button', { class: 'wh-remove', onclick: () => this.removing.start(device, {}) }, 'Remove'),
        el('span', { class: 'wh-removing', hidden: '' }),
        el('button', { class: 'wh-undo', hidden: '', onclick: () => this.removing.undo(device) }, 'Undo'),
      ),
      el('p', { class: 'wh-error error', hidden: '' }),
      el('ol', { class: 'wh-log', reversed: '' }),
    );
  }

  patchRow(row, device) {
    const w = this.hook(device);
    const left = this.removing.secondsLeft(device);
    setClass(row, ['webhook', w ? `wh-${w.state}` : 'wh-none', left !== null ? 'pending-remove' : ''].filter(Boolean).join(' '));
    setText(row.querySelector('.wh-state'), w ? stateText(w) : 'no webhook');
    const url = row.querySelector('.wh-url');
    if (!this.editing.has(device) && document.activeElement !== url) url.value = w ? w.url : '';
    setHidden(row.querySelector('.wh-test'), !w || left !== null);
    setHidden(row.querySelector('.wh-remove'), !w || left !== null);
    const pause = row.querySelector('.wh-pause');
    setHidden(pause, !w || left !== null);
    setText(pause, w && w.state === 'paused' ? 'Resume' : 'Pause');
    const note = row.querySelector('.wh-removing');
    setHidden(note, left === null);
    setText(note, left === null ? '' : `Removing in ${left} s`);
    setHidden(row.querySelector('.wh-undo'), left === null);
    const log = w ? w.deliveries || [] : [];
    syncList(
      row.querySelector('.wh-log'),
      log,
      (d) => String(d.id),
      (d) => el('li', { class: delivered(d) ? 'ok' : 'failed', title: new Date(d.at).toLocaleString() }, deliveryText(d)),
      () => {},
    );
  }

  rowError(device, text) {
    const p = this.root.querySelector(`.webhook[data-device="${CSS.escape(device)}"] .wh-error`);
    if (!p) return;
    setText(p, text);
    setHidden(p, !text);
  }

  async save(device) {
    const row = this.root.querySelector(`.webhook[data-device="${CSS.escape(device)}"]`);
    const checked = checkUrl(row.querySelector('.wh-url').value);
    if (checked.error) return this.rowError(device, checked.error);
    try {
      const data = await this.api('PUT', `/api/admin/webhooks/${encodeURIComponent(device)}`, { url: checked.value });
      this.editing.delete(device);
      this.rowError(device, '');
      this.load(data);
      if (data.secret) this.showSecret(device, data.secret);
      this.flash(`${device}: webhook ${data.created ? 'created' : 'updated'}`);
    } catch (e) {
      this.rowError(device, e.message);
    }
  }

  showSecret(device, secret) {
    const box = this.root.querySelector('#webhook-secret');
    box.replaceChildren(
      el('p', {}, `The secret of ${device}'s webhook, shown this once: copy it into the receiver (it checks each request's Docket-Signature with it).`),
      el('code', { class: 'secret' }, secret),
      el('button', { onclick: () => setHidden(box, true) }, 'Done'),
    );
    setHidden(box, false);
  }

  async test(device) {
    try {
      const r = await this.api('POST', `/api/admin/webhooks/${encodeURIComponent(device)}/test`);
      this.flash(`${device}: test ${r.ok ? 'taken' : 'not taken'} (${deliveryText(r.delivery)})`, r.ok ? undefined : 'error');
      await this.refresh();
    } catch (e) {
      this.flash(`Cannot send the test: ${e.message}`, 'error');
    }
  }

  /** Pause a running webhook, resume a paused one; the answer is the new listing. */
  async pauseOrResume(device) {
    const w = this.hook(device);
    if (!w) return;
    const verb = w.state === 'paused' ? 'resume' : 'pause';
    try {
      this.load(await this.api('POST', `/api/admin/webhooks/${encodeURIComponent(device)}/${verb}`));
      this.rowError(device, '');
      this.flash(`${device}: webhook ${verb === 'pause' ? 'paused: its events wait on the box' : 'resumed'}`);
    } catch (e) {
      this.rowError(device, `Cannot ${verb}: ${e.message}`);
    }
  }

  async sendRemove(device) {
    try {
      this.load(await this.api('DELETE', `/api/admin/webhooks/${encodeURIComponent(device)}`));
      this.flash(`${device}: webhook removed`);
    } catch (e) {
      this.flash(`Cannot remove ${device}'s webhook: ${e.message}`, 'error');
    }
  }
}
