// Webhooks on /admin in words (webhook-words.js): the state line, a delivery, the URL check.

import test from 'node:test';
import assert from 'node:assert/strict';

import { ago, checkUrl, delivered, deliveryText, stateText } from '../src/webhook-words.js';

test("a webhook's state says since when and why it fails", () => {
  assert.equal(stateText({ state: 'ok', waiting_events: 0 }), 'ok');
  assert.equal(stateText({ state: 'new' }), 'nothing sent yet');
  const failing = { state: 'failing', failing_since: 1000, last_error: 'cannot connect: refused', waiting_events: 3 };
  assert.equal(stateText(failing, 1000 + 300_000), 'failing for 5 min: cannot connect: refused · 3 events to look at');
  assert.equal(stateText({ state: 'failing', waiting_events: 1 }, 0), 'failing: no answer · 1 event to look at');
  // Paused wins over the last failure: nothing is being tried.
  const paused = { ...failing, state: 'paused' };
  assert.equal(stateText(paused, 1000), 'paused: nothing is sent until it is resumed · 3 events to look at');
  assert.equal(ago(59_400), '59 s');
  assert.equal(ago(3 * 3600_000), '3 h');
});

test('a delivery in words', () => {
  const ok = { seq: 42, event_type: 'ticket_bumped', attempt: 1, http_status: 204, duration_ms: 12 };
  assert.equal(deliveryText(ok), '#42 ticket_bumped: HTTP 204, 12 ms');
  assert.ok(delivered(ok));
  const bad = { seq: 43, event_type: 'order_completed', attempt: 4, http_status: null, error: 'cannot connect', duration_ms: 1 };
  assert.equal(deliveryText(bad), '#43 order_completed (attempt 4): cannot connect, 1 ms');
  assert.ok(!delivered(bad));
  assert.ok(!delivered({ http_status: 500 }));
  assert.equal(deliveryText({ seq: null, event_type: 'test', attempt: 1, http_status: 200, duration_ms: 3 }), 'test: HTTP 200, 3 ms');
});

test('a URL is checked before it goes to the box', () => {
  assert.deepEqual(checkUrl(' https://pos.example.com/hooks '), { value: 'https://pos.example.com/hooks' });
  assert.deepEqual(checkUrl('http://127.0.0.1:8080/'), { value: 'http://127.0.0.1:8080/' });
  assert.match(checkUrl('').error, /URL/);
  assert.match(checkUrl('pos.example.com').error, /not a URL/);
  assert.match(checkUrl('ftp://x/').error, /https/);
  assert.match(checkUrl('https://u:p@x/').error, /password/);
});
