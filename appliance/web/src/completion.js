// How expo completes an order without one tap destroying work. Completing takes the order off
// every screen and there is no command to bring it back, so:
//   - an order that is all ready completes on one tap, but only after UNDO_MS: the card stays,
//     its button turns into "Undo" (a mistaken tap, or the wrong card, costs nothing);
//   - an order that is not all ready first asks, naming what is not made ("Table 4 #12:
//     1 Chocolate Fondant (course 2) not made. Complete anyway?"); the answer sends at once.
// No DOM here: the page paints from `state(id)`.

import { tableLabel } from './labels.js';

export const UNDO_MS = 5000;
/** A second tap this soon after the first is a double tap, not a decision. */
export const SETTLE_MS = 600;
/** An unanswered question goes away after this. */
export const ASK_MS = 15000;

/** The lines of `order` that are neither ready nor voided. */
export function notMade(order) {
  return order.lines.filter((l) => l.status !== 'ready' && l.status !== 'voided');
}

/** "Table 4 #12: 1 Chocolate Fondant (course 2) not made. Complete anyway?" */
export function notMadeText(order) {
  const what = notMade(order).map((l) => {
    const why = l.status === 'held' ? `course ${l.course}` : 'cooking';
    return `${l.qty} ${l.name} (${why})`;
  });
  const head = `${tableLabel(order.table)} #${order.ticket}`;
  if (!what.length) return `${head}: everything is ready now. Complete?`;
  return `${head}: ${what.join(', ')} not made. Complete anyway?`;
}

export class Completion {
  /** `send(id)` completes on the box (resolves to the reply); `paint(id)` redraws its card. */
  constructor({ send, paint, refused, now = () => performance.now() }) {
    this.send = send;
    this.paint = paint;
    this.refused = refused;
    this.now = now;
    /** id → {kind: 'undo'|'ask'|'sending', since, until?, timer?} */
    this.states = new Map();
  }

  state(id) {
    return this.states.get(id) || null;
  }

  /** The Complete button was tapped on a card showing `order`. */
  tap(order) {
    const s = this.state(order.id);
    if (s && this.now() - s.since < SETTLE_MS) return;
    if (s && s.kind === 'undo') return this.cancel(order.id);
    if (s) return;
    if (order.status === 'ready') {
      this.set(order.id, { kind: 'undo', until: this.now() + UNDO_MS, timer: setTimeout(() => this.go(order.id), UNDO_MS) });
    } else {
      this.set(order.id, { kind: 'ask', timer: setTimeout(() => this.cancel(order.id), ASK_MS) });
    }
  }

  /** "Complete anyway" on the question. */
  confirm(id) {
    const s = this.state(id);
    if (!s || s.kind !== 'ask' || this.now() - s.since < SETTLE_MS) return;
    this.go(id);
  }

  /** Undo, or "Cancel" on the question. */
  cancel(id) {
    const s = this.state(id);
    if (!s || s.kind === 'sending') return;
    clearTimeout(s.timer);
    this.states.delete(id);
    this.paint(id);
  }

  /** The order changed: a pending Complete of an order no longer all ready is called off
   *  (a station recalled a line, a line was added). Returns whether it was. */
  changed(order) {
    const s = this.state(order.id);
    if (!s || s.kind !== 'undo' || order.status === 'ready') return false;
    this.cancel(order.id);
    return true;
  }

  /** The order left the board (completed here or elsewhere): forget it. */
  gone(id) {
    const s = this.state(id);
    if (s) clearTimeout(s.timer);
    this.states.delete(id);
  }

  async go(id) {
    const s = this.state(id);
    if (s) clearTimeout(s.timer);
    this.set(id, { kind: 'sending' });
    const reply = await this.send(id);
    if (!reply.ok) {
      this.states.delete(id);
      this.paint(id);
      this.refused(reply);
    }
  }

  set(id, s) {
    this.states.set(id, { ...s, since: this.now() });
    this.paint(id);
  }
}
