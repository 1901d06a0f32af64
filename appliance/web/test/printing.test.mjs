// Kitchen printers in words (printing.js): what a station-printing entry of the appliance status
// says on expo's chips and alarm and on /admin, which of an order's stations print, a refused
// reprint, and the checks of the printer form and the reprint fields.

import test from 'node:test';
import assert from 'node:assert/strict';

import {
  alarmText, checkPrinter, chipState, chipText, conditionText, parseLast, printingStationsOf, refusalText,
  setupText, statusLine, ticketOrderId,
} from '../src/printing.js';

const entry = (over = {}) => ({
  station: 'grill', address: '127.0.0.1:9100', mode: 'fallback', printing: false, why: 'screen live',
  screens_live: true, printer: 'ok', can_print: true, waiting: 0, printed: 0, alarm: false, ...over,
});

test('a chip says what the station does now', () => {
  assert.equal(chipText(entry()), 'GRILL · screen live');
  assert.equal(chipState(entry()), 'live');
  const dark = entry({ printing: true, screens_live: false, why: 'no screen live: printing' });
  assert.equal(chipText(dark), 'GRILL · printing (no screen)');
  assert.equal(chipState(dark), 'printing');
  assert.equal(chipText(entry({ mode: 'always', printing: true })), 'GRILL · always prints');
  assert.equal(chipText(entry({ screens_live: false })), 'GRILL · screen dark: prints soon');
  assert.equal(chipState(entry({ screens_live: false })), 'soon');
  assert.equal(chipText(entry({ mode: 'off' })), 'GRILL · printer off');
  assert.equal(chipState(entry({ mode: 'off' })), 'off');
  assert.equal(chipState(entry({ alarm: true, printing: true })), 'alarm', 'the alarm wins');
});

test("the printer's condition shows only when it is not ok", () => {
  assert.equal(conditionText(entry()), null);
  assert.equal(conditionText(entry({ printer: 'unknown' })), null, 'not asked yet is not a fault');
  assert.equal(conditionText(entry({ printer: 'paper out', can_print: false })), 'printer paper out');
  assert.equal(conditionText(entry({ printer: 'unknown', error: 'connection refused' })), 'printer not answering');
  assert.equal(conditionText(entry({ mode: 'off', printer: 'unreachable' })), null, 'an off printer is nobody\'s worry');
});

test('the alarm says what is wrong and what to do', () => {
  assert.equal(alarmText(entry()), null);
  const paper = entry({ alarm: true, printing: true, screens_live: false, printer: 'paper out', can_print: false });
  assert.equal(alarmText(paper), 'Grill: no screen and printer paper out — load paper at the grill');
  const gone = entry({ alarm: true, printing: true, screens_live: false, printer: 'unreachable', can_print: false, waiting: 3 });
  assert.equal(alarmText(gone), "Grill: no screen and printer not answering (3 tickets waiting) — check the grill's printer and screen");
  const cover = entry({ alarm: true, screens_live: false, printer: 'cover open', can_print: false, waiting: 1 });
  assert.match(alarmText(cover), /printer cover open \(1 ticket waiting\) — close the grill printer's cover$/);
});

test("an order's printing stations: those with a printer that is not off", () => {
  const printing = [entry(), entry({ station: 'fry', mode: 'off' }), entry({ station: 'cold', mode: 'always' })];
  assert.deepEqual(printingStationsOf(['cold', 'fry', 'grill', 'bar'], printing), ['cold', 'grill']);
  assert.deepEqual(printingStationsOf(['grill'], undefined), [], 'no printers at the site');
});

test('a refused reprint in words', () => {
  assert.equal(refusalText({ ok: false, error: { code: 'no_printer', message: 'x' } }, 'grill'), 'The grill has no printer (or it is off)');
  assert.equal(refusalText({ ok: false, error: { code: 'nothing_to_print' } }, 'grill'), 'Nothing to reprint at the grill');
  assert.equal(refusalText({ ok: false, error: { code: 'bad_field', message: 'last: 1-20' } }, 'grill'), 'last: 1-20');
  assert.equal(refusalText({ ok: false }, 'grill'), 'refused');
});

test('a ticket number becomes its order id; N is 1 to 20', () => {
  assert.equal(ticketOrderId('42'), 'o-000042');
  assert.equal(ticketOrderId(' #7 '), 'o-000007');
  assert.equal(ticketOrderId('123456'), 'o-123456');
  for (const bad of ['', '0', 'abc', '1234567', '4.2', '-3']) assert.equal(ticketOrderId(bad), null, bad);
  assert.equal(parseLast('5'), 5);
  assert.equal(parseLast(' 20 '), 20);
  for (const bad of ['', '0', '21', 'x', '2.5']) assert.equal(parseLast(bad), null, bad);
});

test('the printer form: host:port, one of three modes, 80 or 58 mm', () => {
  assert.deepEqual(checkPrinter({ address: ' 192.168.1.50:9100 ', mode: 'fallback', paper_mm: '80' }), {
    value: { address: '192.168.1.50:9100', mode: 'fallback', paper_mm: 80 },
  });
  assert.deepEqual(checkPrinter({ address: 'printer.local:9100', mode: 'always', paper_mm: 58 }).value.paper_mm, 58);
  assert.ok(checkPrinter({ address: '[fe80::1]:9100', mode: 'off', paper_mm: 80 }).value);
  assert.ok(checkPrinter({ address: 'kitchen_printer-2:9100', mode: 'off', paper_mm: 80 }).value, 'a name the box takes');
  assert.match(checkPrinter({ address: 'grill printer:9100', mode: 'off', paper_mm: 80 }).errors.address, /is not host:port/);
  assert.match(checkPrinter({ address: '', mode: 'off', paper_mm: 80 }).errors.address, /Type the printer's address/);
  assert.match(checkPrinter({ address: '192.168.1.50', mode: 'off', paper_mm: 80 }).errors.address, /is not host:port/);
  assert.match(checkPrinter({ address: 'p:70000', mode: 'off', paper_mm: 80 }).errors.address, /Port 70000/);
  assert.match(checkPrinter({ address: 'http://p:9100', mode: 'off', paper_mm: 80 }).errors.address, /is not host:port/);
  const bad = checkPrinter({ address: 'p:9100', mode: 'sometimes', paper_mm: 76 }).errors;
  assert.deepEqual(Object.keys(bad).sort(), ['mode', 'paper_mm']);
});

test("/admin's lines: the setup and the live status", () => {
  assert.equal(setupText(null), 'no printer');
  assert.equal(setupText({ address: 'p:9100', mode: 'always', paper_mm: 58 }), 'p:9100 · always · 58 mm');
  assert.equal(
    statusLine(entry({ why: 'no screen live: printing', printer: 'paper out', waiting: 2, printed: 9 })),
    'no screen live: printing · printer paper out · 2 waiting · 9 printed',
  );
  assert.equal(statusLine(entry({ printer: 'unreachable', error: 'connection refused' })), 'screen live · printer unreachable · connection refused · 0 waiting · 0 printed');
});
