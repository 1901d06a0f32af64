// Smoke test of the browser harness itself: a real docketd, headless Chromium, and the trap that
// catches page code touching secure-context-only APIs.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';

import {
  assertClean,
  LAN_HOST,
  launchBrowser,
  newPage,
  screenshot,
  startDaemon,
  waitFor,
} from './harness.mjs';

test('chromium reaches docketd, and the secure-API trap works', async (t) => {
  const [daemon, browser] = await Promise.all([startDaemon({ t }), launchBrowser({ t })]);

  // The daemon answers the browser; the CLI pairs a device against it.
  const page = await newPage(browser, { name: 'healthz', t });
  const res = await page.goto(`${daemon.httpUrl}/healthz`);
  assert.equal(res.status(), 200);
  const health = await res.json();
  assert.equal(health.status, 'ok');
  assert.equal(health.site_id, 'test-site');
  assert.match(await page.locator('body').innerText(), /"status":"ok"/);
  await assertClean(page);
  await screenshot(page, 'healthz');

  const tablet = await daemon.addDevice('tablet-1', 'tablet');
  assert.equal(tablet.id, 'tablet-1');
  assert.match(tablet.secret, /^[0-9a-f]{64}$/);
  const grill = await daemon.addDevice('kds-grill', 'station', ['grill']);
  assert.deepEqual(grill.stations, ['grill']);

  // On 127.0.0.1 the page IS a secure context, so the APIs exist natively: the trap must catch
  // the touch, record it with a stack, and throw.
  const trapped = await newPage(browser, { name: 'trap', t });
  await trapped.goto(`${daemon.httpUrl}/healthz`);
  const outcome = await trapped.evaluate(() => {
    const r = {};
    try {
      r.subtle = typeof crypto.subtle;
    } catch (e) {
      r.subtleError = e.message;
    }
    try {
      r.uuid = crypto.randomUUID();
    } catch (e) {
      r.uuidError = e.message;
    }
    r.getRandomValues = crypto.getRandomValues(new Uint8Array(4)).length;
    r.touched = [...window.__secureApiTouched];
    return r;
  });
  assert.match(outcome.subtleError, /not available/);
  assert.match(outcome.uuidError, /not available/);
  assert.equal(outcome.getRandomValues, 4, 'crypto.getRandomValues stays usable');
  assert.equal(outcome.touched.length, 2);
  assert.match(outcome.touched[0], /^crypto\.subtle touched at http:\/\/127\.0\.0\.1:/);
  assert.match(outcome.touched[1], /^crypto\.randomUUID touched at /);
  // The exposed binding carries the record to Node (it survives navigations).
  await waitFor(() => trapped.secureApiTouched.length === 2, {
    message: 'trap records reach page.secureApiTouched',
  });
  await assert.rejects(assertClean(trapped), /crypto\.subtle touched/);

  // An uncaught page error also makes a page unclean.
  const thrower = await newPage(browser, { name: 'thrower', t });
  await thrower.goto(`${daemon.httpUrl}/healthz`);
  await thrower.evaluate(() => setTimeout(() => {
    throw new Error('boom from page');
  }));
  await waitFor(() => thrower.errors.some((e) => e.type === 'pageerror'), { message: 'pageerror' });
  await assert.rejects(assertClean(thrower), /boom from page/);

  // Under the LAN host name the same box is NOT a secure context, as on a restaurant's Wi-Fi.
  const lan = await newPage(browser, { name: 'lan', t });
  const lanRes = await lan.goto(`${daemon.lanUrl}/healthz`);
  assert.equal(lanRes.status(), 200);
  assert.equal(new URL(lan.url()).protocol, 'http:');
  assert.equal(await lan.evaluate(() => window.isSecureContext), false);
  await assertClean(lan);
  await screenshot(lan, 'lan-healthz');
});

test('the pages are served over HTTPS under the site CA, which Chromium trusts like a managed tablet', async (t) => {
  const [daemon, browser] = await Promise.all([startDaemon({ t }), launchBrowser({ t })]);

  // Trusted through the NSS database (no certificate error ignored): a secure context.
  const page = await newPage(browser, { name: 'https', t });
  const res = await page.goto(`${daemon.siteUrl}/tablet`);
  assert.equal(res.status(), 200);
  assert.equal(new URL(page.url()).protocol, 'https:');
  assert.equal(await page.evaluate(() => window.isSecureContext), true);
  const cert = await res.securityDetails();
  assert.equal(cert.issuer, 'Docket test site CA');
  assert.equal(cert.subjectName, 'docket.local');

  // The landing page on plain HTTP: the fingerprint the box reports, and a way to HTTPS.
  const health = JSON.parse((await daemon.get('/healthz')).body);
  const landing = await newPage(browser, { name: 'landing', t });
  await landing.goto(`${daemon.lanUrl}/trust`);
  const fp = (await landing.locator('#fingerprint').innerText()).replace(/\s+/g, ':');
  assert.equal(fp, health.tls.ca_sha256);
  await assertClean(landing);
  await screenshot(landing, 'trust-landing');

  // A browser that has not installed the site CA refuses the box.
  const stranger = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox', '--disable-dev-shm-usage', `--host-resolver-rules=MAP ${LAN_HOST} 127.0.0.1`],
    env: { ...process.env, HOME: await fsp.mkdtemp(path.join(os.tmpdir(), 'docket-stranger-')) },
  });
  t.after(() => stranger.close().catch(() => {}));
  const p = await stranger.newPage();
  await assert.rejects(p.goto(`${daemon.siteUrl}/tablet`), /ERR_CERT_AUTHORITY_INVALID/);
});
