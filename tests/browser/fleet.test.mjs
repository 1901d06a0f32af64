// Head office's fleet view (`docket fleet serve`) in Chromium, against a real PostgreSQL with
// twelve sites' orders: ten live, two stalled. The page names the stalled sites in its alert
// list (longest-stalled first), counts live and stalled, draws its charts, and when a live site
// stops checking in the alert appears in place, without a reload; when the database goes away
// the page says so and keeps the last data.
//
// Environment: DOCKET_BIN, the `docket` CLI (default: target/debug/docket in the repo).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import path from 'node:path';
import readline from 'node:readline';

import { REPO_ROOT, DEADLINE_MS, assertClean, launchBrowser, newPage, screenshot, waitFor } from './harness.mjs';
import { startPostgres } from './postgres.mjs';

const docketBin = () => process.env.DOCKET_BIN || path.join(REPO_ROOT, 'target/debug/docket');

const LIVE = ['bistro-01', 'bistro-02', 'canal-03', 'depot-04', 'dock-05', 'garden-06', 'market-08', 'quay-09', 'square-10', 'yard-12'];
const STALLED = { 'harbour-07': '42 minutes', 'station-11': '6 minutes' };

/** Twelve sites' last 24 hours: busier at lunch and dinner (UTC hours), a grill, bar and fry,
 *  the last quarter hour's tickets still cooking. A stalled site's orders stop at its last
 *  contact. Deterministic (hashint4), so the screenshot looks the same each run. */
function seedSql() {
  const sites = [
    ...LIVE.map((id, i) => `('${id}', ${i + 1}, now() - interval '${(i * 7) % 50} seconds')`),
    ...Object.entries(STALLED).map(([id, ago], i) => `('${id}', ${20 + i}, now() - interval '${ago}')`),
  ].join(',\n  ');
  return `
CREATE TEMP TABLE seed_sites (site_id text, n int, contact timestamptz);
INSERT INTO seed_sites VALUES
  ${sites};
INSERT INTO docket.orders (site_id, order_id, ticket, table_name, status, version, fired_course, placed_at, updated_at)
SELECT s.site_id, s.site_id || '-' || k, k, 'T' || (k % 20), 'placed', 1, 1, t, t
FROM seed_sites s, generate_series(1, 480) k, LATERAL (SELECT now() - k * interval '3 minutes' AS t) x
WHERE t < s.contact
  AND abs(hashint4(k * 31 + s.n * 7919)) % 100 <
      CASE WHEN extract(hour FROM t AT TIME ZONE 'UTC') BETWEEN 11 AND 14 THEN 85
           WHEN extract(hour FROM t AT TIME ZONE 'UTC') BETWEEN 18 AND 21 THEN 95
           WHEN extract(hour FROM t AT TIME ZONE 'UTC') BETWEEN 7 AND 22 THEN 40 ELSE 6 END;
INSERT INTO docket.order_lines (site_id, order_id, n, item, name, qty, mods, course, station, status, ready_at, version)
SELECT o.site_id, o.order_id, st.n, st.station, st.station, 1, '[]', 1, st.station,
       CASE WHEN o.placed_at > now() - interval '15 minutes' THEN 'placed' ELSE 'ready' END,
       CASE WHEN o.placed_at > now() - interval '15 minutes' THEN NULL
            ELSE o.placed_at + (st.base + abs(hashint4(o.ticket::int * 13 + st.n)) % st.spread) * interval '1 second' END,
       1
FROM docket.orders o
JOIN (VALUES (1, 'grill', 240, 300), (2, 'bar', 60, 150), (3, 'fry', 150, 200)) st(n, station, base, spread)
  ON st.n = 1 OR o.ticket % st.n = 0;
INSERT INTO docket.sites (site_id, last_seq, last_contact, docketd_version)
SELECT s.site_id, 3 * count(o.order_id) + 1, s.contact, CASE WHEN s.n = 20 THEN '0.1.0' ELSE '0.2.0' END
FROM seed_sites s LEFT JOIN docket.orders o USING (site_id) GROUP BY s.site_id, s.n, s.contact;
INSERT INTO docket.events (site_id, seq, type, order_id, version, device, at, body)
SELECT site_id, last_seq, 'order_placed', 'x', 1, 'tab-1', last_contact - interval '4 seconds', '{}' FROM docket.sites;
`;
}

/** `docket fleet serve` on a free port; resolves to its URL once it prints it. */
async function startFleet(t, pgUrl) {
  const child = spawn(docketBin(), ['fleet', 'serve', '--postgres', pgUrl, '--listen', '127.0.0.1:0'], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const kill = () => child.kill('SIGKILL');
  process.on('exit', kill);
  t.after(kill);
  const line = await new Promise((resolve, reject) => {
    child.once('error', (e) => reject(new Error(`cannot run ${docketBin()} (cargo build -p docket-provisioning): ${e.message}`)));
    child.once('exit', (c) => reject(new Error(`docket fleet serve exited with ${c}`)));
    readline.createInterface({ input: child.stdout }).once('line', resolve);
  });
  const url = /(http:\/\/\S+\/)/.exec(line)?.[1];
  assert.ok(url, `no URL in ${line}`);
  return { url, child };
}

const texts = (page, sel) => page.$$eval(sel, (els) => els.map((e) => e.textContent.trim()));

test('the fleet view names stalled sites, draws its charts, and shows a new stall in place', async (t) => {
  const pg = await startPostgres({ t });
  await pg.migrate();
  await pg.sql(seedSql());
  const [fleet, browser] = await Promise.all([startFleet(t, pg.url), launchBrowser({ t })]);
  const page = await newPage(browser, { name: 'fleet', t, viewport: { width: 1600, height: 1000 } });
  await page.goto(fleet.url);

  // The alert list: the two stalled sites, longest-stalled first, with how long.
  await waitFor(async () => (await texts(page, '#alerts li')).length === 2, { message: 'two alerts' });
  const alerts = await texts(page, '#alerts li');
  assert.match(alerts[0], /^harbour-07\s*STALLED: no contact for 42 min/);
  assert.match(alerts[1], /^station-11\s*STALLED: no contact for 6 min/);
  assert.equal(await page.locator('#n-live').innerText(), '10');
  assert.equal(await page.locator('#n-stalled').innerText(), '2');
  assert.equal(await page.locator('#n-total').innerText(), '12');
  assert.equal(await page.locator('#conn').getAttribute('data-state'), 'live');

  // Charts with data: 24 hourly bars (most of them orders), a bar pair per station, a line each.
  const bars = await page.$$eval('#chart-orders rect.bar', (rs) => rs.map((r) => Number(r.dataset.value)));
  assert.equal(bars.length, 24);
  assert.ok(bars.filter((v) => v > 0).length >= 20, `orders per hour: ${bars}`);
  assert.deepEqual((await page.$$eval('#chart-speed g[data-station]', (gs) => gs.map((g) => g.dataset.station))).sort(), ['bar', 'fry', 'grill']);
  const grillP90 = await page.$eval('#chart-speed g[data-station="grill"] rect.p90', (r) => Number(r.dataset.value));
  assert.ok(grillP90 > 240 && grillP90 < 540, `grill p90 ${grillP90}`);
  const lines = await page.$$eval('#chart-p90 path[data-station]', (ps) => ps.map((p) => Number(p.dataset.points)));
  assert.equal(lines.length, 3);
  assert.ok(lines.every((n) => n >= 20), `p90 points per station: ${lines}`);

  // Sync lag: every site in a bucket of time since contact, the two stalled in the red ones.
  const lag = await page.$$eval('#chart-lag g[data-bucket]', (gs) =>
    gs.map((g) => [g.dataset.bucket, Number(g.querySelector('rect').dataset.value), g.querySelector('rect').classList.contains('late')]),
  );
  assert.equal(lag.length, 5);
  assert.equal(lag.reduce((n, [, v]) => n + v, 0), 12, `sync lag buckets: ${JSON.stringify(lag)}`);
  assert.deepEqual(lag.filter(([, , late]) => late).map(([b, v]) => [b, v]), [['2–10 min', 1], ['> 10 min', 1]]);

  // The table: stalled first, one row per site.
  const rows = await page.$$eval('#sites tbody tr', (trs) => trs.map((tr) => [tr.dataset.site, tr.className]));
  assert.equal(rows.length, 12);
  assert.deepEqual(rows.slice(0, 2), [['harbour-07', 'stalled'], ['station-11', 'stalled']]);
  await screenshot(page, 'fleet');

  // bistro-01 stops checking in: its alert appears and its row turns, in place (no reload: the
  // marker survives; the same row node changes its class and moves up).
  await page.evaluate(() => {
    window.__noReload = true;
    window.__bistroRow = document.querySelector('#sites tr[data-site="bistro-01"]');
  });
  await pg.sql("UPDATE docket.sites SET last_contact = now() - interval '3 minutes' WHERE site_id = 'bistro-01'");
  await waitFor(async () => (await texts(page, '#alerts li')).length === 3, { timeout: DEADLINE_MS, message: 'the third alert' });
  assert.match((await texts(page, '#alerts li'))[2], /^bistro-01\s*STALLED: no contact for 3 min/);
  assert.equal(await page.locator('#n-stalled').innerText(), '3');
  const same = await page.evaluate(() => {
    const row = document.querySelector('#sites tr[data-site="bistro-01"]');
    return window.__noReload === true && row === window.__bistroRow && row.className === 'stalled' && row.rowIndex === 3;
  });
  assert.ok(same, 'the row was updated in place, without a reload');

  // The database goes away: the page says so plainly and keeps what it showed.
  await pg.stop();
  await waitFor(async () => !(await page.locator('#banner').isHidden()), { timeout: DEADLINE_MS, message: 'the banner' });
  assert.match(await page.locator('#banner').innerText(), /^Head office database unreachable: .*Showing the last data, read at/s);
  assert.equal(await page.locator('#conn').getAttribute('data-state'), 'down');
  assert.equal((await texts(page, '#alerts li')).length, 3, 'the last alerts stay');
  assert.equal((await texts(page, '#sites tbody tr')).length, 12, 'the last table stays');
  assert.equal(fleet.child.exitCode, null, 'the server keeps running');
  await screenshot(page, 'fleet-database-down');
  await assertClean(page);
});
