// Kitchen printers in words, for expo's printing strip (print-strip.js) and /admin's printers
// section (printers.js): what a station-printing entry of the appliance status says (a chip's
// text and state, the alarm's sentence), which of an order's stations print, a reprint reply's
// refusal, and the checks of the printer form and of the reprint fields. Pure: no DOM, no MQTT.

export const MODES = ['fallback', 'always', 'off'];
export const PAPERS = [80, 58];
export const LAST_MAX = 20;
export const LAST_DEFAULT = 5;

/** Each mode's label and what it means, for the form's three big choices. */
export const MODE_WORDS = {
  fallback: ['Fallback', 'prints only when no screen of the station is live'],
  always: ['Always', 'every ticket also goes to paper'],
  off: ['Off', 'never prints'],
};

const cap = (s) => (s ? s[0].toUpperCase() + s.slice(1) : s);

/** A printer that is fine says "ok" (and "unknown" before it was first asked). */
export function printerOk(p) {
  return p.printer === 'ok' || (p.printer === 'unknown' && !p.error);
}

/** The state a station's chip shows: 'alarm', 'printing', 'live', 'soon' or 'off'. */
export function chipState(p) {
  if (p.alarm) return 'alarm';
  if (p.mode === 'off') return 'off';
  if (p.printing) return 'printing';
  if (!p.screens_live) return 'soon';
  return 'live';
}

/** What the station does now, in a few words: "printing (no screen)", "screen live", ... */
export function doingText(p) {
  if (p.mode === 'off') return 'printer off';
  if (p.mode === 'always') return 'always prints';
  if (p.printing) return 'printing (no screen)';
  if (p.screens_live) return 'screen live';
  return 'screen dark: prints soon';
}

/** The chip's main text: "GRILL · printing (no screen)". */
export function chipText(p) {
  return `${p.station.toUpperCase()} · ${doingText(p)}`;
}

/** The printer's condition when it is not ok ("paper out"), else null. */
export function conditionText(p) {
  if (p.mode === 'off' || printerOk(p)) return null;
  const what = p.printer === 'unknown' ? 'not answering' : p.printer;
  return `printer ${what}`;
}

/** The alarm's sentence, saying what to do; null when the station is not in alarm. */
export function alarmText(p) {
  if (!p.alarm) return null;
  const silent = p.printer === 'unknown' || p.printer === 'unreachable' || p.printer === 'offline';
  const what = silent ? 'printer not answering' : `printer ${p.printer}`;
  const waiting = p.waiting > 0 ? ` (${p.waiting} ticket${p.waiting === 1 ? '' : 's'} waiting)` : '';
  const fix = p.printer === 'paper out' || p.printer === 'paper near end'
    ? `load paper at the ${p.station}`
    : p.printer === 'cover open'
      ? `close the ${p.station} printer's cover`
      : `check the ${p.station}'s printer and screen`;
  return `${cap(p.station)}: no screen and ${what}${waiting} — ${fix}`;
}

/** The stations of `stationNames` (an order's) that print: a printer not off. */
export function printingStationsOf(stationNames, printing) {
  const can = new Set((printing || []).filter((p) => p.mode !== 'off').map((p) => p.station));
  return stationNames.filter((s) => can.has(s));
}

/** A refused reprint in words. */
export function refusalText(reply, station) {
  const e = (reply && reply.error) || {};
  switch (e.code) {
    case 'no_printer':
      return `The ${station} has no printer (or it is off)`;
    case 'nothing_to_print':
      return `Nothing to reprint at the ${station}`;
    case 'unknown_order':
      return 'No such ticket';
    default:
      return e.message || e.code || 'refused';
  }
}

/** The order id of a ticket number typed by a manager ("42", "#42"), or null. */
export function ticketOrderId(text) {
  const m = /^\s*#?\s*(\d{1,6})\s*$/.exec(String(text ?? ''));
  if (!m || Number(m[1]) < 1) return null;
  return `o-${m[1].padStart(6, '0')}`;
}

/** The N of "reprint last N" (1–20), or null. */
export function parseLast(text) {
  const m = /^\s*(\d{1,2})\s*$/.exec(String(text ?? ''));
  if (!m) return null;
  const n = Number(m[1]);
  return n >= 1 && n <= LAST_MAX ? n : null;
}

/**
 * Checks the printer form: `{address, mode, paper_mm}` as typed. Returns `{value}` (the body of
 * the PUT) or `{errors: {field: message}}`; the box checks again and its 422 names the reason.
 */
export function checkPrinter({ address, mode, paper_mm }) {
  const errors = {};
  const a = String(address ?? '').trim();
  // As the box checks it (a host without spaces, a port), and no URL: the box would take one.
  const m = /^([^\s/]+):(\d{1,5})$/.exec(a);
  if (!a) errors.address = 'Type the printer\'s address and port, e.g. 192.168.1.50:9100';
  else if (!m) errors.address = `"${a}" is not host:port (e.g. 192.168.1.50:9100)`;
  else if (Number(m[2]) < 1 || Number(m[2]) > 65535) errors.address = `Port ${m[2]} is not 1–65535 (printers listen on 9100)`;
  if (!MODES.includes(mode)) errors.mode = 'Choose fallback, always or off';
  const paper = Number(paper_mm);
  if (!PAPERS.includes(paper)) errors.paper_mm = 'Choose 80 or 58 mm paper';
  if (Object.keys(errors).length) return { errors };
  return { value: { address: a, mode, paper_mm: paper } };
}

/** A printer's setup in one line: "192.168.1.50:9100 · fallback · 80 mm". */
export function setupText(pr) {
  return pr ? `${pr.address} · ${pr.mode} · ${pr.paper_mm} mm` : 'no printer';
}

/** A station's live status in one line for /admin. */
export function statusLine(p) {
  if (!p) return '';
  const parts = [p.why || doingText(p), `printer ${p.printer}`];
  if (p.error) parts.push(p.error);
  parts.push(`${p.waiting} waiting`, `${p.printed} printed`);
  return parts.join(' · ');
}
