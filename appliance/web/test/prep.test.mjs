import { test } from 'node:test';
import assert from 'node:assert/strict';
import { lineStarts, waitText } from '../src/prep.js';

const MIN = 60000;
const prep = new Map([['chicken', 12], ['fries', 4], ['cake', 2]]);
const line = (n, item, status = 'fired', fired_at) => ({ n, item, status, ...(fired_at ? { fired_at } : {}) });

test('lines fired together finish together: the shortest waits for the longest', () => {
  const o = { placed_at: 1000, lines: [line(1, 'chicken'), line(2, 'fries'), line(3, 'water')] };
  const s = lineStarts(o, prep);
  assert.equal(s.get(1), 1000);
  assert.equal(s.get(2), 1000 + 8 * MIN);
  assert.equal(s.get(3), 1000, 'an item without a prep time starts at once');
});

test('a course fired later is its own batch; held and voided lines have no start', () => {
  const o = {
    placed_at: 0,
    lines: [line(1, 'chicken', 'ready'), line(2, 'cake', 'fired', 30 * MIN), line(3, 'fries', 'fired', 30 * MIN), line(4, 'cake', 'held'), line(5, 'fries', 'voided')],
  };
  const s = lineStarts(o, prep);
  assert.equal(s.get(1), 0);
  assert.equal(s.get(2), 30 * MIN + 2 * MIN);
  assert.equal(s.get(3), 30 * MIN);
  assert.equal(s.has(4), false);
  assert.equal(s.has(5), false);
});

test('the wait reads as minutes and seconds, and ends', () => {
  assert.equal(waitText(8 * MIN, 0), 'start in 8:00');
  assert.equal(waitText(65000, 0), 'start in 1:05');
  assert.equal(waitText(1000, 1000), null);
  assert.equal(waitText(0, 5000), null);
});
