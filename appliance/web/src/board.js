// The screen model of docs/protocol.md ("Screens: showing exactly the open orders"), pure: no
// DOM, no MQTT. A page feeds it the retained board, events and replay pages; it answers which
// orders changed (so the page re-renders only those cards) and when to ask for a replay.

/** Whether an order is shown on `station`'s board (`expo` shows every open order). */
export function belongs(order, station) {
  if (order.status === 'completed') return false;
  if (station === 'expo') return true;
  return order.lines.some((l) => l.station === station && l.status === 'fired');
}

export function byTicket(a, b) {
  return a.ticket - b.ticket;
}

export class Screen {
  constructor(station) {
    this.station = station;
    /** Shown orders by id. */
    this.orders = new Map();
    /** Highest version seen per order id, shown or not (keeps late, older events out). */
    this.versions = new Map();
    /** Every event up to `last` is applied; null until the first snapshot. */
    this.last = null;
    /** Seqs above `last` already applied (out of order). */
    this.ahead = new Set();
    /** Events that came before the snapshot. */
    this.buffer = [];
    /** A replay is wanted from this seq (null: none needed). */
    this.replayFrom = null;
    /** A replay is under way. */
    this.replaying = false;
  }

  /** Forget the stream position (a reconnect): keep showing orders until the next snapshot. */
  reset() {
    this.last = null;
    this.ahead.clear();
    this.buffer = [];
    this.replayFrom = null;
    this.replaying = false;
  }

  /** In step with the box: snapshot taken, no gap, no replay outstanding. */
  get synced() {
    return this.last !== null && this.replayFrom === null && !this.replaying && this.ahead.size === 0;
  }

  /** Orders shown, by ticket. */
  list() {
    return [...this.orders.values()].sort(byTicket);
  }

  /** The retained board arrived. Returns the ids whose card must change. */
  snapshot(board) {
    // In step up to or past this board (every event up to board.seq applied, no gap, no replay
    // outstanding): it holds nothing new. Boards are republished after every change, so taking
    // each one again would replay after every order.
    if (this.synced && board.seq <= this.last) return new Set();
    const changed = new Set();
    const next = new Map();
    for (const o of board.orders) next.set(o.id, o);
    for (const id of this.orders.keys()) if (!next.has(id)) changed.add(id);
    for (const [id, o] of next) {
      const cur = this.orders.get(id);
      if (!cur || cur.version !== o.version) changed.add(id);
    }
    this.orders = next;
    this.versions = new Map([...next].map(([id, o]) => [id, o.version]));
    this.last = board.seq;
    this.ahead.clear();
    // Boards are coalesced and the retained copy may lag: always catch up from board.seq.
    this.replayFrom = board.seq;
    const buffered = this.buffer;
    this.buffer = [];
    for (const ev of buffered) for (const id of this.event(ev)) changed.add(id);
    return changed;
  }

  /** One event (live or from a replay page). Returns the ids whose card must change. */
  event(ev) {
    if (this.last === null) {
      this.buffer.push(ev);
      return [];
    }
    if (ev.seq <= this.last || this.ahead.has(ev.seq)) return [];
    const changed = this.applyOrder(ev.order);
    if (ev.seq === this.last + 1) {
      this.last = ev.seq;
      while (this.ahead.delete(this.last + 1)) this.last += 1;
    } else {
      this.ahead.add(ev.seq);
      if (this.replayFrom === null && !this.replaying) this.replayFrom = this.last;
    }
    return changed;
  }

  /** Keep the highest version; show it here if it belongs, drop it if not. */
  applyOrder(order) {
    const seen = this.versions.get(order.id);
    if (seen !== undefined && seen >= order.version) return [];
    this.versions.set(order.id, order.version);
    if (belongs(order, this.station)) {
      this.orders.set(order.id, order);
      return [order.id];
    }
    if (this.orders.delete(order.id)) return [order.id];
    return [];
  }

  /** Take the pending replay request: the `after_seq` to send, or null. */
  takeReplay() {
    if (this.replaying || this.replayFrom === null || this.last === null) return null;
    const from = Math.min(this.replayFrom, this.last);
    this.replayFrom = null;
    this.replaying = true;
    return from;
  }

  /**
   * A replay answer `{ok, seq, events, more}`. Returns `{changed, next}`: `next` is the
   * `after_seq` of the next page to ask for, or null when the replay is done.
   */
  replayPage(reply) {
    const changed = new Set();
    if (!reply.ok) {
      this.replaying = false;
      this.replayFrom = this.last;
      return { changed, next: null };
    }
    for (const ev of reply.events || []) for (const id of this.event(ev)) changed.add(id);
    if (reply.more) return { changed, next: reply.seq };
    this.replaying = false;
    // Every event up to reply.seq is now applied.
    if (this.last !== null && reply.seq > this.last) {
      this.last = reply.seq;
      for (const s of [...this.ahead]) if (s <= this.last) this.ahead.delete(s);
    }
    while (this.ahead.delete(this.last + 1)) this.last += 1;
    if (this.ahead.size > 0) this.replayFrom = this.last;
    return { changed, next: null };
  }
}

/** Lines of `order` that a station screen shows: its own, voided ones struck through. */
export function stationLines(order, station) {
  if (station === 'expo') return order.lines;
  return order.lines.filter((l) => l.station === station && l.status !== 'held');
}

/** All-day counts: item name → total qty of fired lines on the shown orders. */
export function allDay(orders, station) {
  const counts = new Map();
  for (const o of orders) {
    for (const l of o.lines) {
      if (l.status !== 'fired') continue;
      if (station !== 'expo' && l.station !== station) continue;
      counts.set(l.name, (counts.get(l.name) || 0) + l.qty);
    }
  }
  return [...counts].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]));
}

/** Per station of an order: lines fired (cooking), ready, held, of the active lines. */
export function progress(order) {
  const by = new Map();
  for (const l of order.lines) {
    if (l.status === 'voided') continue;
    const p = by.get(l.station) || { station: l.station, fired: 0, ready: 0, held: 0 };
    p[l.status] += 1;
    by.set(l.station, p);
  }
  return [...by.values()].sort((a, b) => a.station.localeCompare(b.station));
}
