// An undo window: `start(key, entry)` counts down `ms`; `undo(key)` stops it; when the time is
// up, `due(entry, key)` is called once. With a `storeKey` the countdowns are kept in
// localStorage, so a reload or a closed page shows them again (and fires those whose time is
// up) instead of losing what someone meant to do. The tablet's voids and /admin's removals use
// it. Pure bookkeeping: no DOM, no MQTT.

export class Countdown {
  /**
   * `due(entry, key)`: the time is up; `changed()`: re-render what shows the countdowns.
   * `valid(entry)`: whether a stored entry may be loaded (only with `storeKey`).
   */
  constructor({ ms, due, changed, storeKey = null, keyOf = null, valid = () => true, now = () => Date.now() }) {
    this.ms = ms;
    this.due = due;
    this.changed = changed;
    this.storeKey = storeKey;
    this.keyOf = keyOf;
    this.valid = valid;
    this.now = now;
    /** key → entry (with `until`): counting down. */
    this.pending = new Map();
    this.timer = null;
  }

  /** The stored countdowns (with `storeKey` and `keyOf`). */
  load() {
    if (!this.storeKey) return;
    let list = [];
    try {
      list = JSON.parse(localStorage.getItem(this.storeKey) || '[]');
    } catch {
      list = [];
    }
    for (const e of Array.isArray(list) ? list : []) {
      if (e && Number.isFinite(e.until) && this.valid(e)) this.pending.set(this.keyOf(e), e);
    }
    this.schedule();
  }

  save() {
    if (this.storeKey) localStorage.setItem(this.storeKey, JSON.stringify([...this.pending.values()]));
  }

  has(key) {
    return this.pending.has(key);
  }

  get size() {
    return this.pending.size;
  }

  keys() {
    return this.pending.keys();
  }

  /** Starts a countdown (a second start of the same key changes nothing). */
  start(key, entry) {
    if (this.pending.has(key)) return false;
    this.pending.set(key, { ...entry, until: this.now() + this.ms });
    this.save();
    this.schedule();
    this.changed();
    return true;
  }

  undo(key) {
    if (!this.pending.delete(key)) return false;
    this.save();
    this.schedule();
    this.changed();
    return true;
  }

  /** Drops a countdown without firing it (its subject is gone). */
  drop(key) {
    if (this.pending.delete(key)) this.save();
    this.schedule();
  }

  /** Whole seconds left (at least 1), or null when not counting down. */
  secondsLeft(key) {
    const e = this.pending.get(key);
    return e ? Math.max(1, Math.ceil((e.until - this.now()) / 1000)) : null;
  }

  /** Fires every countdown whose time is up; ticks while any is pending. */
  tick() {
    const now = this.now();
    for (const [key, e] of this.pending) {
      if (e.until > now) continue;
      this.pending.delete(key);
      this.due(e, key);
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

/**
 * Commands whose effect shows in a later menu version: keyed by what they change (an item id),
 * each waits for its reply, then for the menu version the reply names (the box sends the menu
 * at most once a second), so a row or a toggle stays marked "sending" until the menu shows it.
 * The KDS's 86 toggles and /admin's menu rows use it.
 */
export class VersionWait {
  constructor() {
    /** key → {version: number | null, ...extra} (null: no reply yet). */
    this.waiting = new Map();
  }

  has(key) {
    return this.waiting.has(key);
  }

  get(key) {
    return this.waiting.get(key);
  }

  /** A command was sent for `key`. */
  sent(key, extra = {}) {
    this.waiting.set(key, { ...extra, version: null });
  }

  /** Its reply came: wait for the version it names, or stop waiting (refused, already shown). */
  replied(key, reply, shownVersion) {
    const w = this.waiting.get(key);
    if (w && reply.ok && Number.isInteger(reply.menu_version) && shownVersion < reply.menu_version) w.version = reply.menu_version;
    else this.waiting.delete(key);
  }

  /** A menu version arrived: what it shows is no longer waited for. */
  seen(version) {
    for (const [key, w] of this.waiting) if (w.version !== null && version >= w.version) this.waiting.delete(key);
  }
}
