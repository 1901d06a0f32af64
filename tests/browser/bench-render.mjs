// Browser render latency: a waiter's tap reaching a cook's screen, measured in the real pages.
// docket-load spawns this while it runs its own background load against the same docketd; it
// is also runnable by hand. Headless Chromium (harness.mjs) opens /tablet and /kds?station=S
// under the LAN host name (not a secure context, as in a restaurant), waits until both are live,
// then for DOCKET_SECONDS places orders through the tablet page like a waiter (category, item,
// table, "Send to kitchen"), one or two lines routed to the station, at Poisson arrivals.
//
// Latency of an order = the tablet page handing its place_order command to MQTT publish (mark
// `docket:send`, detail: the command id; appliance/web/src/conn.js) → the KDS page having that
// order's card in the DOM (mark `docket:card`, detail: {command, order}; src/kds.js), both as
// `performance.timeOrigin + mark.startTime` (one browser, one clock). Marks are read and cleared
// every half second. The tablet's IndexedDB outbox write before the publish is not included.
//
//   node tests/browser/bench-render.mjs
//
// Environment:
//   DOCKET_HTTP_PORT     docketd's HTTP port on 127.0.0.1 (required)
//   DOCKET_TABLET_CREDS  `docketd device add` JSON line of a tablet (required)
//   DOCKET_KDS_CREDS     `docketd device add` JSON line of a station screen (required)
//   DOCKET_STATION       the KDS's station, e.g. grill (required; in the KDS's stations)
//   DOCKET_SECONDS       how long to place orders (required)
//   DOCKET_PER_MIN       orders per minute, Poisson arrivals (default 2)
//   DOCKET_MENU_FILE     the daemon's menu, to pick items for the station (default: the built-in
//                        demo menu, appliance/docketd/src/site/demo-menu.toml)
//   CHROMIUM             the browser (default /usr/bin/chromium)
//
// stdout: exactly one JSON line at the end,
//   {"samples_ms":[...],"placed":N,"rendered":M,"unmatched":K,"errors":[...]}
// samples_ms: one latency per order whose card was seen, in placement order; placed: orders sent
// from the tablet page; rendered: those whose card appeared on the KDS (= samples); unmatched:
// placed − rendered (no card, or no send mark, within 10 s after the last order); errors: the
// pages' uncaught errors and console errors. Progress and warnings go to stderr. Exit 0 with the
// line; on a fatal error (bad environment, a page that never gets live, no item for the station)
// a message on stderr and exit 1.

import fs from 'node:fs';
import path from 'node:path';

import { REPO_ROOT, launchBrowser, newPage } from './harness.mjs';

/** A page under heavy background load may need a while to get live, or to take a tap. */
const PAGE_DEADLINE_MS = 60_000;
const DRAIN_MS = 10_000;
const POLL_MS = 500;
const PROGRESS_MS = 5_000;
const MAX_ERRORS = 100;

const say = (msg) => process.stderr.write(`bench-render: ${msg}\n`);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

class Fatal extends Error {}
const fatal = (msg) => {
  throw new Fatal(msg);
};

// ---------------------------------------------------------------------------------------------
// Configuration

function creds(name) {
  const raw = process.env[name];
  if (!raw) fatal(`${name} is not set (a \`docketd device add\` JSON line)`);
  let c;
  try {
    c = JSON.parse(raw);
  } catch (e) {
    fatal(`${name} is not JSON: ${e.message}`);
  }
  if (!c || typeof c.id !== 'string' || !c.id) fatal(`${name} has no "id"`);
  if (typeof c.secret !== 'string' || !/^[0-9a-f]{64}$/i.test(c.secret)) fatal(`${name} has no 64-hex-digit "secret"`);
  return c;
}

function number(name, dflt) {
  const raw = process.env[name];
  if (raw === undefined || raw === '') {
    if (dflt === undefined) fatal(`${name} is not set`);
    return dflt;
  }
  const v = Number(raw);
  if (!Number.isFinite(v) || v <= 0) fatal(`${name}=${raw} is not a positive number`);
  return v;
}

function config() {
  const port = number('DOCKET_HTTP_PORT');
  if (!Number.isInteger(port) || port > 65535) fatal(`DOCKET_HTTP_PORT=${port} is not a port`);
  const tablet = creds('DOCKET_TABLET_CREDS');
  const kds = creds('DOCKET_KDS_CREDS');
  const station = (process.env.DOCKET_STATION || '').trim();
  if (!/^[a-z0-9_-]{1,32}$/.test(station) || station === 'expo') {
    fatal(`DOCKET_STATION=${JSON.stringify(station)} is not a station name`);
  }
  if (tablet.role && tablet.role !== 'tablet') fatal(`DOCKET_TABLET_CREDS is a ${tablet.role}, not a tablet`);
  if (Array.isArray(kds.stations) && !kds.stations.includes(station)) {
    fatal(`DOCKET_KDS_CREDS (${kds.id}) is for stations [${kds.stations}], not ${station}`);
  }
  const seconds = number('DOCKET_SECONDS');
  const perMin = number('DOCKET_PER_MIN', 2);
  const menuFile = process.env.DOCKET_MENU_FILE || path.join(REPO_ROOT, 'appliance/docketd/src/site/demo-menu.toml');
  return { port, tablet, kds, station, seconds, perMin, menuFile, items: stationItems(menuFile, station) };
}

/** The menu's items routed to `station` that a tap orders: [{id, category}] (category as the tablet shows it). */
function stationItems(file, station) {
  let text;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    fatal(`cannot read the menu ${file}: ${e.message}`);
  }
  const field = (block, key) => {
    const m = block.match(new RegExp(`^\\s*${key}\\s*=\\s*"((?:[^"\\\\]|\\\\.)*)"`, 'm'));
    return m ? JSON.parse(`"${m[1]}"`) : undefined;
  };
  const items = text
    .split(/^\s*\[\[items\]\]\s*$/m)
    .slice(1)
    // An item with a required choice (a steak's doneness: a group with min >= 1) needs more
    // than a tap on the tablet: the bench orders only what a tap sends.
    .map((b) => ({ id: field(b, 'id'), station: field(b, 'station'), category: field(b, 'category') || 'other', choice: /^\s*min\s*=\s*[1-9]/m.test(b) }))
    .filter((i) => i.id && i.station === station && !i.choice);
  if (items.length === 0) fatal(`the menu ${file} has no item for station ${station}`);
  return items;
}

// ---------------------------------------------------------------------------------------------
// The pages

async function openLive(browser, name, url) {
  const page = await newPage(browser, { name });
  page.setDefaultTimeout(PAGE_DEADLINE_MS);
  await page.goto(url);
  try {
    await page.waitForSelector('#conn[data-state="live"]');
  } catch {
    const why = await page
      .evaluate(() => {
        const conn = document.getElementById('conn');
        if (document.getElementById('refused')) return `refused: ${document.getElementById('gate').innerText}`;
        if (document.getElementById('pair-code')) return 'it shows a pairing code: the box did not accept the credentials';
        return `badge ${conn ? conn.dataset.state : 'missing'}`;
      })
      .catch((e) => e.message);
    const errors = page.errors.map((e) => e.text).join('; ');
    fatal(`the ${name} page did not get live in ${PAGE_DEADLINE_MS / 1000} s (${why})${errors ? `; page errors: ${errors}` : ''}`);
  }
  return page;
}

/**
 * Records WebSocket frames through the DevTools protocol: MQTT PUBLISH frames the tablet sends
 * and the KDS receives, with their (monotonic, browser-wide) timestamps. `latency(cmd)`: from the
 * tablet's frame carrying command `cmd` (the envelope holds its id) to the KDS's event frame
 * carrying it (the event names its command), in ms; null when either is missing.
 */
async function watchFrames(tablet, kds) {
  const MAX = 20_000;
  const sent = [];
  const received = [];
  const watch = async (page, event, into) => {
    const cdp = await page.context().newCDPSession(page);
    await cdp.send('Network.enable');
    cdp.on(event, (e) => {
      if (e.response.opcode !== 2) return;
      const b = Buffer.from(e.response.payloadData, 'base64');
      if ((b[0] & 0xf0) !== 0x30) return; // PUBLISH only
      if (into.length >= MAX) into.shift();
      into.push([e.timestamp * 1000, b]);
    });
  };
  await watch(tablet, 'Network.webSocketFrameSent', sent);
  await watch(kds, 'Network.webSocketFrameReceived', received);
  const find = (frames, id) => frames.find(([, b]) => b.includes(id));
  return {
    latency(cmd) {
      if (!cmd) return null;
      const id = Buffer.from(cmd);
      const a = find(sent, id);
      const b = find(received, id);
      return a && b ? b[0] - a[0] : null;
    },
  };
}

/** Reads and clears the marks `name` in `page`: [[detail, ms since the epoch]]. */
function drainMarks(page, name) {
  return page.evaluate((n) => {
    const marks = performance.getEntriesByName(n, 'mark');
    performance.clearMarks(n);
    return marks.map((m) => [m.detail, performance.timeOrigin + m.startTime]);
  }, name);
}

/**
 * The KDS page's clock minus the tablet page's (ms), bracketed by two tablet readings: both are
 * in one browser, so this should be 0 within the bracket (the CDP round trips).
 */
async function clockOffset(tablet, kds) {
  const now = (p) => p.evaluate(() => performance.timeOrigin + performance.now());
  let best = null;
  for (let i = 0; i < 5; i++) {
    const a = await now(tablet);
    const b = await now(kds);
    const c = await now(tablet);
    const est = { offset: b - (a + c) / 2, within: (c - a) / 2 };
    if (!best || est.within < best.within) best = est;
  }
  return best;
}

// ---------------------------------------------------------------------------------------------
// The run

const pct = (sorted, p) => (sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] : NaN);

async function run(cfg, browser) {
  const base = `http://docket-box.test:${cfg.port}`;
  const fragment = (c) => `#device=${encodeURIComponent(c.id)}&secret=${c.secret.toLowerCase()}`;
  const [tablet, kds] = await Promise.all([
    openLive(browser, 'tablet', `${base}/tablet${fragment(cfg.tablet)}`),
    openLive(browser, 'kds', `${base}/kds?station=${cfg.station}${fragment(cfg.kds)}`),
  ]);
  say(`tablet ${cfg.tablet.id} and KDS ${cfg.kds.id} (${cfg.station}) are live on ${base}`);

  // The items the waiter taps: those of the station that the tablet's menu really shows.
  await tablet.waitForSelector('[data-category]');
  let category = null;
  const showCategory = async (c) => {
    if (c === category) return;
    await tablet.click(`[data-category="${c.replace(/["\\]/g, '\\$&')}"]`);
    category = c;
  };
  const items = [];
  for (const item of cfg.items) {
    if ((await tablet.locator(`[data-category="${item.category.replace(/["\\]/g, '\\$&')}"]`).count()) === 0) continue;
    await showCategory(item.category);
    if ((await tablet.locator(`[data-item="${item.id}"]`).count()) > 0) items.push(item);
  }
  if (items.length === 0) fatal(`the tablet's menu shows none of ${cfg.items.map((i) => i.id)} (station ${cfg.station})`);
  say(`ordering ${items.map((i) => i.id).join(', ')}`);

  const wire = await watchFrames(tablet, kds);
  const skew = await clockOffset(tablet, kds);
  say(`clock check: KDS − tablet = ${skew.offset.toFixed(3)} ms (± ${skew.within.toFixed(3)})`);
  // Only marks made from now on count.
  await Promise.all([drainMarks(tablet, 'docket:send'), drainMarks(kds, 'docket:card')]);

  /** Orders placed, in order: {cmd, sent (ms) | null, card (ms) | null}. */
  const placed = [];
  const byCmd = new Map();
  /** Cards whose send mark has not been read yet: cmd → {t, seen}. Kept at most 30 s. */
  const cardsWaiting = new Map();
  const samples = [];

  const match = (o) => {
    if (o.sample !== undefined || o.sent == null || o.card == null) return;
    o.sample = o.card - o.sent;
    samples.push(o.sample);
  };
  let polling = null;
  const poll = async () => {
    // The tablet first, so a card's send mark is read in this poll or an earlier one, unless
    // the order went out in between (then the card waits in `cardsWaiting` for the next poll).
    const sends = await drainMarks(tablet, 'docket:send');
    const cards = await drainMarks(kds, 'docket:card');
    const now = Date.now();
    for (const [cmd, t] of sends) {
      let o = byCmd.get(cmd);
      if (!o) {
        // Sent before the script read its id from the page: filled in by `placeOrder`.
        o = { cmd, sent: null, card: null };
        byCmd.set(cmd, o);
      }
      o.sent = t;
      const w = cardsWaiting.get(cmd);
      if (w) {
        o.card = w.t;
        cardsWaiting.delete(cmd);
      }
      match(o);
    }
    for (const [detail, t] of cards) {
      const cmd = detail && detail.command;
      const o = byCmd.get(cmd);
      if (o) {
        if (o.card == null) o.card = t;
        match(o);
      } else {
        // Another device's order (the background load), or ours with its send mark still unread.
        cardsWaiting.set(cmd, { t, seen: now });
      }
    }
    for (const [cmd, w] of cardsWaiting) {
      if (now - w.seen > 30_000 || cardsWaiting.size > 50_000) cardsWaiting.delete(cmd);
      else break; // insertion order: the rest are newer
    }
  };
  const pollSafe = () => {
    if (!polling) {
      polling = poll()
        .catch((e) => say(`reading marks failed: ${e.message}`))
        .finally(() => (polling = null));
    }
    return polling;
  };
  const poller = setInterval(pollSafe, POLL_MS);

  const rand = (n) => Math.floor(Math.random() * n);
  async function placeOrder() {
    // One or two lines of the station's items, each 1 or 2 (a second tap counts it up).
    const lines = [items[rand(items.length)]];
    if (items.length > 1 && Math.random() < 0.5) {
      let second;
      do second = items[rand(items.length)];
      while (second === lines[0]);
      lines.push(second);
    }
    for (const item of lines) {
      await showCategory(item.category);
      const taps = Math.random() < 0.3 ? 2 : 1;
      for (let i = 0; i < taps; i++) await tablet.click(`[data-item="${item.id}"]`);
    }
    await tablet.fill('#table', String(1 + rand(40)));
    await tablet.click('#send');
    // The cart empties once the order is in the outbox and handed to the link.
    await tablet.waitForFunction(() => document.querySelectorAll('#cart > li').length === 0);
    const err = (await tablet.locator('#cart-error').innerText()).trim();
    if (err) fatal(`the tablet refused to send: ${err}`);
    const cmd = await tablet.locator('#mine > li').first().getAttribute('data-cmd');
    let o = byCmd.get(cmd);
    if (!o) {
      o = { cmd, sent: null, card: null };
      byCmd.set(cmd, o);
    }
    placed.push(o);
  }

  // Poisson arrivals: exponential gaps; an order due while the previous one is still being
  // tapped in is placed right after it, but none after DOCKET_SECONDS (a page too busy to keep
  // up places fewer orders rather than running over).
  const meanGap = 60_000 / cfg.perMin;
  const start = Date.now();
  const end = start + cfg.seconds * 1000;
  let due = start;
  let late = 0;
  let skipped = 0;
  let tapping = 0; // ms spent tapping orders in
  let lastProgress = start;
  const progress = () => {
    const s = [...samples].sort((a, b) => a - b);
    say(
      `${((Date.now() - start) / 1000).toFixed(0)} s: placed ${placed.length}, rendered ${samples.length}` +
        (s.length ? `, p50 ${pct(s, 50).toFixed(1)} ms, max ${s[s.length - 1].toFixed(1)} ms` : ''),
    );
  };
  say(`placing orders for ${cfg.seconds} s at ${cfg.perMin}/min (Poisson)`);
  for (;;) {
    due += -Math.log(1 - Math.random()) * meanGap;
    if (due >= end) break;
    if (Date.now() >= end) {
      skipped += 1;
      continue;
    }
    const wait = due - Date.now();
    if (wait > 0) await sleep(wait);
    else if (wait < -1000) late += 1;
    const t0 = Date.now();
    await placeOrder();
    tapping += Date.now() - t0;
    if (Date.now() - lastProgress >= PROGRESS_MS) {
      lastProgress = Date.now();
      progress();
    }
  }
  if (Date.now() < end) await sleep(end - Date.now());
  if (placed.length) say(`tapping an order in took ${(tapping / placed.length).toFixed(0)} ms on average`);
  if (late) say(`${late} orders were placed over 1 s after their arrival time (the tablet page was busy)`);
  if (skipped) say(`${skipped} orders due before the end were not placed: the tablet page could not keep up`);

  // Drain: every order's card, or give up after DRAIN_MS.
  const drainEnd = Date.now() + DRAIN_MS;
  for (;;) {
    await pollSafe();
    await pollSafe(); // a poll that was already under way may have read before the last marks
    if (placed.every((o) => o.sample !== undefined) || Date.now() >= drainEnd) break;
    await sleep(100);
  }
  clearInterval(poller);
  progress();

  const end2 = await clockOffset(tablet, kds);
  if (Math.abs(end2.offset) > end2.within + 1 || Math.abs(skew.offset) > skew.within + 1) {
    say(`WARNING: the pages' clocks disagree (KDS − tablet: ${skew.offset.toFixed(3)} ms at the start, ${end2.offset.toFixed(3)} ms at the end); samples are not corrected`);
  }

  const missing = placed.filter((o) => o.sample === undefined);
  for (const o of missing.slice(0, 10)) {
    say(`no sample for command ${o.cmd}: ${o.sent == null ? 'no send mark' : 'no card on the KDS'}`);
  }
  const errors = [];
  for (const p of [tablet, kds]) {
    for (const e of p.errors) errors.push(`${p.docketName}: ${e.type === 'pageerror' ? 'page error' : 'console error'}: ${e.text}`);
    for (const e of p.secureApiTouched) errors.push(`${p.docketName}: secure-context API: ${e.split('\n')[0]}`);
  }
  const shown = errors.slice(0, MAX_ERRORS);
  if (errors.length > MAX_ERRORS) shown.push(`… and ${errors.length - MAX_ERRORS} more`);
  const rendered = placed.filter((o) => o.sample !== undefined);
  // Where the time goes, per order: the wire part (the tablet's WebSocket frame leaving Blink →
  // the KDS's event frame arriving in Blink: Chromium's network service on both sides, the box
  // through its WebSocket bridge) and the pages' part (the rest: the tablet's JS before its
  // frame, the KDS's decode and render after its frame).
  const parts = { wire: [], pages: [] };
  for (const o of rendered) {
    const w = wire.latency(o.cmd);
    if (w == null) continue;
    parts.wire.push(w);
    parts.pages.push(o.sample - w);
  }
  if (parts.wire.length) {
    const desc = (a) => {
      const s = [...a].sort((x, y) => x - y);
      const mean = s.reduce((x, y) => x + y, 0) / s.length;
      return `mean ${mean.toFixed(2)}, p50 ${pct(s, 50).toFixed(2)}, max ${s[s.length - 1].toFixed(2)} ms`;
    };
    say(`where the time goes (${parts.wire.length} orders): wire (tablet frame out → box → KDS frame in, Chromium's network service included) ${desc(parts.wire)}; pages (tablet JS before its frame + KDS decode and render after its) ${desc(parts.pages)}`);
  }
  return {
    samples_ms: rendered.map((o) => Math.round(o.sample * 1000) / 1000),
    placed: placed.length,
    rendered: rendered.length,
    unmatched: missing.length,
    errors: shown,
  };
}

async function main() {
  let browser;
  let code = 0;
  try {
    const cfg = config();
    browser = await launchBrowser();
    const result = await run(cfg, browser);
    await new Promise((resolve) => process.stdout.write(`${JSON.stringify(result)}\n`, resolve));
  } catch (e) {
    say(`FATAL: ${e instanceof Fatal ? e.message : e.stack || e}`);
    code = 1;
  }
  if (browser) await browser.close().catch(() => {});
  process.exit(code);
}

main();
