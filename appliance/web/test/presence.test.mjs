// /admin's presence (presence.js): an integration reports none, so it is neither "offline" nor
// counted in "devices online".

import test from 'node:test';
import assert from 'node:assert/strict';

import { presenceState, presenceSummary, presenceText } from '../src/presence.js';

const devices = [
  { id: 'tablet-1', role: 'tablet', online: true },
  { id: 'kds-grill', role: 'station', online: false },
  { id: 'manager-1', role: 'manager', online: true },
  { id: 'till', role: 'integration', online: false },
  { id: 'old-tablet', role: 'tablet', online: false, revoked_at: 1 },
  { id: 'old-till', role: 'integration', online: false, revoked_at: 1 },
];

test("a device's state: an integration without presence is on the API, not offline", () => {
  assert.deepEqual(
    devices.map(presenceState),
    ['online', 'offline', 'online', 'api', 'revoked', 'revoked'],
  );
  // One that does report presence (over MQTT) is shown online like any other.
  assert.equal(presenceState({ role: 'integration', online: true }), 'online');
  assert.equal(presenceText('api'), 'API');
  assert.equal(presenceText('offline'), 'offline');
});

test('devices online counts the unrevoked devices that report presence; integrations apart', () => {
  assert.deepEqual(presenceSummary(devices), { online: '2 of 3', integrations: 1 });
  assert.deepEqual(presenceSummary([]), { online: '0 of 0', integrations: 0 });
});
