// The menu editor's form helpers: the id suggested from a name, a price typed by a manager, and
// comma lists.

import test from 'node:test';
import assert from 'node:assert/strict';

import { parsePrice, splitList, suggestId } from '../src/item-form.js';

test('an id is suggested from the name: lowercase, dashes, no accents, at most 64', () => {
  assert.equal(suggestId('Crème Brûlée (2)'), 'creme-brulee-2');
  assert.equal(suggestId('  Fish & Chips!  '), 'fish-chips');
  assert.equal(suggestId('---'), '');
  const long = suggestId(`${'a'.repeat(63)} b`);
  assert.ok(long.length <= 64 && !long.endsWith('-'), long);
});

test('a price in currency units becomes cents, and what is not a price is null', () => {
  assert.equal(parsePrice('12.50'), 1250);
  assert.equal(parsePrice('12,5'), 1250);
  assert.equal(parsePrice(' 7 '), 700);
  assert.equal(parsePrice('0.29'), 29);
  assert.equal(parsePrice('-1'), -100, 'passed on for the box to refuse, with its reason');
  for (const bad of ['', 'abc', '1.234', '1e3', '12.50 EUR', '1234567890']) {
    assert.equal(parsePrice(bad), null, bad);
  }
});

test('comma lists drop blanks and spaces', () => {
  assert.deepEqual(splitList('gluten, dairy ,, '), ['gluten', 'dairy']);
  assert.deepEqual(splitList(''), []);
});
