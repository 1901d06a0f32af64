// The wire contract (docs/protocol.md) in the browser: CBOR with cbor2, the command MAC with
// @noble/hashes. Pages on a LAN address are not a secure context, so nothing here may use
// crypto.subtle or crypto.randomUUID: only crypto.getRandomValues, which exists everywhere.

import { encode as cborEncode, decode as cborDecode } from 'cbor2';
import { hmac } from '@noble/hashes/hmac.js';
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

/** HMAC-SHA256 keyed with the raw secret bytes over the body bytes exactly as sent. */
export function mac(secret, body) {
  return hmac(sha256, secret, body);
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
export function envelope(device, secret, id, body) {
  const bodyBytes = encode(body);
  return encode({ id, device, body: bodyBytes, mac: mac(secret, bodyBytes) });
}
