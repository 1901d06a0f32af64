// Kitchen printers on the pages, against the real docketd and the virtual printer
// (`docket-printer`, a child process on a free port): expo's printing strip follows the grill's
// screen going dark (fallback after 2 s), a card's Reprint puts a REPRINT ticket on paper, and the
// printer killed with no screen is a red alarm; /admin shows the printer, refuses a bad address
// keeping what was typed, switches the grill to `always` with the live status following, reprints
// by ticket number, and removes the printer after an undo window. An order at two printing
// stations asks expo which to reprint; a refused reprint says why.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

import { artifactsDir, assertClean, launchBrowser, screenshot, startDaemon, waitFor, DEADLINE_MS } from './harness.mjs';
import { Device } from './client.mjs';
import { open, startPrinter } from './kit.mjs';

/** `[printing]` with one printer, the grill's. */
export function printingToml(address, mode = 'fallback', fallbackSecs = 2) {
  return `[printing]\nfallback_after_secs = ${fallbackSecs}\n[[printing.printer]]\nstation = "grill"\naddress = "${address}"\nmode = "${mode}"\npaper_mm = 80\n`;
}

/** A screenshot of the page, or of one of its parts (`selector`). */
async function shot(page, name, selector) {
  const file = selector ? path.join(artifactsDir(), `printing.${name}.png`) : await screenshot(page, name);
  if (selector) await page.locator(selector).screenshot({ path: file });
  if (process.env.PRINTING_SHOTS) {
    await fsp.mkdir(process.env.PRINTING_SHOTS, { recursive: true });
    await fsp.copyFile(file, path.join(process.env.PRINTING_SHOTS, `${name}.png`));
  }
  return file;
}

async function setup(t, mode = 'fallback') {
  const out = await fsp.mkdtemp(path.join(os.tmpdir(), 'docket-printer-out-'));
  t.after(() => fsp.rm(out, { recursive: true, force: true }));
  const printer = await startPrinter(t, out);
  const [daemon, browser] = await Promise.all([
    startDaemon({ t, config: printingToml(printer.address, mode, 2) }),
    launchBrowser({ t }),
  ]);
  const tab = await Device.connect(daemon, await daemon.addDevice('tablet-1', 'tablet'));
  t.after(() => tab.close());
  return { printer, daemon, browser, tab };
}

const chip = (page, station) => page.locator(`#printing .print-chip[data-station="${station}"]`);

test('expo: the grill prints once its screen is dark, a card reprints, a dead printer is an alarm', async (t) => {
  const { printer, daemon, browser, tab } = await setup(t);
  // The grill's screen: a KDS page (its presence makes the station live).
  const kds = await open(browser, daemon, t, 'kds-grill', '/kds?station=grill', await daemon.addDevice('kds-grill', 'station', ['grill']));
  const expo = await open(browser, daemon, t, 'expo-printing', '/expo', await daemon.addDevice('expo-1', 'expo'));

  // The grill's screen is live: the strip says so, no alarm.
  const g = chip(expo, 'grill');
  await g.locator('.print-doing:text("GRILL · screen live")').waitFor({ timeout: 6000 });
  assert.equal(await expo.locator('#print-alarms').isVisible(), false);

  // A burger and fries (the fry has no printer): the card offers Reprint at the grill. Fries
  // alone: no Reprint.
  const o = await tab.ok({ type: 'place_order', table: '4', lines: [{ item: 'burger-classic', qty: 1 }, { item: 'fries', qty: 1 }] });
  const fries = await tab.ok({ type: 'place_order', table: '5', lines: [{ item: 'fries', qty: 2 }] });
  const card = expo.locator(`#board .card[data-ticket="${o.ticket}"]`);
  await card.locator('.card-reprint .reprint:text("Reprint (grill)")').waitFor();
  await expo.locator(`#board .card[data-ticket="${fries.ticket}"]`).waitFor();
  assert.equal(await expo.locator(`#board .card[data-ticket="${fries.ticket}"] .card-reprint`).isVisible(), false);

  // The grill's screen goes dark: within fallback_after (2 s) + a status (2 s), it prints.
  await kds.close();
  await g.locator('.print-doing:text("GRILL · printing (no screen)")').waitFor({ timeout: 8000 });
  assert.equal(await g.getAttribute('data-state'), 'printing');
  // Its open ticket went to paper (held until the fallback).
  await waitFor(async () => (await printer.tickets()).some((tk) => tk.text.includes(`#${o.ticket}`)), {
    timeout: DEADLINE_MS,
    message: `ticket #${o.ticket} on paper`,
  });
  await shot(expo, 'expo-printing-strip');

  // Reprint from the card: a ticket marked REPRINT comes out.
  await card.locator('.card-reprint .reprint').click();
  await expo.locator('.toast:text("Reprinting #")').waitFor();
  await waitFor(async () => (await printer.tickets()).some((tk) => tk.text.includes('REPRINT') && tk.text.includes(`#${o.ticket}`)), {
    timeout: DEADLINE_MS,
    message: 'a REPRINT ticket in the out dir',
  });

  // Reprint last 2 from the strip.
  await g.locator('select.print-n').selectOption('2');
  await g.locator('button.print-last:text("Reprint last 2")').click();
  await expo.locator(".toast:text(\"Reprinting the grill's last 2 tickets\")").waitFor();

  // The printer dies while the grill has no screen: an alarm saying what to do.
  printer.kill();
  await tab.ok({ type: 'place_order', table: '6', lines: [{ item: 'burger-classic', qty: 1 }] });
  const alarm = expo.locator('#print-alarms .print-alarm[data-station="grill"]');
  await alarm.waitFor({ timeout: 15_000 });
  assert.match(await alarm.innerText(), /Grill: no screen and printer .* — check the grill's printer and screen/);
  assert.equal(await g.getAttribute('data-state'), 'alarm');
  const bg = await expo.locator('#print-alarms').evaluate((n) => getComputedStyle(n).backgroundColor);
  const [r, gr, b] = bg.match(/\d+/g).map(Number);
  assert.ok(r >= 140 && gr === 0 && b === 0, `the alarm is red, not ${bg}`);
  await shot(expo, 'expo-printing-alarm');
  await assertClean(expo);
});

test('expo: a refusal says why, and an order at two printing stations asks which to reprint', async (t) => {
  const out = await fsp.mkdtemp(path.join(os.tmpdir(), 'docket-printer-out-'));
  t.after(() => fsp.rm(out, { recursive: true, force: true }));
  const [grillPrinter, fryPrinter] = await Promise.all([startPrinter(t, path.join(out, 'grill')), startPrinter(t, path.join(out, 'fry'))]);
  const config =
    `[printing]\nfallback_after_secs = 2\n` +
    `[[printing.printer]]\nstation = "grill"\naddress = "${grillPrinter.address}"\nmode = "always"\n` +
    `[[printing.printer]]\nstation = "fry"\naddress = "${fryPrinter.address}"\nmode = "always"\npaper_mm = 58\n`;
  const [daemon, browser] = await Promise.all([startDaemon({ t, config }), launchBrowser({ t })]);
  const tab = await Device.connect(daemon, await daemon.addDevice('tablet-1', 'tablet'));
  t.after(() => tab.close());
  const expo = await open(browser, daemon, t, 'expo-two-printers', '/expo', await daemon.addDevice('expo-1', 'expo'));
  const fry = chip(expo, 'fry');
  await fry.locator('.print-doing:text("FRY · always prints")').waitFor({ timeout: 6000 });

  // Nothing open at the fry: the refusal in words.
  await fry.locator('button.print-last').click();
  await expo.locator('.toast.error:text("Reprint refused: Nothing to reprint at the fry")').waitFor();

  // A burger and fries: Reprint… asks which station; the fry's printer gets the REPRINT.
  const o = await tab.ok({ type: 'place_order', table: '3', lines: [{ item: 'burger-classic', qty: 1 }, { item: 'fries', qty: 1 }] });
  const card = expo.locator(`#board .card[data-ticket="${o.ticket}"]`);
  await card.locator('.card-reprint .reprint:text("Reprint…")').click();
  const pick = card.locator('.print-pick');
  await pick.waitFor();
  assert.deepEqual(await pick.locator('button.print-at').allInnerTexts(), ['fry', 'grill']);
  await shot(expo, 'expo-reprint-pick');
  await pick.locator('button.print-at[data-station="fry"]').click();
  await pick.waitFor({ state: 'hidden' });
  await waitFor(async () => (await fryPrinter.tickets()).some((tk) => tk.text.includes('REPRINT')), { timeout: DEADLINE_MS, message: "the fry's REPRINT" });
  assert.ok(!(await grillPrinter.tickets()).some((tk) => tk.text.includes('REPRINT')), 'the grill reprinted too');
  await assertClean(expo);
});

test('expo: a site without printers shows nothing of them', async (t) => {
  const [daemon, browser] = await Promise.all([startDaemon({ t }), launchBrowser({ t })]);
  const tab = await Device.connect(daemon, await daemon.addDevice('tablet-1', 'tablet'));
  t.after(() => tab.close());
  const expo = await open(browser, daemon, t, 'expo-no-printers', '/expo', await daemon.addDevice('expo-1', 'expo'));
  const o = await tab.ok({ type: 'place_order', table: '4', lines: [{ item: 'burger-classic', qty: 1 }] });
  await expo.locator(`#board .card[data-ticket="${o.ticket}"]`).waitFor();
  await new Promise((r) => setTimeout(r, 2500)); // a status or two
  assert.equal(await expo.locator('#printing').isVisible(), false);
  assert.equal(await expo.locator('#print-alarms').isVisible(), false);
  assert.equal(await expo.locator('.card-reprint').first().isVisible(), false);
  await assertClean(expo);
});

test('/admin: the grill\'s printer, a bad address refused as typed, mode always and the status follows', async (t) => {
  const { daemon, browser, tab } = await setup(t);
  const admin = await open(browser, daemon, t, 'admin-printers', '/admin', await daemon.addDevice('manager-1', 'manager'), { width: 1280, height: 1000 });
  const row = admin.locator('#printer-rows tr[data-station="grill"]');
  await Promise.race([row.waitFor(), admin.locator('#printers-error:not([hidden])').waitFor()]);
  if (await admin.locator('#printers-error').isVisible()) {
    t.skip(`no printers API on this docketd: ${await admin.locator('#printers-error').innerText()}`);
    return;
  }
  await waitFor(async () => /:\d+ · fallback · 80 mm$/.test(await row.locator('.pr-setup').innerText()), { message: 'the grill printer' });
  assert.equal((await admin.locator('#printer-rows tr[data-station="fry"] .pr-setup').innerText()).trim(), 'no printer');
  // No screen for the grill: it prints.
  await waitFor(async () => /no screen live: printing/.test(await row.locator('.pr-line').innerText()), { timeout: 10_000, message: 'printing' });

  // Edit: a bad address is refused with a message; what was typed stays.
  await row.locator('.pr-edit').click();
  const form = admin.locator('#printer-form');
  await form.waitFor();
  await admin.fill('#pf-address', 'printer-without-port');
  await admin.click('#pf-save');
  await form.locator('.pf-error[data-field="address"]:text("is not host:port")').waitFor();
  assert.equal(await admin.inputValue('#pf-address'), 'printer-without-port');

  // What the box refuses (a host name too long) comes back under the address, kept as typed.
  const long = `${'a'.repeat(254)}:9100`;
  await admin.fill('#pf-address', long);
  await admin.click('#pf-save');
  await form.locator('.pf-error[data-field="address"]:text("has no valid host")').waitFor();
  assert.equal(await admin.inputValue('#pf-address'), long);

  // The real address back, mode Always: saved, the row and the live status follow.
  const address = (await row.locator('.pr-setup').innerText()).split(' · ')[0];
  await admin.fill('#pf-address', address);
  await form.locator('.pf-choice[data-mode="always"]').click();
  assert.equal(await form.locator('.pf-choice[data-mode="always"]').getAttribute('aria-checked'), 'true');
  await shot(admin, 'admin-printers-form', '#printers');
  await admin.click('#pf-save');
  await form.waitFor({ state: 'hidden' });
  await waitFor(async () => /· always · 80 mm$/.test(await row.locator('.pr-setup').innerText()), { message: 'mode always shown' });
  await waitFor(async () => /^always prints/.test(await row.locator('.pr-line').innerText()), { timeout: 6000, message: 'status: always prints' });
  const health = JSON.parse((await daemon.get('/healthz')).body);
  assert.equal(health.printing.find((p) => p.station === 'grill').mode, 'always');

  // Reprint by ticket number from /admin.
  const o = await tab.ok({ type: 'place_order', table: '8', lines: [{ item: 'burger-classic', qty: 1 }] });
  await admin.fill('#reprint-ticket', String(o.ticket));
  await admin.click('#reprint-ticket-go');
  await admin.locator(`#reprint-msg:text("Ticket #${o.ticket} sent to the grill's printer")`).waitFor();
  await admin.fill('#reprint-ticket', 'abc');
  await admin.click('#reprint-ticket-go');
  await admin.locator('#reprint-msg.error:text("is not a ticket number")').waitFor();
  await shot(admin, 'admin-printers', '#printers');

  // Add a printer for the fry: fallback (the default), 58 mm paper.
  const fryRow = admin.locator('#printer-rows tr[data-station="fry"]');
  await fryRow.locator('.pr-edit:text("Add printer")').click();
  await form.waitFor();
  assert.equal(await admin.inputValue('#pf-address'), '', 'a new printer starts empty');
  await admin.fill('#pf-address', 'fry-printer.local:9100');
  await form.locator('.pf-choice[data-paper="58"]').click();
  await admin.click('#pf-save');
  await form.waitFor({ state: 'hidden' });
  await waitFor(async () => (await fryRow.locator('.pr-setup').innerText()).trim() === 'fry-printer.local:9100 · fallback · 58 mm', { message: 'the fry printer' });
  assert.deepEqual(await admin.locator('#reprint-station option').allInnerTexts(), ['fry', 'grill']);

  // Remove waits 5 s with an Undo: undone, the printer stays; left alone, it is gone.
  await row.locator('.pr-remove').click();
  await row.locator('.pr-removing:text("Removing in")').waitFor();
  await row.locator('.pr-undo').click();
  await row.locator('.pr-undo').waitFor({ state: 'hidden' });
  await new Promise((r) => setTimeout(r, 5500));
  assert.match(await row.locator('.pr-setup').innerText(), /· always · 80 mm$/);
  await row.locator('.pr-remove').click();
  await waitFor(async () => (await row.locator('.pr-setup').innerText()).trim() === 'no printer', { timeout: 10_000, message: 'removed' });
  assert.deepEqual(JSON.parse((await daemon.get('/healthz')).body).printing.map((p) => p.station), ['fry']);
  await assertClean(admin);
});
