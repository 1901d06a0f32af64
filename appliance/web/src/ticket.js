// One order line as the kitchen pages (KDS and expo) show it: quantity and name, its tags, its
// modifiers in words, the guest's allergy as an alarm (never truncated, never mistaken for a
// note), the note in plain text, and the menu's allergen tags kept quiet. A line's element keeps
// its node; its content is rebuilt only when what it shows changed.

import { el } from './conn.js';
import { modLabel, originLabel } from './labels.js';

/** "⚠ ALLERGY: sesame": the alarm block of a line whose guest has an allergy (else null). */
export function allergyAlarm(allergy) {
  const text = typeof allergy === 'string' ? allergy.trim() : '';
  if (!text) return null;
  return el('div', { class: 'allergy', 'data-allergy': text }, el('span', { class: 'allergy-label' }, '⚠ ALLERGY: '), text);
}

/**
 * Fills `li` with line `l`. `tags` are [text, class] pairs shown after the name; `allergens` the
 * menu's allergen codes of the item. Content is rebuilt only if something shown changed.
 */
export function patchLine(li, l, { tags = [], allergens = [], cls = [] } = {}) {
  const sig = JSON.stringify([l.status, l.qty, l.name, l.mods, l.notes, l.allergy, l.seat, tags, allergens, cls]);
  if (li._sig === sig) return;
  li._sig = sig;
  li.className = ['line', l.status, ...cls].join(' ');
  li.dataset.n = String(l.n);
  const head = el(
    'div',
    { class: 'line-head' },
    el('span', { class: 'qty' }, `${l.qty}×`),
    el('span', { class: 'name' }, l.name),
    ...tags.map(([text, c]) => el('span', { class: `tag ${c}` }, text)),
    ...(l.seat ? [el('span', { class: 'tag seat' }, `Seat ${l.seat}`)] : []),
  );
  const extra = [];
  const alarm = allergyAlarm(l.allergy);
  if (alarm) extra.push(alarm);
  for (const m of l.mods || []) extra.push(el('div', { class: 'mod' }, `– ${modLabel(m)}`));
  if (l.notes) extra.push(el('div', { class: 'note' }, l.notes));
  if (allergens.length) {
    extra.push(el('div', { class: 'allergens' }, ...allergens.map((a) => el('span', { class: 'allergen' }, a))));
  }
  li.replaceChildren(head, ...(extra.length ? [el('div', { class: 'extra' }, ...extra)] : []));
}

const SERVICE = { takeaway: 'TAKEAWAY', delivery: 'DELIVERY' };

/** The ticket's line under its header: takeaway or delivery, where an order from outside came
 * from (its channel and number: the courier asks for it), and the server (hidden when none). */
export function patchMeta(div, order) {
  const service = SERVICE[order.service] || '';
  const origin = originLabel(order.origin);
  const server = order.server || '';
  const sig = `${service}|${origin}|${server}`;
  if (div._sig === sig) return;
  div._sig = sig;
  div.hidden = !service && !origin && !server;
  div.replaceChildren(
    ...(service ? [el('span', { class: `service ${order.service}` }, service)] : []),
    ...(origin ? [el('span', { class: 'origin' }, origin)] : []),
    ...(server ? [el('span', { class: 'server' }, `Server: ${server}`)] : []),
  );
}
