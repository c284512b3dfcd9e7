/**
 * Conduit mode end to end (issue 14, "Done when"): the built CLI (`eventsubd run` in a child process) against the
 * emulator, with 4 WebSocket shards. Every event the emulator sends to a conduit subscription is journaled exactly
 * once; a session_reconnect on every shard during a 2,000-event burst loses and duplicates nothing; a connection
 * the emulator kills is re-assigned within keepalive + 5 s and only what the emulator itself dropped is missing;
 * a restart re-adopts the same conduit.
 */
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { request } from 'undici';
import { runCli } from '../helpers/cli.js';
import { CALLBACK, DaemonProcess, httpGet, metric, readJournal, status, useFixture, waitFor, WEBHOOK_SECRET, type DesiredEntry, type Fixture } from '../daemon/harness.js';

const SHARDS = 4;
/** Enough broadcasters that the hash spreads the events over every shard. */
const BROADCASTERS = Array.from({ length: 16 }, (_, i) => String(70_001 + i));
const DECLARED: DesiredEntry[] = BROADCASTERS.map((b) => ({ type: 'stream.online', version: '1', condition: { broadcaster_user_id: b } }));

function conduitEnv(f: Fixture, extra: Record<string, string> = {}): Record<string, string> {
  return {
    EVENTSUBD_TRANSPORT: 'conduit',
    EVENTSUBD_CONDUIT_SHARDS: String(SHARDS),
    TWITCH_EVENTSUB_WS_URL: `${f.emulator.url.replace(/^http/, 'ws')}/ws`,
    // No webhook at all: conduit mode needs no public URL.
    EVENTSUB_CALLBACK_URL: '',
    EVENTSUB_SECRET: '',
    ...extra,
  };
}

async function control<T>(f: Fixture, method: 'GET' | 'POST', path: string, body?: unknown): Promise<T> {
  const res = await request(`${f.emulator.url}${path}`, {
    method,
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.body.text();
  assert.ok(res.statusCode < 300, `${method} ${path}: ${res.statusCode} ${text}`);
  return (text ? JSON.parse(text) : undefined) as T;
}

interface Sent {
  message_id: string;
  shard?: string;
  dropped?: boolean;
}

/** Sends `count` events to every conduit subscription; the emulator says what it sent and what it dropped. */
async function burst(f: Fixture, subscriptionIds: readonly string[], count: number): Promise<Sent[]> {
  const all = await Promise.all(
    subscriptionIds.map((id) => control<{ data: Sent[] }>(f, 'POST', `/_emulator/subscriptions/${encodeURIComponent(id)}/events`, { count })),
  );
  return all.flatMap((r) => r.data);
}

/** Waits until `/status` shows every shard assigned and the declared subscriptions enabled on the conduit. */
async function conduitUp(f: Fixture): Promise<{ conduitId: string; subscriptionIds: string[] }> {
  const doc = await waitFor(
    `${SHARDS} shards assigned`,
    async () => {
      const s = (await status(f)) as unknown as { conduit?: { conduit_id: string | null; shards_assigned: number } };
      return s.conduit?.shards_assigned === SHARDS && s.conduit.conduit_id ? s.conduit : undefined;
    },
    { timeoutMs: 15_000 },
  );
  const conduitId = doc.conduit_id!;
  const subs = await waitFor(
    'the declared subscriptions on the conduit',
    () => {
      const on = f.emulator.subscriptions().filter((s) => s.transport.method === 'conduit' && s.transport.conduit_id === conduitId && s.status === 'enabled');
      return on.length === DECLARED.length ? on : undefined;
    },
    { timeoutMs: 15_000 },
  );
  return { conduitId, subscriptionIds: subs.map((s) => s.id) };
}

function journalIds(f: Fixture): string[] {
  return readJournal(f.stateDir)
    .filter((r) => r.message_type === 'notification')
    .map((r) => r.message_id);
}

/** Every message the emulator did not drop is journaled, exactly once, with its transport and shard. */
async function assertExactlyOnce(f: Fixture, sent: readonly Sent[], what: string): Promise<void> {
  const expected = new Set(sent.filter((s) => !s.dropped).map((s) => s.message_id));
  await waitFor(`${expected.size} ${what} journaled`, () => {
    const ids = new Set(journalIds(f));
    for (const id of expected) if (!ids.has(id)) return false;
    return true;
  }, { timeoutMs: 30_000 });
  const records = readJournal(f.stateDir).filter((r) => r.message_type === 'notification');
  const counts = new Map<string, number>();
  for (const r of records) counts.set(r.message_id, (counts.get(r.message_id) ?? 0) + 1);
  const twice = [...counts].filter(([, n]) => n > 1);
  assert.deepEqual(twice, [], 'no message journaled twice');
  for (const r of records) {
    assert.equal(r.transport, 'conduit');
    assert.match(String(r.shard), /^[0-3]$/);
  }
  for (const s of sent.filter((x) => x.dropped)) assert.ok(!counts.has(s.message_id), 'a dropped message cannot be journaled');
}

test('4 shards: every event journaled once, through a session_reconnect on every shard during a 2,000-event burst', async (t) => {
  const { f, start } = await useFixture(t, { subscriptions: DECLARED });
  const daemon = await start(conduitEnv(f));
  const { subscriptionIds } = await conduitUp(f);
  assert.equal(readFileSync(join(f.stateDir, 'conduit.json'), 'utf8').includes('conduit_id'), true);

  const warmup = await burst(f, subscriptionIds, 2);
  assert.equal(warmup.filter((s) => s.dropped).length, 0, 'nothing dropped while every shard is up');
  await assertExactlyOnce(f, warmup, 'warm-up events');
  const shardsUsed = new Set(readJournal(f.stateDir).map((r) => r.shard));
  assert.equal(shardsUsed.size, SHARDS, 'the broadcaster hash spread the events over every shard');

  // The burst: 2,000 events, with session_reconnect sent to every shard while they are in flight.
  const first = burst(f, subscriptionIds, 60);
  await control(f, 'POST', '/_emulator/ws/reconnect', { grace_ms: 5_000 });
  const second = burst(f, subscriptionIds, 65);
  const sent = [...(await first), ...(await second)];
  assert.equal(sent.length, 2_000);
  assert.equal(sent.filter((s) => s.dropped).length, 0, 'a reconnecting shard still receives: nothing is dropped');
  await assertExactlyOnce(f, sent, 'burst events');
  const after = await waitFor('the shards to have moved', async () => {
    const s = (await status(f)) as unknown as { conduit: { shards: { reconnects: number; state: string }[] } };
    return s.conduit.shards.every((x) => x.reconnects >= 1 && x.state === 'assigned') ? s.conduit : undefined;
  });
  assert.equal(after.shards.length, SHARDS);

  // What an operator sees: /readyz, /metrics per shard, and Twitch's view through `eventsubd conduit status`.
  const ready = await httpGet(f, '/readyz');
  assert.equal(ready.status, 200);
  assert.equal((JSON.parse(ready.body) as { shard_assigned: boolean }).shard_assigned, true);
  const metrics = (await httpGet(f, '/metrics')).body;
  let messages = 0;
  for (let i = 0; i < SHARDS; i++) {
    assert.equal(metric(metrics, 'eventsubd_conduit_shard_assigned', `{shard="${i}"}`), 1);
    assert.ok((metric(metrics, 'eventsubd_conduit_shard_reconnects_total', `{shard="${i}"}`) ?? 0) >= 1);
    messages += metric(metrics, 'eventsubd_conduit_shard_messages_total', `{shard="${i}"}`) ?? 0;
  }
  assert.equal(messages, 2_000 + warmup.length, 'every message read once, on one shard');
  const cli = await runCli(['conduit', 'status', '--json'], { env: f.env(conduitEnv(f)) });
  assert.equal(cli.code, 0, cli.stderr);
  const view = JSON.parse(cli.stdout) as { id: string; shard_count: number; shards: { id: string; status: string }[] };
  assert.equal(view.shard_count, SHARDS);
  assert.deepEqual(view.shards.map((s) => s.status), Array(SHARDS).fill('enabled'));
  assert.equal(await daemon.stop('SIGTERM'), 0);
  assert.ok(!daemon.logs().some((l) => l.level === 'error'), `no error logged:\n${daemon.stderr}`);
});

test('a killed connection is re-assigned within keepalive + 5 s; only what the emulator dropped is missing; a restart re-adopts the conduit', async (t) => {
  const { f, start } = await useFixture(t, { subscriptions: DECLARED });
  const daemon = await start(conduitEnv(f));
  const { conduitId, subscriptionIds } = await conduitUp(f);
  const sessions = await control<{ data: { id: string; status: string; shard_id?: string | null }[] }>(f, 'GET', '/_emulator/ws/sessions');
  // Shards 1 and 2 killed at once: an event hashed to shard 1 is retried on shard 2 only (Twitch retries once),
  // so the emulator drops it; one hashed to shard 2 is retried on shard 3 and arrives.
  const victims = ['1', '2'].map((shard) => sessions.data.find((s) => s.status === 'connected' && s.shard_id === shard));
  assert.ok(victims.every(Boolean), `sessions assigned to shards 1 and 2 in ${JSON.stringify(sessions.data)}`);
  const killedAt = Date.now();
  for (const v of victims) await control(f, 'POST', `/_emulator/ws/sessions/${encodeURIComponent(v!.id)}/terminate`);
  await waitFor('shards 1 and 2 disabled', async () => {
    const c = await control<{ data: { shards: { id: string; status: string }[] }[] }>(f, 'GET', '/_emulator/conduits');
    return c.data[0]?.shards.filter((s) => s.status !== 'enabled').length === 2;
  }, { intervalMs: 5 });
  const sent = await burst(f, subscriptionIds, 20);
  await waitFor('shards 1 and 2 re-assigned to new sessions', async () => {
    const s = (await status(f)) as unknown as { conduit: { shards: { id: string; state: string; session_id: string | null }[] } };
    return ['1', '2'].every((id, i) => {
      const shard = s.conduit.shards.find((x) => x.id === id);
      return shard?.state === 'assigned' && shard.session_id !== victims[i]!.id;
    });
  }, { timeoutMs: 20_000 });
  const keepaliveMs = 10_000; // the emulator's default keepalive_timeout_seconds
  const reassignedMs = Date.now() - killedAt;
  t.diagnostic(`shards 1 and 2 re-assigned ${reassignedMs} ms after the kill; ${sent.filter((x) => x.dropped).length} of ${sent.length} events dropped by the emulator`);
  assert.ok(reassignedMs < keepaliveMs + 5_000, `re-assigned after ${reassignedMs} ms`);
  await assertExactlyOnce(f, sent, 'events sent around the kill');
  const dropped = sent.filter((s) => s.dropped).length;
  assert.ok(dropped > 0 && dropped < sent.length, `some events dropped by the emulator (${dropped} of ${sent.length})`);
  const stats = await control<{ conduitDropped: number }>(f, 'GET', '/_emulator/stats');
  assert.equal(stats.conduitDropped, dropped, 'what is missing is exactly what the emulator counted as dropped');

  // A restart re-adopts the same conduit: no second conduit, the same id, every shard assigned again.
  assert.equal(await daemon.stop('SIGTERM'), 0);
  await start(conduitEnv(f));
  const again = await conduitUp(f);
  assert.equal(again.conduitId, conduitId);
  const conduits = await control<{ data: { id: string }[] }>(f, 'GET', '/_emulator/conduits');
  assert.deepEqual(conduits.data.map((c) => c.id), [conduitId]);
  const more = await burst(f, again.subscriptionIds, 1);
  await assertExactlyOnce(f, [...sent, ...more], 'events after the restart');
});

/** An app token from the emulator (client credentials), for a Helix call made "behind the daemon's back". */
async function appToken(f: Fixture): Promise<string> {
  const client = f.emulator.clients[0]!;
  const res = await request(`${f.emulator.authUrl}/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ client_id: client.clientId, client_secret: client.clientSecret, grant_type: 'client_credentials' }).toString(),
  });
  return ((await res.body.json()) as { access_token: string }).access_token;
}

test('a webhook daemon switched to conduit mode migrates its subscriptions; a conduit deleted behind its back is replaced and re-subscribed', async (t) => {
  const declared = DECLARED.slice(0, 4);
  const { f, start } = await useFixture(t, { subscriptions: declared });
  const webhook = await start();
  await waitFor('the webhooks verified', () => f.emulator.subscriptions().filter((s) => s.transport.method === 'webhook' && s.status === 'enabled').length === 4);
  assert.equal(await webhook.stop('SIGTERM'), 0);

  // The switch: EVENTSUB_CALLBACK_URL stays set so the old webhooks are recognised as ours and migrated.
  const daemon = await start(conduitEnv(f, { EVENTSUB_CALLBACK_URL: CALLBACK, EVENTSUB_SECRET: WEBHOOK_SECRET, EVENTSUBD_CONDUIT_SHARDS: '2' }));
  const onConduit = (id: string) => f.emulator.subscriptions().filter((s) => s.transport.method === 'conduit' && s.transport.conduit_id === id && s.status === 'enabled');
  const first = await waitFor('the subscriptions migrated onto the conduit', async () => {
    const s = (await status(f)) as unknown as { conduit?: { conduit_id: string | null } };
    const id = s.conduit?.conduit_id;
    return id && onConduit(id).length === 4 && f.emulator.subscriptions().length === 4 ? id : undefined;
  }, { timeoutMs: 15_000 });
  assert.equal(f.emulator.subscriptions().filter((s) => s.transport.method === 'webhook').length, 0, 'the old webhooks were deleted');

  // Twitch deletes the conduit (72 h with every shard disabled); a reload's sync finds it gone.
  const token = await appToken(f);
  const del = await request(`${f.emulator.apiUrl}/eventsub/conduits?id=${first}`, {
    method: 'DELETE',
    headers: { authorization: `Bearer ${token}`, 'client-id': f.emulator.clients[0]!.clientId },
  });
  await del.body.dump();
  assert.equal(del.statusCode, 204);
  daemon.child.kill('SIGHUP');
  const second = await waitFor('a new conduit with every declared subscription on it and both shards assigned', async () => {
    const s = (await status(f)) as unknown as { conduit?: { conduit_id: string | null; shards_assigned: number } };
    const id = s.conduit?.conduit_id;
    return id && id !== first && s.conduit?.shards_assigned === 2 && onConduit(id).length === 4 ? id : undefined;
  }, { timeoutMs: 15_000 });
  assert.ok(daemon.logs().some((l) => l.level === 'warn' && /conduit was deleted/.test(l.msg)), 'the replacement is logged at warn');
  const record = JSON.parse(readFileSync(join(f.stateDir, 'conduit.json'), 'utf8')) as { conduit_id: string; previous: string[] };
  assert.equal(record.conduit_id, second);
  assert.deepEqual(record.previous, [first]);
  // Events flow again, through the new conduit's shards.
  const ids = onConduit(second).map((s) => s.id);
  const sent = await burst(f, ids, 3);
  await assertExactlyOnce(f, sent, 'events on the new conduit');
  const conduitStatus = await waitFor('the shards enabled on the new conduit', async () => {
    const c = await control<{ data: { id: string; shards: { status: string }[] }[] }>(f, 'GET', '/_emulator/conduits');
    const mine = c.data.find((x) => x.id === second);
    return mine?.shards.every((s) => s.status === 'enabled') ? mine : undefined;
  });
  assert.equal(conduitStatus.shards.length, 2);
});

test('the 5-conduit limit: a daemon that must create a conduit stops with CONDUIT_LIMIT_REACHED; several unrecorded conduits are not guessed between (exit 78)', async (t) => {
  const { f } = await useFixture(t, { subscriptions: DECLARED.slice(0, 1) });
  const token = await appToken(f);
  const create = async (): Promise<string> => {
    const res = await request(`${f.emulator.apiUrl}/eventsub/conduits`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'client-id': f.emulator.clients[0]!.clientId, 'content-type': 'application/json' },
      body: JSON.stringify({ shard_count: 1 }),
    });
    return ((await res.body.json()) as { data: { id: string }[] }).data[0]!.id;
  };
  const existing = [await create(), await create()];
  const ambiguous = new DaemonProcess(f, conduitEnv(f));
  const a = await ambiguous.exited;
  assert.equal(a.code, 78, ambiguous.stderr);
  // The last stderr line is the one-line error a person reads (the lines before it are the JSON logs).
  const last = ambiguous.stderr.trim().split('\n').at(-1) ?? '';
  assert.match(last, /^eventsubd: CONDUIT_AMBIGUOUS: /);
  for (const id of existing) assert.ok(last.includes(id), `${last} names ${id}`);
  assert.match(last, /EVENTSUBD_CONDUIT_ID/);

  // Five conduits that are not ours, and a record of one Twitch deleted: a new one is needed and refused.
  for (let i = 0; i < 3; i++) await create();
  writeFileSync(join(f.stateDir, 'conduit.json'), JSON.stringify({ conduit_id: 'deadbeef-0000-0000-0000-000000000000', created_at: new Date().toISOString(), previous: [] }), { mode: 0o600 });
  const limited = new DaemonProcess(f, conduitEnv(f));
  const l = await limited.exited;
  assert.equal(l.code, 1, limited.stderr);
  const limit = limited.stderr.trim().split('\n').at(-1) ?? '';
  assert.match(limit, /^eventsubd: CONDUIT_LIMIT_REACHED: .*5 conduits/);
});
