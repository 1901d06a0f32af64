// What /admin takes from its MQTT link, kept apart from the page so a test can drive it through
// conn.js's `Link`: the menu (its stations for the pairing rows, the menu editor) on
// `onMessage`, and the box's status (every 2 s: the printers' live state, and a seq, uplink
// and sync lag fresher than the last health poll) on `onStatus`, where `Link` delivers the
// status topic (it never reaches `onMessage`).

import { topics } from './wire.js';

/**
 * The link's handlers for /admin. `onMenu(menu)`: a menu with items arrived. `onPrinting(list)`:
 * the status's kitchen printers (undefined at a site without them). `onBoxStatus(status)`: a
 * status with a seq, for the health panel.
 */
export function adminLive({ onMenu, onPrinting, onBoxStatus }) {
  return {
    onStatus: (s) => {
      if (!s || typeof s !== 'object') return;
      onPrinting(s.printing);
      if (typeof s.seq === 'number') onBoxStatus(s);
    },
    onMessage: (topic, value) => {
      if (topic === topics.menu && value && Array.isArray(value.items)) onMenu(value);
    },
  };
}
