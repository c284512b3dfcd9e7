/**
 * `eventsubd conduit status`: Twitch's view of the daemon's conduit (EVENTSUBD_CONDUIT_ID, else STATE_DIR/conduit.json),
 * through the CLI runner in this process against the emulator, with real WebSocket sessions on its /ws as shards.
 */
import assert from 'node:assert/strict';
import { wsClient } from '../emulator/ws-helpers.js';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { writeConduitRecord } from '../../src/conduit/conduit-store.js';
import { startEmulator, type Emulator } from '../../src/emulator/index.js';
import { helix, mint } from '../emulator/helpers.js';
import { emulatorSettings, tempDir } from '../helpers/cli.js';
import { cliInProcess } from '../helpers/cli-in-process.js';
import { untilTurn } from '../helpers/wait.js';

const CONDUITS = '/helix/eventsub/conduits';

interface Rig {
  emulator: Emulator;
  stateDir: string;
  /** Raw Helix as this client, with an app token minted outside the CLI. */
  api: (init: { method?: string; path: string; query?: string; body?: unknown }) => ReturnType<typeof helix>;
  status: (env?: Record<string, string>, ...args: string[]) => ReturnType<typeof cliInProcess>;
}

async function rig(t: TestContext): Promise<Rig> {
  const emulator = await startEmulator({});
  const dir = tempDir();
  t.after(async () => {
    await emulator.close();
    dir.cleanup();
  });
  const stateDir = join(dir.path, 'state');
  mkdirSync(stateDir, { mode: 0o700 });
  const client = emulator.clients[0]!;
  const token = await mint(emulator, client);
  const env = { ...emulatorSettings(emulator), EVENTSUBD_STATE_DIR: stateDir };
  return {
    emulator,
    stateDir,
    api: (init) => helix(emulator, { token, clientId: client.clientId, ...init }),
    status: (extra = {}, ...args) => cliInProcess(['conduit', 'status', ...args], { ...env, ...extra }),
  };
}

/** A WebSocket on the emulator's /ws: its session id (from the welcome) and a way to close it and see the close. */
async function openSession(t: TestContext, emu: Emulator): Promise<{ id: string; close: () => Promise<void> }> {
  const c = await wsClient(t, emu);
  return {
    id: c.id,
    close: async () => {
      c.ws.close(1000);
      await c.closed();
    },
  };
}

interface WireShard {
  id: string;
  status: string;
  transport: { session_id?: string; connected_at?: string; disconnected_at?: string };
}

/**
 * A conduit of 3 shards: shard 1 on a live session, shard 2 on a session since closed (its status has left
 * `enabled`), shard 0 never assigned. Returns its id and the shards as Twitch lists them.
 */
async function conduitWithShards(t: TestContext, r: Rig): Promise<{ id: string; live: string; gone: string; wire: WireShard[] }> {
  const created = await r.api({ method: 'POST', path: CONDUITS, body: { shard_count: 3 } });
  assert.equal(created.status, 200);
  const id = created.json.data[0].id as string;
  const live = await openSession(t, r.emulator);
  const gone = await openSession(t, r.emulator);
  const assigned = await r.api({
    method: 'PATCH',
    path: `${CONDUITS}/shards`,
    body: { conduit_id: id, shards: [{ id: '1', transport: { method: 'websocket', session_id: live.id } }, { id: '2', transport: { method: 'websocket', session_id: gone.id } }] },
  });
  assert.deepEqual(assigned.json.errors, []);
  await gone.close();
  let wire: WireShard[] = [];
  const listShards = async (): Promise<void> => {
    wire = (await r.api({ path: `${CONDUITS}/shards`, query: `conduit_id=${id}` })).json.data as WireShard[];
  };
  // The emulator marks the shard once it has seen the close; the listing is asked again until it shows.
  let pending: Promise<void> | undefined;
  await untilTurn(() => {
    pending ??= listShards().finally(() => (pending = undefined));
    return wire[2]?.status !== undefined && wire[2].status !== 'enabled';
  }, 'shard 2 to leave enabled');
  await pending;
  await listShards();
  return { id, live: live.id, gone: gone.id, wire };
}

test('conduit status prints the recorded conduit and each shard: status, session, connected and disconnected times', async (t) => {
  const r = await rig(t);
  const { id, live, gone, wire } = await conduitWithShards(t, r);
  await writeConduitRecord(r.stateDir, { conduit_id: id, created_at: '2026-11-24T10:00:00.000Z', previous: ['old-conduit'] });

  const run = await r.status();
  assert.equal(run.code, 0, run.err);
  const lines = run.out.trimEnd().split('\n');
  assert.equal(lines[0], `Conduit ${id} (from ${join(r.stateDir, 'conduit.json')}): shard_count 3`);
  assert.match(lines[1]!, /^SHARD +STATUS +SESSION +CONNECTED AT +DISCONNECTED AT$/);
  assert.match(lines[2]!, /^0 +websocket_disconnected +- +- +-$/);
  assert.match(lines[3]!, new RegExp(`^1 +enabled +${live} +${wire[1]!.transport.connected_at} +-$`));
  assert.match(lines[4]!, new RegExp(`^2 +${wire[2]!.status} +${gone} +${wire[2]!.transport.connected_at} +${wire[2]!.transport.disconnected_at}$`));
  assert.ok(wire[2]!.transport.disconnected_at, 'a closed session has disconnected_at');
  assert.equal(wire[2]!.status, 'websocket_disconnected', 'a session closed with 1000');
  assert.equal(lines[5], '3 shard(s): 2 websocket_disconnected, 1 enabled', 'counted by status, in order of first appearance');
  assert.equal(lines.length, 6);

  const json = await r.status({}, '--json');
  assert.equal(json.code, 0, json.err);
  assert.deepEqual(JSON.parse(json.out), {
    id,
    source: join(r.stateDir, 'conduit.json'),
    shard_count: 3,
    previous: ['old-conduit'],
    shards: [
      { id: '0', status: 'websocket_disconnected', method: null, session_id: null, callback: null, connected_at: null, disconnected_at: null },
      { id: '1', status: 'enabled', method: 'websocket', session_id: live, callback: null, connected_at: wire[1]!.transport.connected_at, disconnected_at: null },
      {
        id: '2',
        status: wire[2]!.status,
        method: 'websocket',
        session_id: gone,
        callback: null,
        connected_at: wire[2]!.transport.connected_at,
        disconnected_at: wire[2]!.transport.disconnected_at,
      },
    ],
  });
});

test('conduit status shows EVENTSUBD_CONDUIT_ID over the record', async (t) => {
  const r = await rig(t);
  const recorded = (await r.api({ method: 'POST', path: CONDUITS, body: { shard_count: 1 } })).json.data[0].id as string;
  const configured = (await r.api({ method: 'POST', path: CONDUITS, body: { shard_count: 2 } })).json.data[0].id as string;
  await writeConduitRecord(r.stateDir, { conduit_id: recorded, created_at: '2026-11-24T10:00:00.000Z', previous: [] });
  const json = await r.status({ EVENTSUBD_CONDUIT_ID: configured }, '--json');
  assert.equal(json.code, 0, json.err);
  const doc = JSON.parse(json.out) as { id: string; source: string; shard_count: number; shards: unknown[] };
  assert.deepEqual([doc.id, doc.source, doc.shard_count, doc.shards.length], [configured, 'EVENTSUBD_CONDUIT_ID', 2, 2]);
});

test('conduit status with no conduit configured nor recorded is CONDUIT_NOT_FOUND (exit 78) saying what to do, and asks Twitch nothing', async (t) => {
  const r = await rig(t);
  const before = r.emulator.stats.helix.total;
  const run = await r.status();
  assert.equal(run.code, 78);
  assert.equal(run.out, '');
  assert.match(run.err, /^eventsubd: CONDUIT_NOT_FOUND: No conduit to show: EVENTSUBD_CONDUIT_ID is not set .*run the daemon once in conduit mode \(EVENTSUBD_TRANSPORT=conduit\)/m);
  assert.equal(r.emulator.stats.helix.total, before);
});

test('conduit status of a conduit Twitch does not know is CONDUIT_NOT_FOUND, exit 78', async (t) => {
  const r = await rig(t);
  const id = (await r.api({ method: 'POST', path: CONDUITS, body: { shard_count: 1 } })).json.data[0].id as string;
  await writeConduitRecord(r.stateDir, { conduit_id: id, created_at: '2026-11-24T10:00:00.000Z', previous: [] });
  assert.equal((await r.api({ method: 'DELETE', path: CONDUITS, query: `id=${id}` })).status, 204);
  const run = await r.status({}, '--json');
  assert.equal(run.code, 78);
  assert.equal(run.out, '');
  assert.match(run.err, new RegExp(`CONDUIT_NOT_FOUND.*Twitch knows no conduit ${id}`));
});
