import test from 'node:test';
import assert from 'node:assert/strict';

import { Countdown, VersionWait } from '../src/countdown.js';

test('a countdown fires once when its time is up, not after an undo, and drops quietly', () => {
  let now = 0;
  const fired = [];
  let changes = 0;
  const c = new Countdown({ ms: 5000, due: (e, k) => fired.push([k, e.name]), changed: () => changes++, now: () => now });
  assert.ok(c.start('a', { name: 'Fries' }));
  assert.ok(!c.start('a', { name: 'Fries' }), 'a second start changes nothing');
  c.start('b', { name: 'Rings' });
  c.start('c', { name: 'Salad' });
  assert.equal(c.secondsLeft('a'), 5);
  now = 4200;
  assert.equal(c.secondsLeft('a'), 1);
  assert.ok(c.undo('b'));
  c.drop('c');
  c.tick();
  assert.deepEqual(fired, []);
  now = 5000;
  c.tick();
  c.tick();
  assert.deepEqual(fired, [['a', 'Fries']]);
  assert.equal(c.size, 0);
  assert.equal(c.timer, null, 'no timer left running');
  assert.ok(changes > 0);
});

test('a version wait holds until the menu shows the version its reply named', () => {
  const w = new VersionWait();
  w.sent('fries', { kind: 'stock' });
  assert.ok(w.has('fries') && w.get('fries').kind === 'stock');
  w.seen(9);
  assert.ok(w.has('fries'), 'no reply yet: still waiting');
  w.replied('fries', { ok: true, menu_version: 7 }, 6);
  w.seen(6);
  assert.ok(w.has('fries'));
  w.seen(7);
  assert.ok(!w.has('fries'));
  w.sent('rings');
  w.replied('rings', { ok: false }, 7);
  assert.ok(!w.has('rings'), 'refused: not waited for');
  w.sent('salad');
  w.replied('salad', { ok: true, menu_version: 7 }, 7);
  assert.ok(!w.has('salad'), 'already shown');
});
