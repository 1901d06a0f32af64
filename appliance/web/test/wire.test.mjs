import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import {
  encode, decode, envelope, mac, macInput, deviceKeys, loginPassword, hexToBytes, bytesToHex, newCommandId,
} from '../src/wire.js';

const vectors = JSON.parse(
  fs.readFileSync(new URL('../../core/tests/wire-vectors.json', import.meta.url)),
);
const secret = hexToBytes(vectors.device.secret_hex);
const keys = deviceKeys(secret);

test('the command body encodes byte for byte as the shared vector', () => {
  const v = vectors.command_place_order;
  assert.equal(bytesToHex(encode(v.body)), v.body_cbor_hex);
});

test('the login and MAC keys derive byte for byte as the shared vector', () => {
  assert.equal(bytesToHex(keys.login), vectors.device.login_key_hex);
  assert.equal(bytesToHex(keys.mac), vectors.device.mac_key_hex);
  assert.equal(loginPassword(vectors.device.secret_hex), vectors.device.mqtt_password);
  assert.notEqual(vectors.device.mqtt_password, vectors.device.secret_hex);
});

test('the MAC input, the MAC and the whole envelope match the shared vector', () => {
  const v = vectors.command_place_order;
  const body = hexToBytes(v.body_cbor_hex);
  assert.equal(bytesToHex(macInput(vectors.device.id, v.envelope.id, body)), v.mac_input_hex);
  assert.equal(bytesToHex(mac(keys.mac, vectors.device.id, v.envelope.id, body)), v.mac_hex);
  const env = envelope(vectors.device.id, keys.mac, v.envelope.id, v.body);
  assert.equal(bytesToHex(env), v.envelope_cbor_hex);
});

test('a wrong key, another id or another device gives a different MAC', () => {
  const v = vectors.command_place_order;
  const body = hexToBytes(v.body_cbor_hex);
  const id = v.envelope.id;
  assert.notEqual(bytesToHex(mac(new Uint8Array(32), vectors.device.id, id, body)), v.mac_hex);
  assert.notEqual(bytesToHex(mac(secret, vectors.device.id, id, body)), v.mac_hex);
  assert.notEqual(bytesToHex(mac(keys.mac, vectors.device.id, '01JDQ7ZK4P8X3V2M6N9R5T0W2Z', body)), v.mac_hex);
  assert.notEqual(bytesToHex(mac(keys.mac, 'tablet-2', id, body)), v.mac_hex);
  // The replay vector is the signed envelope under a new id: its MAC no longer matches it.
  const replayed = decode(hexToBytes(vectors.command_replayed_under_new_id.envelope_cbor_hex));
  assert.equal(bytesToHex(replayed.mac), v.mac_hex);
  assert.notEqual(bytesToHex(mac(keys.mac, replayed.device, replayed.id, replayed.body)), v.mac_hex);
});

test('a line with an allergy and a menu item with a group match the shared vectors', () => {
  const line = vectors.command_place_order_with_allergy;
  assert.equal(bytesToHex(encode(line.body)), line.body_cbor_hex);
  const item = vectors.menu_item_with_group;
  assert.deepEqual(decode(hexToBytes(item.cbor_hex)), item.value);
});

test('the menu and reprint commands a page sends match the shared vectors', () => {
  for (const k of ['command_set_stock', 'command_set_item', 'command_reprint', 'command_reprint_order', 'command_place_order_integration']) {
    assert.equal(bytesToHex(encode(vectors[k].body)), vectors[k].body_cbor_hex, k);
  }
});

test('replies decode to plain objects', () => {
  for (const k of ['reply_ok_example', 'reply_error_example', 'reply_menu_example']) {
    assert.deepEqual(decode(hexToBytes(vectors[k].cbor_hex)), vectors[k].value);
  }
});

test('garbage payloads throw instead of decoding', () => {
  for (const g of vectors.garbage_payloads_hex) {
    assert.throws(() => decode(hexToBytes(g)));
  }
});

test('hexToBytes refuses what is not hex', () => {
  assert.throws(() => hexToBytes('abc'));
  assert.throws(() => hexToBytes('zz'));
});

test('command ids are 26-character ULIDs, time ordered and unique', () => {
  const a = newCommandId(1_700_000_000_000);
  const b = newCommandId(1_700_000_000_001);
  assert.match(a, /^[0-9A-HJKMNP-TV-Z]{26}$/);
  assert.ok(a.slice(0, 10) < b.slice(0, 10));
  const many = new Set(Array.from({ length: 1000 }, () => newCommandId()));
  assert.equal(many.size, 1000);
});

test('64-bit integers (timestamps) decode to plain numbers', () => {
  const at = 1_735_732_800_123;
  const v = decode(encode({ at, seq: 2 ** 40 }));
  assert.equal(typeof v.at, 'number');
  assert.equal(v.at, at);
  assert.equal(v.seq, 2 ** 40);
});
