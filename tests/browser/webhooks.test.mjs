// /admin's webhooks against the real docketd and a real receiver (a Node HTTP server on a free
// port): the integration is listed with no webhook, on the API rather than offline; a bad URL
// is refused as typed; a good one is saved and its secret shown once; "Send test" reaches the
// receiver signed with that secret and appears in the delivery log; an order of the
// integration's is delivered; a failing receiver shows `failing`; paused, an order is not sent
// until Resume; Remove waits 5 s with an Undo.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import http from 'node:http';

import { assertClean, launchBrowser, screenshot, startDaemon, waitFor } from './harness.mjs';
import { Device } from './client.mjs';
import { open } from './kit.mjs';

/** A webhook receiver: answers `status`, records every request. */
async function receiver(t) {
  const r = { status: 200, got: [] };
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      r.got.push({ headers: req.headers, body: Buffer.concat(chunks) });
      res.writeHead(r.status).end('ok');
    });
  });
  await new Promise((ok) => server.listen(0, '127.0.0.1', ok));
  t.after(() => server.close());
  r.url = `http://127.0.0.1:${server.address().port}/hooks`;
  return r;
}

function signedWith(secretHex, g) {
  const [t, v1] = String(g.headers['docket-signature'] || '').split(',').map((p) => p.split('=')[1]);
  const mac = crypto.createHmac('sha256', Buffer.from(secretHex, 'hex')).update(`${t}.`).update(g.body).digest('hex');
  return mac === v1;
}

test('/admin: a webhook set, its secret once, a signed test, a delivery, failing shown, paused and resumed, removed after an undo', async (t) => {
  const rec = await receiver(t);
  const [daemon, browser] = await Promise.all([
    startDaemon({ t, config: '[integration]\nallow_plain_webhooks = true\nwebhook_backoff_max_secs = 1\n' }),
    launchBrowser({ t }),
  ]);
  const posCreds = await daemon.addDevice('pos', 'integration');
  const admin = await open(browser, daemon, t, 'admin-webhooks', '/admin', await daemon.addDevice('manager-1', 'manager'), { width: 1280, height: 1000 });
  const row = admin.locator('#webhook-rows .webhook[data-device="pos"]');
  await Promise.race([row.waitFor(), admin.locator('#webhooks-error:not([hidden])').waitFor()]);
  if (await admin.locator('#webhooks-error').isVisible()) {
    t.skip(`no webhooks API on this docketd: ${await admin.locator('#webhooks-error').innerText()}`);
    return;
  }
  assert.equal((await row.locator('.wh-state').innerText()).trim(), 'no webhook');

  // The integration reports no presence: listed as on the API, not offline, and not counted in
  // "devices online" (the manager's own page is the one device that reports it).
  await admin.locator('#devices tr[data-device="pos"][data-presence="api"]').waitFor();
  assert.equal((await admin.locator('#devices tr[data-device="pos"] td.presence').innerText()).trim(), 'API');
  await waitFor(async () => (await admin.locator('.kv[data-k="devices online"] dd').innerText()) === '1 of 1', { message: 'devices online: 1 of 1' });
  assert.equal(await admin.locator('.kv[data-k="integrations"] dd').innerText(), '1');
  await screenshot(admin, 'admin-integration-presence');

  // A bad URL: refused with a message, kept as typed.
  await row.locator('.wh-url').fill('pos.example.com');
  await row.locator('.wh-save').click();
  await row.locator('.wh-error:not([hidden])').waitFor();
  assert.match(await row.locator('.wh-error').innerText(), /not a URL/);
  assert.equal(await row.locator('.wh-url').inputValue(), 'pos.example.com');

  // Saved: the secret once.
  await row.locator('.wh-url').fill(rec.url);
  await row.locator('.wh-save').click();
  await admin.locator('#webhook-secret:not([hidden]) code.secret').waitFor();
  const secret = (await admin.locator('#webhook-secret code.secret').innerText()).trim();
  assert.match(secret, /^[0-9a-f]{64}$/);
  await row.locator('.wh-error').waitFor({ state: 'hidden' });
  await waitFor(async () => (await row.locator('.wh-state').innerText()).trim() === 'nothing sent yet', { message: 'set' });

  // Send test: signed with that secret, in the log.
  await row.locator('.wh-test').click();
  await waitFor(() => rec.got.length === 1, { message: 'the test reached the receiver' });
  assert.equal(JSON.parse(rec.got[0].body).type, 'test');
  assert.ok(signedWith(secret, rec.got[0]), 'signature');
  await row.locator('.wh-log li.ok:text("test: HTTP 200")').waitFor();

  // An order of the integration's is delivered and logged.
  const pos = await Device.connect(daemon, posCreds);
  t.after(() => pos.close());
  const reply = await pos.command({ type: 'place_order', table: 'online', channel: 'online', reference: 'A-1', lines: [{ item: 'burger-classic', qty: 1 }] });
  assert.equal(reply.ok, true, JSON.stringify(reply));
  await waitFor(() => rec.got.length === 2, { message: 'the order delivered' });
  assert.equal(JSON.parse(rec.got[1].body).type, 'order_placed');
  await row.locator('.wh-log li.ok:text("order_placed: HTTP 200")').waitFor();
  await waitFor(async () => (await row.locator('.wh-state').innerText()).startsWith('ok'), { message: 'ok' });

  // The receiver fails: the row says so.
  rec.status = 500;
  await pos.command({ type: 'place_order', table: 'online', channel: 'online', reference: 'A-2', lines: [{ item: 'burger-classic', qty: 1 }] });
  await waitFor(async () => /^failing.*HTTP 500/.test(await row.locator('.wh-state').innerText()), { message: 'failing shown' });
  await row.locator('.wh-log li.failed').first().waitFor();
  rec.status = 200;
  await waitFor(async () => (await row.locator('.wh-state').innerText()).startsWith('ok'), { message: 'ok again' });

  // Paused for the receiver's maintenance: an order meanwhile is not sent; resumed, it is.
  const sent = rec.got.length;
  await row.locator('.wh-pause:text("Pause")').click();
  await waitFor(async () => (await row.locator('.wh-state').innerText()).startsWith('paused'), { message: 'paused shown' });
  await row.locator('.wh-pause:text("Resume")').waitFor();
  await pos.command({ type: 'place_order', table: 'online', channel: 'online', reference: 'A-3', lines: [{ item: 'burger-classic', qty: 1 }] });
  await waitFor(async () => /1 event to look at/.test(await row.locator('.wh-state').innerText()), { message: 'the waiting event shown' });
  await screenshot(admin, 'admin-webhook-paused');
  assert.equal(rec.got.length, sent, 'nothing is sent while paused');
  await row.locator('.wh-pause').click();
  await waitFor(() => rec.got.length === sent + 1, { message: 'the waiting order delivered on resume' });
  assert.equal(JSON.parse(rec.got[sent].body).order.origin.reference, 'A-3');
  await waitFor(async () => (await row.locator('.wh-state').innerText()).trim() === 'ok', { message: 'ok after resume' });
  await row.locator('.wh-pause:text("Pause")').waitFor();

  // Remove: undone, it stays; left alone, it goes.
  await row.locator('.wh-remove').click();
  await row.locator('.wh-removing:text("Removing in")').waitFor();
  await row.locator('.wh-undo').click();
  await row.locator('.wh-undo').waitFor({ state: 'hidden' });
  await new Promise((r) => setTimeout(r, 5500));
  assert.match(await row.locator('.wh-state').innerText(), /^ok/);
  await row.locator('.wh-remove').click();
  await waitFor(async () => (await row.locator('.wh-state').innerText()).trim() === 'no webhook', { timeout: 10_000, message: 'removed' });
  await assertClean(admin);
});
