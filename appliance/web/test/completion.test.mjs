import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Completion, SETTLE_MS, notMadeText } from '../src/completion.js';

const line = (n, name, status, course = 1, qty = 1) => ({ n, item: name, name, qty, status, course, mods: [], station: 's' });

test('the question names what is not made', () => {
  const order = {
    id: 'o-000012',
    ticket: 12,
    table: '4',
    status: 'in_progress',
    lines: [line(1, 'Ribeye 300g', 'ready'), line(2, 'Chocolate Fondant', 'held', 2), line(3, 'Fries', 'fired', 1, 2), line(4, 'Salad', 'voided')],
  };
  assert.equal(notMadeText(order), 'Table 4 #12: 1 Chocolate Fondant (course 2), 2 Fries (cooking) not made. Complete anyway?');
});

function harness() {
  let t = 0;
  const sent = [];
  const c = new Completion({
    send: async (id) => (sent.push(id), { ok: true }),
    paint: () => {},
    refused: () => {},
    now: () => t,
  });
  return { c, sent, advance: (ms) => (t += ms) };
}

test('not all ready: a tap asks, a second quick tap does nothing, confirm sends once', async () => {
  const { c, sent, advance } = harness();
  const order = { id: 'o-1', ticket: 1, table: '1', status: 'in_progress', lines: [line(1, 'X', 'held', 2)] };
  c.tap(order);
  assert.equal(c.state('o-1').kind, 'ask');
  c.confirm('o-1'); // a double tap lands on the question's button: ignored
  assert.deepEqual(sent, []);
  advance(SETTLE_MS);
  c.confirm('o-1');
  c.confirm('o-1');
  await Promise.resolve();
  assert.deepEqual(sent, ['o-1']);
  c.gone('o-1');
});

test('all ready: a tap starts the undo, a later tap undoes it', () => {
  const { c, sent, advance } = harness();
  const order = { id: 'o-2', ticket: 2, table: '1', status: 'ready', lines: [line(1, 'X', 'ready')] };
  c.tap(order);
  assert.equal(c.state('o-2').kind, 'undo');
  c.tap(order); // double tap: still pending
  assert.equal(c.state('o-2').kind, 'undo');
  advance(SETTLE_MS);
  c.tap(order);
  assert.equal(c.state('o-2'), null);
  assert.deepEqual(sent, []);
});

test('a pending Complete is called off when the order is no longer all ready', () => {
  const { c, sent } = harness();
  const order = { id: 'o-3', ticket: 3, table: '1', status: 'ready', lines: [line(1, 'X', 'ready')] };
  c.tap(order);
  assert.equal(c.changed(order), false);
  assert.equal(c.state('o-3').kind, 'undo');
  assert.equal(c.changed({ ...order, status: 'in_progress' }), true);
  assert.equal(c.state('o-3'), null);
  assert.deepEqual(sent, []);
});
