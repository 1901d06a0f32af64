// Prep times (docs/protocol.md "Prep times: finishing together"), pure: when each line of an order
// should start so that the lines fired together finish together, the longest setting the pace.

/** Line number → when it should start (box clock, ms), for the order's fired and ready lines. */
export function lineStarts(order, prepMin) {
  const batches = new Map();
  for (const l of order.lines) {
    if (l.status !== 'fired' && l.status !== 'ready') continue;
    const at = typeof l.fired_at === 'number' ? l.fired_at : order.placed_at;
    if (!batches.has(at)) batches.set(at, []);
    batches.get(at).push(l);
  }
  const starts = new Map();
  for (const [at, lines] of batches) {
    const prep = (l) => (prepMin.get(l.item) || 0) * 60000;
    const finish = at + Math.max(...lines.map(prep));
    // An item without a prep time starts at once: nothing says how long it takes.
    for (const l of lines) starts.set(l.n, prepMin.get(l.item) ? finish - prep(l) : at);
  }
  return starts;
}

/** "start in 3:05" while a line waits (null once it should be cooking). */
export function waitText(start, now) {
  const left = Math.ceil((start - now) / 1000);
  if (left <= 0) return null;
  return `start in ${Math.floor(left / 60)}:${String(left % 60).padStart(2, '0')}`;
}
