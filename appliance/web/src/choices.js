// A menu item's modifier groups on a cart line (docs/protocol.md, "Menu"): how a tap changes the
// line's choice, what is still missing, and how a group's rule reads. Pure: no DOM.

/** How many of the line's mods belong to group `g`. */
export function count(line, g) {
  return line.mods.filter((m) => g.mods.includes(m)).length;
}

/** The line's groups whose minimum is not met yet. */
export function unmet(line) {
  return line.groups.filter((g) => count(line, g) < g.min);
}

/** "pick one", "optional, one", "up to 2", "choose 2", "choose 1–3". */
export function rule(g) {
  if (g.max === 1) return g.min >= 1 ? 'pick one' : 'optional, one';
  if (g.min === 0) return `up to ${g.max}`;
  return g.min === g.max ? `choose ${g.min}` : `choose ${g.min}–${g.max}`;
}

/** What Send says is missing: "choose a Doneness", "choose 2 of Sides". */
export function choose(g) {
  return g.min === 1 ? `choose a ${g.name}` : `choose ${g.min} of ${g.name}`;
}

/**
 * A tap on `mod` of group `g`: a chosen one is taken off; in a pick-one group another choice
 * replaces it; otherwise it is added while the group is under its maximum. Returns the new mods.
 */
export function pick(line, g, mod) {
  if (line.mods.includes(mod)) return line.mods.filter((x) => x !== mod);
  if (g.max === 1) return [...line.mods.filter((x) => !g.mods.includes(x)), mod];
  if (count(line, g) < g.max) return [...line.mods, mod];
  return line.mods;
}
