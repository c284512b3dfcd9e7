/**
 * Figure 3: sync efficiency against the emulator. `count` desired subscriptions; the emulator's bucket
 * holds 800 points refilled over `windowMs` (Twitch: 60 s; scaled down here), and the Helix client is
 * given the same window. Three syncs, each starting with a full bucket: the first (everything created),
 * a re-sync with nothing to do, and one after 10% of the file changed (those are created, and the
 * subscriptions they replace pruned). The bucket's bound for N requests starting full is
 * max(0, N - 800) × windowMs / 800: no client can be faster without drawing 429s.
 */
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { syncSubscriptions } from '../../dist/subscriptions/sync.js';
import { summarizeProfile } from '../lib/cpuprofile.mjs';
import { startEmulatorProcess } from '../lib/emulator-process.mjs';
import { sleep } from '../lib/proc.mjs';
import { startStack } from '../lib/stack.mjs';
import { CALLBACK_URL, SECRET } from '../lib/targets.mjs';

const LIMIT = 800;

export function desiredSet(count, changed = 0) {
  return Array.from({ length: count }, (_, i) => ({
    type: 'stream.online',
    version: '1',
    // The first `changed` entries are replaced by subscriptions for other broadcasters.
    condition: { broadcaster_user_id: String((i < changed ? 900_000 : 100_000) + i) },
    transport: { method: 'webhook', callback: CALLBACK_URL, secret: SECRET },
  }));
}

/**
 * `phases` (1-3) runs only the first ones. Resolves with one record per phase (calls by method, 429s, wall time, the bucket's bound, the CPU used
 * by the emulator and by this process, the client), a profile of the emulator, and `keepEmulator`: the
 * emulator, left running with the final subscriptions, for the memory figure. The caller closes it.
 */
export async function runSync(ctx, { count, windowMs, phases: phaseCount = 3 }) {
  const profileDir = mkdtempSync(join(ctx.tmpDir, 'emulator-prof-'));
  const emulator = await startEmulatorProcess({ bucket: { limit: LIMIT, windowMs }, cpuProfileDir: profileDir });
  const stack = await startStack(emulator, { windowMs });
  const phases = [];
  try {
    const run = async (name, desired) => {
      await emulator.resetStats();
      const cpu0 = { emulator: emulator.cpuMs(), client: process.cpuUsage() };
      const started = performance.now();
      const outcome = await syncSubscriptions({ api: stack.helix, desired, callbackUrl: CALLBACK_URL, prune: true, dryRun: false });
      const ms = performance.now() - started;
      const client = process.cpuUsage(cpu0.client);
      const st = await emulator.stats();
      const calls = st.helix.total;
      const bound = (Math.max(0, calls - LIMIT) * windowMs) / LIMIT;
      phases.push({
        name,
        ms,
        calls,
        byMethod: { ...st.helix.byMethod },
        rateLimited: st.helix.byStatus['429'] ?? 0,
        listPages: outcome.listPages,
        writes: (st.helix.byMethod.POST ?? 0) + (st.helix.byMethod.DELETE ?? 0),
        boundMs: bound,
        failed: outcome.result?.failed.length ?? 0,
        emulatorCpu: (emulator.cpuMs() - cpu0.emulator) / ms,
        clientCpu: (client.user + client.system) / 1000 / ms,
      });
      ctx.log(
        `sync ${name}: ${calls} calls ${JSON.stringify(st.helix.byMethod)} in ${(ms / 1000).toFixed(1)} s ` +
          `(bound ${(bound / 1000).toFixed(1)} s), 429s: ${st.helix.byStatus['429'] ?? 0}`,
      );
      return calls;
    };
    // Before each phase, let the bucket refill from what the last one took, so that every phase starts full.
    const refill = (calls) => sleep(Math.min(windowMs, (calls * windowMs) / LIMIT) + 250);
    const changed = Math.round(count / 10);
    let calls = await run('first sync', desiredSet(count));
    if (phaseCount > 1) {
      await refill(calls);
      calls = await run('re-sync, nothing to do', desiredSet(count));
    }
    if (phaseCount > 2) {
      await refill(calls);
      await run('re-sync, 10% changed', desiredSet(count, changed));
    }
    return { count, windowMs, limit: LIMIT, changed, phases, emulator, command: emulator.command, profileDir };
  } catch (err) {
    await emulator.close();
    throw err;
  } finally {
    await stack.close();
  }
}

/** Stops the sync's emulator and summarises the profile it wrote. */
export async function closeSyncEmulator(result) {
  await result.emulator.close();
  const file = readdirSync(result.profileDir).find((f) => f.endsWith('.cpuprofile'));
  const summary = file ? summarizeProfile(join(result.profileDir, file), { top: 8 }) : undefined;
  rmSync(result.profileDir, { recursive: true, force: true });
  return summary;
}
