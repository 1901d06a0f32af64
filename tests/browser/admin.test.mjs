// /admin's speed of service in Chromium against the real docketd: orders placed and bumped by
// other devices show up as ticket times per station, orders per quarter hour and the summary,
// drawn as SVG on the page.

import { test } from 'node:test';
import assert from 'node:assert/strict';

import { assertClean, launchBrowser, newPage, screenshot, startDaemon, waitFor } from './harness.mjs';
import { Device } from './client.mjs';

test('admin shows today\'s speed of service from the orders bumped on the box', async (t) => {
  const [daemon, browser] = await Promise.all([startDaemon({ t }), launchBrowser({ t })]);
  const mgr = await daemon.addDevice('mgr-1', 'manager');
  const tab = await Device.connect(daemon, await daemon.addDevice('tab-1', 'tablet'));
  const grill = await Device.connect(daemon, await daemon.addDevice('kds-grill', 'station', ['grill']));
  const bar = await Device.connect(daemon, await daemon.addDevice('kds-bar', 'station', ['bar']));
  t.after(() => Promise.all([tab.close(), grill.close(), bar.close()]));

  // Three orders, each with a grill and a bar line; grill bumps two, bar one.
  const placed = [];
  for (let i = 1; i <= 3; i++) {
    placed.push(
      await tab.ok({ type: 'place_order', table: String(i), lines: [{ item: 'burger-veggie', qty: 1 }, { item: 'ipa-pint', qty: 1 }] }),
    );
  }
  for (const r of placed.slice(0, 2)) await grill.ok({ type: 'bump', order_id: r.order_id, station: 'grill' });
  await bar.ok({ type: 'bump', order_id: placed[0].order_id, station: 'bar' });

  const page = await newPage(browser, { name: 'admin-speed', t, viewport: { width: 1280, height: 900 } });
  await page.goto(`${daemon.siteUrl}/admin#device=${mgr.id}&secret=${mgr.secret}`);
  await page.waitForSelector('#speed-stations svg g[data-station="grill"]');
  const summary = await page.locator('#speed-summary').innerText();
  assert.match(summary, /^3 orders, 3 station tickets, 0 late/);
  const titles = await page.$$eval('#speed-stations g[data-station] title', (ts) => ts.map((x) => x.textContent));
  assert.equal(titles.length, 2, titles.join(' | '));
  assert.match(titles.find((x) => x.startsWith('grill')), /^grill: 2 tickets/);
  assert.match(titles.find((x) => x.startsWith('bar')), /^bar: 1 tickets/);
  // This quarter hour's bar holds the three orders.
  const buckets = await page.$$eval('#speed-buckets g[data-start] title', (ts) => ts.map((x) => x.textContent));
  assert.ok(buckets.some((x) => /: 3 orders, 3 tickets bumped$/.test(x)), buckets.join(' | '));
  assert.match(await page.locator('#speed-late').innerText(), /None late today/);

  // Another bump reaches the page on its next read (it reads every 30 s; a reload reads now).
  await grill.ok({ type: 'bump', order_id: placed[2].order_id, station: 'grill' });
  await page.reload();
  await waitFor(async () => /^3 orders, 4 station tickets/.test(await page.locator('#speed-summary').innerText()), {
    message: 'the fourth ticket on /admin',
  });
  await screenshot(page, 'admin-speed');
  await assertClean(page);
});
