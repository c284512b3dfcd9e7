/**
 * The local end of the authorization code flow: a small HTTP server on `TWITCH_REDIRECT_URL` that waits for
 * Twitch's redirect (https://dev.twitch.tv/docs/authentication/getting-tokens-oauth/#authorization-code-grant-flow).
 * It serves only the redirect path; a callback whose `state` is not ours gets 400 and the wait goes on; the
 * first callback with our state is handled once, and a repeat of it (browsers and Twitch's "leaving Twitch"
 * page can call the redirect twice, twitchdev/issues#523) gets the same page without a second exchange.
 */
import { timingSafeEqual } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import { ConfigError } from '../lib/errors.js';

/** What the browser is shown, and the outcome for the caller. */
export interface CallbackResult<T> {
  status: number;
  page: string;
  outcome: T;
}

export interface RedirectListenerOptions<T> {
  redirectUrl: URL;
  state: string;
  /** Handles the first callback with our state (`code`, or Twitch's `error`); runs once. */
  onCallback: (query: URLSearchParams) => Promise<CallbackResult<T>>;
}

export interface RedirectListener<T> {
  /** Resolves with the outcome of the first callback with our state, once its page was sent; rejects if handling it threw. */
  readonly outcome: Promise<T>;
  close(): Promise<void>;
}

const LOOPBACK = new Set(['localhost', '127.0.0.1', '[::1]', '::1']);

/**
 * Listens on the redirect URL's port, on the loopback addresses its host names.
 * @throws ConfigError (CONFIG_INVALID) naming TWITCH_REDIRECT_URL when its host is not this machine or its port is taken.
 */
export async function listenForRedirect<T>(options: RedirectListenerOptions<T>): Promise<RedirectListener<T>> {
  const url = options.redirectUrl;
  if (url.protocol !== 'http:' || !LOOPBACK.has(url.hostname)) {
    throw new ConfigError(
      `TWITCH_REDIRECT_URL must be an http:// URL on this machine (localhost or 127.0.0.1) for eventsubd to receive the code: current value is ${url.origin}. On a server without a browser use --device; or run authorize where a browser is, or behind a tunnel whose local end is a loopback URL`,
      { setting: 'TWITCH_REDIRECT_URL' },
    );
  }
  const path = url.pathname || '/';
  let handled: Promise<CallbackResult<T>> | undefined;
  let settle!: (outcome: T) => void;
  let fail!: (err: unknown) => void;
  const outcome = new Promise<T>((resolve, reject) => {
    settle = resolve;
    fail = reject;
  });

  const server = createServer((req, res) => {
    const reqUrl = new URL(req.url ?? '/', url.origin);
    const answer = (status: number, page: string): void => {
      res.writeHead(status, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store', 'referrer-policy': 'no-referrer' });
      res.end(page);
    };
    if (req.method !== 'GET' || reqUrl.pathname !== path) return answer(404, pageOf('Not found', 'This is eventsubd waiting for Twitch\'s answer; nothing else is served here.'));
    if (!sameState(reqUrl.searchParams.get('state'), options.state)) {
      return answer(400, pageOf('Not the authorization eventsubd is waiting for', 'The state of this link does not match. Open the URL eventsubd printed, in full.'));
    }
    const first = handled === undefined;
    handled ??= options.onCallback(reqUrl.searchParams);
    handled.then(
      (r) => {
        answer(r.status, r.page);
        // The outcome closes the listener: only once the browser has its page.
        if (first) res.once('close', () => settle(r.outcome));
      },
      (err: unknown) => {
        answer(500, pageOf('eventsubd failed', 'See the terminal where eventsubd authorize runs.'));
        if (first) res.once('close', () => fail(err));
      },
    );
  });
  const servers = await listenLoopback(server, url);
  return {
    outcome,
    close: () => Promise.all(servers.map((s) => new Promise<void>((resolve) => {
      s.close(() => resolve());
      s.closeAllConnections();
    }))).then(() => undefined),
  };
}

/** A small HTML page; `text` is escaped. */
export function pageOf(title: string, text: string): string {
  const esc = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
  return `<!doctype html><html><head><meta charset="utf-8"><title>${esc(title)}</title></head><body><h1>${esc(title)}</h1><p>${esc(text)}</p></body></html>`;
}

function sameState(got: string | null, want: string): boolean {
  if (got === null) return false;
  const a = Buffer.from(got);
  const b = Buffer.from(want);
  return a.length === b.length && timingSafeEqual(a, b);
}

/**
 * `localhost` may resolve to 127.0.0.1 or ::1 in the browser: both are listened on (::1 when the machine has
 * it). An IP host is listened on as given. Nothing beyond loopback is ever bound.
 */
async function listenLoopback(first: Server, url: URL): Promise<Server[]> {
  const port = Number(url.port || 80);
  const hosts = url.hostname === 'localhost' ? ['127.0.0.1', '::1'] : [url.hostname.replace(/^\[|\]$/g, '')];
  const servers: Server[] = [];
  for (const [i, host] of hosts.entries()) {
    const server = i === 0 ? first : createServer(first.listeners('request')[0] as Parameters<typeof createServer>[0]);
    try {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, host, () => {
          server.off('error', reject);
          resolve();
        });
      });
      servers.push(server);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (i > 0 && (code === 'EADDRNOTAVAIL' || code === 'EAFNOSUPPORT')) continue; // no IPv6 loopback here
      await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
      throw new ConfigError(
        code === 'EADDRINUSE'
          ? `Cannot listen on ${host}:${port} for TWITCH_REDIRECT_URL (${url.origin}${url.pathname}): the port is in use (another program, or another eventsubd authorize)`
          : `Cannot listen on ${host}:${port} for TWITCH_REDIRECT_URL: ${code ?? (err as Error).message}`,
        { setting: 'TWITCH_REDIRECT_URL', cause: err },
      );
    }
  }
  return servers;
}
