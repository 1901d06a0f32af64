// A keyed list of order cards for the kitchen pages: each order's card is made once and then
// patched in place (it keeps its DOM node, and so do its buttons), rush orders first, then by
// ticket. While a finger or mouse is pressed anywhere on the page, nothing moves: changes wait
// and are applied on release, so a tap always lands on the card it started on. No whole-board
// re-render.

import { ageText } from './conn.js';
import { setText } from './keyed.js';

/** A press longer than this no longer holds the board (a resting hand must not freeze it). */
export const HOLD_MAX_MS = 2000;

/** Colour aging thresholds in ms from `?warn=&late=` (minutes; default yellow at 5, red at 8). */
export function agingThresholds(params) {
  const minutes = (name, dflt) => {
    const v = Number(params.get(name));
    return Number.isFinite(v) && v > 0 ? v : dflt;
  };
  return { warn: minutes('warn', 5) * 60000, late: minutes('late', 8) * 60000 };
}

/** Whether card `a` shows after card `b`: rush orders first, then by ticket. */
export function displayedAfter(a, b) {
  const ra = a.dataset.rush === 'true';
  const rb = b.dataset.rush === 'true';
  if (ra !== rb) return rb;
  return Number(a.dataset.ticket) > Number(b.dataset.ticket);
}

export class CardList {
  /**
   * `source()` is the screen's current orders Map; `create(order)` makes a card's skeleton,
   * `patch(card, order)` fills it in (also right after create). `onLayout()` runs after cards
   * were added or removed.
   */
  constructor(container, { source, create, patch, onLayout = () => {} }) {
    this.container = container;
    this.source = source;
    this.create = create;
    this.patch = patch;
    this.onLayout = onLayout;
    /** order id → card element */
    this.cards = new Map();
    /** Ids changed while the page was pressed. */
    this.pending = new Set();
    this.pressedAt = null;
    this.holdTimer = null;
    const press = () => {
      this.pressedAt = performance.now();
      clearTimeout(this.holdTimer);
      this.holdTimer = setTimeout(() => this.flush(), HOLD_MAX_MS + 10);
    };
    // The click that ends a press is dispatched after pointerup: apply changes after it.
    const release = () => {
      this.pressedAt = null;
      clearTimeout(this.holdTimer);
      setTimeout(() => this.flush(), 0);
    };
    document.addEventListener('pointerdown', press, true);
    document.addEventListener('pointerup', release, true);
    document.addEventListener('pointercancel', release, true);
    window.addEventListener('blur', release);
  }

  /** A press is holding the board still. */
  held() {
    return this.pressedAt !== null && performance.now() - this.pressedAt < HOLD_MAX_MS;
  }

  /** `changed`: the ids whose card must change (null: none). Applied now unless held. */
  update(changed) {
    if (!changed) return;
    for (const id of changed) this.pending.add(id);
    if (!this.held()) this.flush();
  }

  /** Applies every pending change. */
  flush() {
    if (this.pending.size === 0) return;
    const orders = this.source();
    let moved = false;
    for (const id of this.pending) {
      const order = orders.get(id);
      const card = this.cards.get(id);
      if (!order) {
        if (card) {
          card.remove();
          moved = true;
        }
        this.cards.delete(id);
      } else if (card) {
        this.patch(card, order);
        if (card.dataset.rush !== String(Boolean(order.rush))) {
          // A rush goes first (and back to its ticket's place when cleared).
          card.dataset.rush = String(Boolean(order.rush));
          card.remove();
          this.insert(card);
          moved = true;
        }
      } else {
        const fresh = this.create(order);
        fresh.dataset.order = order.id;
        fresh.dataset.ticket = String(order.ticket);
        fresh.dataset.rush = String(Boolean(order.rush));
        fresh._placedAt = order.placed_at;
        this.patch(fresh, order);
        this.cards.set(id, fresh);
        this.insert(fresh);
        moved = true;
      }
    }
    this.pending.clear();
    if (moved) this.onLayout();
  }

  /** Puts `card` in display order: rush orders first, then by ticket. */
  insert(card) {
    // Newest tickets usually go last: search from the end.
    let before = null;
    for (let c = this.container.lastElementChild; c; c = c.previousElementSibling) {
      if (displayedAfter(c, card)) before = c;
      else break;
    }
    this.container.insertBefore(card, before);
  }

  /** Cards in display order (rush first, then by ticket). */
  list() {
    return [...this.container.children];
  }

  /** Updates every card's age and its colour: `warn` and `late` are in ms. */
  tick(boxNow, warn, late) {
    for (const card of this.cards.values()) {
      const age = boxNow - card._placedAt;
      const a = card.querySelector('.age');
      if (a) setText(a, ageText(age));
      const level = age >= late ? 'late' : age >= warn ? 'warn' : 'fresh';
      if (card.dataset.age !== level) card.dataset.age = level;
    }
  }
}
