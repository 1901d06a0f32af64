// What the browser tests share: a page opened as a paired device (with DOCKET_WEB_DIST serving
// another build's scripts and styles), a device in Node that records every event the box
// publishes, the other devices of a small restaurant, adding an item on the tablet page, and
// the virtual kitchen printer as a child process.

import { spawn } from 'node:child_process';
import fsp from 'node:fs/promises';
import path from 'node:path';

import { docketdBin, freePort, newPage, waitFor } from './harness.mjs';
import { Device, decode, topics } from './client.mjs';

const TYPES = { '.js': 'text/javascript', '.css': 'text/css', '.svg': 'image/svg+xml', '.txt': 'text/plain' };

/** Opens `where` (a path like "/expo") as the paired device `creds`. */
export async function open(browser, daemon, t, name, where, creds, viewport = { width: 1280, height: 800 }) {
  const page = await newPage(browser, { name, t, viewport });
  const dist = process.env.DOCKET_WEB_DIST;
  if (dist) {
    // Only the assets: the HTML (the same for every build) comes from the box, so the page
    // stays a page of the box (Chromium's local network checks) and its WebSocket may connect.
    await page.route(/\/assets\/[^?#]+$/, async (route) => {
      const file = new URL(route.request().url()).pathname.slice(1);
      const body = await fsp.readFile(path.join(dist, file));
      await route.fulfill({ body, contentType: TYPES[path.extname(file)] || 'application/octet-stream' });
    });
  }
  await page.goto(`${daemon.siteUrl}${where}#device=${encodeURIComponent(creds.id)}&secret=${creds.secret}`);
  await page.waitForSelector('#conn[data-state="live"]');
  return page;
}

/** A device in Node that records every event the box publishes. */
export async function recorder(daemon, t) {
  const d = await Device.connect(daemon, await daemon.addDevice('expo-rec', 'expo'));
  d.events = [];
  d.client.on('message', (topic, payload) => {
    if (topic === 'docket/v1/events') d.events.push(decode(payload));
  });
  await d.client.subscribeAsync('docket/v1/events', { qos: 1 });
  t.after(() => d.close());
  d.of = (type, orderId) => d.events.filter((e) => e.type === type && (!orderId || e.order_id === orderId));
  return d;
}

/** The other devices of a small restaurant: a tablet, the grill and cold stations, an expo. */
export async function restaurant(daemon, t) {
  const [tab, grill, cold, expo] = await Promise.all([
    daemon.addDevice('tablet-1', 'tablet').then((c) => Device.connect(daemon, c)),
    daemon.addDevice('kds-grill-2', 'station', ['grill']).then((c) => Device.connect(daemon, c)),
    daemon.addDevice('kds-cold-2', 'station', ['cold']).then((c) => Device.connect(daemon, c)),
    daemon.addDevice('expo-2', 'expo').then((c) => Device.connect(daemon, c)),
  ]);
  t.after(() => Promise.all([tab.close(), grill.close(), cold.close(), expo.close()]));
  return { tab, grill, cold, expo };
}


/** Clicks through the tablet's menu categories until the item shows, then adds it to the cart. */
export async function addItem(tablet, item) {
  await tablet.waitForSelector('[data-category]');
  const target = tablet.locator(`[data-item="${item}"]`);
  if (!(await target.isVisible())) {
    for (const cat of await tablet.locator('[data-category]').all()) {
      await cat.click();
      if (await target.isVisible()) break;
    }
  }
  await target.click();
}

/** A device in Node that keeps the latest retained menu (`.menu`); resolves once it has one. */
export async function menuWatch(daemon, t) {
  const d = await Device.connect(daemon, await daemon.addDevice('menu-watch', 'expo'));
  d.menu = null;
  d.client.on('message', (topic, payload) => {
    if (topic === topics.menu) d.menu = decode(payload);
  });
  await d.client.subscribeAsync(topics.menu, { qos: 1 });
  t.after(() => d.close());
  await waitFor(() => d.menu, { message: 'the retained menu' });
  d.item = (id) => d.menu.items.find((i) => i.id === id);
  return d;
}

/**
 * The virtual kitchen printer (`docket-printer`, built beside docketd) on a free port, writing
 * each ticket to `out` (NNNN.txt, NNNN.png). Resolves to {address, out, kill(), tickets()} once
 * it listens; killed when test `t` ends (or with this process).
 */
export async function startPrinter(t, out) {
  const bin = process.env.DOCKET_PRINTER_BIN || path.join(path.dirname(docketdBin()), 'docket-printer');
  const port = await freePort();
  await fsp.mkdir(out, { recursive: true });
  const child = spawn(bin, ['--port', String(port), '--out', out], { stdio: ['ignore', 'pipe', 'inherit'] });
  child.unref();
  const kill = () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  };
  process.once('exit', kill);
  if (t) t.after(kill);
  await new Promise((resolve, reject) => {
    let text = '';
    child.stdout.on('data', (c) => {
      text += c;
      if (text.includes('listening on')) resolve();
    });
    child.once('exit', (code) => reject(new Error(`docket-printer exited (${code}) before listening`)));
    child.once('error', reject);
  });
  child.stdout.resume();
  /** Every NNNN.txt so far, in order: [{file, text}]. */
  const tickets = async () => {
    const names = (await fsp.readdir(out)).filter((f) => /^\d{4}\.txt$/.test(f)).sort();
    return Promise.all(names.map(async (f) => ({ file: f, text: await fsp.readFile(path.join(out, f), 'utf8') })));
  };
  return { address: `127.0.0.1:${port}`, out, kill, tickets, child };
}
