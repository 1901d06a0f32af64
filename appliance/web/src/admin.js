// The manager's page: approve or reject pairing codes (choosing role and stations), the device
// list with presence and revoke, the box's health, the menu (menu-editor.js: 86, edit, add,
// remove), the kitchen printers (printers.js), the integrations' webhooks (webhooks.js) and
// today's speed of service (speed.js). Signs in once with this device's manager login (POST
// /api/session) and then talks to /api/admin/… on the session's HttpOnly cookie, so the login
// key is not on every request (on a plain-HTTP site, where a Secure cookie is not kept, it falls
// back to HTTP Basic); and to MQTT for the menu's stations and the live status.

import { obtainDevice, Link, badge, el, forgetDevice, basicAuth } from './conn.js';
import { topics } from './wire.js';
import { speedSection, renderSpeed, todayQuery } from './speed.js';
import { MenuEditor, menuSection } from './menu-editor.js';
import { Printers, printersSection } from './printers.js';
import { Webhooks, webhooksSection } from './webhooks.js';
import { adminLive } from './admin-live.js';
import { presenceState, presenceSummary, presenceText } from './presence.js';

const SCOPE = 'admin';
const ROLES = ['tablet', 'station', 'expo', 'manager', 'integration'];
const $ = (id) => document.getElementById(id);

let device;
let link;
let stations = [];
let status = null;
/** The menu section (menu-editor.js), made once the page's sections exist. */
let menuEditor = null;
/** The kitchen printers section (printers.js). */
let printers = null;
/** The integrations' webhooks section (webhooks.js). */
let webhooks = null;
/** Pairing rows being edited survive the 2-second refresh: code → row element. */
const rows = new Map();

/** Whether the box's session cookie is held (false: every request carries Basic). */
let session = false;

/** Opens a session; true when the browser kept its cookie (HTTPS). */
async function signIn() {
  try {
    const r = await fetch('/api/session', { method: 'POST', headers: { Authorization: basicAuth(device) }, cache: 'no-store' });
    if (!r.ok) return false;
    const who = await fetch('/api/session', { cache: 'no-store', credentials: 'same-origin' });
    return who.ok;
  } catch {
    return false;
  }
}

async function api(method, path, body) {
  const send = () =>
    fetch(path, {
      method,
      headers: {
        ...(session ? {} : { Authorization: basicAuth(device) }),
        ...(body ? { 'Content-Type': 'application/json' } : {}),
      },
      body: body ? JSON.stringify(body) : undefined,
      cache: 'no-store',
      credentials: 'same-origin',
    });
  let r = await send();
  if (r.status === 401 && session) {
    // The session ended (expired, the box restarted): sign in again once.
    session = await signIn();
    r = await send();
  }
  const json = await r.json().catch(() => ({}));
  if (!r.ok) {
    const err = new Error(json.error ? json.error.message : `HTTP ${r.status}`);
    err.status = r.status;
    err.code = json.error && json.error.code;
    throw err;
  }
  return json;
}

function flash(text, kind = 'info') {
  const t = el('div', { class: `toast ${kind}` }, text);
  $('toasts').append(t);
  setTimeout(() => t.remove(), 6000);
}

function suggestId(p) {
  const base = (p.label || 'device').toLowerCase().replace(/[^a-z0-9._-]+/g, '-').replace(/^-+|-+$/g, '');
  return `${base || 'device'}-${p.code.slice(-3)}`;
}

function pairingRow(p) {
  const id = el('input', { class: 'id', value: suggestId(p), maxlength: '64', 'aria-label': 'device id' });
  const role = el('select', { class: 'role', 'aria-label': 'role' }, ...ROLES.map((r) => el('option', { value: r }, r)));
  const guess = (p.label || '').toLowerCase();
  role.value = guess.includes('expo') ? 'expo' : guess.includes('screen') ? 'station' : guess.includes('admin') || guess.includes('manager') ? 'manager' : 'tablet';
  const boxes = el('span', { class: 'stations' });
  const renderStations = () => {
    boxes.replaceChildren(
      ...(role.value === 'station'
        ? stations.map((s) =>
            el(
              'label',
              {},
              el('input', { type: 'checkbox', value: s, ...(guess.startsWith(s) ? { checked: '' } : {}) }),
              s,
            ),
          )
        : []),
    );
  };
  role.addEventListener('change', renderStations);
  renderStations();
  const row = el(
    'tr',
    { 'data-code': p.code },
    el('td', { class: 'code' }, p.code),
    el('td', {}, p.label || ''),
    // Where the request came from: a code nobody in the room asked for, or many from one
    // address, is someone else on the Wi-Fi.
    el('td', { class: 'addr', title: 'the network address the request came from' }, p.addr ? `from ${p.addr}` : ''),
    el('td', { class: 'age' }, `${p.age_s}s`),
    el('td', {}, id),
    el('td', {}, role, boxes),
    el(
      'td',
      {},
      el('button', { class: 'approve primary', onclick: () => approve(p.code, id, role, boxes) }, 'Approve'),
      el('button', { class: 'reject', onclick: () => reject(p.code) }, 'Reject'),
    ),
  );
  row._renderStations = renderStations;
  return row;
}

async function approve(code, id, role, boxes) {
  const chosen = [...boxes.querySelectorAll('input:checked')].map((i) => i.value);
  try {
    const d = await api('POST', `/api/admin/pairings/${code}/approve`, { id: id.value.trim(), role: role.value, stations: chosen });
    flash(`Paired ${d.id} as ${d.role}`);
    refresh();
  } catch (e) {
    flash(`Cannot approve ${code}: ${e.message}`, 'error');
  }
}

async function reject(code) {
  try {
    await api('POST', `/api/admin/pairings/${code}/reject`);
    refresh();
  } catch (e) {
    flash(`Cannot reject ${code}: ${e.message}`, 'error');
  }
}

async function revoke(id, button) {
  if (button.dataset.confirm !== 'yes') {
    button.dataset.confirm = 'yes';
    button.textContent = `Really revoke ${id}?`;
    setTimeout(() => {
      button.dataset.confirm = '';
      button.textContent = 'Revoke';
    }, 5000);
    return;
  }
  try {
    await api('POST', `/api/admin/devices/${encodeURIComponent(id)}/revoke`);
    flash(`${id} revoked`);
    refresh();
  } catch (e) {
    flash(`Cannot revoke ${id}: ${e.message}`, 'error');
  }
}

function renderPairings(list) {
  const seen = new Set();
  for (const p of list) {
    seen.add(p.code);
    let row = rows.get(p.code);
    if (!row) {
      row = pairingRow(p);
      rows.set(p.code, row);
      $('pairings').append(row);
    } else {
      row.querySelector('.age').textContent = `${p.age_s}s`;
    }
  }
  for (const [code, row] of rows) {
    if (!seen.has(code)) {
      row.remove();
      rows.delete(code);
    }
  }
  $('no-pairings').hidden = list.length > 0;
}

/** The last device list, for the health panel's "devices online" between polls. */
let lastDevices = [];
/** Device rows by id, updated in place: a Revoke waiting for its confirmation survives the
 * 2-second refresh. */
const deviceRows = new Map();

function renderDevices(list) {
  lastDevices = list;
  const body = $('devices');
  const seen = new Set();
  list.forEach((d, i) => {
    seen.add(d.id);
    let row = deviceRows.get(d.id);
    if (!row) {
      row = deviceRow(d);
      deviceRows.set(d.id, row);
    }
    updateDeviceRow(row, d);
    if (body.children[i] !== row) body.insertBefore(row, body.children[i] || null);
  });
  for (const [id, row] of deviceRows) {
    if (!seen.has(id)) {
      row.remove();
      deviceRows.delete(id);
    }
  }
}

function deviceRow(d) {
  const actions = el('td', { class: 'actions' });
  if (!d.revoked_at && d.id !== device.id) {
    const b = el('button', { class: 'revoke' }, 'Revoke');
    b.addEventListener('click', () => revoke(d.id, b));
    actions.append(b);
  }
  return el(
    'tr',
    { 'data-device': d.id },
    el('td', {}, d.id),
    el('td', { class: 'role' }),
    el('td', { class: 'stations' }),
    el('td', { class: 'presence' }),
    el('td', {}, new Date(d.created_at).toLocaleString()),
    actions,
  );
}

function updateDeviceRow(row, d) {
  const state = presenceState(d);
  row.dataset.presence = state;
  row.querySelector('.role').textContent = d.role;
  row.querySelector('.stations').textContent = (d.stations || []).join(', ');
  row.querySelector('.presence').replaceChildren(el('span', { class: `dot ${state}` }), presenceText(state));
  if (d.revoked_at) row.querySelector('.actions').replaceChildren();
}

let lastHealth = null;
function renderHealth(h) {
  lastHealth = h;
  const up = h.uptime_s;
  // From the device list (fetched with the health; integrations report no presence).
  const who = presenceSummary(lastDevices);
  const uptime = `${Math.floor(up / 3600)}h ${Math.floor((up % 3600) / 60)}m ${up % 60}s`;
  const items = [
    ['site', h.site_id],
    ['version', h.version],
    ['uptime', uptime],
    ['ready', h.ready ? 'yes' : 'no'],
    ['seq', String(status && status.seq > h.seq ? status.seq : h.seq)],
    ['open orders', String(h.open_orders)],
    ['connected clients', String(h.connected_clients)],
    ['devices online', who.online],
    ...(who.integrations > 0 ? [['integrations', String(who.integrations)]] : []),
    ['uplink', status ? status.uplink : h.uplink],
    ['disk', h.storage_full ? 'FULL: orders refused' : 'ok'],
    ['sync lag', `${status && status.seq >= h.seq ? status.sync_lag : h.sync_lag} events`],
  ];
  $('health').replaceChildren(
    ...items.map(([k, v]) => el('div', { class: 'kv', 'data-k': k }, el('dt', {}, k), el('dd', {}, v))),
  );
  // Plain text on the LAN that the site turned on: anyone on the Wi-Fi can read it.
  const warnings = h.warnings || [];
  const box = $('warnings');
  if (box.dataset.text !== warnings.join('\n')) {
    box.dataset.text = warnings.join('\n');
    box.hidden = warnings.length === 0;
    box.replaceChildren(...warnings.map((w) => el('p', {}, `⚠ ${w}`)));
  }
}

let refreshing = false;
async function refresh() {
  if (refreshing) return;
  refreshing = true;
  try {
    const [p, d, h] = await Promise.all([
      api('GET', '/api/admin/pairings'),
      api('GET', '/api/admin/devices'),
      api('GET', '/api/admin/health'),
      printers ? printers.refresh() : null,
      webhooks ? webhooks.refresh() : null,
    ]);
    renderPairings(p.pairings);
    renderDevices(d.devices);
    renderHealth(h);
    $('api-error').textContent = '';
  } catch (e) {
    if (e.status === 401 || e.status === 403) {
      notManager(e);
    } else {
      $('api-error').textContent = `Box unreachable: ${e.message}`;
    }
  } finally {
    refreshing = false;
  }
}

function notManager(e) {
  clearInterval(timer);
  clearInterval(speedTimer);
  if (link) link.stop();
  const g = $('gate');
  g.hidden = false;
  g.classList.add('refused');
  g.replaceChildren(
    el('h1', { id: 'refused', 'data-reason': e.code || 'unauthorized' }, 'Not signed in as a manager'),
    el('p', {}, e.status === 403 ? `${device.id} is not a manager device.` : `The box refuses ${device.id} (revoked or unknown).`),
    el('button', { class: 'big', onclick: () => (forgetDevice(SCOPE), location.reload()) }, 'Pair again'),
  );
}

let timer;
let speedTimer;

async function main() {
  document.body.append(
    el('div', { id: 'gate', class: 'gate', hidden: '' }),
    el(
      'header',
      {},
      el('h1', {}, 'Docket · Admin'),
      el('span', { id: 'who', class: 'who' }),
      el('span', { id: 'conn', class: 'conn', 'data-state': 'connecting' }, 'connecting…'),
    ),
    el(
      'main',
      { class: 'admin' },
      el('div', { id: 'warnings', class: 'warnings', role: 'alert', hidden: '' }),
      el('section', {}, el('h2', {}, 'Box health'), el('dl', { id: 'health', class: 'health' }), el('p', { id: 'api-error', class: 'error' })),
      printersSection(),
      webhooksSection(),
      el(
        'section',
        {},
        el('h2', {}, 'Pairing requests'),
        el('p', { id: 'no-pairings', class: 'hint' }, 'No device is waiting. Open /tablet, /kds?station=… or /expo on the new device: it shows a 6-digit code.'),
        el('table', {}, el('tbody', { id: 'pairings' })),
      ),
      speedSection(),
      menuSection(),
      el(
        'section',
        {},
        el('h2', {}, 'Devices'),
        el(
          'table',
          {},
          el('thead', {}, el('tr', {}, ...['id', 'role', 'stations', 'presence', 'paired', ''].map((h) => el('th', {}, h)))),
          el('tbody', { id: 'devices' }),
        ),
      ),
    ),
    el('div', { id: 'toasts', class: 'toasts' }),
  );
  device = await obtainDevice(SCOPE, 'manager admin');
  $('who').textContent = device.id;
  session = await signIn();
  menuEditor = new MenuEditor($('menu'), (body) => link.command(body).reply, flash);
  printers = new Printers($('printers'), api, (body) => link.command(body).reply, flash);
  webhooks = new Webhooks($('webhooks'), api, flash);
  link = new Link(SCOPE, device, {
    subscriptions: [[topics.menu, topics.status]],
    onState: (s) => badge($('conn'), s),
    ...adminLive({
      onMenu: (menu) => {
        stations = [...new Set(menu.items.map((i) => i.station))].sort();
        for (const row of rows.values()) row._renderStations();
        menuEditor.update(menu);
      },
      // The box's status, every 2 s: the printers' live state, and the health panel's seq,
      // uplink and sync lag, between polls.
      onPrinting: (printing) => printers.status(printing),
      onBoxStatus: (s) => {
        status = s;
        if (lastHealth) renderHealth(lastHealth);
      },
    }),
  });
  link.start();
  await refresh();
  timer = setInterval(refresh, 2000);
  await refreshSpeed();
  speedTimer = setInterval(refreshSpeed, 30000);
}

/** Today's speed of service: read every 30 s (a report scans the day's events). */
async function refreshSpeed() {
  try {
    renderSpeed(await api('GET', `/api/admin/speed?${todayQuery()}`));
  } catch (e) {
    if (e.status !== 401 && e.status !== 403) $('speed-summary').textContent = `Cannot read today's speed of service: ${e.message}`;
  }
}

main();
