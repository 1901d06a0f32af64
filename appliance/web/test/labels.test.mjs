import { test } from 'node:test';
import assert from 'node:assert/strict';
import { modLabel, tableLabel, money, originLabel } from '../src/labels.js';

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

test('an order from outside reads as its channel and its number there', () => {
  assert.equal(originLabel({ channel: 'Deliveroo', reference: 'DR-4411', device: 'head-office' }), 'Deliveroo #DR-4411');
  assert.equal(originLabel({ channel: 'till', device: 'till-1' }), 'till');
  assert.equal(originLabel({ channel: 'web', reference: '#88', device: 'hq' }), 'web #88');
  assert.equal(originLabel(undefined), '');
  assert.equal(originLabel({ device: 'x' }), '');
});
