/**
 * The receivers under test, each started fresh in its own process on 127.0.0.1:
 * - `plain`: node:http reading the body and answering 204 (the ceiling);
 * - `eventsubd`: `node dist/main.js run` as shipped (group commit), with a fresh state directory;
 * - `eventsubd-each`: the same with EVENTSUBD_JOURNAL_FSYNC=each (one fdatasync per notification);
 * - `eventsubd-redis`: the same with the journal in Redis (`redisUrl`: the bench's redis-server, `appendfsync
 *   always`; EVENTSUBD_REDIS_DURABILITY=fsync checks it), under a key prefix of its own;
 * - `twurple`: @twurple/eventsub-http's listener in unmanaged mode.
 * (`stateRoot` puts eventsubd's state directory elsewhere, e.g. on tmpfs, where fdatasync costs nothing.)
 * Each exposes `counts()` so a run can prove that every answered request was accepted (journaled, or
 * handled by Twurple's handler) and `stop()`.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { WEBHOOK_PATH } from './corpus.mjs';
import { freePort, startChild, stopChild, waitFor } from './proc.mjs';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const BIN = join(ROOT, 'dist', 'main.js');
export const SECRET = 'bench-webhook-secret-0123456789';
/** Its path is the one Twurple serves for onStreamOnline('1337'), so every receiver gets the same requests. */
export const CALLBACK_URL = `https://events.example.com${WEBHOOK_PATH}`;

/** Environment for `eventsubd run` against the emulator, with a fresh state directory. */
export function daemonEnv({ emulator, listen, stateDir, extra = {} }) {
  const client = emulator.clients[0];
  return {
    PATH: process.env.PATH ?? '',
    TWITCH_CLIENT_ID: client.clientId,
    TWITCH_CLIENT_SECRET: client.clientSecret,
    TWITCH_AUTH_URL: emulator.authUrl,
    TWITCH_API_URL: emulator.apiUrl,
    EVENTSUB_SECRET: SECRET,
    EVENTSUB_CALLBACK_URL: CALLBACK_URL,
    EVENTSUBD_LISTEN: listen,
    EVENTSUBD_STATE_DIR: stateDir,
    EVENTSUBD_LOG_LEVEL: 'warn',
    ...extra,
  };
}

/** Parses `name{outcome="x"} 12` lines of the daemon's /metrics into `{x: 12}` for one metric name. */
export function metricByLabel(text, name, label) {
  const out = {};
  const re = new RegExp(`^${name}\\{[^}]*${label}="([^"]+)"[^}]*\\} (\\S+)$`, 'gm');
  for (const m of text.matchAll(re)) out[m[1]] = (out[m[1]] ?? 0) + Number(m[2]);
  return out;
}

/** A gauge without labels from /metrics. */
export function metricValue(text, name) {
  const m = new RegExp(`^${name} (\\S+)$`, 'm').exec(text);
  return m ? Number(m[1]) : Number.NaN;
}

async function startIpcServer(script, args, nodeArgs = []) {
  const handle = startChild(process.execPath, [...nodeArgs, script, ...args], { ipc: true, cwd: ROOT });
  await new Promise((resolve, reject) => {
    handle.child.once('message', resolve);
    handle.exited.then((code) => reject(new Error(`${script} exited ${code}: ${handle.stderr}`)));
  });
  const ask = () =>
    new Promise((resolve) => {
      handle.child.once('message', resolve);
      handle.child.send('count');
    });
  return { handle, ask };
}

/** Starts one receiver; resolves with `{name, url, pid, counts(), stop()}`. */
export async function startTarget(name, { emulator, extraEnv = {}, nodeArgs = [], stateRoot = tmpdir(), redisUrl } = {}) {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  if (name === 'plain' || name === 'twurple') {
    const script = join(ROOT, 'bench', 'servers', `${name}.mjs`);
    const { handle, ask } = await startIpcServer(script, name === 'twurple' ? [String(port), SECRET] : [String(port)], nodeArgs);
    return {
      name,
      url,
      pid: handle.child.pid,
      handle,
      counts: async () => {
        const { accepted } = await ask();
        return { accepted, rejected: 0, detail: {} };
      },
      stop: () => stopChild(handle),
    };
  }
  const fsync = name === 'eventsubd-each' ? 'each' : 'group';
  const stateDir = mkdtempSync(join(stateRoot, 'eventsubd-bench-'));
  const redis = {};
  if (name === 'eventsubd-redis') {
    if (!redisUrl) throw new Error('eventsubd-redis needs the bench\'s redis-server (redisUrl)');
    // A prefix per run: the runs share the server, not their journals nor their de-duplication keys.
    Object.assign(redis, { EVENTSUBD_REDIS_URL: redisUrl, EVENTSUBD_REDIS_PREFIX: `bench-${port}-${Date.now()}`, EVENTSUBD_REDIS_DURABILITY: 'fsync' });
  }
  const env = daemonEnv({ emulator, listen: `127.0.0.1:${port}`, stateDir, extra: { EVENTSUBD_JOURNAL_FSYNC: fsync, ...redis, ...extraEnv } });
  const handle = startChild(process.execPath, [...nodeArgs, BIN, 'run'], { env, cwd: stateDir });
  const failed = handle.exited.then((code) => {
    throw new Error(`eventsubd exited ${code}: ${handle.stderr}`);
  });
  failed.catch(() => undefined);
  await Promise.race([waitFor('eventsubd /readyz', async () => (await fetch(`${url}/readyz`)).status === 200), failed]);
  return {
    name,
    url,
    pid: handle.child.pid,
    stateDir,
    env,
    handle,
    counts: async () => {
      const text = await (await fetch(`${url}/metrics`)).text();
      const outcomes = metricByLabel(text, 'eventsubd_webhook_requests_total', 'outcome');
      delete outcomes.route;
      const accepted = metricValue(text, 'eventsubd_journal_appends_total');
      // Every answer but 204-and-journaled is a rejection; `aborted` (the client left before its body was in)
      // got no answer at all, so wrk does not count it either.
      const rejected = Object.entries(outcomes)
        .filter(([k]) => k !== 'notification' && k !== 'aborted')
        .reduce((sum, [, v]) => sum + v, 0);
      return { accepted, rejected, detail: { ...outcomes, fsyncs: metricValue(text, 'eventsubd_journal_fsyncs_total') } };
    },
    stop: async () => {
      const code = await stopChild(handle);
      rmSync(stateDir, { recursive: true, force: true });
      return code;
    },
  };
}
