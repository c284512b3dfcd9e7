/**
 * Issue #6, "Crashes": `kill -9` at the dangerous moments, then proof of recovery.
 *
 * 1. Journal segment roll-over: a child process appends to a real Journal whose segments hold a few records
 *    each, and acknowledges every append; it is killed EVENTSUBD_CRASH_KILLS times (default 20), after a
 *    seeded random number of acknowledgements or (every other kill) as soon as it announces a roll, and each
 *    time the next child reopens the same directory. Every acknowledged record stays there exactly once, under
 *    its seq; seqs are dense from 1; no empty or torn segment breaks the next open; appends continue. Kills that
 *    landed inside a roll (new segment created, its first fdatasync not yet returned) are counted.
 * 2. Token rotation: a daemon against an emulator minting 6-second tokens (rotation at half-life) is killed
 *    while it rotates: with the mint answer held, with the revocation of the old token held, and around the
 *    mint answer (after a held mint, the restart waits until the token left in token.json has expired).
 *    Restarted, it is ready with a valid token that token.json also holds, and no request ever carried an
 *    expired, revoked or user token.
 *    Then: the rotation of a token a restart adopted from token.json costs one mint and no /validate (it
 *    looped on /validate for up to a second before). A process taking and releasing token.lock in
 *    a loop, killed KILLS times, always leaves the lock free at once (a kernel lock dies with its holder); and
 *    a token.lock naming a dead holder, pid 1 or nobody delays the next token by no more than 5 s.
 * 3. Sync: a daemon creating 300 declared subscriptions, each create held 60 ms by the emulator, is killed
 *    twice in the middle; the third run converges to exactly the declared set, and the creates of all runs add
 *    up to 300 (nothing was created twice).
 *
 * Build first (the daemon runs dist/main.js): `npx tsc -p tsconfig.build.json`.
 * EVENTSUBD_CRASH_SEED reproduces a run (it is printed); EVENTSUBD_CRASH_KILLS sets the journal kills (the
 * token rounds are a seventh of it, at least 3), e.g. EVENTSUBD_CRASH_KILLS=100 for a long run.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { test } from 'node:test';
import { request } from 'undici';
import { fingerprintOf } from '../../src/auth/token-policy.js';
import { Journal } from '../../src/journal/journal.js';
import { systemClock } from '../../src/lib/clock.js';
import { tryLockFile } from '../../src/lib/file-lock.js';
import { tempDir } from '../helpers/cli.js';
import { mulberry32 } from '../helpers/prng.js';
import { BROADCASTER, waitFor, type DesiredEntry } from '../daemon/harness.js';
import { inspectSegments, RollChild } from './roll-child-process.js';
import { badAuthRequests, crashStatus, leftoverTokenTemps, nextSleep, readTokenFile, requestTally, useCrashFixture } from './crash-helpers.js';

const SEED = Number(process.env.EVENTSUBD_CRASH_SEED ?? Math.floor(Math.random() * 2 ** 32)) >>> 0;
const KILLS = Math.max(5, Number(process.env.EVENTSUBD_CRASH_KILLS ?? 20) || 20);

// ---------------------------------------------------------------------------------------------- 1. journal

/** About four records per segment: with two appends in flight, a roll every other batch or so. */
const SEGMENT_MAX_BYTES = 1_000;
const CHILD_CONCURRENCY = 2;
/** A kill comes after 0..MAX_ACKS_BEFORE_KILL acknowledgements of the run (0: right after the reopen). */
const MAX_ACKS_BEFORE_KILL = 30;
/** Or (every other kill) as soon as the child announces its 1st..MAX_ROLLS_BEFORE_KILL-th roll. */
const MAX_ROLLS_BEFORE_KILL = 8;

test(`journal crash at segment roll-over: ${KILLS} kill -9 (seed ${SEED}); every acknowledged record survives once, seqs dense, appends continue`, async (t) => {
  t.diagnostic(`EVENTSUBD_CRASH_SEED=${SEED} EVENTSUBD_CRASH_KILLS=${KILLS}`);
  const rnd = mulberry32(SEED);
  const root = tempDir('eventsubd-rollcrash-');
  const dir = join(root.path, 'journal');
  const children: RollChild[] = [];
  t.after(async () => {
    for (const c of children) c.proc.kill('SIGKILL');
    await Promise.all(children.map((c) => c.closed));
    root.cleanup();
  });
  const spawnChild = (k: number): RollChild => {
    const c = new RollChild({ dir, tag: `r${k}`, concurrency: CHILD_CONCURRENCY, segmentMaxBytes: SEGMENT_MAX_BYTES });
    children.push(c);
    return c;
  };

  /** Every acknowledged record so far: seq -> message id. */
  const acknowledged = new Map<number, string>();
  const figures = { aimedAtRoll: 0, inRoll: 0, emptyLast: 0, tornTail: 0, rolls: 0, acked: 0, killedAtOpen: 0 };
  let head = 0;
  let next = spawnChild(0);
  const started = Date.now();

  for (let k = 0; k < KILLS; k++) {
    const child = next;
    await child.loaded;
    child.go();
    next = spawnChild(k + 1); // loads while this one runs and is checked
    // Every other kill comes as soon as a roll has begun, the others after a number of acknowledgements.
    const atRoll = k % 2 === 1;
    const wanted = atRoll ? 1 + Math.floor(rnd() * MAX_ROLLS_BEFORE_KILL) : Math.floor(rnd() * (MAX_ACKS_BEFORE_KILL + 1));
    const reached = atRoll ? () => child.rolls() >= wanted : () => child.acks().length >= wanted;
    await child.until(() => child.openedHead() !== undefined && reached(), atRoll ? `roll ${wanted}` : `${wanted} acknowledgements`);
    child.proc.kill('SIGKILL');
    await child.closed;

    assert.equal(child.proc.signalCode, 'SIGKILL', `run ${k} died of the kill, not of an error: ${child.err}`);
    assert.equal(child.openedHead(), head, `run ${k} reopened the journal at the head the last check found`);
    const acks = child.acks();
    for (const a of acks) {
      assert.equal(acknowledged.has(a.seq), false, `seq ${a.seq} acknowledged twice`);
      acknowledged.set(a.seq, a.id);
    }
    figures.acked += acks.length;
    figures.rolls += child.rolls();
    if (!atRoll && wanted === 0) figures.killedAtOpen += 1;
    if (atRoll) figures.aimedAtRoll += 1;
    if (child.rollInProgress() !== undefined) figures.inRoll += 1;
    const left = inspectSegments(dir);
    if (left.emptyLast) figures.emptyLast += 1;
    if (left.tornTail) figures.tornTail += 1;

    // Read-only, exactly as the crash left it: the next child's open does the recovery (truncation).
    const journal = await Journal.open({ dir, clock: systemClock, readOnly: true });
    const records = await journal.read(0, 1_000_000);
    await journal.close();
    assert.deepEqual(records.map((r) => r.seq), Array.from({ length: records.length }, (_, i) => i + 1), `run ${k}: seqs dense from 1`);
    assert.equal(journal.head, records.length);
    const maxAcked = Math.max(0, ...acks.map((a) => a.seq));
    assert.ok(journal.head >= maxAcked, `run ${k}: head ${journal.head} >= last acknowledged ${maxAcked}`);
    const bySeq = new Map(records.map((r) => [r.seq, r.message_id]));
    for (const [seq, id] of acknowledged) assert.equal(bySeq.get(seq), id, `run ${k}: acknowledged seq ${seq} holds ${id}`);
    assert.equal(new Set(bySeq.values()).size, records.length, `run ${k}: no message twice`);
    for (const r of records) assert.match(r.message_id, /^r\d+-\d+$/);
    head = journal.head;
  }

  // Appends continue after the last crash: a writable open recovers, the next append gets head + 1.
  const journal = await Journal.open({ dir, clock: systemClock, segmentMaxBytes: SEGMENT_MAX_BYTES });
  assert.equal(journal.head, head);
  const appended = await journal.append({
    message_id: 'after-the-crashes',
    message_type: 'notification',
    received_at: new Date().toISOString(),
    subscription: { id: 'sub-roll', type: 'channel.follow', version: '2', condition: { broadcaster_user_id: '1' } },
    event: {},
  });
  assert.equal(appended.seq, head + 1);
  const segments = journal.stats().segments;
  await journal.close();
  const reopened = await Journal.open({ dir, clock: systemClock, readOnly: true });
  const all = await reopened.read(0, 1_000_000);
  await reopened.close();
  assert.equal(all.length, head + 1);
  assert.equal(all.at(-1)!.message_id, 'after-the-crashes');

  t.diagnostic(
    `kills ${KILLS} (${figures.aimedAtRoll} aimed at a roll): inside a roll ${figures.inRoll}, right after the reopen ${figures.killedAtOpen}; left an empty last segment ${figures.emptyLast}, a torn tail ${figures.tornTail}`,
  );
  t.diagnostic(
    `acknowledged ${figures.acked}, on disk ${head} (${head - figures.acked} written but unacknowledged), rolls ${figures.rolls}, segments ${segments}, ${Date.now() - started} ms`,
  );
  assert.equal(figures.acked, acknowledged.size);
  assert.ok(figures.rolls > KILLS, `the runs rolled segments (${figures.rolls})`);
  assert.ok(figures.inRoll >= 1, `at least one kill landed inside a roll (${figures.inRoll} of ${KILLS})`);
});

// ------------------------------------------------------------------------------------------ 2. token rotation

/** Emulator token lifetime: the daemon rotates at half of it (token-policy's rule for short-lived tokens). */
const TOKEN_TTL_S = 6;
const TOKEN_ROUNDS = Math.max(3, Math.floor(KILLS / 7));
/** Latency faults on the token endpoints; distinct durations, so that the HookedClock tells them apart. */
const MINT_HOLD_MS = 1_237;
const REVOKE_HOLD_MS = 739;
const RACE_HOLD_MS = 7;
const VARIANTS = ['mint answer held', 'revocation held', 'around the mint answer'] as const;
const TWO_SUBSCRIPTIONS: readonly DesiredEntry[] = [
  { type: 'stream.online', version: '1', condition: { broadcaster_user_id: BROADCASTER } },
  { type: 'stream.offline', version: '1', condition: { broadcaster_user_id: BROADCASTER } },
];

const pause = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Rejects after `ms` with a message naming `what`, unless `p` settles first. */
async function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([p, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`Timed out after ${ms} ms waiting for ${what}`)), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}

test(`token rotation crash: ${TOKEN_ROUNDS} kill -9 while rotating a ${TOKEN_TTL_S}-s token (seed ${SEED}); the restart is ready with a valid cached token, no request carries a dead one`, async (t) => {
  const { f, clock, start } = await useCrashFixture(t, { subscriptions: TWO_SUBSCRIPTIONS, emulator: { tokenTtlSeconds: TOKEN_TTL_S } });
  const rnd = mulberry32(SEED ^ 0x70c3);
  /** The restarted daemon's token is valid, token.json holds it, and its sync (Helix calls with it) succeeded. */
  const settled = (what: string) =>
    waitFor(
      what,
      async () => {
        const s = await crashStatus(f);
        const file = readTokenFile(f.stateDir);
        const same = file.kind === 'ok' && fingerprintOf(file.accessToken) === s.token.fingerprint;
        return s.token.state === 'ok' && s.sync.result === 'ok' && same ? { s, file } : false;
      },
      { timeoutMs: 15_000, intervalMs: 25 },
    );
  let d = await start();
  const left: Record<string, number> = {};
  let staleLocks = 0;
  let adopted = 0;
  const started = Date.now();

  for (let round = 0; round < TOKEN_ROUNDS; round++) {
    const variant = VARIANTS[round % VARIANTS.length]!;
    const { s: before } = await settled(`round ${round}: a settled daemon`);
    const holdMs = variant === 'mint answer held' ? MINT_HOLD_MS : variant === 'revocation held' ? REVOKE_HOLD_MS : RACE_HOLD_MS;
    const held = nextSleep(clock, holdMs);
    f.emulator.injectFault({ kind: 'latency', ms: holdMs, match: { method: 'POST', pathPrefix: variant === 'revocation held' ? '/oauth2/revoke' : '/oauth2/token' } });
    await within(held, 10_000, `round ${round}: the rotation to reach the held endpoint`);
    // While the mint answer is held, token.json holds the token being replaced (read now: a rotation may
    // have completed between the /status read and the fault, and then this is the next one).
    const atHold = readTokenFile(f.stateDir);
    await pause(variant === 'around the mint answer' ? Math.floor(rnd() * 25) : Math.floor(rnd() * 200));
    await d.kill9();

    // What the crash left: token.json whole (or absent), never torn.
    const file = readTokenFile(f.stateDir);
    assert.notEqual(file.kind, 'invalid', `round ${round} (${variant}): token.json is valid JSON with a token`);
    const which = file.kind !== 'ok' ? 'absent' : fingerprintOf(file.accessToken) === before.token.fingerprint ? 'old' : 'new';
    if (variant === 'mint answer held') {
      assert.ok(atHold.kind === 'ok' && file.kind === 'ok' && file.accessToken === atHold.accessToken, 'killed before the mint answer: token.json still holds the old token');
    }
    if (variant === 'revocation held') assert.equal(which, 'new', 'killed while revoking: token.json already holds the new token');
    left[`${variant}: ${which}`] = (left[`${variant}: ${which}`] ?? 0) + 1;
    const lockLeft = existsSync(join(f.stateDir, 'token.lock'));
    if (lockLeft) staleLocks += 1;
    if (variant === 'mint answer held') assert.ok(lockLeft, 'killed mid-mint: the token lock of the dead daemon is left behind');
    const mintsBefore = f.emulator.stats.mints;
    if (variant === 'mint answer held' && file.kind === 'ok') {
      // Restart only once the token left in token.json has expired: the restart must not even validate it.
      await pause(Math.max(0, file.expiresAt + 200 - Date.now()));
    }

    d = await start();
    const { s, file: now } = await settled(`round ${round} (${variant}): the restarted daemon to hold a valid token that token.json holds`);
    assert.equal(s.token.error, null);
    assert.ok(Date.parse(s.token.expires_at!) > Date.now(), 'the token is not expired');
    assert.equal(now.kind === 'ok' && now.clientId, f.emulator.clients[0]!.clientId);
    if (now.kind === 'ok' && file.kind === 'ok' && now.accessToken === file.accessToken && f.emulator.stats.mints === mintsBefore) adopted += 1;
  }

  // After all that, the restarted daemon still rotates by itself: a new token, and the old one revoked.
  const { s: last } = await settled('the last daemon settled');
  const revocations = f.emulator.stats.revocations;
  const rotated = await waitFor(
    'one more rotation',
    async () => {
      const s = await crashStatus(f);
      const file = readTokenFile(f.stateDir);
      return s.token.state === 'ok' && s.token.fingerprint !== last.token.fingerprint && file.kind === 'ok' && f.emulator.stats.revocations > revocations ? file : false;
    },
    { timeoutMs: 10_000, intervalMs: 25 },
  );
  assert.equal(await d.stop('SIGTERM'), 0);

  const requests = f.emulator.stats.requests;
  const helix = requests.filter((r) => r.path.startsWith('/helix'));
  const tally = requestTally(requests.filter((r) => r.path.startsWith('/oauth2')));
  t.diagnostic(`rounds ${TOKEN_ROUNDS}; token.json after each kill ${JSON.stringify(left)}; stale token.lock left ${staleLocks}; restarts that adopted the cached token ${adopted}; temp files left ${leftoverTokenTemps(f.stateDir)}; ${Date.now() - started} ms`);
  t.diagnostic(`mints ${f.emulator.stats.mints}, revocations ${f.emulator.stats.revocations}, validations ${f.emulator.stats.validations}; oauth ${JSON.stringify(tally)}`);
  t.diagnostic(`helix ${helix.length} by status ${JSON.stringify(f.emulator.stats.helix.byStatus)}`);
  assert.deepEqual(badAuthRequests(requests), [], 'no request carried an expired, revoked or user token');
  assert.ok(helix.length >= TOKEN_ROUNDS + 1, `every daemon called Helix (${helix.length})`);
  assert.ok(helix.every((r) => r.auth === 'app' && r.status >= 200 && r.status < 300), 'every Helix call had a valid app token and succeeded');
  assert.ok(f.emulator.stats.mints >= TOKEN_ROUNDS + 2, `a mint per start or rotation (${f.emulator.stats.mints})`);
  // Checked last: this /validate is ours, not the daemon's.
  const res = await request(`${f.emulator.authUrl}/validate`, { headers: { authorization: `OAuth ${rotated.accessToken}` }, dispatcher: f.agent });
  await res.body.text();
  assert.equal(res.statusCode, 200, 'the emulator accepts the token left in token.json');
});

test('token rotation after a kill -9 restart: a token adopted from token.json is rotated with one mint and no /validate', async (t) => {
  const { f, start } = await useCrashFixture(t, { subscriptions: TWO_SUBSCRIPTIONS, emulator: { tokenTtlSeconds: TOKEN_TTL_S } });
  const first = await start();
  await waitFor('a token', async () => (await crashStatus(f)).token.state === 'ok');
  await first.kill9();
  const mints = f.emulator.stats.mints;
  const d = await start({ EVENTSUBD_LOG_LEVEL: 'debug' });
  // The restart adopts the cached token: /validate gives its expiry in whole seconds, so up to 1 s short of
  // the exact expiry token.json holds, and the rotation comes due before the cache says so.
  const adopted = await waitFor('the cached token adopted', async () => {
    const s = await crashStatus(f);
    return s.token.state === 'ok' && s.sync.result === 'ok' ? s : false;
  });
  assert.equal(f.emulator.stats.mints, mints, 'the restart adopted the cached token');
  const validations = f.emulator.stats.validations;
  await waitFor(
    'the rotation',
    async () => {
      const s = await crashStatus(f);
      return s.token.state === 'ok' && s.token.fingerprint !== adopted.token.fingerprint;
    },
    { timeoutMs: 10_000, intervalMs: 20 },
  );
  const adoptions = d.logs().filter((l) => l.msg === 'Using the cached app token').length;
  t.diagnostic(`rotation of the adopted token: ${f.emulator.stats.validations - validations} /validate, ${f.emulator.stats.mints - mints} mint, ${adoptions} adoptions logged`);
  assert.equal(f.emulator.stats.validations - validations, 0, 'the rotation never re-validates the token it replaces');
  assert.equal(adoptions, 1, 'the token was adopted once, at the start');
  assert.equal(f.emulator.stats.mints - mints, 1);
  // The revoke follows the swap to the new token: it may still be in flight when the new fingerprint shows.
  await waitFor('the replaced token revoked', () => f.emulator.stats.revocations >= 1);
  assert.equal(f.emulator.stats.revocations, 1, 'and revokes it, once');
});

/**
 * What a token.lock left behind can say: a dead holder's pid, a live unrelated process's pid (pid 1, a reused
 * pid), nothing at all. The lock is the kernel's (src/lib/file-lock.ts), not the file's content: none of them
 * may delay the next process's token (an empty lock once did, by 30 s; a live pid blocked start-up for good).
 */
test('token lock crash: a restart with token.lock left naming a dead, a live or no holder has a token within 5 s', async (t) => {
  const dead = spawnSync(process.execPath, ['-e', '']).pid;
  const leftovers: Record<string, string> = { 'a dead holder': `${dead}\n`, 'pid 1': '1\n', 'nothing (empty)': '' };
  for (const [moment, content] of Object.entries(leftovers)) {
    const { f, start } = await useCrashFixture(t, { subscriptions: TWO_SUBSCRIPTIONS });
    mkdirSync(f.stateDir, { recursive: true, mode: 0o700 });
    writeFileSync(join(f.stateDir, 'token.lock'), content, { mode: 0o600 });
    const started = Date.now();
    const d = await start();
    try {
      await waitFor(`a token (${moment})`, async () => (await crashStatus(f)).token.state === 'ok', { timeoutMs: 5_000, intervalMs: 50 });
    } finally {
      t.diagnostic(`${moment}: token after ${Date.now() - started} ms (mints ${f.emulator.stats.mints})`);
    }
    assert.equal(f.emulator.stats.mints, 1, moment);
    await d.stop();
  }
});

/**
 * A process that takes and releases token.lock in a loop (the built lock module, so that it starts fast). It says
 * READY once it has held the lock a first time, so that every kill lands inside the loop, even on a loaded machine.
 */
const LOCK_LOOP = `
import { waitForLockFile } from ${JSON.stringify(pathToFileURL(join(process.cwd(), 'dist/lib/file-lock.js')).href)};
const clock = { now: () => Date.now(), sleep: (ms) => new Promise((r) => setTimeout(r, ms)) };
const take = () => waitForLockFile(process.argv[1], { clock, pollMs: 5, holder: process.pid + '\\n' });
await (await take()).release();
process.stdout.write('READY\\n');
for (;;) await (await take()).release();
`;

test(`token lock crash: ${KILLS} kill -9 of a process taking and releasing token.lock in a loop (seed ${SEED}) leave the lock free at once`, async (t) => {
  const dir = tempDir('eventsubd-lockkill-');
  t.after(() => dir.cleanup());
  const path = join(dir.path, 'token.lock');
  const rnd = mulberry32(SEED ^ 0x10c6);
  let namedDead = 0;
  for (let i = 0; i < KILLS; i++) {
    const child = spawn(process.execPath, ['--input-type=module', '-e', LOCK_LOOP, path], { stdio: ['ignore', 'pipe', 'inherit'] });
    const exited = new Promise((resolve) => child.once('exit', resolve));
    await new Promise((resolve) => child.stdout.once('data', resolve));
    await new Promise((resolve) => setTimeout(resolve, 5 + Math.floor(rnd() * 40)));
    child.kill('SIGKILL');
    await exited;
    if (existsSync(path) && readFileSync(path, 'utf8') === `${child.pid}\n`) namedDead += 1;
    const held = await tryLockFile(path);
    assert.ok(held, `kill ${i + 1} left token.lock held by nobody alive, yet not free`);
    await held.release();
  }
  t.diagnostic(`${KILLS} kills: the lock was free at once after each; the file named the dead holder after ${namedDead}`);
  assert.ok(namedDead > 0, 'some kills landed after a holder had written its pid');
});

// ------------------------------------------------------------------------------------------------- 3. sync

const SYNC_COUNT = 300;
/** Each create is held this long by the emulator, so that 300 creates (8 at a time) take a few seconds. */
const CREATE_HOLD_MS = 61;

test(`sync crash: ${SYNC_COUNT} declared subscriptions, kill -9 twice mid-sync (seed ${SEED}); the third run converges, nothing is created twice`, async (t) => {
  const declared: DesiredEntry[] = Array.from({ length: SYNC_COUNT }, (_, i) => ({
    type: 'stream.online',
    version: '1',
    condition: { broadcaster_user_id: String(50_000 + i) },
  }));
  const { f, clock, spawn } = await useCrashFixture(t, { subscriptions: declared });
  f.emulator.injectFault({ kind: 'latency', ms: CREATE_HOLD_MS, match: { method: 'POST', pathPrefix: '/helix/eventsub/subscriptions' }, times: 1_000_000 });
  const rnd = mulberry32(SEED ^ 0x5c);
  const started = Date.now();

  /** Runs a daemon until `killAfter` creates have reached the emulator (then kill -9 at once, from the hook). */
  const crashRun = async (killAfter: number): Promise<{ heldAtKill: number; existing: number }> => {
    const d = spawn();
    let arrived = 0;
    let heldAtKill = 0;
    const off = clock.onSleep((ms) => {
      if (ms !== CREATE_HOLD_MS || ++arrived !== killAfter) return;
      heldAtKill = clock.running(CREATE_HOLD_MS);
      d.child.kill('SIGKILL');
    });
    const { signal } = await within(d.exited, 30_000, `${killAfter} creates before the kill`).finally(off);
    assert.equal(signal, 'SIGKILL', `the daemon was killed, not stopped by an error:\n${d.stderr.slice(-2000)}`);
    // Creates that reached the emulator before the kill finish after it: wait for them, then count.
    await waitFor('the held creates to finish', () => clock.running(CREATE_HOLD_MS) === 0, { timeoutMs: 5_000, intervalMs: 5 });
    await pause(50);
    return { heldAtKill, existing: f.emulator.subscriptions().length };
  };

  const kill1 = Math.floor(SYNC_COUNT * (0.15 + 0.35 * rnd()));
  const first = await crashRun(kill1);
  assert.ok(first.existing >= kill1 && first.existing < SYNC_COUNT, `after the first kill: ${first.existing} exist`);
  const kill2 = Math.max(1, Math.floor((SYNC_COUNT - first.existing) * (0.2 + 0.4 * rnd())));
  const second = await crashRun(kill2);
  assert.ok(second.existing >= first.existing + kill2 && second.existing < SYNC_COUNT, `after the second kill: ${second.existing} exist`);

  const d = spawn();
  await d.waitReady();
  const done = await waitFor(
    'the third run to converge',
    async () => {
      const s = await crashStatus(f);
      return s.sync.result !== null ? s : false;
    },
    { timeoutMs: 30_000, intervalMs: 50 },
  );
  const creates = (): number => f.emulator.stats.requests.filter((r) => r.method === 'POST' && r.path === '/helix/eventsub/subscriptions').length;
  const postsAfterThird = creates();
  // One more sync (SIGHUP): converged, it must create nothing.
  d.child.kill('SIGHUP');
  const reload = await waitFor('the SIGHUP sync', async () => {
    const s = await crashStatus(f);
    return s.sync.reason === 'reload' ? s : false;
  });
  assert.equal(await d.stop('SIGTERM'), 0);

  const subs = f.emulator.subscriptions();
  const keyOf = (s: { type: string; version: string; condition: Record<string, string> }): string =>
    `${s.type}|${s.version}|${JSON.stringify(Object.entries(s.condition).sort())}`;
  const keys = subs.map(keyOf);
  const byStatus = requestTally(f.emulator.stats.requests.filter((r) => r.path.startsWith('/helix')));
  t.diagnostic(
    `kill 1 after ${kill1} creates (${first.heldAtKill} held, finished after the death): ${first.existing} exist; kill 2 after ${kill2} more (${second.heldAtKill} held): ${second.existing} exist; third run created ${done.sync.applied ? JSON.stringify(done.sync.applied) : '?'}; ${Date.now() - started} ms`,
  );
  t.diagnostic(`helix ${JSON.stringify(byStatus)}`);

  assert.equal(done.sync.result, 'ok', JSON.stringify(done.sync));
  assert.equal(done.sync.counts?.keep, second.existing, 'the third run kept what the crashed runs created');
  assert.equal(done.sync.counts?.create, SYNC_COUNT - second.existing);
  assert.equal(done.sync.applied?.created, SYNC_COUNT - second.existing);
  assert.equal(subs.length, SYNC_COUNT, 'exactly the declared count exists');
  assert.equal(new Set(keys).size, SYNC_COUNT, 'no twin');
  assert.deepEqual([...keys].sort(), declared.map((e) => keyOf(e)).sort(), 'exactly the declared set');
  assert.ok(subs.every((s) => s.status === 'enabled'));
  const answered = f.emulator.stats.requests.filter((r) => r.method === 'POST' && r.path === '/helix/eventsub/subscriptions');
  assert.equal(answered.filter((r) => r.status === 202).length, SYNC_COUNT, 'creates across the three runs add up to the declared count');
  assert.equal(answered.filter((r) => r.status !== 202).length, 0, 'no create met a 409 (nothing was created twice) or failed');
  assert.equal(reload.sync.result, 'ok');
  assert.equal(reload.sync.counts?.create, 0);
  assert.equal(reload.sync.counts?.keep, SYNC_COUNT);
  assert.equal(creates(), postsAfterThird, 'the SIGHUP sync sent no create');
  assert.ok(f.emulator.stats.requests.filter((r) => r.path.startsWith('/helix')).every((r) => r.auth === 'app'));
});
