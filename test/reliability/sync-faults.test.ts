/**
 * Issue #6, item 4: faults during a 200-subscription sync. While `eventsubd subscriptions sync` runs against
 * the emulator, a seeded plan injects 5xx, latency, connection resets, lost create answers (drop-response) and
 * 429 storms at spread-out points of the request stream. The sync must converge (a second run is allowed),
 * leave no duplicate subscription (same type + version + condition twice), and never send a Helix request
 * with anything but a valid app token. EVENTSUBD_FUZZ_SEED reproduces a run.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { startEmulator } from '../../src/emulator/index.js';
import type { Fault } from '../../src/emulator/types.js';
import { runCli, tempDir, type CliResult } from '../helpers/cli.js';
import { mulberry32 } from '../helpers/prng.js';

const SEED = Number(process.env.EVENTSUBD_FUZZ_SEED ?? Math.floor(Math.random() * 2 ** 32)) >>> 0;
const COUNT = Math.max(20, Number(process.env.EVENTSUBD_SYNC_N ?? 200) || 200);


test(`sync under faults: ${COUNT} subscriptions (seed ${SEED}) converge without a duplicate and with app tokens only`, async (t) => {
  t.diagnostic(`EVENTSUBD_FUZZ_SEED=${SEED} EVENTSUBD_SYNC_N=${COUNT}`);
  const emulator = await startEmulator({ host: '127.0.0.1', port: 0, verification: 'accept' });
  const dir = tempDir('eventsubd-syncfaults-');
  const poll = { timer: undefined as NodeJS.Timeout | undefined };
  t.after(async () => {
    clearInterval(poll.timer);
    await emulator.close();
    dir.cleanup();
  });
  const client = emulator.clients[0]!;
  const file = join(dir.path, 'subs.json');
  writeFileSync(
    file,
    JSON.stringify({ subscriptions: Array.from({ length: COUNT }, (_, i) => ({ type: 'stream.online', version: '1', condition: { broadcaster_user_id: String(1000 + i) } })) }),
  );
  const env = {
    TWITCH_CLIENT_ID: client.clientId,
    TWITCH_CLIENT_SECRET: client.clientSecret,
    TWITCH_AUTH_URL: emulator.authUrl,
    TWITCH_API_URL: emulator.apiUrl,
    EVENTSUB_SECRET: 'sync-faults-secret-0123',
    EVENTSUB_CALLBACK_URL: 'https://events.example.com/twitch/eventsub',
    EVENTSUBD_STATE_DIR: join(dir.path, 'state'),
    EVENTSUBD_SUBSCRIPTIONS: file,
  };

  // The plan: at Helix request number `at`, queue `fault`. Spread over the expected ~COUNT+2 requests.
  const rnd = mulberry32(SEED);
  const kinds = ['5xx', 'latency', 'reset', 'drop-response', '429 storm'] as const;
  const plan: Array<{ at: number; kind: (typeof kinds)[number]; fault: Fault }> = [];
  const injected: Record<string, number> = {};
  for (let at = 1; at < COUNT; at += 4 + Math.floor(rnd() * 8)) {
    // 429 storms cost a wait until Ratelimit-Reset each: kept to ~1 in 10 faults so the test stays short.
    const kind = rnd() < 0.1 ? '429 storm' : kinds[Math.floor(rnd() * (kinds.length - 1))]!;
    const method = rnd() < 0.85 ? 'POST' : 'GET';
    const match = { method, pathPrefix: '/helix/eventsub/subscriptions' };
    const fault: Fault =
      kind === '5xx'
        ? { kind: 'status', status: [500, 502, 503, 504][Math.floor(rnd() * 4)]!, match, times: 1 + Math.floor(rnd() * 2) }
        : kind === 'latency'
          ? { kind: 'latency', ms: 50 + Math.floor(rnd() * 400), match }
          : kind === 'reset'
            ? { kind: 'reset', match }
            : kind === 'drop-response'
              ? { kind: 'drop-response', match: { method: 'POST', pathPrefix: '/helix/eventsub/subscriptions' } }
              : { kind: 'status', status: 429, match, times: 2 + Math.floor(rnd() * 3) };
    plan.push({ at, kind, fault });
  }
  let next = 0;
  poll.timer = setInterval(() => {
    while (next < plan.length && emulator.stats.helix.total >= plan[next]!.at) {
      const p = plan[next++]!;
      emulator.injectFault(p.fault);
      injected[p.kind] = (injected[p.kind] ?? 0) + 1;
    }
  }, 2);

  const runs: CliResult[] = [];
  const started = Date.now();
  runs.push(await runCli(['subscriptions', 'sync', '--json'], { env, timeoutMs: 120_000 }));
  clearInterval(poll.timer);
  emulator.clearFaults();
  const afterFirst = emulator.subscriptions().length;
  // A second run converges what the first had to give up on (and must create nothing already there).
  runs.push(await runCli(['subscriptions', 'sync', '--json'], { env, timeoutMs: 120_000 }));
  const third = await runCli(['subscriptions', 'sync', '--json'], { env, timeoutMs: 60_000 });
  const elapsed = Date.now() - started;

  const subs = emulator.subscriptions();
  const keyCount = new Map<string, number>();
  for (const s of subs) {
    const key = `${s.type}|${s.version}|${JSON.stringify(Object.entries(s.condition).sort())}`;
    keyCount.set(key, (keyCount.get(key) ?? 0) + 1);
  }
  const duplicates = [...keyCount].filter(([, n]) => n > 1);
  const helix = emulator.stats.requests.filter((r) => r.path.startsWith('/helix'));
  const authKinds: Record<string, number> = {};
  for (const r of helix) authKinds[r.auth] = (authKinds[r.auth] ?? 0) + 1;
  t.diagnostic(`faults injected ${JSON.stringify(injected)} (${next} of ${plan.length} planned); first run exit ${runs[0]!.code} with ${afterFirst} subscriptions, second exit ${runs[1]!.code}, third exit ${third.code}`);
  t.diagnostic(`helix requests ${helix.length} by status ${JSON.stringify(emulator.stats.helix.byStatus)}; auth ${JSON.stringify(authKinds)}; mints ${emulator.stats.mints}; ${elapsed} ms`);
  t.diagnostic(`subscriptions ${subs.length}, duplicates ${duplicates.length}`);

  assert.ok(next >= Math.min(plan.length, 10), `faults were injected (${next})`);
  assert.deepEqual(duplicates, [], 'no subscription twice');
  assert.equal(subs.length, COUNT);
  assert.ok(subs.every((s) => s.status === 'enabled'));
  assert.equal(runs[1]!.code, 0, runs[1]!.stderr.slice(-2000));
  assert.equal(third.code, 0);
  // Converged: the third run only lists.
  const thirdPlan = JSON.parse(third.stdout) as Record<string, unknown>;
  assert.ok(!JSON.stringify(thirdPlan).match(/"create"\s*:\s*[1-9]/), `third run created nothing: ${third.stdout.slice(0, 500)}`);
  assert.deepEqual(Object.keys(authKinds), ['app'], 'every Helix request carried a valid app token');
});
