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
