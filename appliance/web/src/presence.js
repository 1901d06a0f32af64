// Who is online, as /admin shows it. Tablets, screens and manager pages report their presence
// over MQTT; an integration (a till, an online-ordering bridge) talks to the box's API and
// reports none, so it is never shown "offline" for doing what it should, nor counted in
// "devices online".

/** A device row's state: `revoked`, `online`, `offline`, or `api` (an integration, no presence). */
export function presenceState(d) {
  if (d.revoked_at) return 'revoked';
  if (d.online) return 'online';
  return d.role === 'integration' ? 'api' : 'offline';
}

/** The words of a row's state. */
export function presenceText(state) {
  return state === 'api' ? 'API' : state;
}

/**
 * The health panel's figures from the device list: `online` ("2 of 3", of the unrevoked devices
 * that report presence) and `integrations` (unrevoked integrations; 0: the tile is left out).
 */
export function presenceSummary(devices) {
  const active = devices.filter((d) => !d.revoked_at);
  const reporting = active.filter((d) => d.role !== 'integration');
  return {
    online: `${reporting.filter((d) => d.online).length} of ${reporting.length}`,
    integrations: active.length - reporting.length,
  };
}
