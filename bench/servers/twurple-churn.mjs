/**
 * Twurple's side of the token-churn figure: an ApiClient with an AppTokenAuthProvider, pointed at the
 * emulator by twurple's own mock mode (TWURPLE_MOCK_API_PORT: it then calls
 * http://localhost:PORT/auth/token for app tokens and http://localhost:PORT/eventsub/subscriptions).
 * Protocol over IPC: 'warm' makes one call (so a token is minted and cached); 'storm' makes N concurrent
 * calls and reports how many succeeded and failed.
 */
import { ApiClient } from '@twurple/api';
import { AppTokenAuthProvider } from '@twurple/auth';

const [clientId, clientSecret] = [process.argv[2], process.argv[3]];
const api = new ApiClient({ authProvider: new AppTokenAuthProvider(clientId, clientSecret), logger: { minLevel: 'critical' } });
const call = () => api.eventSub.getSubscriptions();

process.on('message', async (m) => {
  if (m.cmd === 'warm') {
    await call();
    process.send({ ok: true });
  } else if (m.cmd === 'storm') {
    const started = performance.now();
    const results = await Promise.allSettled(Array.from({ length: m.count }, call));
    const failed = results.filter((r) => r.status === 'rejected');
    process.send({
      ok: failed.length === 0,
      succeeded: results.length - failed.length,
      failed: failed.length,
      error: failed[0]?.reason?.message?.slice(0, 200),
      ms: performance.now() - started,
    });
  } else if (m.cmd === 'exit') {
    process.exit(0);
  }
});
process.send({ ready: true });
