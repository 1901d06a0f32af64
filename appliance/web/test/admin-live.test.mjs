// /admin's live data through the real link (conn.js's `Link`, fed as the broker would feed it):
// the box's status reaches the health panel and the printers, the menu reaches the editor.

import test from 'node:test';
import assert from 'node:assert/strict';

import { Link } from '../src/conn.js';
import { encode, topics } from '../src/wire.js';
import { adminLive } from '../src/admin-live.js';

function page() {
  const seen = { menus: [], printing: [], statuses: [] };
  const link = new Link('admin', { id: 'mgr-1', secret: '00'.repeat(32) }, {
    subscriptions: [[topics.menu, topics.status]],
    ...adminLive({
      onMenu: (m) => seen.menus.push(m),
      onPrinting: (p) => seen.printing.push(p),
      onBoxStatus: (s) => seen.statuses.push(s),
    }),
  });
  return { seen, deliver: (topic, value) => link.message(topic, encode(value)) };
}

const status = {
  version: '1.0.0', site_id: 's', seq: 42, uplink: 'up', sync_lag: 3, started_at: 1, now_ms: 2,
  storage_full: false, printing: [{ station: 'grill', printer: 'paper out', can_print: false }],
};

test("the box's status reaches the health panel and the printers", () => {
  const { seen, deliver } = page();
  deliver(topics.status, status);
  assert.deepEqual(seen.statuses, [status], 'seq, uplink and sync lag for the health panel');
  assert.deepEqual(seen.printing, [status.printing]);
  assert.deepEqual(seen.menus, []);
});

test('a status without printers clears them; one without a seq leaves the health panel', () => {
  const { seen, deliver } = page();
  const { printing: _, ...plain } = status;
  deliver(topics.status, plain);
  deliver(topics.status, { printing: [] });
  assert.deepEqual(seen.printing, [undefined, []]);
  assert.deepEqual(seen.statuses, [plain]);
});

test('the menu reaches the editor; anything else on the link is ignored', () => {
  const { seen, deliver } = page();
  const menu = { version: 3, items: [{ id: 'fries', station: 'fry' }] };
  deliver(topics.menu, menu);
  deliver(topics.menu, { version: 4 });
  deliver('docket/v1/boards/grill', { seq: 1 });
  assert.deepEqual(seen.menus, [menu]);
  assert.deepEqual(seen.statuses, []);
  assert.deepEqual(seen.printing, []);
});
