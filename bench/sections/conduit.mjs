/**
 * Figure 7: conduit mode. The daemon (`node dist/main.js run`, EVENTSUBD_TRANSPORT=conduit) holds 1, then 4,
 * WebSocket shards of a conduit on the emulator; the emulator (in this process) sends a burst of notifications to
 * 16 `stream.online` conduit subscriptions, routed to the shards by the broadcaster hash. Measured: the
 * emulator's send rate (how fast it wrote the frames) and the journaled rate, from the first frame sent to the
 * journal head (`/status`) covering the whole burst, every record on disk (group-committed fdatasync).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startEmulator } from '../../dist/emulator/index.js';
import { freePort, startChild, stopChild, waitFor } from '../lib/proc.mjs';
import { BIN, daemonEnv } from '../lib/targets.mjs';

const BROADCASTERS = Array.from({ length: 16 }, (_, i) => String(80_001 + i));

async function statusOf(url) {
  return (await fetch(`${url}/status`)).json();
}

/** One daemon with `shards` shards; `rounds` bursts of `events` notifications. */
async function runShards({ shards, events, rounds, log }) {
  const emulator = await startEmulator({ host: '127.0.0.1', port: 0 });
  const dir = mkdtempSync(join(tmpdir(), 'eventsubd-bench-conduit-'));
  const file = join(dir, 'subscriptions.json');
  writeFileSync(file, JSON.stringify({ subscriptions: BROADCASTERS.map((b) => ({ type: 'stream.online', version: '1', condition: { broadcaster_user_id: b } })) }));
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const env = daemonEnv({
    emulator,
    listen: `127.0.0.1:${port}`,
    stateDir: join(dir, 'state'),
    extra: {
      EVENTSUBD_TRANSPORT: 'conduit',
      EVENTSUBD_CONDUIT_SHARDS: String(shards),
      TWITCH_EVENTSUB_WS_URL: `${emulator.url.replace(/^http/, 'ws')}/ws`,
      EVENTSUBD_SUBSCRIPTIONS: file,
      EVENTSUB_CALLBACK_URL: '',
      EVENTSUB_SECRET: '',
      EVENTSUBD_RECONCILE_CRON: '0 0 1 1 *',
    },
  });
  const handle = startChild(process.execPath, [BIN, 'run'], { env, cwd: dir });
  try {
    await waitFor('the shards assigned', async () => (await statusOf(url).catch(() => undefined))?.conduit?.shards_assigned === shards);
    const subs = await waitFor('the conduit subscriptions', () => {
      const on = emulator.subscriptions().filter((s) => s.transport.method === 'conduit' && s.status === 'enabled');
      return on.length === BROADCASTERS.length ? on : undefined;
    });
    const burst = async (count) => {
      const head0 = (await statusOf(url)).journal.head;
      const per = Math.ceil(count / subs.length);
      const t0 = performance.now();
      let sent = 0;
      let dropped = 0;
      for (const s of subs) {
        for (const m of emulator.sendEvents(s.id, { count: per })) {
          sent += 1;
          if (m.dropped) dropped += 1;
        }
      }
      const tSent = performance.now();
      await waitFor('the burst journaled', async () => (await statusOf(url)).journal.head >= head0 + sent - dropped, { timeoutMs: 120_000, everyMs: 5 });
      const tDone = performance.now();
      return { sent, dropped, sendMs: tSent - t0, journalMs: tDone - t0 };
    };
    await burst(Math.min(2_000, events));
    const runs = [];
    for (let r = 0; r < rounds; r++) {
      const run = await burst(events);
      runs.push(run);
      log(`conduit ${shards} shard(s): ${run.sent} sent in ${run.sendMs.toFixed(0)} ms, journaled in ${run.journalMs.toFixed(0)} ms (${Math.round(run.sent / (run.journalMs / 1000))}/s)`);
    }
    const duplicates = (await statusOf(url)).conduit.duplicates;
    return { shards, runs, duplicates };
  } finally {
    await stopChild(handle);
    await emulator.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

export async function runConduit(ctx, { events, rounds }) {
  const out = [];
  for (const shards of [1, 4]) out.push(await runShards({ shards, events, rounds, log: ctx.log }));
  return { events, rounds, results: out };
}
