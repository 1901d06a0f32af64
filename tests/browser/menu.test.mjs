// Sold-out items ("86") and menu editing in headless Chromium against the real docketd: a KDS
// 86's an item and every tablet greys it at once (and the box refuses orders of it), a cart
// holding it is blocked until the line goes, /admin edits a price, adds an item with a modifier
// group at a new station, is refused a bad item (the menu's version unchanged) and removes an
// item with a 5-second undo; a station may not 86 another station's item.
//
// MENU_SHOTS=<dir> also copies the KDS panel's and the admin editor's screenshots there.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fsp from 'node:fs/promises';
import path from 'node:path';

import { assertClean, launchBrowser, screenshot, startDaemon, waitFor } from './harness.mjs';
import { Device } from './client.mjs';
import { addItem, menuWatch, open, recorder } from './kit.mjs';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function saveShot(page, name) {
  const file = await screenshot(page, name);
  if (process.env.MENU_SHOTS) {
    await fsp.mkdir(process.env.MENU_SHOTS, { recursive: true });
    await fsp.copyFile(file, path.join(process.env.MENU_SHOTS, `${name}.png`));
  }
  return file;
}

/** Waits until `locator`'s text matches `re`. */
async function textMatches(locator, re, message) {
  return waitFor(async () => (await locator.count()) > 0 && re.test(await locator.first().innerText()), { message });
}

async function openTablet(browser, daemon, t, name) {
  const page = await open(browser, daemon, t, name, '/tablet', await daemon.addDevice(`tab-${name}`, 'tablet'));
  await page.waitForSelector('[data-category]');
  return page;
}

async function openAdmin(browser, daemon, t, name) {
  const page = await open(browser, daemon, t, name, '/admin', await daemon.addDevice('mgr-1', 'manager'), { width: 1280, height: 900 });
  await page.waitForSelector('#menu tr[data-item="fries"]');
  return page;
}

test('86 from a KDS greys the item on the tablet at once and it cannot be ordered; back on, it can', async (t) => {
  const [daemon, browser] = await Promise.all([startDaemon({ t }), launchBrowser({ t })]);
  const kds = await open(browser, daemon, t, 'kds-86', '/kds?station=fry', await daemon.addDevice('kds-fry', 'station', ['fry']));
  const tablet = await openTablet(browser, daemon, t, 'tablet-86');
  const other = await Device.connect(daemon, await daemon.addDevice('tab-node', 'tablet'));
  t.after(() => other.close());
  await addItem(tablet, 'burger-veggie');
  await tablet.locator('[data-category="Sides"]').click();
  const item = tablet.locator('[data-item="fries"]');
  assert.equal(await item.getAttribute('data-out'), null);

  // The panel lists the fry station's items only, each a toggle.
  await kds.click('#stock-open');
  await kds.locator('#stock').waitFor({ state: 'visible' });
  const toggle = kds.locator('#stock-list .stock-toggle[data-item="fries"]');
  await textMatches(toggle, /^Fries — available$/, 'the Fries toggle says available');
  assert.equal(await kds.locator('#stock-list .stock-toggle[data-item="burger-classic"]').count(), 0, 'a grill item on the fry screen');
  assert.ok((await kds.locator('#stock-list .stock-toggle').count()) >= 3);
  const size = await toggle.evaluate((b) => parseFloat(getComputedStyle(b).fontSize));
  assert.ok(size >= 18, `toggle text ${size}px`);

  await toggle.click();
  await textMatches(toggle, /^Fries — 86'd$/, "the Fries toggle says 86'd");
  const bg = await toggle.evaluate((b) => getComputedStyle(b).backgroundColor);
  assert.equal(bg, 'rgb(198, 40, 40)', "an 86'd toggle is red");
  await textMatches(kds.locator('#stock-open'), /^86 \(1\)$/, 'the header counts one 86');

  // The tablet greys it out at once, says why, and a tap adds nothing.
  await waitFor(async () => (await item.getAttribute('data-out')) === 'true', { message: "the tablet shows fries 86'd" });
  assert.match(await item.innerText(), /86'd — sold out/);
  await saveShot(tablet, 'tablet-86');
  await item.click({ force: true });
  assert.equal(await tablet.locator('#cart > li').count(), 1, 'the 86d item went into the cart');
  await textMatches(tablet.locator('#cart-error'), /Fries is 86'd/, 'the tablet says it is sold out');
  // And the box refuses it from anywhere.
  const refused = await other.command({ type: 'place_order', table: '9', lines: [{ item: 'fries', qty: 1 }] });
  assert.equal(refused.ok, false);
  assert.equal(refused.error.code, 'sold_out');
  await saveShot(kds, 'kds-86-panel');

  // Back on: the tablet takes it again.
  await toggle.click();
  await textMatches(toggle, /^Fries — available$/, 'the Fries toggle says available again');
  await waitFor(async () => (await item.getAttribute('data-out')) === null, { message: 'the tablet shows fries available' });
  await item.click();
  assert.equal(await tablet.locator('#cart > li').count(), 2);
  await other.ok({ type: 'place_order', table: '9', lines: [{ item: 'fries', qty: 1 }] });
  await assertClean(kds);
  await assertClean(tablet);
});

test('an item 86d while in the cart is marked and blocks Send until its line is removed', async (t) => {
  const [daemon, browser] = await Promise.all([startDaemon({ t }), launchBrowser({ t })]);
  const rec = await recorder(daemon, t);
  const fry = await Device.connect(daemon, await daemon.addDevice('kds-fry', 'station', ['fry']));
  t.after(() => fry.close());
  const tablet = await openTablet(browser, daemon, t, 'tablet-cart-86');

  await addItem(tablet, 'burger-veggie');
  await addItem(tablet, 'onion-rings');
  await tablet.fill('#table', '12');
  assert.equal(await tablet.locator('#send').isDisabled(), false);

  await fry.ok({ type: 'set_stock', item: 'onion-rings', out: true });
  const line = tablet.locator('.cart-line[data-sold-out]');
  await line.waitFor({ state: 'visible' });
  assert.equal(await line.locator('.name').innerText(), 'Onion Rings');
  assert.match(await line.locator('.sold-out-mark').innerText(), /Sold out — remove it/);
  assert.equal(await tablet.locator('#send').isDisabled(), true, 'Send with a sold-out line');
  await textMatches(tablet.locator('#cart-error'), /Sold out: Onion Rings/, 'the reason beside Send');
  await saveShot(tablet, 'tablet-cart-sold-out');
  assert.equal(await tablet.locator('.cart-line:not([data-sold-out]) .sold-out-mark:visible').count(), 0);

  await line.locator('button.remove').click();
  assert.equal(await tablet.locator('#send').isDisabled(), false, 'Send once the line is gone');
  assert.equal(await tablet.locator('#cart-error').isVisible(), false);
  await tablet.click('#send');
  await waitFor(() => rec.of('order_placed').length === 1, { message: 'the order is placed' });
  assert.deepEqual(rec.of('order_placed')[0].order.lines.map((l) => l.item), ['burger-veggie']);
  await assertClean(tablet);
});

test('admin edits a price and adds an item with a Doneness group at a new station; the tablet shows both', async (t) => {
  const [daemon, browser] = await Promise.all([startDaemon({ t }), launchBrowser({ t })]);
  const rec = await recorder(daemon, t);
  const watch = await menuWatch(daemon, t);
  const admin = await openAdmin(browser, daemon, t, 'admin-edit');
  const tablet = await openTablet(browser, daemon, t, 'tablet-edit');
  const v0 = watch.menu.version;

  // A price: 4.50 → 5.25.
  const row = admin.locator('#menu tr[data-item="fries"]');
  assert.equal(await row.locator('.m-price').innerText(), '4.50');
  await row.locator('button.m-edit').click();
  await admin.locator('#item-form').waitFor({ state: 'visible' });
  assert.equal(await admin.inputValue('#f-price'), '4.50');
  assert.equal(await admin.locator('#f-id').isVisible(), false, 'the id is fixed when editing');
  await admin.fill('#f-price', '5.25');
  await admin.click('#f-save');
  await admin.locator('#item-form').waitFor({ state: 'hidden' });
  await textMatches(row.locator('.m-price'), /^5\.25$/, 'the admin list shows 5.25');
  assert.equal(watch.item('fries').price, 525);
  assert.equal(watch.menu.version, v0 + 1);
  await tablet.locator('[data-category="Sides"]').click();
  await textMatches(tablet.locator('[data-item="fries"] .price'), /^5\.25$/, 'the tablet shows 5.25');

  // A new item at a new station, with a required Doneness.
  await admin.click('#menu-add');
  await admin.fill('#f-name', 'Tomahawk Steak');
  assert.equal(await admin.inputValue('#f-id'), 'tomahawk-steak', 'the id suggested from the name');
  await admin.fill('#f-price', '45');
  await admin.selectOption('#f-station', { label: 'New station…' });
  await admin.fill('#f-station-new', 'josper');
  await admin.fill('#f-category', 'Mains');
  await admin.fill('#f-prep', '20');
  await admin.fill('#f-allergens', 'dairy');
  await admin.fill('#f-mods', 'pepper-sauce, bearnaise');
  await admin.click('#f-add-group');
  const g = admin.locator('#f-groups .group-row').first();
  await g.locator('.g-name').fill('Doneness');
  await g.locator('.g-min').fill('1');
  await g.locator('.g-max').fill('1');
  await g.locator('.g-mods').fill('rare, medium-rare, medium');
  await saveShot(admin, 'admin-item-form');
  await admin.click('#f-save');
  await admin.locator('#item-form').waitFor({ state: 'hidden' });
  await admin.locator('#menu tr[data-item="tomahawk-steak"]').waitFor();
  const added = watch.item('tomahawk-steak');
  assert.deepEqual(
    { name: added.name, price: added.price, station: added.station, category: added.category, prep_min: added.prep_min, allergens: added.allergens, mods: added.mods, groups: added.groups },
    {
      name: 'Tomahawk Steak',
      price: 4500,
      station: 'josper',
      category: 'Mains',
      prep_min: 20,
      allergens: ['dairy'],
      mods: ['pepper-sauce', 'bearnaise'],
      groups: [{ name: 'Doneness', min: 1, max: 1, mods: ['rare', 'medium-rare', 'medium'] }],
    },
  );
  assert.equal(await admin.locator('#menu tr[data-item="tomahawk-steak"] .m-station').innerText(), 'josper');
  await saveShot(admin, 'admin-menu');

  // The tablet: the new item, its choices, and Send needs the doneness.
  await addItem(tablet, 'tomahawk-steak');
  const line = tablet.locator('.cart-line[data-line="0"]');
  const group = line.locator('.group[data-group="Doneness"]');
  assert.deepEqual(await group.locator('.mod').evaluateAll((bs) => bs.map((b) => b.dataset.mod)), ['rare', 'medium-rare', 'medium']);
  await group.locator('.mod[data-mod="medium-rare"]').click();
  await tablet.fill('#table', '7');
  await tablet.click('#send');
  await waitFor(() => rec.of('order_placed').length === 1, { message: 'the steak is ordered' });
  const [l] = rec.of('order_placed')[0].order.lines;
  assert.equal(l.item, 'tomahawk-steak');
  assert.equal(l.station, 'josper');
  assert.deepEqual(l.mods, ['medium-rare']);
  await assertClean(admin);
  await assertClean(tablet);
});

test('admin: a bad item is refused next to the form, which stays open, and the menu does not change', async (t) => {
  const [daemon, browser] = await Promise.all([startDaemon({ t }), launchBrowser({ t })]);
  const watch = await menuWatch(daemon, t);
  const admin = await openAdmin(browser, daemon, t, 'admin-bad');
  const v0 = watch.menu.version;
  const fries = structuredClone(watch.item('fries'));

  await admin.locator('#menu tr[data-item="fries"] button.m-edit').click();
  await admin.fill('#f-price', '-1.00');
  await admin.click('#f-save');
  const error = admin.locator('#f-error');
  await textMatches(error, /price/i, 'the refusal names the price');
  assert.equal(await admin.locator('#item-form').getAttribute('data-refused'), 'bad_menu');
  assert.equal(await admin.locator('#item-form').isVisible(), true, 'the form stays open');
  assert.equal(await admin.inputValue('#f-price'), '-1.00', 'what was typed stays');

  // A group whose min is above its max.
  await admin.fill('#f-price', '4.50');
  await admin.click('#f-add-group');
  const g = admin.locator('#f-groups .group-row').first();
  await g.locator('.g-name').fill('Dip');
  await g.locator('.g-min').fill('2');
  await g.locator('.g-max').fill('1');
  await g.locator('.g-mods').fill('ketchup, mayo');
  await admin.click('#f-save');
  await textMatches(error, /Dip|group|min|max/i, 'the refusal names the group');
  assert.equal(await admin.locator('#item-form').isVisible(), true);
  assert.equal(watch.menu.version, v0, 'a refused item changed the menu');
  assert.deepEqual(watch.item('fries'), fries);
  assert.equal(await admin.locator('#menu').getAttribute('data-version'), String(v0));

  // Fixed, it saves: the version moves by exactly one (the refusals did not move it).
  await g.locator('.g-min').fill('0');
  await admin.click('#f-save');
  await admin.locator('#item-form').waitFor({ state: 'hidden' });
  await waitFor(() => watch.menu.version === v0 + 1, { message: 'the fixed item is saved' });
  assert.deepEqual(watch.item('fries').groups, [{ name: 'Dip', min: 0, max: 1, mods: ['ketchup', 'mayo'] }]);
  await assertClean(admin);
});

test('admin: Remove waits 5 s with an Undo; undone, the item stays; left alone, it is gone', async (t) => {
  const [daemon, browser] = await Promise.all([startDaemon({ t }), launchBrowser({ t })]);
  const watch = await menuWatch(daemon, t);
  const admin = await openAdmin(browser, daemon, t, 'admin-remove');
  const tablet = await openTablet(browser, daemon, t, 'tablet-remove');
  const v0 = watch.menu.version;
  const row = admin.locator('#menu tr[data-item="onion-rings"]');

  await row.locator('button.m-remove').click();
  await textMatches(row.locator('.m-removing'), /^Removing in [1-5] s$/, 'the countdown');
  await sleep(1500);
  await row.locator('button.m-undo').click();
  assert.equal(await row.locator('.m-removing').isVisible(), false);
  // Past the 5 s the remove would have taken: nothing was sent.
  await sleep(5000);
  assert.ok(watch.item('onion-rings'), 'onion rings removed despite the undo');
  assert.equal(watch.menu.version, v0);
  assert.equal(await row.isVisible(), true);

  const clicked = Date.now();
  await row.locator('button.m-remove').click();
  await waitFor(() => !watch.item('onion-rings'), { timeout: 12_000, message: 'onion rings leave the menu' });
  const took = Date.now() - clicked;
  assert.ok(took >= 4500, `removed after ${took} ms, inside the undo window`);
  assert.equal(watch.menu.version, v0 + 1);
  await row.waitFor({ state: 'detached' });
  await tablet.locator('[data-category="Sides"]').click();
  await waitFor(async () => (await tablet.locator('[data-item="onion-rings"]').count()) === 0, { message: 'the tablet drops onion rings' });
  await assertClean(admin);
  await assertClean(tablet);
});

test("a station may 86 only its own station's items, and its KDS shows the refusal; a tablet none", async (t) => {
  const [daemon, browser] = await Promise.all([startDaemon({ t }), launchBrowser({ t })]);
  const watch = await menuWatch(daemon, t);
  const [grill, tab, expo] = await Promise.all([
    daemon.addDevice('kds-grill', 'station', ['grill']).then((c) => Device.connect(daemon, c)),
    daemon.addDevice('tab-1', 'tablet').then((c) => Device.connect(daemon, c)),
    daemon.addDevice('expo-1', 'expo').then((c) => Device.connect(daemon, c)),
  ]);
  t.after(() => Promise.all([grill.close(), tab.close(), expo.close()]));
  const v0 = watch.menu.version;

  const other = await grill.command({ type: 'set_stock', item: 'fries', out: true });
  assert.equal(other.ok, false);
  assert.equal(other.error.code, 'forbidden');
  const byTablet = await tab.command({ type: 'set_stock', item: 'burger-classic', out: true });
  assert.equal(byTablet.ok, false);
  assert.equal(byTablet.error.code, 'forbidden');
  const edit = await grill.command({ type: 'set_item', item: { ...watch.item('burger-classic'), price: 1 } });
  assert.equal(edit.ok, false);
  assert.equal(edit.error.code, 'forbidden');
  assert.equal(watch.menu.version, v0);

  const own = await grill.ok({ type: 'set_stock', item: 'burger-classic', out: true });
  assert.equal(own.menu_version, v0 + 1);
  await waitFor(() => watch.item('burger-classic').out === true, { message: 'the menu shows the burger 86d' });
  assert.ok(!watch.item('fries').out);
  await expo.ok({ type: 'set_stock', item: 'fries', out: true });
  await waitFor(() => watch.item('fries').out === true, { message: 'expo 86s fries' });

  // A grill screen shown as the fry KDS: its 86 panel says why the box refused, and nothing changes.
  const kds = await open(browser, daemon, t, 'kds-forbidden', '/kds?station=fry', await daemon.addDevice('kds-grill-2', 'station', ['grill']));
  await kds.click('#stock-open');
  const toggle = kds.locator('#stock-list .stock-toggle[data-item="onion-rings"]');
  await textMatches(toggle, /^Onion Rings — available$/, 'the onion rings toggle');
  const v1 = watch.menu.version;
  await toggle.click();
  await textMatches(kds.locator('#stock-error'), /Onion Rings refused: .+/, 'the refusal in the panel');
  assert.equal(await toggle.innerText(), 'Onion Rings — available');
  assert.equal(watch.menu.version, v1);
  await assertClean(kds);
});
