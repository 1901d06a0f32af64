// The four pages in headless Chromium against the real docketd, opened under a LAN host name
// over HTTPS with the site CA trusted (as the restaurant's devices reach the box): pairing through the admin page, an order from the
// tablet to the KDS and expo, keyboard bump, the tablet's offline outbox across a reload, a KDS
// that comes back after missing orders, a revoked device, and a revocation from /admin.

import { test } from 'node:test';
import assert from 'node:assert/strict';

import { assertClean, launchBrowser, newPage, screenshot, startDaemon, waitFor, DEADLINE_MS } from './harness.mjs';
import { Device } from './client.mjs';
import { addItem } from './kit.mjs';

function link(creds) {
  return `#device=${encodeURIComponent(creds.id)}&secret=${creds.secret}`;
}

async function open(browser, daemon, t, name, path, creds) {
  const page = await newPage(browser, { name, t });
  // Every WebSocket to /mqtt goes through a route the test can cut (page.cut) and heal
  // (page.heal): a cut closes the open one and refuses new ones, while HTTP keeps working.
  // page.stall() holds everything the box sends (the socket stays open, as on a stalled Wi-Fi
  // link) until page.unstall().
  let blocked = false;
  let stalled = false;
  const held = [];
  const open = new Set();
  await page.routeWebSocket(/\/mqtt$/, (ws) => {
    if (blocked) return ws.close();
    open.add(ws);
    ws.onClose(() => open.delete(ws));
    const server = ws.connectToServer();
    server.onMessage((m) => (stalled ? held.push([ws, m]) : ws.send(m)));
  });
  page.stall = () => {
    stalled = true;
  };
  page.unstall = () => {
    stalled = false;
    for (const [ws, m] of held.splice(0)) ws.send(m);
  };
  page.cut = async () => {
    blocked = true;
    for (const ws of open) await ws.close();
    open.clear();
    await page.waitForSelector('#conn[data-state="reconnecting"]');
  };
  page.heal = () => {
    blocked = false;
  };
  await page.goto(`${daemon.siteUrl}${path}${creds ? link(creds) : ''}`);
  return page;
}

async function live(page) {
  await page.waitForSelector('#conn[data-state="live"]');
}

async function placeOrder(tablet, table, items) {
  for (const item of items) await addItem(tablet, item);
  await tablet.fill('#table', table);
  await tablet.click('#send');
}

async function tickets(page) {
  return page.$$eval('#board .card', (cards) => cards.map((c) => Number(c.dataset.ticket)));
}

test('pair through the admin page, order on the tablet, bump on the KDS by keyboard, tablet shows ready', async (t) => {
  const [daemon, browser] = await Promise.all([startDaemon({ t }), launchBrowser({ t })]);

  // The first manager: the admin page shows a code, approved on the box with the CLI.
  const admin = await open(browser, daemon, t, 'admin', '/admin');
  // Once signed in, the page's admin calls ride the session cookie, not the login key.
  const adminCalls = [];
  admin.on('request', (r) => {
    if (new URL(r.url()).pathname.startsWith('/api/admin/')) adminCalls.push(r.headers().authorization || null);
  });
  const adminCode = (await admin.locator('#pair-code').innerText()).trim();
  assert.match(adminCode, /^\d{6}$/);
  await daemon.cli(['device', 'approve', adminCode, '--id', 'mgr-1', '--role', 'manager']);
  await admin.waitForSelector('#health [data-k="seq"]');
  await live(admin);
  // This test's box has plain MQTT and plain HTTP on: /admin says so, where a manager looks.
  const warned = await admin.locator('#warnings').innerText();
  assert.match(warned, /plain MQTT is on/);
  assert.match(warned, /plain HTTP serves/);

  // A tablet, a grill screen and the expo each ask to pair; the manager approves them on /admin.
  const tablet = await open(browser, daemon, t, 'tablet', '/tablet');
  const kds = await open(browser, daemon, t, 'kds', '/kds?station=grill');
  const expo = await open(browser, daemon, t, 'expo', '/expo');
  const approve = async (page, id, role, stations = []) => {
    const code = (await page.locator('#pair-code').innerText()).trim();
    const row = admin.locator(`#pairings tr[data-code="${code}"]`);
    await row.waitFor();
    await row.locator('input.id').fill(id);
    await row.locator('select.role').selectOption(role);
    for (const s of stations) await row.locator(`.stations input[value="${s}"]`).check();
    await row.locator('button.approve').click();
    await row.waitFor({ state: 'detached' });
  };
  await approve(tablet, 'tablet-1', 'tablet');
  await approve(kds, 'kds-grill', 'station', ['grill']);
  await approve(expo, 'expo-1', 'expo');
  assert.ok(adminCalls.length >= 3, `admin calls seen: ${adminCalls.length}`);
  assert.deepEqual(adminCalls.filter((a) => a !== null), [], 'no admin call carries the login key');
  const cookies = await admin.context().cookies();
  const session = cookies.find((c) => c.name === 'docket_session');
  assert.ok(session && session.httpOnly && session.secure && session.sameSite === 'Strict', JSON.stringify(cookies));
  assert.equal(await admin.evaluate(() => document.cookie), '', 'the session is out of scripts\' reach');
  await Promise.all([live(tablet), live(kds), live(expo)]);
  await admin.waitForSelector('#devices tr[data-device="kds-grill"][data-presence="online"]');
  await admin.waitForSelector('#devices tr[data-device="tablet-1"][data-presence="online"]');

  // An order: "sending…" until the reply, then its ticket.
  await placeOrder(tablet, '12', ['burger-classic', 'burger-classic']);
  const mine = tablet.locator('#mine > li').first();
  await waitFor(async () => (await mine.locator('.ticket').innerText()) === '#1', { message: 'tablet shows ticket #1' });
  const card = kds.locator('#board .card[data-ticket="1"]');
  await card.waitFor();
  assert.match(await card.innerText(), /2×\s*Classic Burger/);
  assert.match(await card.locator('.table').innerText(), /Table 12/);
  await expo.locator('#board .card[data-ticket="1"]').waitFor();
  await expo.locator('#board .card[data-ticket="1"] .station[data-station="grill"][data-state="cooking"]').waitFor();
  await kds.waitForSelector('#allday li[data-item="Classic Burger"]');
  assert.equal(await kds.locator('#allday li[data-item="Classic Burger"] .n').innerText(), '2');

  await screenshot(tablet, 'tablet');
  await screenshot(kds, 'kds');
  await screenshot(expo, 'expo');
  await screenshot(admin, 'admin');

  // Bump bar: "1" selects the first ticket, Enter bumps it.
  await kds.keyboard.press('1');
  await kds.waitForSelector('#board .card.selected[data-ticket="1"]');
  await kds.keyboard.press('Enter');
  await card.waitFor({ state: 'detached' });
  await tablet.waitForSelector('#mine > li[data-status="ready"]');
  await tablet.waitForSelector('.toast.ready');
  assert.match(await tablet.locator('.toast.ready').first().innerText(), /#1 · table 12 is ready/);
  await expo.locator('#board .card[data-ticket="1"][data-status="ready"]').waitFor();

  // R recalls the last bumped ticket; bump it again, then the expo completes the order.
  await kds.keyboard.press('r');
  await card.waitFor();
  await kds.keyboard.press('1');
  await kds.keyboard.press('Enter');
  await card.waitFor({ state: 'detached' });
  await expo.locator('#board .card[data-ticket="1"] button.complete').click();
  await expo.locator('#board .card[data-ticket="1"]').waitFor({ state: 'detached' });
  await tablet.waitForSelector('#mine > li[data-status="completed"]');

  const health = JSON.parse((await daemon.get('/healthz')).body);
  assert.equal(health.open_orders, 0);
  assert.equal(health.seq, 5, 'placed, bumped, recalled, bumped, completed');
  for (const p of [admin, tablet, kds, expo]) await assertClean(p);
});

test('a tablet offline places 3 orders, reloads, comes back: exactly 3 reach the kitchen', async (t) => {
  const [daemon, browser] = await Promise.all([startDaemon({ t }), launchBrowser({ t })]);
  const creds = await daemon.addDevice('tablet-1', 'tablet');
  const tablet = await open(browser, daemon, t, 'tablet-offline', '/tablet', creds);
  await live(tablet);

  // Cut the box off: the open WebSocket closes, new ones are refused (the page itself still loads).
  await tablet.cut();

  for (const table of ['1', '2', '3']) await placeOrder(tablet, table, ['fries']);
  await waitFor(async () => (await tablet.locator('#banner').innerText()) === 'offline – 3 orders waiting', {
    message: 'the offline banner counts 3 orders',
  });
  assert.equal(await tablet.locator('#mine > li[data-status="sending"]').count(), 3);
  assert.equal(JSON.parse((await daemon.get('/healthz')).body).seq, 0, 'nothing reached the box');

  // A reload while still cut off: the outbox is in IndexedDB, the orders still wait.
  await tablet.reload();
  await waitFor(async () => (await tablet.locator('#banner').innerText()) === 'offline – 3 orders waiting', {
    message: 'after the reload the banner still counts 3 orders',
  });
  await screenshot(tablet, 'tablet-offline');

  // Back on the network: the same commands go out, the banner clears itself.
  tablet.heal();
  await live(tablet);
  await tablet.waitForSelector('#banner', { state: 'hidden' });
  await waitFor(async () => (await tablet.locator('#mine > li .ticket').allInnerTexts()).filter((x) => x.startsWith('#')).length === 3, {
    message: 'three tickets shown',
  });
  const shown = (await tablet.locator('#mine > li .ticket').allInnerTexts()).sort();
  assert.deepEqual(shown, ['#1', '#2', '#3']);

  // Reload again: nothing is sent twice.
  await tablet.reload();
  await live(tablet);
  await tablet.waitForSelector('#banner', { state: 'hidden' });
  const health = JSON.parse((await daemon.get('/healthz')).body);
  assert.equal(health.seq, 3, 'exactly three events');
  assert.equal(health.open_orders, 3, 'exactly three orders');
  await assertClean(tablet);
});

test('a KDS away while 20 orders are placed and 5 bumped elsewhere shows exactly the open tickets', async (t) => {
  const [daemon, browser] = await Promise.all([startDaemon({ t }), launchBrowser({ t })]);
  const screen = await daemon.addDevice('kds-grill', 'station', ['grill']);
  const other = await daemon.addDevice('kds-grill-2', 'station', ['grill']);
  const waiter = await daemon.addDevice('tablet-1', 'tablet');
  const kds = await open(browser, daemon, t, 'kds-away', '/kds?station=grill', screen);
  await live(kds);
  const tab = await Device.connect(daemon, waiter);
  const bumper = await Device.connect(daemon, other);
  t.after(() => Promise.all([tab.close(), bumper.close()]));

  // Two tickets while it watches.
  const before = [];
  for (let i = 0; i < 2; i++) before.push(await tab.ok({ type: 'place_order', table: `A${i}`, lines: [{ item: 'burger-classic', qty: 1 }] }));
  await waitFor(async () => (await tickets(kds)).length === 2, { message: 'two tickets before the cut' });

  await kds.cut();
  assert.ok(await kds.locator('#board.stale').count(), 'a disconnected board is shown as stale');

  const placed = [];
  for (let i = 0; i < 20; i++) {
    placed.push(await tab.ok({ type: 'place_order', table: `B${i}`, lines: [{ item: 'steak-ribeye', qty: 1, mods: ['medium'] }] }));
  }
  const bumped = [before[0], placed[0], placed[5], placed[10], placed[19]];
  for (const r of bumped) await bumper.ok({ type: 'bump', order_id: r.order_id, station: 'grill' });
  const expected = [...before, ...placed]
    .filter((r) => !bumped.includes(r))
    .map((r) => r.ticket)
    .sort((a, b) => a - b);
  assert.equal(expected.length, 17);

  kds.heal();
  await live(kds);
  await waitFor(async () => JSON.stringify(await tickets(kds)) === JSON.stringify(expected), {
    message: `the KDS shows exactly tickets ${expected}`,
    timeout: DEADLINE_MS,
  });
  assert.equal(await kds.locator('#board.stale').count(), 0);
  assert.equal(await kds.locator('#count').innerText(), '17');
  await screenshot(kds, 'kds-after-reconnect');
  await assertClean(kds);
});

test('a KDS whose link stalls greys its board within seconds, and is live and exact again after', async (t) => {
  const [daemon, browser] = await Promise.all([startDaemon({ t }), launchBrowser({ t })]);
  const screen = await daemon.addDevice('kds-grill', 'station', ['grill']);
  const waiter = await daemon.addDevice('tablet-1', 'tablet');
  const kds = await open(browser, daemon, t, 'kds-stall', '/kds?station=grill', screen);
  await live(kds);
  const tab = await Device.connect(daemon, waiter);
  t.after(() => tab.close());
  const first = await tab.ok({ type: 'place_order', table: 'S1', lines: [{ item: 'burger-classic', qty: 1 }] });
  await waitFor(async () => (await tickets(kds)).length === 1, { message: 'the first ticket' });

  // The socket stays open but nothing from the box gets through: no close, no error, so only
  // the box's silence can tell. Within SILENT_MS (6 s) plus a tick the board must say so.
  kds.stall();
  const stalledAt = Date.now();
  await kds.waitForSelector('#conn[data-state="stale"]', { timeout: DEADLINE_MS });
  assert.ok(Date.now() - stalledAt < 12_000, `stale shown after ${Date.now() - stalledAt} ms`);
  assert.equal(await kds.locator('#board.stale').count(), 1, 'a board nobody can vouch for is greyed');
  const second = await tab.ok({ type: 'place_order', table: 'S2', lines: [{ item: 'steak-ribeye', qty: 1, mods: ['medium'] }] });

  kds.unstall();
  await live(kds);
  await waitFor(async () => JSON.stringify(await tickets(kds)) === JSON.stringify([first.ticket, second.ticket]), {
    message: 'both tickets once the link flows again',
    timeout: DEADLINE_MS,
  });
  assert.equal(await kds.locator('#board.stale').count(), 0);
  await assertClean(kds);
});

test('a revoked device is refused and its page says so', async (t) => {
  const [daemon, browser] = await Promise.all([startDaemon({ t }), launchBrowser({ t })]);
  const creds = await daemon.addDevice('tablet-9', 'tablet');
  const tablet = await open(browser, daemon, t, 'tablet-revoked', '/tablet', creds);
  await live(tablet);
  await daemon.cli(['device', 'revoke', '--id', 'tablet-9']);
  const refused = tablet.locator('#refused[data-reason="revoked"]');
  await refused.waitFor();
  assert.match(await tablet.locator('#gate').innerText(), /revoked by a manager/);
  assert.equal(await tablet.locator('#conn').getAttribute('data-state'), 'refused');
  await screenshot(tablet, 'tablet-revoked');

  // Reloading does not get it back in.
  await tablet.reload();
  await refused.waitFor();
  await assertClean(tablet);
});

test('a manager revokes a screen on /admin: its connection is gone within 1 s and it receives nothing after', async (t) => {
  const [daemon, browser] = await Promise.all([startDaemon({ t }), launchBrowser({ t })]);
  const mgr = await daemon.addDevice('mgr-1', 'manager');
  const tabletCreds = await daemon.addDevice('tablet-1', 'tablet');
  const kdsCreds = await daemon.addDevice('kds-grill', 'station', ['grill']);
  const admin = await open(browser, daemon, t, 'admin-revoke', '/admin', mgr);
  await live(admin);

  // The screen, a device in Node on the MQTT port: it follows the events and its board.
  const kds = await Device.connect(daemon, kdsCreds);
  const heard = [];
  let closedAt = null;
  kds.client.on('message', (topic) => heard.push({ topic, at: performance.now() }));
  kds.client.on('close', () => {
    closedAt ??= performance.now();
  });
  await kds.client.subscribeAsync(['docket/v1/events', 'docket/v1/board/grill'], { qos: 1 });
  // It says it is online, as a screen's page does (CBOR text "online", retained).
  await kds.client.publishAsync('docket/v1/devices/kds-grill/presence', Buffer.from([0x66, ...Buffer.from('online')]), {
    qos: 1,
    retain: true,
  });
  const tablet = await Device.connect(daemon, tabletCreds);
  t.after(() => tablet.close());
  await tablet.ok({ type: 'place_order', table: '4', lines: [{ item: 'burger-classic', qty: 1 }] });
  await waitFor(() => heard.some((m) => m.topic === 'docket/v1/events'), {
    message: 'the screen hears the first order',
    timeout: DEADLINE_MS,
  });

  // Revoke, as a manager does: the button, then its confirmation.
  const row = admin.locator('#devices tr[data-device="kds-grill"]');
  await admin.waitForSelector('#devices tr[data-device="kds-grill"][data-presence="online"]');
  const button = row.locator('button.revoke');
  await button.click();
  assert.match(await button.innerText(), /Really revoke kds-grill/);
  // The list refreshes every 2 s; the confirmation waiting on the button survives it.
  const uptime = admin.locator('.kv[data-k="uptime"] dd');
  const shown = await uptime.innerText();
  await waitFor(async () => (await uptime.innerText()) !== shown, { message: 'a refresh' });
  assert.match(await button.innerText(), /Really revoke kds-grill/);
  const clickedAt = performance.now();
  await button.click();
  await waitFor(() => closedAt !== null, { message: 'the revoked screen is cut off', timeout: DEADLINE_MS });
  const took = closedAt - clickedAt;
  assert.ok(took < 1000, `the revoked screen's connection lasted ${Math.round(took)} ms after the confirmation`);
  await admin.waitForSelector('#devices tr[data-device="kds-grill"][data-presence="revoked"]');
  await screenshot(admin, 'admin-revoked');

  // Orders go on; the revoked screen hears none of them.
  const before = heard.length;
  await tablet.ok({ type: 'place_order', table: '5', lines: [{ item: 'burger-classic', qty: 2 }] });
  await new Promise((r) => setTimeout(r, 500));
  assert.equal(heard.length, before, 'the revoked screen received messages after it was cut off');
  assert.ok(heard.every((m) => m.at <= closedAt), 'a message arrived after the cut');
  await assertClean(admin);
});

test('200 open tickets: an update touches only its own card (keyed DOM, no whole-board re-render)', async (t) => {
  const [daemon, browser] = await Promise.all([startDaemon({ t }), launchBrowser({ t })]);
  const screen = await daemon.addDevice('kds-grill', 'station', ['grill']);
  const tab = await Device.connect(daemon, await daemon.addDevice('tablet-1', 'tablet'));
  const bumper = await Device.connect(daemon, await daemon.addDevice('kds-grill-2', 'station', ['grill']));
  t.after(() => Promise.all([tab.close(), bumper.close()]));
  const placed = [];
  for (let i = 0; i < 200; i++) {
    placed.push(await tab.ok({ type: 'place_order', table: `${i}`, lines: [{ item: 'burger-classic', qty: 1 + (i % 3) }] }));
  }
  const kds = await open(browser, daemon, t, 'kds-200', '/kds?station=grill', screen);
  await live(kds);
  await waitFor(async () => (await tickets(kds)).length === 200, { message: '200 tickets shown' });

  // Mark every card element and watch the board for structural changes.
  await kds.evaluate(() => {
    document.querySelectorAll('#board .card').forEach((c) => (c.__mark = c.dataset.order));
    window.__mutations = { added: 0, removed: 0 };
    new MutationObserver((list) => {
      for (const m of list) {
        window.__mutations.added += m.addedNodes.length;
        window.__mutations.removed += m.removedNodes.length;
      }
    }).observe(document.getElementById('board'), { childList: true });
  });
  const gone = placed[100];
  await bumper.ok({ type: 'bump', order_id: gone.order_id, station: 'grill' });
  await kds.locator(`#board .card[data-order="${gone.order_id}"]`).waitFor({ state: 'detached' });
  const changed = await tab.ok({ type: 'add_lines', order_id: placed[7].order_id, lines: [{ item: 'steak-ribeye', qty: 1, mods: ['medium'] }] });
  assert.equal(changed.order_id, placed[7].order_id);
  await kds.locator(`#board .card[data-order="${placed[7].order_id}"] .line.added`).waitFor();

  const result = await kds.evaluate(() => {
    const cards = [...document.querySelectorAll('#board .card')];
    return {
      count: cards.length,
      kept: cards.filter((c) => c.__mark === c.dataset.order).length,
      mutations: window.__mutations,
    };
  });
  assert.equal(result.count, 199);
  // Every card is the same element (the changed one was patched in place); only the bumped one left.
  assert.equal(result.kept, 199, JSON.stringify(result));
  assert.deepEqual(result.mutations, { added: 0, removed: 1 });
  await assertClean(kds);
});
