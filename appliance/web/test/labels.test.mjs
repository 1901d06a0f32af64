import { test } from 'node:test';
import assert from 'node:assert/strict';
import { modLabel, tableLabel, money } from '../src/labels.js';

test('modifier codes read as words', () => {
  assert.equal(modLabel('no-onion'), 'No onion');
  assert.equal(modLabel('gluten-free-bun'), 'Gluten-free bun');
  assert.equal(modLabel('medium-rare'), 'Medium-rare');
  assert.equal(modLabel('well-done'), 'Well-done');
  assert.equal(modLabel('extra_cheese'), 'Extra cheese');
  assert.equal(modLabel('Oat milk'), 'Oat milk');
  assert.equal(modLabel('  '), '');
});

test('tables read as tables', () => {
  assert.equal(tableLabel('12'), 'Table 12');
  assert.equal(tableLabel('bar-3'), 'Bar 3');
  assert.equal(tableLabel('takeaway'), 'Takeaway');
  assert.equal(tableLabel('Patio 2'), 'Patio 2');
});

test('cents read as money', () => {
  assert.equal(money(1450), '14.50');
  assert.equal(money(0), '0.00');
});
