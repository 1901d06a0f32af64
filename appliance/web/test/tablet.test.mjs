import { test } from 'node:test';
import assert from 'node:assert/strict';
import { choose, pick, rule, unmet } from '../src/choices.js';
import { UNDO_MS, Voids, voidKey } from '../src/voids.js';

const doneness = { name: 'Doneness', min: 1, max: 1, mods: ['rare', 'medium', 'well-done'] };
const sauces = { name: 'Sauces', min: 0, max: 2, mods: ['pepper', 'bearnaise', 'chimichurri'] };
const line = (mods) => ({ name: 'Ribeye 300g', mods, groups: [doneness, sauces] });

test('a pick-one group keeps one choice: another replaces it, the same one takes it off', () => {
  let mods = pick(line([]), doneness, 'rare');
  assert.deepEqual(mods, ['rare']);
  mods = pick(line(['extra-salt', ...mods]), doneness, 'medium');
  assert.deepEqual(mods, ['extra-salt', 'medium']);
  assert.deepEqual(pick(line(mods), doneness, 'medium'), ['extra-salt']);
});

test('a group of up to 2 takes no third until one is taken off', () => {
  let mods = pick(line([]), sauces, 'pepper');
  mods = pick(line(mods), sauces, 'bearnaise');
  assert.deepEqual(pick(line(mods), sauces, 'chimichurri'), ['pepper', 'bearnaise']);
  assert.deepEqual(pick(line(mods), sauces, 'pepper'), ['bearnaise']);
});

test('what is missing reads plainly', () => {
  assert.deepEqual(unmet(line(['pepper'])).map(choose), ['choose a Doneness']);
  assert.deepEqual(unmet(line(['well-done'])), []);
  assert.equal(choose({ name: 'Sides', min: 2, max: 2, mods: [] }), 'choose 2 of Sides');
  assert.equal(rule(doneness), 'pick one');
  assert.equal(rule(sauces), 'up to 2');
  assert.equal(rule({ min: 1, max: 3 }), 'choose 1–3');
});

function memoryStorage() {
  const m = new Map();
  return { getItem: (k) => (m.has(k) ? m.get(k) : null), setItem: (k, v) => m.set(k, String(v)), removeItem: (k) => m.delete(k) };
}

test('a void is sent only when its undo window ends; undo sends nothing; a reload keeps it', () => {
  globalThis.localStorage = memoryStorage();
  let now = 1000;
  const sent = [];
  const v = new Voids((e) => sent.push(e), () => {}, () => now);
  v.start('o1', 1, 'Fries');
  v.start('o1', 2, 'Rings');
  v.start('o1', 2, 'Rings');
  assert.equal(v.secondsLeft(voidKey('o1', 1)), 5);
  v.undo(voidKey('o1', 1));
  now += UNDO_MS - 1;
  v.tick();
  assert.deepEqual(sent, []);
  // The page goes away and comes back: the countdown is still there.
  const again = new Voids((e) => sent.push(e), () => {}, () => now);
  again.load();
  assert.equal(again.secondsLeft(voidKey('o1', 2)), 1);
  assert.equal(again.secondsLeft(voidKey('o1', 1)), null);
  now += 1;
  again.tick();
  again.tick();
  assert.deepEqual(sent.map((e) => [e.order_id, e.n]), [['o1', 2]]);
  assert.ok(again.sent.has(voidKey('o1', 2)));
  again.settled(voidKey('o1', 2));
  assert.equal(again.sent.size, 0);
  clearInterval(v.countdown.timer);
  clearInterval(again.countdown.timer);
});
