// Takes the README's screenshots of the four pages with a realistic service on them (a rush, a
// takeaway, an allergy, a line bumped alone, seats, a server, an item 86'd; /admin with today's
// speed of service, its menu editor and its kitchen printers; expo's printing strip with the
// grill's printer alarm, its screen dark and its printer gone):
//   node tests/browser/screenshots.mjs [OUT_DIR]     (default docs/screenshots)
// A real docketd (DOCKETD_BIN) and headless Chromium, as in the tests. Ages are shortened with
// the KDS's own warn/late parameters so that the colour aging shows in a few seconds.

import path from 'node:path';
import fs from 'node:fs';
import os from 'node:os';
import https from 'node:https';
import { chromium } from 'playwright-core';

import { LAN_HOST, REPO_ROOT, launchBrowser, newPage, startDaemon } from './harness.mjs';
import { Device } from './client.mjs';
import { startPrinter } from './kit.mjs';

const out = path.resolve(process.argv[2] || path.join(REPO_ROOT, 'docs/screenshots'));
fs.mkdirSync(out, { recursive: true });
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const link = (c) => `#device=${c.id}&secret=${c.secret}`;

// The grill's kitchen printer: the virtual one, printing when the grill's screen is dark 2 s.
const printer = await startPrinter(null, fs.mkdtempSync(path.join(os.tmpdir(), 'docket-shots-printer-')));
const printing = `[printing]\nfallback_after_secs = 2\n[[printing.printer]]\nstation = "grill"\naddress = "${printer.address}"\n`;
// As a box runs: plain MQTT and plain HTTP off (the simulated devices use MQTT over TLS).
const daemon = await startDaemon({ name: 'screenshots', siteId: 'demo', plain: false, config: printing });
const browser = await launchBrowser();
try {
  const add = (id, role, st) => daemon.addDevice(id, role, st);
  const [tab, grill, expo, mgr, tab2, fry, expo2] = await Promise.all([
    add('tablet-1', 'tablet'),
    add('kds-grill', 'station', ['grill']),
    add('expo-1', 'expo'),
    add('manager-1', 'manager'),
    add('tablet-2', 'tablet'),
    add('kds-fry', 'station', ['fry']),
    add('expo-2', 'expo'),
  ]);
  const waiter = await Device.connect(daemon, tab2);
  const fryer = await Device.connect(daemon, fry);
  const runner = await Device.connect(daemon, expo2);
  const order = (table, lines, extra = {}) => waiter.ok({ type: 'place_order', table, lines, server: 'Sam', ...extra });

  const page = async (p, c, size = { width: 1280, height: 760 }) => {
    const pg = await newPage(browser, { name: p, viewport: size });
    await pg.goto(`${daemon.siteUrl}${p}${link(c)}`);
    await pg.waitForSelector('#conn[data-state="live"]');
    return pg;
  };
  const kds = await page('/kds?station=grill&warn=0.08&late=0.16', grill);
  const ex = await page('/expo', expo);
  const tablet = await page('/tablet', tab);

  const o1 = await order('4', [
    { item: 'burger-classic', qty: 2, mods: ['medium-rare', 'no-onion'] },
    { item: 'fries', qty: 2, mods: ['extra-crispy'] },
  ]);
  const o2 = await order('7', [
    { item: 'steak-ribeye', qty: 1, mods: ['rare', 'bearnaise'], allergy: 'tree nuts: no shared grill tongs', seat: 1 },
    { item: 'salmon-fillet', qty: 1, mods: ['no-butter'], seat: 2, notes: 'birthday: candle with dessert' },
  ]);
  await sleep(5000);
  // The fries of table 4 are done first, the grill's a little later.
  await fryer.ok({ type: 'bump', order_id: o1.order_id, station: 'fry' });
  const o3 = await order('12', [
    { item: 'burger-veggie', qty: 1, mods: ['vegan-cheese'] },
    { item: 'chicken-grilled', qty: 2 },
    { item: 'fries-sweet', qty: 1 },
  ]);
  await waiter.ok({ type: 'void_line', order_id: o3.order_id, line: 2 });
  // The grill is out of grilled chicken: 86'd from expo (the tablet greys it, the KDS says 86 (1)).
  await runner.ok({ type: 'set_stock', item: 'chicken-grilled', out: true });
  await waiter.ok({ type: 'set_rush', order_id: o3.order_id, rush: true });
  await sleep(3000);
  await order('takeaway', [{ item: 'fish-chips', qty: 3 }, { item: 'burger-bacon', qty: 1, mods: ['well-done'] }], { service: 'takeaway' });
  // An online order, sent down by head office as its integration device: marked with its channel.
  const hq = await Device.connect(daemon, await add('head-office', 'integration'));
  await hq.ok({
    type: 'place_order', table: 'delivery', service: 'delivery', channel: 'Deliveroo', reference: 'DR-4411',
    lines: [{ item: 'burger-classic', qty: 1, mods: ['no-onion'] }, { item: 'wings', qty: 1 }],
  });
  const o5 = await order('9', [{ item: 'steak-ribeye', qty: 2, mods: ['medium'] }]);
  await waiter.ok({ type: 'add_lines', order_id: o5.order_id, lines: [{ item: 'burger-classic', qty: 1, mods: ['rare'] }] });
  // The salmon of table 7 is done before its steak: bumped alone.
  await runner.ok({ type: 'bump_line', order_id: o2.order_id, line: 2 });
  // An earlier table, made and bumped (a ticket time for /admin's speed of service).
  const o0 = await order('21', [{ item: 'burger-veggie', qty: 2 }, { item: 'onion-rings', qty: 1 }]);
  await sleep(4000);
  await runner.ok({ type: 'bump', order_id: o0.order_id, station: 'fry' });
  await sleep(3000);
  await runner.ok({ type: 'bump', order_id: o0.order_id, station: 'grill' });
  await runner.ok({ type: 'complete', order_id: o0.order_id });

  // The tablet: an order being taken, and its sent orders.
  await tablet.click('[data-category="Mains"]');
  await tablet.click('[data-item="burger-classic"]');
  await tablet.click('[data-item="burger-classic"]');
  await tablet.click('.cart-line .mod[data-mod="medium"]');
  await tablet.click('[data-category="Sides"]');
  await tablet.click('[data-item="onion-rings"]');
  await tablet.fill('#table', '15');
  await tablet.fill('#server', 'Ana');
  await tablet.fill('.cart-line[data-line="1"] .notes', 'extra dip on the side');
  await tablet.click('#send');
  await tablet.waitForSelector('#mine > li .ticket:text("#8")');
  await tablet.click('[data-category="Drinks"]');
  await tablet.click('[data-category="Mains"]');
  await tablet.click('[data-item="salmon-fillet"]');
  await tablet.fill('#table', '3');

  // Admin: a device waiting for approval.
  await new Promise((resolve, reject) => {
    const req = https.request(
      `${daemon.siteUrl}/api/pair`,
      { method: 'POST', ca: fs.readFileSync(daemon.caFile), lookup: (_h, _o, cb) => cb(null, [{ address: '127.0.0.1', family: 4 }]) },
      (res) => res.resume().on('end', resolve),
    );
    req.on('error', reject);
    req.end(JSON.stringify({ label: 'bar screen' }));
  });
  const admin = await page('/admin', mgr, { width: 1280, height: 1200 });
  await admin.waitForSelector('#pairings tr[data-code]');
  await admin.waitForSelector('#speed-stations svg');
  await kds.keyboard.press('2');
  await sleep(1200);

  await kds.screenshot({ path: path.join(out, 'kds.png') });
  await ex.screenshot({ path: path.join(out, 'expo.png') });
  await tablet.screenshot({ path: path.join(out, 'tablet.png') });
  await admin.screenshot({ path: path.join(out, 'admin.png') });
  // The menu editor, the grilled chicken 86'd.
  await admin.evaluate(() => {
    document.getElementById('menu').scrollIntoView();
    window.scrollBy(0, -64); // under the fixed header
  });
  await admin.screenshot({ path: path.join(out, 'menu.png') });

  // The grill's screen goes dark and its printer dies: expo's alarm, /admin's printers.
  await kds.close();
  await sleep(3000);
  printer.kill();
  await order('16', [{ item: 'steak-ribeye', qty: 1, mods: ['medium'] }]);
  await ex.waitForSelector('#print-alarms .print-alarm[data-station="grill"]', { timeout: 20_000 });
  await ex.screenshot({ path: path.join(out, 'expo-printing.png') });
  await admin.waitForSelector('#printer-rows tr[data-station="grill"][data-alarm="true"]', { timeout: 10_000 }).catch(() => {});
  await admin.evaluate(() => {
    document.getElementById('printers').scrollIntoView();
    window.scrollBy(0, -64); // under the fixed header
  });
  await admin.screenshot({ path: path.join(out, 'printers.png') });

  // docs/technician.md: the landing page on plain HTTP as a tablet shows it, and what a browser
  // that has not installed the site CA says about the box.
  const trust = await newPage(browser, { name: 'trust', viewport: { width: 800, height: 1280 } });
  await trust.goto(`${daemon.lanUrl}/`);
  await trust.screenshot({ path: path.join(out, 'trust.png'), fullPage: true });
  const stranger = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox', '--disable-dev-shm-usage', `--host-resolver-rules=MAP ${LAN_HOST} 127.0.0.1`],
    env: { ...process.env, HOME: fs.mkdtempSync(path.join(os.tmpdir(), 'docket-stranger-')) },
  });
  try {
    const p = await stranger.newPage({ viewport: { width: 800, height: 600 } });
    await p.goto(`${daemon.siteUrl}/tablet`).catch(() => {});
    await p.screenshot({ path: path.join(out, 'untrusted.png') });
  } finally {
    await stranger.close();
  }
  await Promise.all([waiter.close(), fryer.close(), runner.close()]);
  console.log(`screenshots in ${out}`);
} finally {
  await browser.close();
  await daemon.stop();
  printer.kill();
}
