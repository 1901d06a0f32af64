// The kitchen pages (KDS and expo) in headless Chromium against the real docketd, for what a
// kitchen at 8 pm would hit: completing an order that is not all ready, a tap while other orders
// finish, thirty open orders on a 1280×800 expo, the bump bar's keys, allergies, and codes shown
// as words. Other devices (a waiter's tablet, another station, another expo) are simulated in
// Node (client.mjs) and every box event is recorded, so a test sees exactly what reached the box.
//
// DOCKET_WEB_DIST=<a built appliance/web/dist> serves the pages' scripts and styles from that
// directory instead of the copy embedded in docketd (the HTML still comes from the box): to run
// these tests against another build of the pages (the previous commit's, say) without
// rebuilding the daemon.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fsp from 'node:fs/promises';
import path from 'node:path';

import { assertClean, launchBrowser, screenshot, startDaemon, waitFor, DEADLINE_MS } from './harness.mjs';
import { open, recorder, restaurant } from './kit.mjs';

const card = (page, ticket) => page.locator(`#board .card[data-ticket="${ticket}"]`);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// Reads `fn(element)` again while the element `locator` found was replaced before the read (a
// line's content is rebuilt when what it shows changes, e.g. once the menu's allergen tags
// arrive): a detached node has empty computed styles. `fn` returns null for a detached node.
const readLive = (locator, fn) =>
  waitFor(async () => {
    const v = await locator.evaluate(fn);
    return v === null ? null : { v };
  }).then((got) => got.v);

async function saveShot(page, name) {
  const file = await screenshot(page, name);
  if (process.env.KITCHEN_SHOTS) {
    await fsp.mkdir(process.env.KITCHEN_SHOTS, { recursive: true });
    await fsp.copyFile(file, path.join(process.env.KITCHEN_SHOTS, `${name}.png`));
  }
  return file;
}

test('expo: completing an order that is not all ready asks first, naming what is not made', async (t) => {
  const [daemon, browser] = await Promise.all([startDaemon({ t }), launchBrowser({ t })]);
  const { tab, grill } = await restaurant(daemon, t);
  const rec = await recorder(daemon, t);
  const expo = await open(browser, daemon, t, 'expo-early', '/expo', await daemon.addDevice('expo-1', 'expo'));

  // Table 4: the burger is made, the dessert (course 2) is still held.
  const o = await tab.ok({
    type: 'place_order',
    table: '4',
    lines: [
      { item: 'burger-classic', qty: 1 },
      { item: 'cheesecake', qty: 1, course: 2 },
    ],
  });
  await grill.ok({ type: 'bump', order_id: o.order_id, station: 'grill' });
  const c = card(expo, o.ticket);
  await c.locator('.station[data-station="grill"][data-state="ready"]').waitFor();
  const button = c.locator('button.complete');
  assert.equal((await button.innerText()).trim(), 'Complete (not all ready)');

  // One tap: a question naming what is not made, and nothing sent.
  await button.click();
  const ask = c.locator('.ask');
  await ask.waitFor({ state: 'visible', timeout: 3000 });
  assert.equal(
    (await ask.locator('.ask-text').innerText()).trim(),
    `Table 4 #${o.ticket}: 1 New York Cheesecake (course 2) not made. Complete anyway?`,
  );
  await saveShot(expo, 'expo-complete-early-confirm');
  await sleep(1000);
  assert.equal(rec.of('order_completed').length, 0, 'one tap completed the order');
  assert.equal(JSON.parse((await daemon.get('/healthz')).body).open_orders, 1);

  // Cancel keeps it; asking again and confirming completes it, once.
  await ask.locator('.ask-cancel').click();
  await ask.waitFor({ state: 'hidden' });
  await button.click();
  await ask.waitFor({ state: 'visible' });
  await sleep(700);
  await ask.locator('.ask-confirm').click();
  await waitFor(() => rec.of('order_completed', o.order_id).length === 1, { message: 'order_completed after the confirm' });
  await c.waitFor({ state: 'detached' });
  await sleep(300);
  assert.equal(rec.of('order_completed').length, 1, 'completed exactly once');
  await assertClean(expo);
});

test('expo: Complete on a ready order waits 5 s with an undo before it reaches the box', async (t) => {
  const [daemon, browser] = await Promise.all([startDaemon({ t }), launchBrowser({ t })]);
  const { tab, grill } = await restaurant(daemon, t);
  const rec = await recorder(daemon, t);
  const expo = await open(browser, daemon, t, 'expo-undo', '/expo', await daemon.addDevice('expo-1', 'expo'));
  const o = await tab.ok({ type: 'place_order', table: '7', lines: [{ item: 'burger-classic', qty: 2 }] });
  await grill.ok({ type: 'bump', order_id: o.order_id, station: 'grill' });
  const c = card(expo, o.ticket);
  await c.locator('button.complete.primary').waitFor();

  // Tap, then Undo: nothing reaches the box and the card is as before.
  await c.locator('button.complete').click();
  await waitFor(async () => /^Undo/.test(await c.locator('button.complete').innerText()), { timeout: 3000, message: 'the button offers Undo' });
  await sleep(700);
  await c.locator('button.complete').click();
  await waitFor(async () => (await c.locator('button.complete').innerText()).trim() === 'Complete', { message: 'undone' });
  await sleep(5500);
  assert.equal(rec.of('order_completed').length, 0, 'an undone Complete reached the box');

  // Tap and leave it: completed once, after the undo window.
  const tapped = Date.now();
  await c.locator('button.complete').click();
  await waitFor(() => rec.of('order_completed', o.order_id).length === 1, { message: 'completed after the undo window' });
  assert.ok(Date.now() - tapped >= 4500, `completed ${Date.now() - tapped} ms after the tap`);
  await c.waitFor({ state: 'detached' });
  await assertClean(expo);
});

test('expo: a tap held while the card to its left is completed elsewhere lands on its own card', async (t) => {
  const [daemon, browser] = await Promise.all([startDaemon({ t }), launchBrowser({ t })]);
  const { tab, grill, expo: other } = await restaurant(daemon, t);
  const rec = await recorder(daemon, t);
  const expo = await open(browser, daemon, t, 'expo-press', '/expo', await daemon.addDevice('expo-1', 'expo'));
  const orders = [];
  for (const table of ['1', '2', '3']) {
    const o = await tab.ok({ type: 'place_order', table, lines: [{ item: 'burger-classic', qty: 1 }] });
    await grill.ok({ type: 'bump', order_id: o.order_id, station: 'grill' });
    orders.push(o);
  }
  const [A, B, C] = orders;
  for (const o of orders) await card(expo, o.ticket).locator('button.complete.primary').waitFor();
  const boxA = await card(expo, A.ticket).boundingBox();
  const boxB = await card(expo, B.ticket).boundingBox();
  assert.ok(boxA.x < boxB.x && Math.abs(boxA.y - boxB.y) < 2, 'A is left of B');

  // A finger on B's Complete: press, A is completed by the other expo, release.
  const btn = await card(expo, B.ticket).locator('button.complete').boundingBox();
  await expo.mouse.move(btn.x + btn.width / 2, btn.y + btn.height / 2);
  await expo.mouse.down();
  await other.ok({ type: 'complete', order_id: A.order_id });
  await waitFor(async () => (await expo.locator('#count').innerText()) === '2', { message: 'the page heard that A is done' });
  await sleep(120);
  await expo.mouse.up();

  // B's Complete was tapped (its undo window runs), and only B; nothing else happened.
  await waitFor(() => rec.of('order_completed', B.order_id).length === 1, { timeout: DEADLINE_MS, message: "B's Complete reached the box" });
  await card(expo, A.ticket).waitFor({ state: 'detached' });
  await sleep(300);
  assert.deepEqual(
    rec.events.filter((e) => e.seq > 6).map((e) => [e.type, e.order_id]),
    [
      ['order_completed', A.order_id],
      ['order_completed', B.order_id],
    ],
  );
  assert.equal(await card(expo, C.ticket).locator('button.complete.primary').count(), 1, 'C untouched');
  await assertClean(expo);
});

test('KDS: a Bump held while the card to its left is bumped elsewhere bumps its own card', async (t) => {
  const [daemon, browser] = await Promise.all([startDaemon({ t }), launchBrowser({ t })]);
  const { tab, grill } = await restaurant(daemon, t);
  const rec = await recorder(daemon, t);
  const kds = await open(browser, daemon, t, 'kds-press', '/kds?station=grill', await daemon.addDevice('kds-grill', 'station', ['grill']));
  const orders = [];
  for (const table of ['1', '2', '3']) orders.push(await tab.ok({ type: 'place_order', table, lines: [{ item: 'burger-classic', qty: 1 }] }));
  const [A, B, C] = orders;
  for (const o of orders) await card(kds, o.ticket).waitFor();
  const btn = await card(kds, B.ticket).locator('button.bump').boundingBox();
  await kds.mouse.move(btn.x + btn.width / 2, btn.y + btn.height / 2);
  await kds.mouse.down();
  await grill.ok({ type: 'bump', order_id: A.order_id, station: 'grill' });
  await waitFor(async () => (await kds.locator('#count').innerText()) === '2', { message: 'the page heard that A is bumped' });
  await sleep(120);
  await kds.mouse.up();
  await waitFor(() => rec.of('ticket_bumped').length === 2, { message: 'two bumps' });
  await sleep(300);
  assert.deepEqual(
    rec.events.filter((e) => e.seq > 3).map((e) => [e.type, e.order_id, e.device]),
    [
      ['ticket_bumped', A.order_id, 'kds-grill-2'],
      ['ticket_bumped', B.order_id, 'kds-grill'],
    ],
  );
  await card(kds, C.ticket).waitFor();
  assert.equal(await kds.locator('#board .card').count(), 1, 'only C is left');
  await assertClean(kds);
});

test('expo: 30 open orders on 1280×800 keep the header and every Complete button reachable', async (t) => {
  const [daemon, browser] = await Promise.all([startDaemon({ t }), launchBrowser({ t })]);
  const { tab } = await restaurant(daemon, t);
  const items = ['burger-classic', 'fries', 'salad-caesar', 'ipa-pint', 'steak-ribeye', 'onion-rings', 'cheesecake'];
  for (let i = 0; i < 30; i++) {
    // Every third order is a table of eight: a long card.
    const n = i % 3 === 0 ? 8 : 2 + (i % 3);
    const lines = Array.from({ length: n }, (_, k) => ({ item: items[(i + k) % items.length], qty: 1 + ((i + k) % 2) }));
    for (const l of lines) if (l.item === 'burger-classic') l.mods = ['no-onion', 'gluten-free-bun'];
    for (const l of lines) if (l.item === 'steak-ribeye') l.mods = ['medium'];
    if (i % 5 === 0) lines[0].notes = 'no salt please';
    await tab.ok({ type: 'place_order', table: String(i + 1), lines });
  }
  const expo = await open(browser, daemon, t, 'expo-30', '/expo', await daemon.addDevice('expo-1', 'expo'));
  await waitFor(async () => (await expo.locator('#board .card').count()) === 30, { message: '30 cards' });
  await saveShot(expo, 'expo-30-orders');

  const header = async () => (await expo.locator('body > header').boundingBox()).y;
  const inView = async (loc) => {
    const b = await loc.boundingBox();
    return b && b.y >= 0 && b.y + b.height <= 800 && b.x >= 0 && b.x + b.width <= 1280;
  };
  assert.equal(await header(), 0);
  const cards = expo.locator('#board .card');
  const firstRow = [];
  const y0 = (await cards.nth(0).boundingBox()).y;
  for (let i = 0; i < 30; i++) {
    const b = await cards.nth(i).boundingBox();
    if (Math.abs(b.y - y0) > 2) break;
    firstRow.push(i);
  }
  assert.ok(firstRow.length >= 3, `${firstRow.length} cards in the first row`);
  for (const i of firstRow) assert.ok(await inView(cards.nth(i).locator('button.complete')), `card ${i + 1}'s Complete is on screen`);
  // The button is at the same place on every card, however long its order.
  const offsets = [];
  for (let i = 0; i < 30; i++) {
    offsets.push(await cards.nth(i).evaluate((c) => c.querySelector('button.complete').getBoundingClientRect().top - c.getBoundingClientRect().top));
  }
  assert.ok(Math.max(...offsets) - Math.min(...offsets) < 2, `Complete button offsets ${offsets.map(Math.round)}`);

  // The board scrolls by itself: the last card's button comes into view, the header stays.
  await expo.locator('#board').evaluate((b) => (b.scrollTop = b.scrollHeight));
  const last = cards.nth(29).locator('button.complete');
  await last.scrollIntoViewIfNeeded();
  assert.ok(await inView(last), "the last card's Complete is on screen");
  assert.equal(await header(), 0, 'the header stayed');
  assert.equal(await expo.evaluate(() => document.scrollingElement.scrollTop), 0, 'the page body did not scroll');
  assert.ok((await expo.locator('#board').evaluate((b) => b.scrollTop)) > 0, 'the board panel scrolled');
  await assertClean(expo);
});

test('KDS: each card shows the bump bar key that selects it, and the hint is readable', async (t) => {
  const [daemon, browser] = await Promise.all([startDaemon({ t }), launchBrowser({ t })]);
  const { tab } = await restaurant(daemon, t);
  const rec = await recorder(daemon, t);
  const placed = [];
  for (let i = 0; i < 5; i++) placed.push(await tab.ok({ type: 'place_order', table: String(10 + i), lines: [{ item: 'burger-classic', qty: 1 }] }));
  const kds = await open(browser, daemon, t, 'kds-keys', '/kds?station=grill', await daemon.addDevice('kds-grill', 'station', ['grill']));
  await waitFor(async () => (await kds.locator('#board .card').count()) === 5, { message: '5 cards' });

  // The card labelled 3, read from the page.
  const labelled = kds.locator('#board .card').filter({ has: kds.locator('.key', { hasText: /^3$/ }) });
  assert.equal(await labelled.count(), 1, 'one card shows the key 3');
  const id = await labelled.getAttribute('data-order');
  const size = await labelled.locator('.key').evaluate((e) => parseFloat(getComputedStyle(e).fontSize));
  assert.ok(size >= 24, `key number ${size}px`);
  await kds.keyboard.press('3');
  await kds.locator(`#board .card.selected[data-order="${id}"]`).waitFor();
  assert.equal(await kds.locator('#board .card.selected').count(), 1);
  await kds.keyboard.press('Enter');
  await waitFor(() => rec.of('ticket_bumped').length === 1, { message: 'a bump' });
  assert.equal(rec.of('ticket_bumped')[0].order_id, id, 'the card labelled 3 was bumped');
  await kds.locator(`#board .card[data-order="${id}"]`).waitFor({ state: 'detached' });

  // The keys follow the cards: 1–4 in order again.
  await waitFor(async () => JSON.stringify(await kds.locator('#board .card .key').allInnerTexts()) === '["1","2","3","4"]', {
    message: 'cards renumbered 1–4',
  });

  // The hint: at least 18 px, light on the dark page.
  const hint = await kds.locator('.key-hint').evaluate((e) => {
    const s = getComputedStyle(e);
    return { size: parseFloat(s.fontSize), color: s.color, text: e.innerText };
  });
  assert.ok(hint.size >= 18, `hint ${hint.size}px`);
  assert.equal(hint.color, 'rgb(255, 255, 255)');
  assert.match(hint.text, /Enter/);
  await assertClean(kds);
});

test('KDS and expo show modifiers and tables in words, item names big on the KDS', async (t) => {
  const [daemon, browser] = await Promise.all([startDaemon({ t }), launchBrowser({ t })]);
  const { tab } = await restaurant(daemon, t);
  const o = await tab.ok({
    type: 'place_order',
    table: 'bar-3',
    lines: [{ item: 'burger-classic', qty: 1, mods: ['no-onion', 'gluten-free-bun'], notes: 'birthday: candle please' }],
  });
  const kds = await open(browser, daemon, t, 'kds-words', '/kds?station=grill', await daemon.addDevice('kds-grill', 'station', ['grill']));
  const expo = await open(browser, daemon, t, 'expo-words', '/expo', await daemon.addDevice('expo-1', 'expo'));
  for (const page of [kds, expo]) {
    const c = card(page, o.ticket);
    await c.waitFor();
    assert.equal((await c.locator('.table').innerText()).trim(), 'Bar 3');
    const text = await c.locator('.lines').innerText();
    assert.match(text, /No onion/);
    assert.match(text, /Gluten-free bun/);
    assert.doesNotMatch(text, /no-onion|gluten-free-bun/);
    assert.match(text, /birthday: candle please/);
  }
  const name = await card(kds, o.ticket).locator('.line .name').evaluate((e) => parseFloat(getComputedStyle(e).fontSize));
  assert.ok(name >= 22, `item name ${name}px on the KDS`);
  for (const page of [kds, expo]) await assertClean(page);
});

test('KDS and expo: a guest allergy is an alarm, whole; a note is plain text', async (t) => {
  const [daemon, browser] = await Promise.all([startDaemon({ t }), launchBrowser({ t })]);
  const { tab } = await restaurant(daemon, t);
  const long = 'severe nut allergy: no peanuts, no tree nuts, no nut oils; EpiPen at the table';
  const items = ['burger-classic', 'salmon-fillet', 'chicken-grilled', 'burger-veggie'];
  const placed = [];
  for (let i = 0; i < 10; i++) {
    const lines = [{ item: items[i % 4], qty: 1 + (i % 2) }, { item: items[(i + 1) % 4], qty: 1 }];
    if (i === 2) lines[0].allergy = 'sesame';
    if (i === 2) lines[1].allergy = long;
    if (i === 4) lines[0].notes = 'birthday: candle please';
    placed.push(await tab.ok({ type: 'place_order', table: String(i + 1), lines }));
  }
  const alarm = placed[2];
  const noted = placed[4];
  const kds = await open(browser, daemon, t, 'kds-allergy', '/kds?station=grill', await daemon.addDevice('kds-grill', 'station', ['grill']));
  const expo = await open(browser, daemon, t, 'expo-allergy', '/expo', await daemon.addDevice('expo-1', 'expo'));
  await waitFor(async () => (await kds.locator('#board .card').count()) === 10, { message: '10 cards on the KDS' });
  await saveShot(kds, 'kds-10-orders-allergy');
  assert.deepEqual(await kds.locator('#board .card .key').allInnerTexts(), ['1', '2', '3', '4', '5', '6', '7', '8', '9', '0']);

  for (const page of [kds, expo]) {
    const a = card(page, alarm.ticket);
    await a.waitFor();
    const blocks = a.locator('.allergy');
    assert.equal(await blocks.count(), 2, `${page.docketName}: two allergy alarms`);
    assert.equal((await blocks.nth(0).innerText()).trim(), '⚠ ALLERGY: sesame');
    const looks = await readLive(blocks.nth(1), (e) => {
      if (!e.isConnected) return null;
      const s = getComputedStyle(e);
      return {
        text: e.innerText,
        bg: s.backgroundColor,
        color: s.color,
        weight: Number(s.fontWeight),
        clipped: e.scrollWidth > e.clientWidth || e.scrollHeight > e.clientHeight || s.textOverflow === 'ellipsis',
      };
    });
    assert.equal(looks.text.trim(), `⚠ ALLERGY: ${long}`, 'the whole allergy, never truncated');
    assert.equal(looks.bg, 'rgb(213, 0, 0)');
    assert.equal(looks.color, 'rgb(255, 255, 255)');
    assert.ok(looks.weight >= 700 && !looks.clipped, JSON.stringify(looks));

    const n = card(page, noted.ticket);
    assert.equal(await n.locator('.allergy').count(), 0, `${page.docketName}: a note is not an alarm`);
    assert.match(await n.locator('.note').innerText(), /birthday: candle please/);
    const noteBg = await readLive(n.locator('.note'), (e) => (e.isConnected ? getComputedStyle(e).backgroundColor : null));
    assert.equal(noteBg, 'rgba(0, 0, 0, 0)', 'a note has no coloured block');
    // Menu allergen tags stay quiet: no fill.
    const tag = page.locator('#board .allergen').first();
    if (await tag.count()) {
      const tagBg = await readLive(tag, (e) => (e.isConnected ? getComputedStyle(e).backgroundColor : null));
      assert.equal(tagBg, 'rgba(0, 0, 0, 0)');
    }
  }
  for (const page of [kds, expo]) await assertClean(page);
});
