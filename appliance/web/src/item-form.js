// /admin's form for one menu item (add or edit): the fields the box keeps for an item, with the
// box's limits as maxlength/min/max, read into the `set_item` item. Only what cannot become an
// item at all (a price that is not a number) is stopped here; everything else is the box's to
// judge, and its refusal shows next to the form, which stays open with what was typed.

import { el } from './conn.js';
import { money } from './labels.js';

const NEW_STATION = '\u0000new';
const MAX_GROUPS = 4;

/** "Fish & Chips" → "fish-chips": the lowercase-dash id suggested for a new item. */
export function suggestId(name) {
  return String(name)
    .toLowerCase()
    .normalize('NFKD')
    .replace(/[\u0300-\u036f]/g, '')
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 64)
    .replace(/-+$/, '');
}

/** "12.50" → 1250, "12" → 1200, "-1" → -100; null when it is not money. */
export function parsePrice(text) {
  const t = String(text).trim().replace(',', '.');
  if (!/^-?\d{1,9}(\.\d{1,2})?$/.test(t)) return null;
  return Math.round(Number(t) * 100);
}

/** "gluten, dairy ," → ["gluten", "dairy"]. */
export function splitList(text) {
  return String(text)
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
}

const field = (label, input, hint) => el('label', { class: 'field' }, el('span', { class: 'label' }, label), input, hint ? el('span', { class: 'hint' }, hint) : '');

export class ItemForm {
  /**
   * `save(item)` sends `set_item` and resolves to the box's reply; `current(id)`: the item as the
   * latest menu has it (an edit keeps what changed meanwhile outside the form, such as its 86).
   */
  constructor(save, current) {
    this.save = save;
    this.current = current;
    this.editing = null;
    this.idTouched = false;
    this.f = {
      id: el('input', { id: 'f-id', maxlength: '64', autocomplete: 'off', spellcheck: 'false' }),
      idText: el('span', { id: 'f-id-text', class: 'id-text' }),
      name: el('input', { id: 'f-name', maxlength: '64', autocomplete: 'off' }),
      price: el('input', { id: 'f-price', inputmode: 'decimal', maxlength: '12', size: '8', placeholder: '12.50', autocomplete: 'off' }),
      station: el('select', { id: 'f-station' }),
      stationNew: el('input', { id: 'f-station-new', maxlength: '32', pattern: '[a-z0-9_\\-]{1,32}', placeholder: 'e.g. pastry', hidden: '', autocomplete: 'off' }),
      category: el('input', { id: 'f-category', maxlength: '32', list: 'f-categories', autocomplete: 'off' }),
      categories: el('datalist', { id: 'f-categories' }),
      prep: el('input', { id: 'f-prep', type: 'number', min: '1', max: '240', step: '1', size: '4' }),
      allergens: el('input', { id: 'f-allergens', placeholder: 'gluten, dairy', autocomplete: 'off' }),
      mods: el('input', { id: 'f-mods', placeholder: 'no-onion, extra-cheese', autocomplete: 'off' }),
      groups: el('div', { id: 'f-groups', class: 'groups' }),
      addGroup: el('button', { id: 'f-add-group', type: 'button' }, 'Add a group'),
      error: el('p', { id: 'f-error', class: 'form-error', role: 'alert', hidden: '' }),
      saveBtn: el('button', { id: 'f-save', class: 'primary', type: 'submit' }, 'Save'),
      title: el('h3', { id: 'f-title' }),
    };
    const f = this.f;
    f.name.addEventListener('input', () => {
      if (!this.editing && !this.idTouched) f.id.value = suggestId(f.name.value);
    });
    f.id.addEventListener('input', () => (this.idTouched = true));
    f.station.addEventListener('change', () => {
      f.stationNew.hidden = f.station.value !== NEW_STATION;
      if (!f.stationNew.hidden) f.stationNew.focus();
    });
    f.addGroup.addEventListener('click', () => this.addGroupRow());
    this.node = el(
      'form',
      { id: 'item-form', class: 'item-form', hidden: '', novalidate: '' },
      f.title,
      el(
        'div',
        { class: 'fields' },
        el('label', { class: 'field', id: 'f-id-field' }, el('span', { class: 'label' }, 'Id'), f.id, f.idText, el('span', { class: 'hint' }, 'lowercase-dashes, never changes')),
        field('Name', f.name),
        field('Price', f.price, 'e.g. 12.50'),
        el('label', { class: 'field' }, el('span', { class: 'label' }, 'Station'), f.station, f.stationNew),
        field('Category', f.category),
        field('Prep minutes', f.prep, '1–240, or empty'),
        field('Allergens', f.allergens, 'comma separated'),
        field('Modifiers', f.mods, 'comma separated'),
      ),
      f.categories,
      el('h4', {}, 'Modifier groups ', el('span', { class: 'hint' }, 'a choice each line makes: between min and max of its modifiers')),
      f.groups,
      f.addGroup,
      f.error,
      el('div', { class: 'form-buttons' }, f.saveBtn, el('button', { id: 'f-cancel', type: 'button', onclick: () => this.close() }, 'Cancel')),
    );
    this.node.addEventListener('keydown', (e) => {
      if (e.key === 'Escape') this.close();
    });
    this.node.addEventListener('submit', (e) => {
      e.preventDefault();
      this.submit();
    });
  }

  /** Opens the form on `item` (edit) or empty (add); `menu` gives the stations and categories. */
  open(item, menu) {
    const f = this.f;
    this.editing = item;
    this.idTouched = false;
    const stations = [...new Set(menu.items.map((i) => i.station))].sort();
    const cats = [...new Set(menu.items.map((i) => i.category).filter(Boolean))].sort();
    f.station.replaceChildren(...stations.map((s) => el('option', { value: s }, s)), el('option', { value: NEW_STATION }, 'New station…'));
    f.categories.replaceChildren(...cats.map((c) => el('option', { value: c })));
    f.title.textContent = item ? `Edit ${item.name}` : 'Add an item';
    f.id.hidden = Boolean(item);
    f.idText.hidden = !item;
    f.id.value = item ? item.id : '';
    f.idText.textContent = item ? item.id : '';
    f.name.value = item ? item.name : '';
    f.price.value = item ? money(item.price) : '';
    f.station.value = item ? item.station : stations[0] || NEW_STATION;
    f.stationNew.value = '';
    f.stationNew.hidden = f.station.value !== NEW_STATION;
    f.category.value = item ? item.category || '' : '';
    f.prep.value = item && item.prep_min ? String(item.prep_min) : '';
    f.allergens.value = item ? (item.allergens || []).join(', ') : '';
    f.mods.value = item ? (item.mods || []).join(', ') : '';
    f.groups.replaceChildren();
    for (const g of (item && item.groups) || []) this.addGroupRow(g);
    this.addGroupState();
    this.say('');
    this.node.hidden = false;
    f.name.focus();
  }

  close() {
    this.node.hidden = true;
    this.editing = null;
  }

  say(text) {
    this.f.error.textContent = text;
    this.f.error.hidden = !text;
  }

  addGroupRow(g = { name: '', min: 0, max: 1, mods: [] }) {
    if (this.f.groups.children.length >= MAX_GROUPS) return;
    const row = el(
      'div',
      { class: 'group-row' },
      el('input', { class: 'g-name', maxlength: '32', placeholder: 'Doneness', 'aria-label': 'group name', value: g.name }),
      el('label', {}, 'min ', el('input', { class: 'g-min', type: 'number', min: '0', max: '24', step: '1', value: String(g.min), 'aria-label': 'min' })),
      el('label', {}, 'max ', el('input', { class: 'g-max', type: 'number', min: '1', max: '24', step: '1', value: String(g.max), 'aria-label': 'max' })),
      el('input', { class: 'g-mods', placeholder: 'rare, medium, well-done', 'aria-label': 'group modifiers', value: (g.mods || []).join(', ') }),
      el('button', { class: 'g-remove', type: 'button', 'aria-label': 'remove group', onclick: () => (row.remove(), this.addGroupState()) }, '✕'),
    );
    this.f.groups.append(row);
    this.addGroupState();
  }

  addGroupState() {
    this.f.addGroup.disabled = this.f.groups.children.length >= MAX_GROUPS;
  }

  /** The item the form describes, or a sentence saying what cannot be read. */
  read() {
    const f = this.f;
    const price = parsePrice(f.price.value);
    if (price === null) return { problem: 'Price: write it like 12.50' };
    const station = f.station.value === NEW_STATION ? f.stationNew.value.trim() : f.station.value;
    const base = this.editing ? this.current(this.editing.id) || this.editing : {};
    const item = { ...base, id: this.editing ? this.editing.id : f.id.value.trim(), name: f.name.value.trim(), price, station };
    const set = (k, v, keep) => (keep ? (item[k] = v) : delete item[k]);
    const category = f.category.value.trim();
    set('category', category, category);
    const prep = f.prep.value.trim();
    if (prep && !/^-?\d+$/.test(prep)) return { problem: 'Prep minutes: a whole number' };
    set('prep_min', Number(prep), prep);
    const allergens = splitList(f.allergens.value);
    set('allergens', allergens, allergens.length);
    const mods = splitList(f.mods.value);
    set('mods', mods, mods.length);
    const groups = [];
    for (const row of f.groups.children) {
      const [min, max] = ['.g-min', '.g-max'].map((s) => row.querySelector(s).value.trim());
      const name = row.querySelector('.g-name').value.trim();
      if (!/^-?\d+$/.test(min) || !/^-?\d+$/.test(max)) return { problem: `Group ${name || groups.length + 1}: min and max are whole numbers` };
      groups.push({ name, min: Number(min), max: Number(max), mods: splitList(row.querySelector('.g-mods').value) });
    }
    set('groups', groups, groups.length);
    return { item };
  }

  async submit() {
    const { item, problem } = this.read();
    if (problem) return this.say(problem);
    this.say('');
    const b = this.f.saveBtn;
    b.disabled = true;
    b.textContent = 'Saving…';
    try {
      const reply = await this.save(item);
      if (reply.ok) {
        this.close();
      } else {
        const e = reply.error || {};
        this.node.dataset.refused = e.code || 'refused';
        this.say(`Not saved: ${e.message || e.code || 'refused'}`);
      }
    } finally {
      b.disabled = false;
      b.textContent = 'Save';
    }
  }
}
