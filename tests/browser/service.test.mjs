// Full service on the kitchen pages in Chromium against the real docketd: a cook taps one line
// when that item alone is done (and taps it again to bring it back), expo marks an order as a
// rush and every screen shows it first, and a bumped ticket comes back from the KDS's list of
// recently bumped tickets with one tap.

import { test } from 'node:test';
import assert from 'node:assert/strict';

import { assertClean, launchBrowser, screenshot, startDaemon, waitFor } from './harness.mjs';
import { open, recorder, restaurant } from './kit.mjs';

const card = (page, ticket) => page.locator(`#board .card[data-ticket="${ticket}"]`);
const tickets = (page) => page.$$eval('#board .card', (cs) => cs.map((c) => Number(c.dataset.ticket)));

test('KDS: one line bumped by a tap stays on its ticket, a rush from expo goes first, a recall from the list', async (t) => {
  const [daemon, browser] = await Promise.all([startDaemon({ t }), launchBrowser({ t })]);
  const { tab } = await restaurant(daemon, t);
  const rec = await recorder(daemon, t);
  const kds = await open(browser, daemon, t, 'kds-service', '/kds?station=grill', await daemon.addDevice('kds-grill', 'station', ['grill']));
  const expo = await open(browser, daemon, t, 'expo-service', '/expo', await daemon.addDevice('expo-1', 'expo'));

  const placed = [];
  for (const table of ['1', '2', '3']) {
    placed.push(
      await tab.ok({ type: 'place_order', table, lines: [{ item: 'burger-veggie', qty: 1 }, { item: 'chicken-grilled', qty: 1 }] }),
    );
  }
  const [a, b, c] = placed;
  await card(kds, c.ticket).waitFor();
  assert.deepEqual(await tickets(kds), [a.ticket, b.ticket, c.ticket]);

  // The chicken of ticket A is done, not the burger: one tap on its line.
  const chicken = card(kds, a.ticket).locator('li.line[data-n="2"]');
  await chicken.click();
  await waitFor(() => rec.of('line_bumped', a.order_id).length === 1, { message: 'line_bumped' });
  await card(kds, a.ticket).locator('li.line.ready[data-n="2"]').waitFor();
  assert.equal(await card(kds, a.ticket).count(), 1, 'the ticket stays while the burger cooks');
  assert.match(await chicken.innerText(), /✓ done/);
  // Tapped again: the done line is back (a recall of the ticket's done lines).
  await chicken.click();
  await card(kds, a.ticket).locator('li.line.fired[data-n="2"]').waitFor();
  await waitFor(() => rec.of('ticket_recalled', a.order_id).length === 1, { message: 'the done line recalled' });

  // Expo marks C as a rush: first on the KDS and on expo, marked.
  await card(expo, c.ticket).locator('button.rush-toggle').click();
  await waitFor(async () => (await tickets(kds))[0] === c.ticket, { message: 'the rush first on the KDS' });
  assert.equal(await card(kds, c.ticket).locator('.rush-tag').isVisible(), true);
  await waitFor(async () => (await tickets(expo))[0] === c.ticket, { message: 'the rush first on expo' });
  assert.equal((await card(expo, c.ticket).locator('button.rush-toggle').innerText()).trim(), 'RUSH ✓');
  assert.deepEqual(await tickets(kds), [c.ticket, a.ticket, b.ticket]);
  await screenshot(kds, 'kds-rush-line-bumped');

  // B bumped whole; it leaves the board and is listed as recently bumped; one tap brings it back.
  await card(kds, b.ticket).locator('button.bump').click();
  await waitFor(async () => (await card(kds, b.ticket).count()) === 0, { message: 'B left the board' });
  const back = kds.locator('#recalls button.recall', { hasText: `#${b.ticket}` });
  assert.match(await back.innerText(), /Table 2/);
  await back.click();
  await card(kds, b.ticket).waitFor();
  await waitFor(() => rec.of('ticket_recalled', b.order_id).length === 1, { message: 'B recalled' });
  assert.equal(await kds.locator('#recalls li').count(), 0);

  // Expo clears the rush: C goes back to its ticket's place.
  await card(expo, c.ticket).locator('button.rush-toggle').click();
  await waitFor(async () => (await tickets(kds)).join() === [a.ticket, b.ticket, c.ticket].join(), { message: 'C back in place' });
  await assertClean(kds);
  await assertClean(expo);
});

test('KDS: a new ticket chimes twice and a changed one once, the sound and text size are per screen', async (t) => {
  const [daemon, browser] = await Promise.all([startDaemon({ t }), launchBrowser({ t })]);
  const { tab, grill } = await restaurant(daemon, t);
  const kds = await open(browser, daemon, t, 'kds-sound', '/kds?station=grill', await daemon.addDevice('kds-grill', 'station', ['grill']));
  const sound = kds.locator('#sound');
  const played = async (kind) => Number((await sound.getAttribute(`data-${kind}`)) || 0);
  assert.equal((await sound.innerText()).trim(), 'Sound on');

  const o = await tab.ok({ type: 'place_order', table: '5', lines: [{ item: 'burger-veggie', qty: 1 }] });
  await waitFor(async () => (await played('new')) === 1, { message: 'a chime for the new ticket' });
  assert.match(await card(kds, o.ticket).getAttribute('class'), /\bflash\b/);
  await tab.ok({ type: 'add_lines', order_id: o.order_id, lines: [{ item: 'chicken-grilled', qty: 1 }] });
  await waitFor(async () => (await played('changed')) === 1, { message: 'a chime for the changed ticket' });
  // A cook's own bump is no news: no chime.
  await grill.ok({ type: 'bump_line', order_id: o.order_id, line: 1 });
  await card(kds, o.ticket).locator('li.line.ready[data-n="1"]').waitFor();
  assert.equal(await played('changed'), 1);
  assert.equal(await played('new'), 1);

  // Sound off: tickets still come, silently; the choice and the text size survive a reload.
  await sound.click();
  assert.equal((await sound.innerText()).trim(), 'Sound off');
  await kds.locator('#larger').click();
  await kds.locator('#larger').click();
  assert.equal((await kds.locator('#scale').innerText()).trim(), '120%');
  await kds.reload();
  await kds.waitForSelector('#conn[data-state="live"]');
  assert.equal((await kds.locator('#sound').innerText()).trim(), 'Sound off');
  assert.equal(await kds.$eval('#board', (b) => b.style.zoom), '1.2');
  const quiet = await tab.ok({ type: 'place_order', table: '6', lines: [{ item: 'burger-veggie', qty: 1 }] });
  await card(kds, quiet.ticket).waitFor();
  assert.equal(await played('new'), 0, 'no chime with the sound off');
  await screenshot(kds, 'kds-sound-off-120');
  await assertClean(kds);
});

test('KDS: a ticket\'s items start so they finish together (prep times)', async (t) => {
  const [daemon, browser] = await Promise.all([startDaemon({ t }), launchBrowser({ t })]);
  const { tab } = await restaurant(daemon, t);
  const grill = await open(browser, daemon, t, 'kds-prep-grill', '/kds?station=grill', await daemon.addDevice('kds-grill', 'station', ['grill']));
  const fry = await open(browser, daemon, t, 'kds-prep-fry', '/kds?station=fry', await daemon.addDevice('kds-fry', 'station', ['fry']));
  // Demo menu: grilled chicken 12 min, black bean burger 9, fries 4.
  const o = await tab.ok({
    type: 'place_order',
    table: '8',
    lines: [{ item: 'chicken-grilled', qty: 1 }, { item: 'burger-veggie', qty: 1 }, { item: 'fries', qty: 1 }],
  });
  const line = (page, n) => card(page, o.ticket).locator(`li.line[data-n="${n}"]`);
  await line(grill, 2).waitFor();
  await line(fry, 3).waitFor();
  // The chicken starts now; the burger in about 3 minutes, the fries in about 8.
  assert.doesNotMatch(await line(grill, 1).innerText(), /start in/);
  assert.match(await line(grill, 2).innerText(), /start in (3:00|2:5\d)/);
  assert.match(await line(fry, 3).innerText(), /start in (8:00|7:5\d)/);
  assert.match(await line(fry, 3).getAttribute('class'), /\bwaiting\b/);
  // It counts down.
  const before = await line(fry, 3).innerText();
  await waitFor(async () => (await line(fry, 3).innerText()) !== before, { message: 'the countdown moved' });
  await screenshot(grill, 'kds-prep-times');
  await assertClean(grill);
  await assertClean(fry);
});

test('KDS and expo: takeaway or delivery, the server and each guest\'s seat on the ticket', async (t) => {
  const [daemon, browser] = await Promise.all([startDaemon({ t }), launchBrowser({ t })]);
  const { tab } = await restaurant(daemon, t);
  const kds = await open(browser, daemon, t, 'kds-taken', '/kds?station=grill', await daemon.addDevice('kds-grill', 'station', ['grill']));
  const expo = await open(browser, daemon, t, 'expo-taken', '/expo', await daemon.addDevice('expo-1', 'expo'));
  const away = await tab.ok({
    type: 'place_order',
    table: 'takeaway',
    service: 'takeaway',
    server: 'Ana',
    lines: [{ item: 'burger-veggie', qty: 1, seat: 2 }, { item: 'chicken-grilled', qty: 1 }],
  });
  const here = await tab.ok({ type: 'place_order', table: '4', lines: [{ item: 'burger-veggie', qty: 1 }] });
  for (const page of [kds, expo]) {
    const meta = card(page, away.ticket).locator('.meta');
    await meta.waitFor();
    assert.equal((await meta.innerText()).replace(/\s+/g, ' ').trim(), 'TAKEAWAY Server: Ana');
    assert.match(await card(page, away.ticket).locator('li.line[data-n="1"]').innerText(), /Seat 2/);
    assert.doesNotMatch(await card(page, away.ticket).locator('li.line[data-n="2"]').innerText(), /Seat/);
    await card(page, here.ticket).waitFor();
    assert.equal(await card(page, here.ticket).locator('.meta').isVisible(), false, 'dine-in without a server: no line for it');
  }
  await screenshot(kds, 'kds-takeaway-seat');
  await assertClean(kds);
  await assertClean(expo);
});
