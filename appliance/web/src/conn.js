// A page's device identity and its MQTT link to the box: pairing (a 6-digit code a manager
// approves), credentials kept in localStorage per page, the connection over WebSocket with
// presence, in-order subscriptions, commands re-sent with the same id until their reply
// arrives, and a refused login explained by asking the HTTP API (the broker drops a refused
// connection without saying why).

import mqtt from 'mqtt';
import { encode, decode, envelope, hexToBytes, bytesToHex, deviceKeys, loginPassword, newCommandId, topics } from './wire.js';

const DEVICE_KEY = (scope) => `docket.device.${scope}`;
const PAIRING_KEY = (scope) => `docket.pairing.${scope}`;
const RESEND_MS = 5000;
/** No word from the box for this long (its status comes every 2 s): the link is `stale`. */
const SILENT_MS = 6000;

export function loadDevice(scope) {
  try {
    const d = JSON.parse(localStorage.getItem(DEVICE_KEY(scope)) || 'null');
    if (d && typeof d.id === 'string' && /^[0-9a-f]{64}$/.test(d.secret)) return d;
  } catch {
    /* a damaged entry is treated as none */
  }
  return null;
}

export function saveDevice(scope, d) {
  localStorage.setItem(
    DEVICE_KEY(scope),
    JSON.stringify({ id: d.id, secret: d.secret, role: d.role, stations: d.stations || [] }),
  );
}

export function forgetDevice(scope) {
  localStorage.removeItem(DEVICE_KEY(scope));
}

/** HTTP Basic for a device: its id and login key (never the secret). */
export function basicAuth(d) {
  return 'Basic ' + btoa(`${d.id}:${loginPassword(d.secret)}`);
}

/** Asks the box who this device is: `{status: 'ok'|'revoked'|'unknown'|'unreachable', device?}`. */
export async function whoami(d) {
  let r;
  try {
    r = await fetch('/api/device', { headers: { Authorization: basicAuth(d) }, cache: 'no-store' });
  } catch {
    return { status: 'unreachable' };
  }
  if (r.ok) return { status: 'ok', device: await r.json() };
  const body = await r.json().catch(() => ({}));
  const code = body && body.error && body.error.code;
  if (code === 'revoked') return { status: 'revoked' };
  if (r.status === 401) return { status: 'unknown' };
  return { status: 'unreachable' };
}

/** `#device=ID&secret=HEX` in the address (a technician's pairing link): take it, then hide it. */
async function importFromHash(scope) {
  const h = new URLSearchParams(location.hash.slice(1));
  const id = h.get('device');
  const secret = (h.get('secret') || '').toLowerCase();
  if (!id || !/^[0-9a-f]{64}$/.test(secret)) return;
  history.replaceState(null, '', location.pathname + location.search);
  const who = await whoami({ id, secret });
  if (who.status === 'ok') saveDevice(scope, { ...who.device, secret });
}

function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === 'class') e.className = v;
    else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v);
  }
  for (const c of children) e.append(c);
  return e;
}
export { el };

function gate() {
  let g = document.getElementById('gate');
  if (!g) {
    g = el('div', { id: 'gate', class: 'gate' });
    document.body.append(g);
  }
  g.hidden = false;
  g.replaceChildren();
  return g;
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Shows a pairing code until a manager approves it; resolves to the device's credentials. */
async function pair(scope, label) {
  for (;;) {
    let p = null;
    try {
      p = JSON.parse(localStorage.getItem(PAIRING_KEY(scope)) || 'null');
    } catch {
      p = null;
    }
    const g = gate();
    if (!p) {
      g.append(el('h1', {}, 'Asking the box for a pairing code…'));
      try {
        const r = await fetch('/api/pair', {
          method: 'POST',
          headers: { 'Content-Type': 'application/json' },
          body: JSON.stringify({ label }),
        });
        const body = await r.json();
        if (!r.ok) throw new Error(body.error ? body.error.message : `HTTP ${r.status}`);
        p = { code: body.code, token: body.token };
        localStorage.setItem(PAIRING_KEY(scope), JSON.stringify(p));
      } catch (e) {
        g.append(el('p', { class: 'error' }, `Cannot reach the box: ${e.message}. Trying again…`));
        await sleep(3000);
        continue;
      }
    }
    g.replaceChildren(
      el('h1', {}, 'Pair this screen'),
      el('p', {}, `${label}: ask a manager to approve this code on the admin page.`),
      el('div', { id: 'pair-code', class: 'pair-code' }, p.code),
      el('p', { class: 'hint' }, `On the box: docketd device approve ${p.code} --id NAME --role ROLE`),
      el('p', { id: 'pair-state', class: 'hint' }, 'Waiting for approval…'),
    );
    for (;;) {
      await sleep(1500);
      let r;
      try {
        r = await fetch(`/api/pair/${p.token}`, { cache: 'no-store' });
      } catch {
        document.getElementById('pair-state').textContent = 'Box unreachable, still waiting…';
        continue;
      }
      if (r.status === 404) {
        localStorage.removeItem(PAIRING_KEY(scope));
        break; // expired or collected elsewhere: ask for a new code
      }
      const body = await r.json().catch(() => ({}));
      if (body.status === 'approved') {
        localStorage.removeItem(PAIRING_KEY(scope));
        const d = { id: body.id, secret: body.secret, role: body.role, stations: body.stations };
        saveDevice(scope, d);
        document.getElementById('gate').hidden = true;
        return d;
      }
      if (body.status === 'rejected') {
        localStorage.removeItem(PAIRING_KEY(scope));
        await new Promise((resolve) => {
          gate().append(
            el('h1', {}, 'Pairing rejected'),
            el('p', {}, 'A manager rejected this screen.'),
            el('button', { class: 'big', onclick: resolve }, 'Ask again'),
          );
        });
        break;
      }
    }
  }
}

/** Says on the whole screen that the box refuses this device; offers to pair again. */
export function showRefused(scope, reason) {
  const g = gate();
  g.classList.add('refused');
  const text =
    reason === 'revoked'
      ? 'This device was revoked by a manager. It can no longer send or see orders.'
      : 'The box does not know this device any more (it was reset or the device removed).';
  g.append(
    el('h1', { id: 'refused', 'data-reason': reason }, 'Device refused'),
    el('p', {}, text),
    el(
      'button',
      {
        class: 'big',
        onclick: () => {
          forgetDevice(scope);
          location.reload();
        },
      },
      'Pair again',
    ),
  );
}

/** Credentials for this page: from a pairing link, storage, or a new pairing. */
export async function obtainDevice(scope, label) {
  await importFromHash(scope);
  return loadDevice(scope) || (await pair(scope, label));
}

/**
 * The MQTT link. `subscriptions` is a list of topic groups subscribed in order (each group
 * after the previous one's SUBACK): events before boards, as the protocol asks.
 */
export class Link {
  constructor(scope, device, { subscriptions, onMessage, onReply, onState, onSession, onConnect, onStatus }) {
    this.scope = scope;
    this.device = device;
    this.keys = deviceKeys(hexToBytes(device.secret));
    this.subscriptions = subscriptions;
    this.onMessage = onMessage || (() => {});
    this.onReply = onReply || (() => {});
    this.onState = onState || (() => {});
    this.onSession = onSession || (() => {});
    this.onConnect = onConnect || (() => {});
    this.onStatus = onStatus || (() => {});
    /** When the box was last heard from (performance.now()): it republishes its status every 2 s. */
    this.heardAt = 0;
    /** Commands awaiting their reply: id → {bytes, sentAt, resolve}. */
    this.pending = new Map();
    this.state = 'connecting';
    this.failures = 0;
    this.client = null;
  }

  setState(s) {
    if (s === this.state) return;
    this.state = s;
    this.onState(s);
  }

  start() {
    const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
    const d = this.device;
    this.client = mqtt.connect(`${scheme}://${location.host}/mqtt`, {
      protocolVersion: 4,
      clientId: d.id,
      username: d.id,
      password: bytesToHex(this.keys.login),
      clean: true,
      keepalive: 15,
      reconnectPeriod: 1000,
      connectTimeout: 5000,
      resubscribe: false,
      will: { topic: topics.presence(d.id), payload: encode('offline'), qos: 1, retain: true },
    });
    this.client.on('connect', () => this.connected());
    this.client.on('close', () => this.closed());
    this.client.on('error', (e) => this.refused(e));
    this.client.on('message', (topic, payload) => this.message(topic, payload));
    this.timer = setInterval(() => {
      this.checkSilence();
      this.resendStale();
    }, 1000);
  }

  /**
   * A connection can look open while nothing comes through (a radio asleep, a stalled Wi-Fi
   * link, a hung box): the box's status arrives every 2 s, so after SILENT_MS without a word
   * the link is `stale` and the screens grey their boards, until the box is heard again.
   */
  checkSilence() {
    if (this.state === 'live' && performance.now() - this.heardAt > SILENT_MS) this.setState('stale');
  }

  async connected() {
    this.failures = 0;
    const c = this.client;
    c.publish(topics.presence(this.device.id), encode('online'), { qos: 1, retain: true });
    this.onSession();
    try {
      const groups = [[topics.reply(this.device.id)], ...this.subscriptions, [topics.status]];
      for (const g of groups) {
        await c.subscribeAsync(g, { qos: 1 });
      }
    } catch {
      return; // the connection dropped meanwhile: 'close' handles it
    }
    if (!c.connected) return;
    this.heardAt = performance.now();
    this.setState('live');
    this.onConnect();
    for (const [id, p] of this.pending) this.publish(id, p);
  }

  /**
   * The box refused the login and said why in its CONNACK: 5 (not authorised) = this device
   * was revoked, 4 (bad user name or password) = the box does not know this device or secret.
   * Anything else is a network error: `closed` retries.
   */
  refused(e) {
    const reason = e && e.code === 5 ? 'revoked' : e && e.code === 4 ? 'unknown' : null;
    if (!reason || this.state === 'refused') return;
    this.stop();
    this.setState('refused');
    showRefused(this.scope, reason);
  }

  async closed() {
    if (this.state === 'refused') return;
    this.setState('reconnecting');
    this.failures += 1;
    // A box that closes without a CONNACK (an older one, or a network fault): ask it why, now
    // and then.
    if (this.failures === 2 || this.failures % 10 === 0) {
      const who = await whoami(this.device);
      if (who.status === 'revoked' || who.status === 'unknown') {
        this.stop();
        this.setState('refused');
        showRefused(this.scope, who.status);
      }
    }
  }

  /** Stops re-sending a command (its answer no longer matters). */
  forget(id) {
    this.pending.delete(id);
  }

  stop() {
    clearInterval(this.timer);
    if (this.client) this.client.end(true);
  }

  message(topic, payload) {
    let value;
    try {
      value = decode(payload);
    } catch {
      return; // not CBOR: not from the box
    }
    this.heardAt = performance.now();
    if (this.state === 'stale') this.setState('live');
    if (topic === topics.status) {
      this.onStatus(value);
      return;
    }
    if (topic === topics.reply(this.device.id)) {
      const p = value && this.pending.get(value.command);
      if (p) {
        this.pending.delete(value.command);
        p.resolve(value);
      } else {
        this.onReply(value);
      }
      return;
    }
    this.onMessage(topic, value);
  }

  publish(id, p) {
    p.sentAt = Date.now();
    if (this.state !== 'live') return;
    // A send's first publish is marked when asked (`send(id, bytes, mark)`): bench-render.mjs.
    if (p.mark) {
      perfMark(p.mark, id);
      p.mark = null;
    }
    this.client.publish(topics.cmd(this.device.id), p.bytes, { qos: 1 });
    // mqtt.js corks its stream for each packet and uncorks it from a setTimeout(0) (its
    // `process.nextTick` in a browser), which waits behind the page's next layout and paint: flush
    // now. The later uncork finds nothing corked.
    this.client.stream?.uncork?.();
  }

  resendStale() {
    if (this.state !== 'live') return;
    const now = Date.now();
    for (const [id, p] of this.pending) if (now - p.sentAt > RESEND_MS) this.publish(id, p);
  }

  /**
   * Sends envelope bytes under `id` until the reply comes; resolves to the reply. `mark`: a
   * Performance API mark name set (detail: `id`) when the command is first handed to MQTT.
   */
  send(id, bytes, mark = null) {
    const existing = this.pending.get(id);
    if (existing) return existing.promise;
    const p = { bytes, sentAt: 0, mark };
    p.promise = new Promise((resolve) => (p.resolve = resolve));
    this.pending.set(id, p);
    this.publish(id, p);
    return p.promise;
  }

  /** A new command: `{id, bytes, reply}` (reply is a promise). */
  command(body) {
    const { id, bytes } = this.seal(body);
    return { id, bytes, reply: this.send(id, bytes) };
  }

  /** A new command's id and signed envelope, not sent yet (the tablet stores it first). */
  seal(body) {
    const id = newCommandId();
    return { id, bytes: envelope(this.device.id, this.keys.mac, id, body) };
  }
}

/**
 * `performance.mark(name, {detail})` for latency measurements (tests/browser/bench-render.mjs
 * reads and clears them). Marks are kept until cleared: past 2000 of a name, they are dropped.
 */
export function perfMark(name, detail) {
  if (performance.getEntriesByName(name, 'mark').length >= 2000) performance.clearMarks(name);
  performance.mark(name, { detail });
}

/** The connection badge: `live` only when connected and in step with the box. */
export function badge(node, state, synced = true) {
  const s = state === 'live' && !synced ? 'syncing' : state;
  node.dataset.state = s;
  node.textContent = {
    connecting: 'connecting…',
    live: 'live',
    stale: 'no news from the box…',
    syncing: 'syncing…',
    reconnecting: 'reconnecting…',
    refused: 'refused',
  }[s];
}

/**
 * The box's clock minus ours: from `/healthz`'s `now_ms` (the clock events are stamped with,
 * steady through wall-clock steps on the box), else its HTTP Date header; refined by event times.
 */
export class BoxClock {
  constructor() {
    this.skew = 0;
    this.sampled = false;
  }
  async init() {
    try {
      const t0 = Date.now();
      const r = await fetch('/healthz', { cache: 'no-store' });
      const mid = (t0 + Date.now()) / 2;
      const body = await r.json().catch(() => ({}));
      if (Number.isFinite(body.now_ms)) {
        this.skew = body.now_ms - mid;
      } else {
        const date = Date.parse(r.headers.get('date'));
        if (!Number.isNaN(date)) this.skew = date + 500 - mid;
      }
    } catch {
      /* keep 0 */
    }
  }
  /** An event stamped `at` by the box just arrived. */
  observe(at) {
    const s = at - Date.now();
    // Latency only makes an event look older: the largest box-minus-local is the best one.
    if (!this.sampled || s > this.skew || s < this.skew - 2000) {
      this.skew = s;
      this.sampled = true;
    }
  }
  now() {
    return Date.now() + this.skew;
  }
}

export function ageText(ms) {
  const s = Math.max(0, Math.floor(ms / 1000));
  const m = Math.floor(s / 60);
  return `${m}:${String(s % 60).padStart(2, '0')}`;
}
