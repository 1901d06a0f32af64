// How codes read to people: the wire carries ids (`no-onion`, `bar-3`, cents); every page shows
// them through these, so a modifier, a table or a price reads the same on the tablet, the KDS,
// expo and /admin.

/** `no-onion` → `No onion`, `gluten-free-bun` → `Gluten-free bun`: a code in words. */
export function modLabel(code) {
  const words = String(code).trim().split(/[-_\s]+/).filter(Boolean);
  if (!words.length) return '';
  // Keep a hyphen inside well-known compounds ("gluten-free", "medium-rare", "well-done").
  const text = words
    .join(' ')
    .replace(/\b(gluten|dairy|nut|sugar|fat) free\b/gi, '$1-free')
    .replace(/\bmedium rare\b/gi, 'medium-rare')
    .replace(/\bwell done\b/gi, 'well-done');
  return text.charAt(0).toUpperCase() + text.slice(1).toLowerCase();
}

/** `12` → `Table 12`, `bar-3` → `Bar 3`, `takeaway` → `Takeaway`. */
export function tableLabel(table) {
  const t = String(table).trim();
  if (/^\d+$/.test(t)) return `Table ${t}`;
  const words = t.split(/[-_\s]+/).filter(Boolean).join(' ');
  return words.charAt(0).toUpperCase() + words.slice(1);
}

/** Cents as money with two decimals (the menu's prices are cents; no currency symbol: a site's own). */
export function money(cents) {
  return (Number(cents) / 100).toFixed(2);
}

/** An order from outside (`order.origin`): its channel and its number there, as the courier
 * asks for it: `{channel: 'Deliveroo', reference: 'DR-4411'}` → `Deliveroo #DR-4411`; '' for an
 * order of the restaurant's own devices. */
export function originLabel(origin) {
  if (!origin || !origin.channel) return '';
  const channel = String(origin.channel).trim();
  const ref = origin.reference ? String(origin.reference).trim() : '';
  if (!ref) return channel;
  return `${channel} #${ref.replace(/^#/, '')}`;
}
