/**
 * Issue #6, item 4: faults during a 200-subscription sync. While `eventsubd subscriptions sync` runs against
 * the emulator, a seeded plan injects 5xx, latency, connection resets, lost create answers (drop-response) and
 * 429 storms at spread-out points of the request stream. The sync must converge (a second run is allowed),
 * leave no duplicate subscription (same type + version + condition twice), and never send a Helix request
 * with anything but a valid app token. EVENTSUBD_FUZZ_SEED reproduces a run.
 *
 * Issue #6, "Faults": expired tokens mid-sync. The engine runs in this process (so that a recording undici
 * interceptor sees which token every Helix request carried) while the emulator expires the token in use at
 * three points of a sync: each burst of 401s must cost exactly one re-mint (single flight), no request may
 * carry an expired token once its replacement is in use, and the sync converges without a failure.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { Agent, type Dispatcher } from 'undici';
import { fingerprintOf } from '../../src/auth/token-policy.js';
import { loadConfig, requireTwitchAccess } from '../../src/config/settings.js';
import { buildTwitchStack } from '../../src/daemon/twitch-stack.js';
import { startEmulator } from '../../src/emulator/index.js';
import type { Fault } from '../../src/emulator/types.js';
import { systemClock } from '../../src/lib/clock.js';
import { silentLogger } from '../../src/lib/logger.js';
import { DEFAULT_APPLY_CONCURRENCY } from '../../src/subscriptions/apply.js';
import type { DesiredSubscription } from '../../src/twitch/subscription.js';
import { syncSubscriptions } from '../../src/subscriptions/sync.js';
import { runCli, tempDir, type CliResult } from '../helpers/cli.js';
import { mulberry32 } from '../helpers/prng.js';

/** A fixed default, so that a run is the same run everywhere; EVENTSUBD_FUZZ_SEED picks another. */
const SEED = Number(process.env.EVENTSUBD_FUZZ_SEED ?? 20261125) >>> 0;
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

/** The Authorization header of an undici dispatch, whatever shape its headers have. */
function authorizationOf(headers: Dispatcher.DispatchOptions['headers']): string | undefined {
  if (!headers) return undefined;
  if (Array.isArray(headers)) {
    for (let i = 0; i + 1 < headers.length; i += 2) if (String(headers[i]).toLowerCase() === 'authorization') return String(headers[i + 1]);
    return undefined;
  }
  for (const [name, value] of Object.entries(headers as Record<string, unknown>)) {
    if (name.toLowerCase() === 'authorization') return String(value);
  }
  return undefined;
}

test(`sync under expired-token faults: 3 bursts in a ${COUNT}-subscription sync; one re-mint per burst, the expired token never reused, converged`, async (t) => {
  const emulator = await startEmulator({ host: '127.0.0.1', port: 0, verification: 'accept' });
  const dir = tempDir('eventsubd-expiry-');
  const agent = new Agent({ connections: 32 });
  const client = emulator.clients[0]!;
  const burstAt = [Math.floor(COUNT * 0.2), Math.floor(COUNT * 0.5), Math.floor(COUNT * 0.8)];
  /** Every Helix request as it left, in order, with the fingerprint of the token it carried (never the token). */
  const sent: Array<{ method: string; token: string }> = [];
  /** Index in `sent` of the request before which each burst's fault was queued. */
  const injectedAt: number[] = [];
  let posts = 0;
  const dispatcher = agent.compose((dispatch) => (opts, handler) => {
    if (opts.path.startsWith('/helix/eventsub/subscriptions')) {
      if (opts.method === 'POST' && burstAt.includes(++posts)) {
        emulator.injectFault({ kind: 'expire-token', match: { method: 'POST', pathPrefix: '/helix/eventsub/subscriptions' } });
        injectedAt.push(sent.length);
      }
      const auth = authorizationOf(opts.headers) ?? '';
      sent.push({ method: opts.method, token: fingerprintOf(auth.replace(/^Bearer /, '')) });
    }
    return dispatch(opts, handler);
  });
  const config = loadConfig({
    TWITCH_CLIENT_ID: client.clientId,
    TWITCH_CLIENT_SECRET: client.clientSecret,
    TWITCH_AUTH_URL: emulator.authUrl,
    TWITCH_API_URL: emulator.apiUrl,
    EVENTSUB_SECRET: 'expiry-faults-secret-0123',
    EVENTSUB_CALLBACK_URL: 'https://events.example.com/twitch/eventsub',
    EVENTSUBD_STATE_DIR: join(dir.path, 'state'),
  });
  requireTwitchAccess(config);
  const stack = buildTwitchStack(config, { clock: systemClock, logger: silentLogger, dispatcher });
  t.after(async () => {
    await stack.close();
    await emulator.close();
    await agent.close();
    dir.cleanup();
  });
  const desired: DesiredSubscription[] = Array.from({ length: COUNT }, (_, i) => ({
    type: 'stream.online',
    version: '1',
    condition: { broadcaster_user_id: String(7000 + i) },
    transport: { method: 'webhook', callback: config.callbackUrl!, secret: config.eventsubSecrets[0]! },
  }));
  const sync = () => syncSubscriptions({ api: stack.helix, desired, callbackUrl: config.callbackUrl!, prune: true, dryRun: false });

  const started = Date.now();
  const first = await sync();
  const elapsed = Date.now() - started;
  const postsAfterFirst = posts;
  const second = await sync();

  // The tokens in the order requests carried them: each one replaces the last for good.
  const order: string[] = [];
  for (const s of sent) if (order.at(-1) !== s.token) order.push(s.token);
  const distinct = new Set(order);
  const stale = injectedAt.map((at, i) => sent.slice(at).filter((s) => s.token === order[i]).length);
  const helix = emulator.stats.requests.filter((r) => r.path.startsWith('/helix'));
  const unauthorized = helix.filter((r) => r.status === 401);
  t.diagnostic(
    `bursts at creates ${burstAt.join(', ')}; 401s ${unauthorized.length}; requests sent with the expiring token after each fault ${JSON.stringify(stale)}; mints ${emulator.stats.mints}; ${sent.length} Helix requests in ${elapsed} ms`,
  );

  assert.equal(injectedAt.length, burstAt.length, 'every burst was injected');
  assert.deepEqual(first.result?.failed, [], 'no create failed');
  assert.equal(first.result?.created.length, COUNT);
  assert.equal(first.result?.adopted.length, 0, 'a 401 creates nothing, so the retry never meets a 409');
  assert.equal(emulator.stats.mints, 1 + burstAt.length, 'one mint at the start, exactly one re-mint per burst');
  assert.equal(stack.tokens.stats.mints, 1 + burstAt.length);
  assert.equal(distinct.size, 1 + burstAt.length, 'a new token per burst');
  assert.equal(order.length, distinct.size, 'no request carried an expired token once its replacement was in use');
  for (const [i, n] of stale.entries()) {
    // Only requests already past getToken() when the emulator expired the token (at most one per worker) carry it.
    assert.ok(n >= 1 && n <= DEFAULT_APPLY_CONCURRENCY, `burst ${i}: ${n} requests with the expired token after the fault`);
  }
  assert.ok(unauthorized.length >= burstAt.length && unauthorized.length <= burstAt.length * DEFAULT_APPLY_CONCURRENCY, `401s: ${unauthorized.length}`);
  assert.ok(unauthorized.every((r) => r.auth === 'invalid'), 'every 401 answered an expired token');
  assert.equal(helix.filter((r) => r.auth !== 'app' && r.auth !== 'invalid').length, 0, 'never a user token or none');
  assert.equal(emulator.subscriptions().length, COUNT, 'converged');
  assert.equal(second.result?.created.length, 0, 'a second sync creates nothing');
  assert.equal(posts, postsAfterFirst, 'and sends no create');
});
