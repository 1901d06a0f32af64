// A device in Node speaking the wire contract over MQTT/TCP, for the parts of a browser test
// that happen "elsewhere" (another tablet placing orders, another screen bumping). It uses the
// pages' own wire module (appliance/web/src/wire.js) and mqtt.js from appliance/web's packages,
// so `npm ci` must have run in appliance/web (scripts/test.sh does).

import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';

import { REPO_ROOT, DEADLINE_MS } from './harness.mjs';

const require = createRequire(path.join(REPO_ROOT, 'appliance/web/package.json'));
const mqtt = require('mqtt');
const wire = await import(path.join(REPO_ROOT, 'appliance/web/src/wire.js'));

export const { decode, topics } = wire;

export class Device {
  /** Connects as `creds` ({id, secret}) to the daemon's MQTT port; resolves once subscribed. */
  static async connect(daemon, creds) {
    const d = new Device();
    d.creds = creds;
    d.keys = wire.deviceKeys(wire.hexToBytes(creds.secret));
    d.replies = new Map();
    d.waiters = new Map();
    // Plain MQTT where the daemon has it on, else MQTT over TLS trusting only the site CA.
    const url = daemon.plain ? `mqtt://127.0.0.1:${daemon.mqttPort}` : `mqtts://127.0.0.1:${daemon.mqttsPort}`;
    d.client = await mqtt.connectAsync(url, {
      ...(daemon.plain ? {} : { ca: fs.readFileSync(daemon.caFile), servername: 'docket.local' }),
      clientId: creds.id,
      username: creds.id,
      password: wire.loginPassword(creds.secret),
      protocolVersion: 4,
      reconnectPeriod: 0,
      connectTimeout: DEADLINE_MS,
    });
    d.client.on('message', (topic, payload) => {
      if (topic !== topics.reply(creds.id)) return;
      const r = wire.decode(payload);
      d.replies.set(r.command, r);
      const w = d.waiters.get(r.command);
      if (w) w(r);
    });
    await d.client.subscribeAsync(topics.reply(creds.id), { qos: 1 });
    return d;
  }

  /** Sends one command body; resolves to its reply (rejects after the deadline). */
  async command(body) {
    const id = wire.newCommandId();
    const bytes = wire.envelope(this.creds.id, this.keys.mac, id, body);
    const reply = new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no reply to ${body.type} in ${DEADLINE_MS} ms`)), DEADLINE_MS);
      this.waiters.set(id, (r) => {
        clearTimeout(timer);
        this.waiters.delete(id);
        resolve(r);
      });
    });
    await this.client.publishAsync(topics.cmd(this.creds.id), Buffer.from(bytes), { qos: 1 });
    return reply;
  }

  /** Like `command`, failing unless the box accepted it. */
  async ok(body) {
    const r = await this.command(body);
    if (!r.ok) throw new Error(`${body.type} refused: ${JSON.stringify(r.error)}`);
    return r;
  }

  async close() {
    await this.client.endAsync();
  }
}
