import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Screen, belongs, allDay, progress, stationLines } from '../src/board.js';

function order(ticket, version, lines, status = 'placed') {
  return { id: `o-${String(ticket).padStart(6, '0')}`, ticket, table: '1', status, version, lines, fired_course: 1, placed_at: 0 };
}
const fired = (station, n = 1, name = 'Burger', qty = 1) => ({ n, item: name, name, qty, mods: [], course: 1, station, status: 'fired' });
const ready = (station, n = 1) => ({ ...fired(station, n), status: 'ready' });
const ev = (seq, o) => ({ seq, type: 'x', order_id: o.id, version: o.version, command: 'c', device: 'd', at: 0, order: o });

test('belongs: station boards show fired lines of theirs, expo every open order', () => {
  assert.ok(belongs(order(1, 1, [fired('grill')]), 'grill'));
  assert.ok(!belongs(order(1, 1, [fired('fry')]), 'grill'));
  assert.ok(!belongs(order(1, 2, [ready('grill')]), 'grill'));
  assert.ok(belongs(order(1, 2, [ready('grill')], 'ready'), 'expo'));
  assert.ok(!belongs(order(1, 3, [ready('grill')], 'completed'), 'expo'));
});

test('events before the snapshot are buffered, then applied above board.seq only', () => {
  const s = new Screen('grill');
  const o1 = order(1, 1, [fired('grill')]);
  const o2 = order(2, 1, [fired('grill')]);
  s.event(ev(5, o1));
  s.event(ev(6, o2));
  assert.equal(s.list().length, 0);
  const changed = s.snapshot({ station: 'grill', seq: 5, orders: [o1] });
  assert.deepEqual(s.list().map((o) => o.id), [o1.id, o2.id]);
  assert.ok(changed.has(o2.id));
  assert.equal(s.last, 6);
  assert.equal(s.takeReplay(), 5);
  assert.equal(s.takeReplay(), null, 'one replay at a time');
});

test('a gap asks for a replay from the last contiguous seq; replay pages fill it', () => {
  const s = new Screen('grill');
  s.snapshot({ station: 'grill', seq: 10, orders: [] });
  assert.equal(s.takeReplay(), 10);
  s.replayPage({ ok: true, seq: 10, events: [], more: false });
  assert.ok(s.synced);
  const o = order(1, 1, [fired('grill')]);
  const o2 = order(2, 1, [fired('grill')]);
  s.event(ev(13, o2));
  assert.ok(!s.synced);
  assert.equal(s.takeReplay(), 10);
  let r = s.replayPage({ ok: true, seq: 11, events: [ev(11, o)], more: true });
  assert.equal(r.next, 11);
  r = s.replayPage({ ok: true, seq: 13, events: [ev(12, { ...o, version: 2, lines: [ready('grill')] }), ev(13, o2)], more: false });
  assert.equal(r.next, null);
  assert.equal(s.last, 13);
  assert.ok(s.synced);
  assert.deepEqual(s.list().map((x) => x.id), [o2.id]);
});

test('the highest version wins whatever order events come in', () => {
  const s = new Screen('grill');
  s.snapshot({ station: 'grill', seq: 0, orders: [] });
  const v1 = order(1, 1, [fired('grill')]);
  const v2 = { ...v1, version: 2, lines: [ready('grill')], status: 'ready' };
  s.event(ev(2, v2)); // removal arrives first
  s.event(ev(1, v1)); // then the older placement: must not bring the ticket back
  assert.equal(s.list().length, 0);
  assert.equal(s.last, 2);
});

test('duplicates change nothing', () => {
  const s = new Screen('expo');
  s.snapshot({ station: 'expo', seq: 0, orders: [] });
  const o = order(1, 1, [fired('grill')]);
  assert.deepEqual(s.event(ev(1, o)), [o.id]);
  assert.deepEqual(s.event(ev(1, o)), []);
  assert.equal(s.list().length, 1);
});

test('a reconnect resets the position but keeps the cards until the next snapshot', () => {
  const s = new Screen('grill');
  const o = order(1, 1, [fired('grill')]);
  s.snapshot({ station: 'grill', seq: 1, orders: [o] });
  s.reset();
  assert.ok(!s.synced);
  assert.equal(s.list().length, 1);
  const changed = s.snapshot({ station: 'grill', seq: 3, orders: [] });
  assert.ok(changed.has(o.id));
  assert.equal(s.list().length, 0);
});

test('a board the screen is already past changes nothing and asks no replay', () => {
  const s = new Screen('grill');
  const o1 = order(1, 1, [fired('grill')]);
  s.snapshot({ station: 'grill', seq: 2, orders: [] });
  assert.equal(s.takeReplay(), 2);
  s.replayPage({ ok: true, seq: 2, events: [], more: false });
  s.event(ev(3, o1));
  assert.ok(s.synced);
  // The retained board republished at seq 3 (or an older copy): nothing new.
  assert.equal(s.snapshot({ station: 'grill', seq: 3, orders: [o1] }).size, 0);
  assert.equal(s.snapshot({ station: 'grill', seq: 1, orders: [] }).size, 0);
  assert.equal(s.takeReplay(), null);
  assert.equal(s.list().length, 1);
  // A board past the screen (an event was lost) is taken, and a replay asked from it.
  const changed = s.snapshot({ station: 'grill', seq: 5, orders: [] });
  assert.ok(changed.has(o1.id));
  assert.equal(s.takeReplay(), 5);
});

test('a failed replay is asked again', () => {
  const s = new Screen('grill');
  s.snapshot({ station: 'grill', seq: 4, orders: [] });
  assert.equal(s.takeReplay(), 4);
  s.replayPage({ ok: false, error: { code: 'internal' } });
  assert.equal(s.takeReplay(), 4);
});

test('all-day counts and per-station progress', () => {
  const o1 = order(1, 1, [fired('grill', 1, 'Burger', 2), fired('fry', 2, 'Fries', 1)]);
  const o2 = order(2, 1, [fired('grill', 1, 'Burger', 1), { ...fired('grill', 2, 'Steak', 1), status: 'voided' }]);
  assert.deepEqual(allDay([o1, o2], 'grill'), [['Burger', 3]]);
  assert.deepEqual(allDay([o1, o2], 'expo'), [['Burger', 3], ['Fries', 1]]);
  const p = progress({ ...o1, lines: [ready('grill'), fired('fry', 2)] });
  assert.deepEqual(p.map((x) => [x.station, x.fired, x.ready]), [['fry', 1, 0], ['grill', 0, 1]]);
  assert.equal(stationLines(o2, 'grill').length, 2);
});
