// The waiter's tablet in headless Chromium against the real docketd: taps that land while the
// board moves under them, a void's undo window (and a reload inside it), the layout with 30
// orders, the cart's total and legible labels, and refusals that read at arm's length.

import { test } from 'node:test';
import assert from 'node:assert/strict';

import { assertClean, launchBrowser, newPage, screenshot, startDaemon, waitFor, DEADLINE_MS } from './harness.mjs';
import { Device, decode, topics } from './client.mjs';
import { addItem } from './kit.mjs';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function openTablet(browser, daemon, t, name, creds, viewport) {
  const page = await newPage(browser, { name, t, ...(viewport ? { viewport } : {}) });
  await page.goto(`${daemon.siteUrl}/tablet#device=${encodeURIComponent(creds.id)}&secret=${creds.secret}`);
  await page.waitForSelector('#conn[data-state="live"]');
  await page.waitForSelector('[data-category]');
  return page;
}

/** Places an order through the page; resolves to its order id once "My orders" has its ticket. */
async function placeOrder(page, table, items) {
  const before = await page.locator('#mine > li').count();
  for (const item of items) await addItem(page, item);
  await page.fill('#table', table);
  await page.click('#send');
  const li = page.locator('#mine > li').first();
  return waitFor(
    async () =>
      (await page.locator('#mine > li').count()) > before && (await li.getAttribute('data-status')) !== 'sending' && li.getAttribute('data-order'),
    { message: `the order for table ${table} is placed` },
  );
}

/** An expo device in Node that hears every event (to count what really reached the box). */
async function listener(daemon, t) {
  const creds = await daemon.addDevice('expo-1', 'expo');
  const expo = await Device.connect(daemon, creds);
  t.after(() => expo.close());
  expo.events = [];
  expo.client.on('message', (topic, payload) => {
    if (topic === topics.events) expo.events.push({ ...decode(payload), heardAt: Date.now() });
  });
  await expo.client.subscribeAsync(topics.events, { qos: 1 });
  expo.voids = (device) => expo.events.filter((e) => e.type === 'line_voided' && e.device === device);
  return expo;
}

/**
 * Another tablet placing about 3 orders a second, each completed by the expo half a beat later:
 * six events a second, evenly spread, each of which moves the expo board the tablet follows.
 */
function startLoad(other, expo) {
  let stopped = false;
  let placed = 0;
  const beat = async (began, ms) => sleep(Math.max(0, ms - (Date.now() - began)));
  const done = (async () => {
    while (!stopped) {
      const began = Date.now();
      const r = await other.ok({ type: 'place_order', table: '40', lines: [{ item: 'lemonade', qty: 1 }] });
      await beat(began, 165);
      await expo.ok({ type: 'complete', order_id: r.order_id });
      placed += 1;
      await beat(began, 330);
    }
  })();
  return async () => {
    stopped = true;
    await done;
    return placed;
  };
}

/** A finger's tap: move there, press, hold 120 ms, release. */
async function fingerTap(page, locator) {
  // Aim where the button is now (a page that rebuilds its list may have swapped it meanwhile).
  const box = await waitFor(async () => {
    if (!(await locator.isVisible())) return null;
    // A finger scrolls My orders (it scrolls inside its panel) until the button shows.
    await locator.scrollIntoViewIfNeeded({ timeout: 1000 });
    return locator.boundingBox();
  }, {
    message: `${locator} on screen`,
  });
  await page.mouse.move(box.x + box.width / 2, box.y + box.height / 2);
  await page.mouse.down();
  await sleep(120);
  await page.mouse.up();
}

const lineOf = (page, orderId, nth) => page.locator(`#mine > li[data-order="${orderId}"] .lines > li:nth-child(${nth})`);

test('void taps land while another tablet keeps the board moving: 8 of 8 become line_voided', async (t) => {
  const [daemon, browser] = await Promise.all([startDaemon({ t }), launchBrowser({ t })]);
  const creds = await daemon.addDevice('tablet-1', 'tablet');
  const otherCreds = await daemon.addDevice('tablet-2', 'tablet');
  const expo = await listener(daemon, t);
  const other = await Device.connect(daemon, otherCreds);
  t.after(() => other.close());
  const page = await openTablet(browser, daemon, t, 'tablet-taps', creds);

  const sides = ['fries', 'onion-rings', 'fries-sweet', 'ipa-pint'];
  const a = await placeOrder(page, '7', sides);
  const b = await placeOrder(page, '8', sides);
  await page.locator(`#mine > li[data-order="${b}"] .lines > li:nth-child(4) button.void`).waitFor();

  // What the page saw of each tap, for the failure message.
  await page.evaluate(() => {
    window.__taps = [];
    for (const type of ['pointerdown', 'pointerup', 'click']) {
      document.addEventListener(type, (e) => window.__taps.push(`${type}:${e.target.className}:${e.target.closest('li.line')?.dataset.key}:${e.target.closest('li.order')?.dataset.order}`), true);
    }
  });
  const stopLoad = startLoad(other, expo);
  try {
    await waitFor(() => expo.events.filter((e) => e.device === 'tablet-2').length >= 6, { message: 'the load runs' });
    for (const id of [a, b]) {
      for (let n = 1; n <= 4; n++) {
        await fingerTap(page, lineOf(page, id, n).locator('button.void'));
        await sleep(150);
      }
    }
    // Each void goes when its 5-second undo window ends; the load keeps running meanwhile.
    await waitFor(() => expo.voids('tablet-1').length >= 8, { timeout: 12_000 }).catch(() => {});
  } finally {
    const placed = await stopLoad();
    t.diagnostic(`load: ${placed} other orders placed and completed during the taps`);
  }
  const voided = expo.voids('tablet-1').map((e) => `${e.order.ticket}:${e.order.lines.filter((l) => l.status === 'voided').length}`);
  const taps = await page.evaluate(() => window.__taps);
  assert.equal(voided.length, 8, `8 taps, ${voided.length} line_voided events (ticket:voided lines ${voided}); the page saw ${taps}`);
  await assertClean(page);
});

test('void has a 5-second undo: Undo sends nothing, waiting sends exactly one', async (t) => {
  const [daemon, browser] = await Promise.all([startDaemon({ t }), launchBrowser({ t })]);
  const creds = await daemon.addDevice('tablet-1', 'tablet');
  const expo = await listener(daemon, t);
  const page = await openTablet(browser, daemon, t, 'tablet-undo', creds);
  const id = await placeOrder(page, '5', ['fries', 'onion-rings']);

  // Line 1: void, then Undo within the window.
  await fingerTap(page, lineOf(page, id, 1).locator('button.void'));
  const undo = lineOf(page, id, 1).locator('button.undo');
  await undo.waitFor({ state: 'visible', timeout: 2000 });
  assert.match(await lineOf(page, id, 1).innerText(), /Voiding in [1-5] s/);
  await screenshot(page, 'void-undo');
  await fingerTap(page, undo);
  await lineOf(page, id, 1).locator('button.void').waitFor({ state: 'visible', timeout: 2000 });

  // Line 2: void, and let the window run out. Had line 1's void not been cancelled, its event
  // would have come before this one.
  const tapped = Date.now();
  await fingerTap(page, lineOf(page, id, 2).locator('button.void'));
  await waitFor(() => expo.voids('tablet-1').length >= 1, { timeout: 10_000, message: 'the void of line 2' });
  const [ev] = expo.voids('tablet-1');
  assert.ok(ev.heardAt - tapped >= 4500, `sent ${ev.heardAt - tapped} ms after the tap, inside the undo window`);
  const lines = ev.order.lines;
  assert.deepEqual(lines.map((l) => l.status === 'voided'), [false, true], 'only line 2 is voided');
  await page.locator(`#mine > li[data-order="${id}"] .lines > li.voided`).waitFor();
  // Nothing more comes: a second void of the same line would follow its first at once.
  await page.waitForTimeout(500);
  assert.equal(expo.voids('tablet-1').length, 1, 'exactly one line_voided');
  await assertClean(page);
});

test('a reload inside the undo window keeps the void visibly pending, then sends it once', async (t) => {
  const [daemon, browser] = await Promise.all([startDaemon({ t }), launchBrowser({ t })]);
  const creds = await daemon.addDevice('tablet-1', 'tablet');
  const expo = await listener(daemon, t);
  const page = await openTablet(browser, daemon, t, 'tablet-void-reload', creds);
  const id = await placeOrder(page, '6', ['fries', 'onion-rings']);

  await fingerTap(page, lineOf(page, id, 2).locator('button.void'));
  await lineOf(page, id, 2).locator('button.undo').waitFor({ state: 'visible', timeout: 2000 });
  await page.reload();
  await page.waitForSelector('#conn[data-state="live"]');
  await lineOf(page, id, 2).locator('button.undo').waitFor({ state: 'visible', timeout: 3000 });
  assert.match(await lineOf(page, id, 2).innerText(), /Voiding in [1-5] s/);
  assert.equal(expo.voids('tablet-1').length, 0, 'not sent while the window is open');
  await waitFor(() => expo.voids('tablet-1').length >= 1, { timeout: 10_000, message: 'the void after the reload' });
  await page.locator(`#mine > li[data-order="${id}"] .lines > li:nth-child(2).voided`).waitFor();
  await page.waitForTimeout(500);
  assert.equal(expo.voids('tablet-1').length, 1, 'exactly one line_voided');
  await assertClean(page);
});

/** WCAG contrast of two computed `rgb(…)` colours. */
function contrast(fg, bg) {
  const lum = (c) => {
    const [r, g, b] = c.match(/[\d.]+/g).slice(0, 3).map((v) => {
      const s = Number(v) / 255;
      return s <= 0.03928 ? s / 12.92 : ((s + 0.055) / 1.055) ** 2.4;
    });
    return 0.2126 * r + 0.7152 * g + 0.0722 * b;
  };
  const [hi, lo] = [lum(fg), lum(bg)].sort((x, y) => y - x);
  return (hi + 0.05) / (lo + 0.05);
}

async function legible(locator, what) {
  const s = await locator.evaluate((n) => {
    const cs = getComputedStyle(n);
    return { color: cs.color, bg: cs.backgroundColor, size: parseFloat(cs.fontSize) };
  });
  assert.ok(!/rgba\(0, 0, 0, 0\)|transparent/.test(s.bg), `${what} has its own background (${s.bg})`);
  const ratio = contrast(s.color, s.bg);
  assert.ok(ratio >= 4.5, `${what}: contrast ${ratio.toFixed(2)} (${s.color} on ${s.bg})`);
  assert.ok(s.size >= 18, `${what}: ${s.size} px`);
}

test('30 orders: the page never scrolls, My orders scrolls inside, Send stays on screen, buttons are 44 px', async (t) => {
  const [daemon, browser] = await Promise.all([startDaemon({ t }), launchBrowser({ t })]);
  const creds = await daemon.addDevice('tablet-1', 'tablet');
  const page = await openTablet(browser, daemon, t, 'tablet-30', creds);

  for (let i = 1; i <= 30; i++) {
    await addItem(page, 'fries');
    await addItem(page, 'lemonade');
    await page.fill('#table', i % 3 === 0 ? 'bar-3' : String(i));
    await page.click('#send');
  }
  await waitFor(async () => (await page.locator('#mine > li .ticket').allInnerTexts()).filter((x) => x.startsWith('#')).length === 30, {
    timeout: DEADLINE_MS,
    message: '30 orders placed',
  });
  await page.locator('#mine button.void').first().waitFor();
  // A cart being taken meanwhile, so Send is enabled and the cart has lines.
  await addItem(page, 'fries');
  for (const [w, h] of [
    [1280, 800],
    [1024, 768],
  ]) {
    await page.setViewportSize({ width: w, height: h });
    const m = await page.evaluate(() => {
      const send = document.getElementById('send').getBoundingClientRect();
      const mine = document.getElementById('mine');
      return {
        scroll: document.scrollingElement.scrollHeight,
        inner: innerHeight,
        send: { top: send.top, bottom: send.bottom, left: send.left, right: send.right },
        mineScrolls: mine.scrollHeight > mine.clientHeight,
      };
    });
    assert.ok(m.scroll <= m.inner, `${w}×${h}: the page scrolls (${m.scroll} > ${m.inner})`);
    assert.ok(m.send.top >= 0 && m.send.bottom <= h && m.send.left >= 0 && m.send.right <= w, `${w}×${h}: Send off screen ${JSON.stringify(m.send)}`);
    assert.ok(m.mineScrolls, `${w}×${h}: My orders scrolls inside its panel`);
    await screenshot(page, `mine-30-${w}x${h}`);
  }
  for (const sel of ['#mine button.void', '#mine button.fire']) {
    for (const b of await page.locator(`${sel}:visible`).all()) {
      const box = await b.boundingBox();
      assert.ok(box.width >= 44 && box.height >= 44, `${sel} is ${box.width}×${box.height}`);
    }
  }
  // Tables read as words, never "Tbar-3".
  const tables = await page.locator('#mine > li .table').allInnerTexts();
  assert.ok(tables.includes('Bar 3') && tables.includes('Table 2'), `tables: ${tables.slice(0, 4)}`);
  assert.ok(!tables.some((x) => /^T\w/.test(x) && !/^Table/.test(x)), `tables: ${tables.slice(0, 4)}`);
  await assertClean(page);
});

test('the cart shows its total and modifiers in words; refusals read white on dark red', async (t) => {
  const [daemon, browser] = await Promise.all([startDaemon({ t }), launchBrowser({ t })]);
  const creds = await daemon.addDevice('tablet-1', 'tablet');
  const page = await openTablet(browser, daemon, t, 'tablet-cart', creds);

  // The menu's own prices, read from the item buttons: the total must add them up.
  await addItem(page, 'fries');
  await addItem(page, 'fries');
  await addItem(page, 'lemonade');
  const price = async (id) => Number((await page.locator(`[data-item="${id}"] .price`).innerText()).trim());
  await page.click('[data-category="Sides"]');
  const fries = await price('fries');
  await page.click('[data-category="Drinks"]');
  const lemonade = await price('lemonade');
  const total = async () => (await page.locator('#cart-total').innerText()).trim();
  assert.equal(await total(), `Total ${(2 * fries + lemonade).toFixed(2)}`);
  await page.click('.cart-line[data-line="1"] button[aria-label="more"]');
  assert.equal(await total(), `Total ${(2 * fries + 2 * lemonade).toFixed(2)}`);
  assert.equal((await page.locator('.cart-line[data-line="0"] .mod[data-mod="no-salt"]').innerText()).trim(), 'No salt');
  assert.equal((await page.locator('.cart-line[data-line="1"] .mod[data-mod="no-ice"]').innerText()).trim(), 'No ice');

  // A refusal on the page (no table) and one from the box (a control character in the notes).
  await page.click('#send');
  await legible(page.locator('#cart-error'), 'the cart\'s refusal');
  await page.fill('#table', '9');
  await page.fill('.cart-line[data-line="0"] .notes', 'bell \u0007 here');
  await page.click('#send');
  const refused = page.locator('#mine > li[data-status="rejected"] .error');
  await refused.waitFor();
  await legible(refused, 'a refused order');
  await screenshot(page, 'refusal');
  // The refused order goes back to the cart to be fixed, not typed again.
  await page.click('#mine > li[data-status="rejected"] button.edit');
  assert.equal(await page.locator('#mine > li[data-status="rejected"]').count(), 0);
  assert.equal(await page.locator('.cart-line').count(), 2);
  assert.equal(await page.inputValue('#table'), '9');
  assert.equal(await page.inputValue('.cart-line[data-line="0"] .notes'), 'bell \u0007 here');
  assert.equal(await total(), `Total ${(2 * fries + 2 * lemonade).toFixed(2)}`);
  await page.fill('.cart-line[data-line="0"] .notes', 'bell here');
  await page.click('#send');
  await page.locator('#mine > li[data-status="placed"]').waitFor();
  await assertClean(page);
});

test('a doneness group lets one be chosen: rare then medium sends only medium; Send names what is missing', async (t) => {
  const [daemon, browser] = await Promise.all([startDaemon({ t }), launchBrowser({ t })]);
  const creds = await daemon.addDevice('tablet-1', 'tablet');
  const expo = await listener(daemon, t);
  const page = await openTablet(browser, daemon, t, 'tablet-groups', creds);

  await addItem(page, 'steak-ribeye');
  await page.fill('#table', '4');
  await page.click('#send');
  await waitFor(async () => /Ribeye 300g: choose a Doneness/.test(await page.locator('#cart-error').innerText()), {
    message: 'Send says what is missing',
  });
  assert.equal(await page.locator('.cart-line[data-line="0"]').getAttribute('data-missing'), 'Doneness');
  await screenshot(page, 'missing-choice');
  assert.equal(await page.locator('#mine > li').count(), 0, 'nothing was sent');

  const doneness = page.locator('.cart-line[data-line="0"] .group[data-group="Doneness"]');
  await doneness.locator('.mod[data-mod="rare"]').click();
  await doneness.locator('.mod[data-mod="medium"]').click();
  assert.deepEqual(await doneness.locator('.mod.on').evaluateAll((bs) => bs.map((b) => b.dataset.mod)), ['medium']);
  assert.equal(await page.locator('.cart-line[data-line="0"]').getAttribute('data-missing'), null);
  await page.click('#send');
  await waitFor(() => expo.events.some((e) => e.type === 'order_placed'), { message: 'the order is placed' });
  const placed = expo.events.find((e) => e.type === 'order_placed');
  assert.deepEqual(placed.order.lines[0].mods, ['medium']);
  await assertClean(page);
});

test('an allergy typed on the tablet arrives in the order\'s line, apart from the notes', async (t) => {
  const [daemon, browser] = await Promise.all([startDaemon({ t }), launchBrowser({ t })]);
  const creds = await daemon.addDevice('tablet-1', 'tablet');
  const expo = await listener(daemon, t);
  const page = await openTablet(browser, daemon, t, 'tablet-allergy', creds);

  await addItem(page, 'steak-ribeye');
  await page.locator('.cart-line[data-line="0"] .group[data-group="Doneness"] .mod[data-mod="medium-rare"]').click();
  await page.fill('.cart-line[data-line="0"] .allergy', 'sesame');
  await page.fill('.cart-line[data-line="0"] .notes', 'birthday: candle please');
  await addItem(page, 'fries');
  await page.fill('#table', 'bar-3');
  await screenshot(page, 'cart-group-allergy');
  await page.click('#send');
  await waitFor(() => expo.events.some((e) => e.type === 'order_placed'), { message: 'the order is placed' });
  const [ribeye, fries] = expo.events.find((e) => e.type === 'order_placed').order.lines;
  assert.equal(ribeye.allergy, 'sesame');
  assert.equal(ribeye.notes, 'birthday: candle please');
  assert.equal(fries.allergy, undefined);
  const shown = page.locator('#mine > li .lines > li:nth-child(1) .allergy');
  await waitFor(async () => (await shown.isVisible()) && /sesame/.test(await shown.innerText()), { message: 'My orders shows the allergy' });
  await assertClean(page);
});

test('Rush on an order of mine marks it on every screen, and a second tap clears it', async (t) => {
  const [daemon, browser] = await Promise.all([startDaemon({ t }), launchBrowser({ t })]);
  const creds = await daemon.addDevice('tablet-1', 'tablet');
  const expo = await listener(daemon, t);
  const page = await openTablet(browser, daemon, t, 'tablet-rush', creds);
  const id = await placeOrder(page, '3', ['fries']);

  const button = page.locator(`#mine > li[data-order="${id}"] button.rush`);
  const rushes = () => expo.events.filter((e) => e.type === 'rush_changed').map((e) => !!e.order.rush);
  await fingerTap(page, button);
  await waitFor(() => rushes().length === 1, { message: 'a rush_changed event' });
  assert.deepEqual(rushes(), [true]);
  await page.locator(`#mine > li[data-order="${id}"][data-rush] button.rush[aria-pressed="true"]`).waitFor();
  await screenshot(page, 'rush');
  await fingerTap(page, button);
  await waitFor(() => rushes().length === 2, { message: 'the second rush_changed event' });
  assert.deepEqual(rushes(), [true, false]);
  await page.locator(`#mine > li[data-order="${id}"]:not([data-rush]) button.rush[aria-pressed="false"]`).waitFor();
  await assertClean(page);
});

test('the ready notice names the table in words ("Bar 3", not "table bar-3")', async (t) => {
  const [daemon, browser] = await Promise.all([startDaemon({ t }), launchBrowser({ t })]);
  const creds = await daemon.addDevice('tablet-1', 'tablet');
  const fry = await Device.connect(daemon, await daemon.addDevice('kds-fry', 'station', ['fry']));
  t.after(() => fry.close());
  const page = await openTablet(browser, daemon, t, 'tablet-ready', creds);
  const id = await placeOrder(page, 'bar-3', ['fries']);
  await fry.ok({ type: 'bump', order_id: id, station: 'fry' });
  const notice = page.locator('.toast.ready').first();
  await notice.waitFor();
  assert.match(await notice.innerText(), /#1 · Bar 3 is ready/);
  await assertClean(page);
});

test('a takeaway from a named server with each guest\'s seat: the order carries them, the name stays on the tablet', async (t) => {
  const [daemon, browser] = await Promise.all([startDaemon({ t }), launchBrowser({ t })]);
  const creds = await daemon.addDevice('tablet-1', 'tablet');
  const expo = await listener(daemon, t);
  const page = await openTablet(browser, daemon, t, 'tablet-taken', creds);

  await page.fill('#server', 'Ana');
  await addItem(page, 'burger-veggie');
  await page.selectOption('.cart-line[data-line="0"] select.seat', '2');
  await addItem(page, 'fries');
  await page.selectOption('#service', 'takeaway');
  await page.fill('#table', 'T-17');
  await page.click('#send');
  await waitFor(() => expo.events.some((e) => e.type === 'order_placed'), { message: 'the order is placed' });
  const first = expo.events.find((e) => e.type === 'order_placed').order;
  assert.equal(first.service, 'takeaway');
  assert.equal(first.server, 'Ana');
  assert.deepEqual(first.lines.map((l) => l.seat), [2, undefined]);
  // The next order: dine-in again, the server's name kept (also across a reload), no seats.
  assert.equal(await page.inputValue('#service'), 'dine_in');
  await page.reload();
  await page.waitForSelector('#conn[data-state="live"]');
  assert.equal(await page.inputValue('#server'), 'Ana');
  await addItem(page, 'fries');
  await page.fill('#table', '4');
  await page.click('#send');
  await waitFor(() => expo.events.filter((e) => e.type === 'order_placed').length === 2, { message: 'the second order' });
  const second = expo.events.filter((e) => e.type === 'order_placed')[1].order;
  assert.equal(second.service, undefined);
  assert.equal(second.server, 'Ana');
  await assertClean(page);
});
