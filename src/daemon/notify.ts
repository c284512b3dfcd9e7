/**
 * systemd's notify protocol (sd_notify): `READY=1`, `STATUS=...`, `WATCHDOG=1`, `STOPPING=1` as datagrams to
 * the unix socket in `NOTIFY_SOCKET`. Node has no unix datagram sockets, and `systemd-notify` either blocks on a
 * barrier only real systemd answers or, with `--no-block`, lets systemd drop messages from an exited sender
 * (as seen with systemd 252). So the daemon sends from its own process with the `unix-dgram` addon.
 */
import { createRequire } from 'node:module';
import type { Logger } from '../lib/logger.js';

export interface Notifier {
  /** Sends `KEY=VALUE` lines; never throws (a lost notification must not take the daemon down). */
  notify(state: Record<string, string>): Promise<void>;
  close(): void;
}

interface UnixDgramSocket {
  send(buf: Buffer, offset: number, length: number, path: string, cb?: (err?: Error) => void): void;
  on(event: 'error', cb: (err: Error) => void): void;
  close(): void;
}

export const noopNotifier: Notifier = { notify: async () => {}, close() {} };

/** A notifier for `socketPath` (the value of NOTIFY_SOCKET), or a no-op one when it is unset. */
export function createNotifier(socketPath: string | undefined, logger: Logger): Notifier {
  if (!socketPath) return noopNotifier;
  if (socketPath.startsWith('@')) {
    // The addon copies sun_path with strncpy, which cannot carry an abstract name's leading NUL.
    logger.warn('NOTIFY_SOCKET is an abstract socket, which eventsubd cannot address: systemd notifications are off', {
      code: 'NOTIFY_UNSUPPORTED',
    });
    return noopNotifier;
  }
  let socket: UnixDgramSocket;
  try {
    const require = createRequire(import.meta.url);
    const dgram = require('unix-dgram') as { createSocket(type: 'unix_dgram'): UnixDgramSocket };
    socket = dgram.createSocket('unix_dgram');
  } catch (err) {
    logger.warn('The unix-dgram addon is not available: systemd notifications are off', { error: err as Error });
    return noopNotifier;
  }
  socket.on('error', (err) => logger.warn('systemd notification failed', { error: err }));
  let closed = false;
  return {
    notify(state) {
      if (closed) return Promise.resolve();
      const text = Object.entries(state)
        .map(([k, v]) => `${k}=${v.replace(/\n/g, ' ')}`)
        .join('\n');
      const buf = Buffer.from(text);
      return new Promise((resolve) => {
        try {
          socket.send(buf, 0, buf.length, socketPath, (err) => {
            if (err) logger.warn('systemd notification failed', { error: err });
            resolve();
          });
        } catch (err) {
          logger.warn('systemd notification failed', { error: err as Error });
          resolve();
        }
      });
    },
    close() {
      if (closed) return;
      closed = true;
      socket.close();
    },
  };
}
