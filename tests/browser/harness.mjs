// Browser test harness: the real `docketd` on free ports with its own data directory (as the Rust
// harness in tests/src/daemon.rs starts it), and headless Chromium (Debian's `chromium`) driven by
// playwright-core. Every wait has a deadline; every daemon and browser is stopped when its test
// ends (pass `t`), and at the latest when this process exits, even on failure.
//
// Environment:
//   DOCKETD_BIN        the daemon under test (default: target/debug/docketd in the repo)
//   CHROMIUM           the browser (default: /usr/bin/chromium)
//   DOCKET_ARTIFACTS   daemon logs and screenshots (default: target/browser-artifacts in the repo)

import { spawn, execFile } from 'node:child_process';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import assert from 'node:assert/strict';

import { after } from 'node:test';
import { chromium } from 'playwright-core';

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

/** How long any single wait may take before the test fails (as the Rust harness's DEADLINE). */
export const DEADLINE_MS = 20_000;

/** The host name that `launchBrowser` maps to 127.0.0.1: not loopback by name, so pages opened
 *  under it are NOT a secure context, as on a restaurant LAN (`daemon.lanUrl`). */
export const LAN_HOST = 'docket-box.test';

export function docketdBin() {
  return process.env.DOCKETD_BIN || path.join(REPO_ROOT, 'target/debug/docketd');
}

export function artifactsDir() {
  return process.env.DOCKET_ARTIFACTS || path.join(REPO_ROOT, 'target/browser-artifacts');
}

// ---------------------------------------------------------------------------------------------
// Cleanup: everything still running when the process exits is killed; temp dirs of daemons whose
// test passed are removed (the others are kept, and their paths printed, for a post-mortem).

const live = new Set(); // { killSync(), close(): Promise }
const tempDirs = new Map(); // dir -> { keep: boolean }

function run(cmd, args) {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, (err, stdout, stderr) => {
      if (err) reject(new Error(`${cmd} ${args.join(' ')} failed: ${stderr || err.message}`));
      else resolve(stdout);
    });
  });
}

let siteCa = null;
/**
 * One site CA for the whole run, made with openssl and handed to every daemon (`tls.ca_cert_file`).
 * Chromium trusts it through an NSS database in a HOME of its own (certutil, trust "C,,"), the
 * way a managed tablet trusts its site's CA: no certificate error is ignored.
 */
export function testSiteCa() {
  siteCa ??= (async () => {
    const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'docket-site-ca-'));
    tempDirs.set(dir, { keep: false });
    const cert = path.join(dir, 'site-ca.pem');
    const key = path.join(dir, 'site-ca.key');
    await run('openssl', [
      'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes',
      '-keyout', key, '-out', cert, '-days', '30', '-subj', '/O=Docket/CN=Docket test site CA',
      '-addext', 'basicConstraints=critical,CA:TRUE,pathlen:0',
      '-addext', 'keyUsage=critical,keyCertSign,cRLSign',
    ]);
    const home = path.join(dir, 'home');
    const db = path.join(home, '.pki', 'nssdb');
    await fsp.mkdir(db, { recursive: true });
    await run('certutil', ['-N', '-d', `sql:${db}`, '--empty-password']);
    await run('certutil', ['-A', '-d', `sql:${db}`, '-n', 'Docket test site CA', '-t', 'C,,', '-i', cert]);
    return { cert, key, home };
  })();
  return siteCa;
}

function cleanupSync(code) {
  for (const r of live) {
    try {
      r.killSync();
    } catch {
      // already gone
    }
  }
  live.clear();
  for (const [dir, { keep }] of tempDirs) {
    if (keep || code !== 0) {
      process.stderr.write(`harness: kept ${dir} for inspection\n`);
    } else {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }
  tempDirs.clear();
}

process.on('exit', (code) => cleanupSync(code));
for (const [sig, n] of [
  ['SIGINT', 2],
  ['SIGTERM', 15],
  ['SIGHUP', 1],
]) {
  process.once(sig, () => {
    cleanupSync(128 + n);
    process.exit(128 + n);
  });
}

/** Registers `fn` to run when test `t` ends (if given); `fn` must not throw. */
function onTestEnd(t, fn) {
  if (t && typeof t.after === 'function') {
    t.after(fn);
  } else {
    closeAllAtFileEnd();
  }
}

// Without a test context, whatever is still open is closed once the file's tests are done
// (under `node --test`); otherwise the browser's pipes would keep the process alive forever.
// Plain scripts (not under the test runner) close what they open; the exit hook is the backstop.
let fileEndHook = false;
function closeAllAtFileEnd() {
  const underTestRunner =
    !!process.env.NODE_TEST_CONTEXT || /\.test\.[cm]?js$/.test(process.argv[1] || '');
  if (fileEndHook || !underTestRunner) return;
  fileEndHook = true;
  after(async () => {
    await Promise.all([...live].map((r) => r.close().catch(() => r.killSync())));
  });
}

/** Did test `t` pass so far? (Node ≥ 20.12 knows by the time `t.after` hooks run.) */
function testPassed(t) {
  return t && typeof t.passed === 'boolean' ? t.passed : true;
}

function sanitize(name) {
  return String(name)
    .replace(/[^A-Za-z0-9._-]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 80) || 'unnamed';
}

/** The running test file's base name, to prefix artifacts (e.g. "smoke"). */
function filePrefix() {
  const main = process.argv[1] ? path.basename(process.argv[1]) : 'node';
  return sanitize(main.replace(/\.test\.m?js$|\.m?js$/, ''));
}

const usedNames = new Map();
/** A unique artifact base name in this process: "<file>.<name>", "<file>.<name>-2", ... */
function artifactName(name) {
  const base = `${filePrefix()}.${sanitize(name)}`;
  const n = (usedNames.get(base) || 0) + 1;
  usedNames.set(base, n);
  return n === 1 ? base : `${base}-${n}`;
}

// ---------------------------------------------------------------------------------------------
// Small helpers

/** Ports handed out by this process: the kernel may offer a just-closed port again at once. */
const handedOut = new Set();

/** A TCP port nobody listens on right now (127.0.0.1), never one this process handed out before
 *  (two daemons started together once got the same port for two listeners: "must differ"). */
export async function freePort() {
  for (;;) {
    const port = await new Promise((resolve, reject) => {
      const srv = net.createServer();
      srv.unref();
      srv.on('error', reject);
      srv.listen(0, '127.0.0.1', () => {
        const { port: p } = srv.address();
        srv.close(() => resolve(p));
      });
    });
    if (!handedOut.has(port)) {
      handedOut.add(port);
      return port;
    }
  }
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * Polls the (async) predicate `fn` every `interval` ms until it returns something truthy, and
 * returns that. Throws `message` (plus the predicate's last error, if it threw) after `timeout`.
 */
export async function waitFor(fn, { timeout = 10_000, interval = 50, message } = {}) {
  const deadline = Date.now() + timeout;
  let lastError;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
      lastError = undefined;
    } catch (e) {
      lastError = e;
    }
    if (Date.now() >= deadline) {
      const what = message || `condition ${fn.toString().slice(0, 120)}`;
      const err = new Error(
        `timed out after ${timeout} ms waiting for: ${what}` +
          (lastError ? ` (last error: ${lastError.message || lastError})` : ''),
      );
      if (lastError) err.cause = lastError;
      throw err;
    }
    await sleep(interval);
  }
}

/** A GET with its own connection (no keep-alive pool to outlive the daemon or the test):
 *  {status, body, headers}. */
export function httpGet(url, timeoutMs = 5000) {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { agent: false, timeout: timeoutMs }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () =>
        resolve({ status: res.statusCode, body: Buffer.concat(chunks).toString('utf8'), headers: res.headers }),
      );
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${url}: no answer in ${timeoutMs} ms`)));
    req.on('error', reject);
  });
}

function tail(file, lines = 60) {
  try {
    return fs.readFileSync(file, 'utf8').split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

// ---------------------------------------------------------------------------------------------
// The daemon

/** Environment for docketd and its CLI: ours, minus any DOCKET_* override of the config file. */
function daemonEnv(extra) {
  const env = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (!k.startsWith('DOCKET_') && k !== 'NOTIFY_SOCKET') env[k] = v;
  }
  env.RUST_LOG = 'info,rumqttd=warn,rumqttd::server=off';
  return { ...env, ...extra };
}

/**
 * Starts docketd with its own temp data dir, config file and free ports, and waits until
 * `GET /healthz` is 200.
 *
 * opts:
 *   t          the node:test context: the daemon is stopped when that test ends, and its temp
 *              dir removed if the test passed
 *   name       names the log file in the artifacts dir (default: the test's name)
 *   siteId     default "test-site"
 *   menu       path of a menu TOML (default: the demo menu built into docketd)
 *   config     extra TOML appended to the generated config file
 *   env        extra environment variables for the daemon process
 *   keepDir    keep the temp dir even on success
 */
export async function startDaemon(opts = {}) {
  const { t, siteId = 'test-site', menu, config: extraConfig = '', env = {}, keepDir = false, plain = true } = opts;
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'docket-browser-'));
  tempDirs.set(dir, { keep: keepDir });
  const mqttPort = await freePort();
  const mqttV5Port = await freePort();
  const httpPort = await freePort();
  const httpsPort = await freePort();
  const mqttsPort = await freePort();
  const ca = await testSiteCa();
  const configPath = path.join(dir, 'docketd.toml');
  let toml =
    `data_dir = "data"\nsite_id = ${JSON.stringify(siteId)}\n` +
    (menu ? `[menu]\nfile = ${JSON.stringify(path.resolve(menu))}\n` : '') +
    // Plain MQTT and plain HTTP on (`plain`, the default), as a site may turn them on; the pages
    // are opened over HTTPS with the site CA trusted all the same.
    `[mqtt]\nplain = ${plain}\nlisten = "127.0.0.1:${mqttPort}"\nlisten_v5 = "127.0.0.1:${mqttV5Port}"\n` +
    `[http]\nplain = ${plain}\nlisten = "127.0.0.1:${httpPort}"\n` +
    `[tls]\nhttps_listen = "127.0.0.1:${httpsPort}"\nmqtt_listen = "127.0.0.1:${mqttsPort}"\nmqtt_listen_v5 = "127.0.0.1:0"\n` +
    `names = [${JSON.stringify(LAN_HOST)}]\nca_cert_file = ${JSON.stringify(ca.cert)}\nca_key_file = ${JSON.stringify(ca.key)}\n` +
    `[engine]\nboard_interval_ms = 50\nreplay_page = 20\n`;
  if (extraConfig) toml += `\n${extraConfig}\n`;
  await fsp.writeFile(configPath, toml);

  const artifacts = artifactsDir();
  await fsp.mkdir(artifacts, { recursive: true });
  const logPath = path.join(artifacts, `${artifactName(opts.name || t?.name || 'docketd')}.docketd.log`);
  await fsp.writeFile(logPath, '');

  const bin = docketdBin();
  const httpUrl = `http://127.0.0.1:${httpPort}`;
  let child = null;
  let exited = null; // Promise<{code, signal}> of the current child

  const handle = {
    killSync() {
      if (child && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    },
    close: () => daemon.kill9(),
  };

  async function spawnDaemon() {
    if (!fs.existsSync(bin)) {
      throw new Error(`docketd binary not found at ${bin}: run \`cargo build -p docket-appliance\` or set DOCKETD_BIN`);
    }
    const fd = fs.openSync(logPath, 'a');
    try {
      child = spawn(bin, ['run', '--config', configPath], {
        env: daemonEnv(env),
        stdio: ['ignore', fd, fd],
      });
    } finally {
      fs.closeSync(fd);
    }
    // Never keeps this process alive by itself: the exit hook kills what is left.
    child.unref();
    const c = child;
    exited = new Promise((resolve) => {
      c.once('exit', (code, signal) => resolve({ code, signal }));
      c.once('error', (err) => resolve({ code: null, signal: null, error: err }));
    });
    live.add(handle);
    await waitReady();
  }

  async function waitReady() {
    let done = null;
    exited.then((s) => (done = s));
    const deadline = Date.now() + DEADLINE_MS;
    for (;;) {
      if (done) {
        const how = done.error ? done.error.message : `code ${done.code}, signal ${done.signal}`;
        throw new Error(`docketd exited early (${how}); log ${logPath}:\n${tail(logPath)}`);
      }
      const r = await httpGet(`${httpUrl}/healthz`, 2000).catch(() => null);
      if (r?.status === 200) return;
      if (Date.now() > deadline) {
        throw new Error(`docketd not ready (GET /healthz = 200) in ${DEADLINE_MS} ms; log ${logPath}:\n${tail(logPath)}`);
      }
      await sleep(25);
    }
  }

  // The child is unref'd: hold a ref while waiting for its exit, or the event loop may end.
  async function waitExit(ms) {
    child.ref();
    let timer;
    try {
      return await Promise.race([exited, new Promise((r) => (timer = setTimeout(() => r(null), ms)))]);
    } finally {
      clearTimeout(timer);
      child.unref();
    }
  }

  const daemon = {
    httpUrl,
    /** The same HTTP port under LAN_HOST: an insecure context (browsers from launchBrowser). */
    lanUrl: `http://${LAN_HOST}:${httpPort}`,
    /** HTTPS under LAN_HOST, as the restaurant's devices reach the box: the site CA trusted. */
    siteUrl: `https://${LAN_HOST}:${httpsPort}`,
    httpPort,
    mqttPort,
    mqttV5Port,
    /** MQTT over TLS, and the site CA (PEM file) its certificate comes from. */
    mqttsPort,
    caFile: ca.cert,
    /** Plain MQTT and plain HTTP are on (startDaemon's `plain`). */
    plain,
    dataDir: dir,
    configPath,
    logPath,
    get pid() {
      return child?.pid;
    },
    get running() {
      return !!child && child.exitCode === null && child.signalCode === null;
    },

    /** Runs `docketd <args> --config <configPath>`; resolves to stdout, rejects with stderr. */
    cli(args) {
      return new Promise((resolve, reject) => {
        execFile(
          bin,
          [...args, '--config', configPath],
          { env: daemonEnv({}), timeout: DEADLINE_MS, maxBuffer: 16 << 20 },
          (err, stdout, stderr) => {
            if (err) {
              reject(new Error(`docketd ${args.join(' ')} failed (${err.code ?? err.signal}): ${stderr || err.message}`));
            } else {
              resolve(stdout);
            }
          },
        );
      });
    },

    /** Pairs a device with `docketd device add`; resolves to its JSON line {id, role, secret, stations?}. */
    async addDevice(id, role, stations = []) {
      const args = ['device', 'add', '--id', id, '--role', role];
      if (stations.length > 0) args.push('--stations', stations.join(','));
      const out = await daemon.cli(args);
      const creds = JSON.parse(out.trim());
      assert.equal(creds.id, id, `device add printed ${out}`);
      assert.match(creds.secret, /^[0-9a-f]{64}$/, `device add printed ${out}`);
      return creds;
    },

    /** A GET on the daemon's HTTP port (path like "/healthz"): {status, body, headers}. */
    get(p) {
      return httpGet(httpUrl + p, 5000);
    },

    /** SIGTERM and wait for exit (SIGKILL and throw if it takes longer than the deadline). */
    async stop() {
      if (!daemon.running) return exited ? exited : null;
      child.kill('SIGTERM');
      const s = await waitExit(DEADLINE_MS);
      live.delete(handle);
      if (!s) {
        child.kill('SIGKILL');
        await waitExit(DEADLINE_MS);
        throw new Error(`docketd did not stop on SIGTERM; log ${logPath}:\n${tail(logPath)}`);
      }
      return s;
    },

    /** kill -9: no drain, no goodbye. */
    async kill9() {
      if (daemon.running) {
        child.kill('SIGKILL');
        await waitExit(DEADLINE_MS);
      }
      live.delete(handle);
    },

    /** Starts again on the same data dir and ports (after kill -9, or SIGTERM if `graceful`). */
    async restart({ graceful = false } = {}) {
      if (graceful) await daemon.stop();
      else await daemon.kill9();
      await spawnDaemon();
    },

    /** The daemon's log so far. */
    log() {
      return fs.readFileSync(logPath, 'utf8');
    },
  };

  try {
    await spawnDaemon();
  } catch (e) {
    await daemon.kill9();
    tempDirs.get(dir).keep = true;
    throw e;
  }
  onTestEnd(t, async () => {
    try {
      await daemon.stop();
    } catch (e) {
      process.stderr.write(`harness: ${e.message}\n`);
      tempDirs.get(dir).keep = true;
    }
    if (!testPassed(t)) tempDirs.get(dir).keep = true;
    else if (!tempDirs.get(dir).keep) {
      await fsp.rm(dir, { recursive: true, force: true });
      tempDirs.delete(dir);
    }
  });
  return daemon;
}

// ---------------------------------------------------------------------------------------------
// The browser

/**
 * Launches headless Chromium ($CHROMIUM or /usr/bin/chromium). With `t`, it is closed when that
 * test ends; in any case at process exit. `LAN_HOST` resolves to 127.0.0.1 in it.
 */
export async function launchBrowser({ t, args = [], ...launchOptions } = {}) {
  const executablePath = process.env.CHROMIUM || '/usr/bin/chromium';
  const { home } = await testSiteCa();
  const browser = await chromium.launch({
    executablePath,
    // Its NSS database (the site CA) is under $HOME/.pki/nssdb.
    env: { ...process.env, HOME: home },
    headless: true,
    timeout: DEADLINE_MS,
    args: [
      '--no-sandbox',
      '--disable-dev-shm-usage',
      '--disable-gpu',
      '--no-first-run',
      '--no-default-browser-check',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-features=HttpsUpgrades,HttpsFirstBalancedModeAutoEnable',
      `--host-resolver-rules=MAP ${LAN_HOST} 127.0.0.1`,
      ...args,
    ],
    ...launchOptions,
  });
  const handle = {
    // Playwright itself kills the browsers it launched on process 'exit' (which our signal
    // handlers reach through process.exit), so there is nothing to do synchronously here.
    killSync() {},
    close: () => browser.close(),
  };
  live.add(handle);
  browser.on('disconnected', () => live.delete(handle));
  onTestEnd(t, async () => {
    await browser.close().catch(() => {});
  });
  return browser;
}

// Runs in every page before its own scripts. Plain HTTP on a LAN address is not a secure context,
// so there `crypto.subtle` and `crypto.randomUUID` do not exist; on localhost they do and a test
// would not notice page code depending on them. Any touch is recorded, then throws.
function secureApiTrap() {
  if (window.__secureApiTouched) return;
  const touched = [];
  Object.defineProperty(window, '__secureApiTouched', { value: touched, configurable: false });
  const trap = (target, prop, label) => {
    try {
      Object.defineProperty(target, prop, {
        configurable: true,
        enumerable: true,
        get() {
          const stack = new Error().stack || '';
          const entry = `${label} touched at ${location.href}\n${stack}`;
          touched.push(entry);
          try {
            window.__docketSecureApiTouched?.(entry);
          } catch {
            // the binding is best effort; the array is authoritative
          }
          throw new Error(`${label} is not available on a non-secure (plain HTTP LAN) page`);
        },
      });
    } catch {
      // not configurable in this realm: nothing to trap
    }
  };
  if (typeof Crypto !== 'undefined') {
    trap(Crypto.prototype, 'subtle', 'crypto.subtle');
    trap(Crypto.prototype, 'randomUUID', 'crypto.randomUUID');
  }
  if (typeof crypto !== 'undefined') {
    trap(crypto, 'subtle', 'crypto.subtle');
    trap(crypto, 'randomUUID', 'crypto.randomUUID');
  }
}

/**
 * A fresh browser context and page with the secure-API trap installed. The returned page has:
 *   page.errors           [{type: 'pageerror'|'console', text, stack?, location?}]
 *   page.secureApiTouched everything the trap recorded, kept across navigations
 *   page.docketName       the name (for screenshots and messages)
 * opts: name; t (close the context when that test ends; the browser's close does too); and any
 * playwright `browser.newContext` options (viewport, locale, ...).
 */
export async function newPage(browser, { name = 'page', t, ...contextOptions } = {}) {
  const context = await browser.newContext({
    viewport: { width: 1280, height: 800 },
    ...contextOptions,
  });
  const secureApiTouched = [];
  await context.exposeFunction('__docketSecureApiTouched', (entry) => {
    if (!secureApiTouched.includes(entry)) secureApiTouched.push(entry);
  });
  await context.addInitScript(secureApiTrap);
  onTestEnd(t, async () => {
    await context.close().catch(() => {});
  });
  const page = await context.newPage();
  page.setDefaultTimeout(DEADLINE_MS);
  page.setDefaultNavigationTimeout(DEADLINE_MS);
  page.docketName = name;
  page.errors = [];
  page.secureApiTouched = secureApiTouched;
  page.on('pageerror', (err) => {
    page.errors.push({ type: 'pageerror', text: String(err?.message ?? err), stack: err?.stack });
  });
  page.on('console', (msg) => {
    if (msg.type() === 'error') {
      page.errors.push({ type: 'console', text: msg.text(), location: msg.location() });
    }
  });
  return page;
}

/**
 * Fails (throws an AssertionError) if page code touched a secure-context-only API or threw an
 * uncaught error (`pageerror`). Console errors are reported in `page.errors` but not fatal.
 */
export async function assertClean(page) {
  const touched = [...page.secureApiTouched];
  if (!page.isClosed()) {
    try {
      for (const e of await page.evaluate(() => window.__secureApiTouched || [])) {
        if (!touched.includes(e)) touched.push(e);
      }
    } catch {
      // navigating or crashed: what the binding delivered is all we have
    }
  }
  const pageErrors = page.errors.filter((e) => e.type === 'pageerror');
  const problems = [
    ...touched.map((e) => `secure-context API: ${e}`),
    ...pageErrors.map((e) => `page error: ${e.stack || e.text}`),
  ];
  assert.ok(
    problems.length === 0,
    `page "${page.docketName}" is not clean:\n${problems.join('\n---\n')}`,
  );
}

/** Saves a full-page PNG as <artifacts>/<file>.<name>.png; returns its path. */
export async function screenshot(page, name) {
  const dir = artifactsDir();
  await fsp.mkdir(dir, { recursive: true });
  const file = path.join(dir, `${filePrefix()}.${sanitize(name)}.png`);
  await page.screenshot({ path: file, fullPage: true });
  return file;
}
