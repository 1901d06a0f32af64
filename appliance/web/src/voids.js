// Voids with an undo window: a tap on "void" starts a 5-second countdown on the line ("Voiding
// in 5 s · Undo"); only when it ends is `void_line` sent. The countdowns are kept in
// localStorage (countdown.js), so a reload or a closed page shows them again (and sends those
// whose time is up) instead of losing an intended void. Pure bookkeeping: no DOM, no MQTT.

import { Countdown } from './countdown.js';

const STORE_KEY = 'docket.voids.tablet';
export const UNDO_MS = 5000;

export const voidKey = (orderId, n) => `${orderId}:${n}`;

export class Voids {
  /** `send(entry)` sends the void; `changed()` re-renders what shows the countdowns. */
  constructor(send, changed, now = () => Date.now()) {
    this.send = send;
    this.changed = changed;
    /** Keys sent and not yet answered: the line shows "voiding…" without buttons. */
    this.sent = new Set();
    this.countdown = new Countdown({
      ms: UNDO_MS,
      storeKey: STORE_KEY,
      keyOf: (e) => voidKey(e.order_id, e.n),
      valid: (e) => typeof e.order_id === 'string' && Number.isInteger(e.n),
      due: (e, key) => {
        this.sent.add(key);
        this.send(e, key);
      },
      changed,
      now,
    });
    /** key → {order_id, n, name, until}: counting down. */
    this.pending = this.countdown.pending;
  }

  load() {
    this.countdown.load();
  }

  start(orderId, n, name) {
    const key = voidKey(orderId, n);
    if (this.sent.has(key)) return;
    this.countdown.start(key, { order_id: orderId, n, name });
  }

  undo(key) {
    this.countdown.undo(key);
  }

  /** Seconds left on a pending void (1..5), or null. */
  secondsLeft(key) {
    return this.countdown.secondsLeft(key);
  }

  /** The reply to a sent void came (either way). */
  settled(key) {
    if (this.sent.delete(key)) this.changed();
  }

  /** Sends every void whose window is over; ticks the countdowns while any is pending. */
  tick() {
    this.countdown.tick();
  }
}
