/**
 * Figure 4: token churn. A token is minted and used once; then the emulator expires every token, and
 * `count` concurrent Helix calls (GET /eventsub/subscriptions) are made, all of which get 401 on their
 * first try. Counted on the emulator: mints, 401s, Helix requests. eventsubd's TokenManager and Helix
 * client (in this process) against Twurple's ApiClient with an AppTokenAuthProvider (a child process,
 * in twurple's mock mode), each against a fresh emulator whose bucket is not the bound.
 */
import { join } from 'node:path';
import { startEmulatorProcess } from '../lib/emulator-process.mjs';
import { startChild, stopChild } from '../lib/proc.mjs';
import { startStack } from '../lib/stack.mjs';
import { ROOT } from '../lib/targets.mjs';

const BUCKET = { limit: 1_000_000, windowMs: 60_000 };

async function storm(emulator, fire) {
  await emulator.expireAllTokens();
  await emulator.resetStats();
  const outcome = await fire();
  const st = await emulator.stats();
  return { ...outcome, mints: st.mints, unauthorized: st.helix.byStatus['401'] ?? 0, helix: st.helix.total, validations: st.validations };
}

async function eventsubdChurn(count) {
  const emulator = await startEmulatorProcess({ bucket: BUCKET });
  const stack = await startStack(emulator);
  try {
    await stack.helix.list();
    return await storm(emulator, async () => {
      const started = performance.now();
      const results = await Promise.allSettled(Array.from({ length: count }, () => stack.helix.list()));
      const failed = results.filter((r) => r.status === 'rejected');
      return { succeeded: results.length - failed.length, failed: failed.length, error: failed[0]?.reason?.code, ms: performance.now() - started };
    });
  } finally {
    await stack.close();
    await emulator.close();
  }
}

async function twurpleChurn(count) {
  const emulator = await startEmulatorProcess({ bucket: BUCKET });
  const port = new URL(emulator.url).port;
  const { clientId, clientSecret } = emulator.clients[0];
  const child = startChild(process.execPath, [join(ROOT, 'bench', 'servers', 'twurple-churn.mjs'), clientId, clientSecret], {
    ipc: true,
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? '', TWURPLE_MOCK_API_PORT: port },
  });
  const ask = (msg) =>
    new Promise((resolve, reject) => {
      child.child.once('message', resolve);
      child.exited.then((code) => reject(new Error(`twurple-churn exited ${code}: ${child.stderr}`)));
      if (msg) child.child.send(msg);
    });
  try {
    await ask();
    await ask({ cmd: 'warm' });
    return await storm(emulator, () => ask({ cmd: 'storm', count }));
  } finally {
    child.child.send({ cmd: 'exit' });
    await stopChild(child);
    await emulator.close();
  }
}

/** Resolves with `{count, eventsubd, twurple}`, each `{mints, unauthorized, helix, succeeded, failed, ms}`. */
export async function runTokenChurn(ctx, { count }) {
  const eventsubd = await eventsubdChurn(count);
  ctx.log(`token churn eventsubd: ${eventsubd.mints} mint(s), ${eventsubd.unauthorized} 401s, ${eventsubd.failed} failed`);
  const twurple = await twurpleChurn(count);
  ctx.log(`token churn twurple: ${twurple.mints} mint(s), ${twurple.unauthorized} 401s, ${twurple.failed} failed`);
  return { count, eventsubd, twurple };
}
