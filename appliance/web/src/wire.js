// The wire contract (docs/protocol.md) in the browser: CBOR with cbor2, the device keys and the
// command MAC with @noble/hashes. Pages on a LAN address are not a secure context, so nothing here may use
// crypto.subtle or crypto.randomUUID: only crypto.getRandomValues, which exists everywhere.

import { encode as cborEncode, decode as cborDecode } from 'cbor2';
import { hmac } from '@noble/hashes/hmac.js';
import { hkdf } from '@noble/hashes/hkdf.js';
import { sha256 } from '@noble/hashes/sha2.js';

export const MAX_ENVELOPE_BYTES = 65536;

export const topics = {
  cmd: (device) => `docket/v1/cmd/${device}`,
  reply: (device) => `docket/v1/reply/${device}`,
  events: 'docket/v1/events',
  board: (station) => `docket/v1/board/${station}`,
  menu: 'docket/v1/menu',
  presence: (device) => `docket/v1/devices/${device}/presence`,
  status: 'docket/v1/appliance/status',
};

/** Plain CBOR: maps with text keys in insertion order, byte strings, smallest integers. */
export function encode(value) {
  return cborEncode(value);
}

/** Decodes one CBOR item; throws on garbage. */
export function decode(bytes) {
  return cborDecode(bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes));
}

export function hexToBytes(hex) {
  if (typeof hex !== 'string' || hex.length % 2 !== 0 || /[^0-9a-f]/i.test(hex)) {
    throw new Error('not a hex string');
  }
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.substr(i * 2, 2), 16);
  return out;
}

export function bytesToHex(bytes) {
  let s = '';
  for (const b of bytes) s += b.toString(16).padStart(2, '0');
  return s;
}

const utf8 = (text) => new TextEncoder().encode(text);

/** HKDF `info` strings (docs/protocol.md, "Keys"). */
export const LOGIN_INFO = 'docket/v1 login key';
export const MAC_INFO = 'docket/v1 command mac key';
/** What every command MAC's message starts with (then a zero byte). */
export const MAC_DOMAIN = 'docket/v1 command';

/**
 * The two keys of a device secret (32 raw bytes): HKDF-SHA256 with an empty salt. `login`'s hex
 * is the MQTT and admin password; `mac` signs commands. The secret itself never goes on the wire.
 */
export function deviceKeys(secret) {
  return {
    login: hkdf(sha256, secret, undefined, utf8(LOGIN_INFO), 32),
    mac: hkdf(sha256, secret, undefined, utf8(MAC_INFO), 32),
  };
}

/** The password a device logs in with: its login key as 64 lowercase hex characters. */
export function loginPassword(secretHex) {
  return bytesToHex(deviceKeys(hexToBytes(secretHex)).login);
}

function lengthPrefixed(bytes) {
  const out = new Uint8Array(4 + bytes.length);
  new DataView(out.buffer).setUint32(0, bytes.length);
  out.set(bytes, 4);
  return out;
}

/** The bytes a command MAC covers: domain, 0x00, then the device id, the command id (each after
 * its u32 big-endian length) and the body bytes exactly as sent. */
export function macInput(device, id, body) {
  const parts = [utf8(MAC_DOMAIN), new Uint8Array([0]), lengthPrefixed(utf8(device)), lengthPrefixed(utf8(id)), body];
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** HMAC-SHA256 keyed with the device's MAC key over `macInput(device, id, body)`. */
export function mac(macKey, device, id, body) {
  return hmac(sha256, macKey, macInput(device, id, body));
}

const CROCKFORD = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';

/** A ULID (time-ordered, 26 characters) from getRandomValues: a command id unique forever. */
export function newCommandId(now = Date.now()) {
  let t = now;
  let time = '';
  for (let i = 0; i < 10; i++) {
    time = CROCKFORD[t % 32] + time;
    t = Math.floor(t / 32);
  }
  const rnd = new Uint8Array(16);
  globalThis.crypto.getRandomValues(rnd);
  let tail = '';
  for (let i = 0; i < 16; i++) tail += CROCKFORD[rnd[i] % 32];
  return time + tail;
}

/**
 * The envelope for one command body: `{id, device, body: bstr, mac: bstr}` as CBOR bytes.
 * The same (id, body) always gives the same bytes, so a resend is the same command.
 */
export function envelope(device, macKey, id, body) {
  const bodyBytes = encode(body);
  return encode({ id, device, body: bodyBytes, mac: mac(macKey, device, id, bodyBytes) });
}
