// A PostgreSQL server of a test's own for the browser tests (head office's side), started as
// tests/src/servers.rs starts one: Debian's binaries (or $DOCKET_PG_BIN), initdb into a temp
// dir, a free port on 127.0.0.1 (trust auth: nothing else listens there), fsync off. As root it
// runs as the `postgres` user. Stopped when its test ends, and at the latest at process exit.

import { spawn, execFile, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { REPO_ROOT, freePort, waitFor, DEADLINE_MS } from './harness.mjs';

function pgBin() {
  if (process.env.DOCKET_PG_BIN) return process.env.DOCKET_PG_BIN;
  const root = '/usr/lib/postgresql';
  const versions = fs.existsSync(root)
    ? fs.readdirSync(root).filter((v) => fs.existsSync(path.join(root, v, 'bin/postgres')))
    : [];
  if (!versions.length) throw new Error('PostgreSQL is not installed (apt-get install postgresql) and DOCKET_PG_BIN is not set');
  versions.sort((a, b) => Number(a) - Number(b));
  return path.join(root, versions.at(-1), 'bin');
}

/** [command, args] that runs `bin` as `postgres` when we are root. */
function asPostgres(bin, args) {
  return process.getuid?.() === 0 ? ['setpriv', ['--reuid=postgres', '--regid=postgres', '--clear-groups', '--', bin, ...args]] : [bin, args];
}

function run(cmd, args, input) {
  return new Promise((resolve, reject) => {
    const child = execFile(cmd, args, { maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${cmd} ${args.slice(0, 6).join(' ')}…: ${stderr || err.message}`));
      else resolve(stdout);
    });
    if (input != null) child.stdin.end(input);
  });
}

/**
 * Starts a server; returns { url, port, sql(text), migrate(), stop() }. `sql` runs statements
 * through psql as the superuser (stops at the first error); `migrate` applies the cloud schema's
 * files (appliance/cloud/sql) in order.
 */
export async function startPostgres({ t } = {}) {
  const bin = pgBin();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'docket-browser-pg-'));
  if (process.getuid?.() === 0) execFileSync('chown', ['-R', 'postgres:postgres', dir]);
  await run(...asPostgres(path.join(bin, 'initdb'), ['-D', path.join(dir, 'data'), '-U', 'postgres', '-A', 'trust', '-E', 'UTF8', '--no-sync']));
  const port = await freePort();
  const log = fs.openSync(path.join(dir, 'postgres.log'), 'a');
  const [cmd, args] = asPostgres(path.join(bin, 'postgres'), [
    '-D', path.join(dir, 'data'), '-p', String(port), '-k', dir,
    '-c', 'listen_addresses=127.0.0.1', '-c', 'fsync=off', '-c', 'max_connections=30',
  ]);
  const child = spawn(cmd, args, { stdio: ['ignore', log, log] });
  const kill = () => {
    try {
      child.kill('SIGKILL');
    } catch {
      // already gone
    }
  };
  process.on('exit', kill);
  const url = `postgres://postgres@127.0.0.1:${port}/postgres`;
  const psql = path.join(bin, 'psql');
  const sql = (text) => run(psql, ['-X', '-q', '-v', 'ON_ERROR_STOP=1', '-d', url, '-f', '-'], text);
  const pg = {
    url,
    port,
    sql,
    async migrate() {
      const files = fs.readdirSync(path.join(REPO_ROOT, 'appliance/cloud/sql')).filter((f) => f.endsWith('.sql')).sort();
      for (const f of files) await sql(fs.readFileSync(path.join(REPO_ROOT, 'appliance/cloud/sql', f), 'utf8'));
    },
    /** kill -9, as a database host that died. */
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise((r) => child.once('exit', r));
      kill();
      await exited;
    },
  };
  await waitFor(() => sql('SELECT 1').then(() => true), {
    timeout: DEADLINE_MS,
    interval: 100,
    message: `postgres on port ${port} (log: ${path.join(dir, 'postgres.log')})`,
  });
  t?.after(async () => {
    await pg.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });
  return pg;
}
