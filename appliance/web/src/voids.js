// Voids with an undo window: a tap on "void" starts a 5-second countdown on the line ("Voiding
// in 5 s · Undo"); only when it ends is `void_line` sent. The countdowns are kept in
// localStorage, so a reload or a closed page shows them again (and sends those whose time is
// up) instead of losing an intended void. Pure bookkeeping: no DOM, no MQTT.

const STORE_KEY = 'docket.voids.tablet';
export const UNDO_MS = 5000;

export const voidKey = (orderId, n) => `${orderId}:${n}`;

export class Voids {
  /** `send(entry)` sends the void; `changed()` re-renders what shows the countdowns. */
  constructor(send, changed, now = () => Date.now()) {
    this.send = send;
    this.changed = changed;
    this.now = now;
    /** key → {order_id, n, name, until}: counting down. */
    this.pending = new Map();
    /** Keys sent and not yet answered: the line shows "voiding…" without buttons. */
    this.sent = new Set();
    this.timer = null;
  }

  load() {
    let list = [];
    try {
      list = JSON.parse(localStorage.getItem(STORE_KEY) || '[]');
    } catch {
      list = [];
    }
    for (const e of Array.isArray(list) ? list : []) {
      if (e && typeof e.order_id === 'string' && Number.isInteger(e.n)) this.pending.set(voidKey(e.order_id, e.n), e);
    }
    this.schedule();
  }

  save() {
    localStorage.setItem(STORE_KEY, JSON.stringify([...this.pending.values()]));
  }

  start(orderId, n, name) {
    const key = voidKey(orderId, n);
    if (this.pending.has(key) || this.sent.has(key)) return;
    this.pending.set(key, { order_id: orderId, n, name, until: this.now() + UNDO_MS });
    this.save();
    this.schedule();
    this.changed();
  }

  undo(key) {
    if (!this.pending.delete(key)) return;
    this.save();
    this.changed();
  }

  /** Seconds left on a pending void (1..5), or null. */
  secondsLeft(key) {
    const e = this.pending.get(key);
    return e ? Math.max(1, Math.ceil((e.until - this.now()) / 1000)) : null;
  }

  /** The reply to a sent void came (either way). */
  settled(key) {
    if (this.sent.delete(key)) this.changed();
  }

  /** Sends every void whose window is over; ticks the countdowns while any is pending. */
  tick() {
    const now = this.now();
    for (const [key, e] of this.pending) {
      if (e.until > now) continue;
      this.pending.delete(key);
      this.sent.add(key);
      this.send(e, key);
    }
    this.save();
    this.changed();
    this.schedule();
  }

  schedule() {
    if (this.pending.size === 0) {
      clearInterval(this.timer);
      this.timer = null;
    } else if (!this.timer) {
      this.timer = setInterval(() => this.tick(), 250);
    }
  }
}
