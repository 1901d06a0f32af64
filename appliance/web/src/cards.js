// A keyed list of order cards: only the cards whose order changed are rebuilt, and each stays
// in ticket order. No whole-board re-render, so nothing flickers and focus is never lost.

import { ageText } from './conn.js';

/** Colour aging thresholds in ms from `?warn=&late=` (minutes; default yellow at 5, red at 8). */
export function agingThresholds(params) {
  const minutes = (name, dflt) => {
    const v = Number(params.get(name));
    return Number.isFinite(v) && v > 0 ? v : dflt;
  };
  return { warn: minutes('warn', 5) * 60000, late: minutes('late', 8) * 60000 };
}

export class CardList {
  constructor(container, build) {
    this.container = container;
    this.build = build;
    /** order id → card element */
    this.cards = new Map();
  }

  /** `orders` is the screen's Map; `changed` the ids to rebuild (null: none). */
  update(orders, changed) {
    if (!changed) return;
    for (const id of changed) {
      const order = orders.get(id);
      const old = this.cards.get(id);
      if (!order) {
        if (old) old.remove();
        this.cards.delete(id);
        continue;
      }
      const card = this.build(order, old);
      card.dataset.order = order.id;
      card.dataset.ticket = String(order.ticket);
      card._placedAt = order.placed_at;
      this.cards.set(id, card);
      if (old) {
        old.replaceWith(card);
      } else {
        this.insert(card, order.ticket);
      }
    }
  }

  insert(card, ticket) {
    // Newest tickets usually go last: search from the end.
    let before = null;
    for (let c = this.container.lastElementChild; c; c = c.previousElementSibling) {
      if (Number(c.dataset.ticket) > ticket) before = c;
      else break;
    }
    this.container.insertBefore(card, before);
  }

  /** Cards in ticket (display) order. */
  list() {
    return [...this.container.children];
  }

  /** Updates every card's age and its colour: `warn` and `late` are in ms. */
  tick(boxNow, warn, late) {
    for (const card of this.cards.values()) {
      const age = boxNow - card._placedAt;
      const a = card.querySelector('.age');
      if (a) {
        const t = ageText(age);
        if (a.textContent !== t) a.textContent = t;
      }
      const level = age >= late ? 'late' : age >= warn ? 'warn' : 'fresh';
      if (card.dataset.age !== level) card.dataset.age = level;
    }
  }
}
