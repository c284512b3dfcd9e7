/**
 * Twurple's webhook receiver (@twurple/eventsub-http, a dev dependency) as a user would run it without a
 * Twitch API: unmanaged mode (`managed: false`) and one subscription, `onStreamOnline('1337', handler)`,
 * which serves POST /event/stream.online.1337. Twurple answers 202 before it runs the handler (even for a
 * stale or duplicate message), so the handler counts its calls: that count proves a message was accepted.
 * argv: PORT SECRET. Listens on 127.0.0.1 only. Reports its counts over IPC.
 */
import { createServer } from 'node:http';
import { EventSubHttpListener, ReverseProxyAdapter } from '@twurple/eventsub-http';

const [port, secret] = [Number(process.argv[2]), process.argv[3]];

/** The reverse-proxy adapter (plain HTTP behind a TLS proxy), bound to 127.0.0.1 instead of every interface. */
class LoopbackAdapter extends ReverseProxyAdapter {
  createHttpServer() {
    const server = createServer();
    const listen = server.listen.bind(server);
    server.listen = (p, cb) => listen(p, '127.0.0.1', cb);
    return server;
  }
}

let handled = 0;
const listener = new EventSubHttpListener({
  adapter: new LoopbackAdapter({ hostName: 'events.example.com', port }),
  secret,
  managed: false,
  logger: { minLevel: 'critical' },
});
listener.onStreamOnline('1337', () => {
  handled += 1;
});
listener.start();

for (;;) {
  const ok = await fetch(`http://127.0.0.1:${port}/`).then((r) => r.ok, () => false);
  if (ok) break;
  await new Promise((resolve) => setTimeout(resolve, 20));
}
process.send?.({ ready: true });
process.on('message', (m) => {
  if (m === 'count') process.send?.({ count: handled, accepted: handled });
});
process.on('SIGTERM', () => {
  listener.stop();
  process.disconnect?.();
  setTimeout(() => process.exit(0), 200).unref();
});
