/**
 * Issue #13: a receiver that cannot bind says which setting to change (EVENTSUBD_LISTEN) and why, with exit 78.
 * EADDRINUSE is in server.test.ts; EACCES needs a non-root process, so its wording is checked on the errno.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { AppError } from '../../src/lib/errors.js';
import { listenErrorMessage, startReceiver } from '../../src/receiver/server.js';
import { makeHandler } from './helpers.js';

const errno = (code: string): NodeJS.ErrnoException => Object.assign(new Error(code), { code });

test('startReceiver() on an address this machine does not have: LISTEN_FAILED naming EVENTSUBD_LISTEN, exit 78', async () => {
  // 192.0.2.1 is TEST-NET-1 (RFC 5737): on no interface, so bind fails locally with EADDRNOTAVAIL; nothing is sent.
  const { handler } = makeHandler();
  await assert.rejects(startReceiver({ host: '192.0.2.1', port: 0, handler }), (err: AppError) => {
    assert.equal(err.code, 'LISTEN_FAILED');
    assert.equal(err.exitCode, 78);
    assert.equal(
      err.message,
      'Cannot listen on 192.0.2.1:0 (EVENTSUBD_LISTEN): this machine has no such address (EADDRNOTAVAIL): use 127.0.0.1, 0.0.0.0 or an address of one of its interfaces',
    );
    return true;
  });
});

test('listenErrorMessage() explains a privileged port, an unresolvable host and an unknown errno', () => {
  assert.equal(
    listenErrorMessage(errno('EACCES'), { host: '0.0.0.0', port: 443 }),
    'Cannot listen on 0.0.0.0:443 (EVENTSUBD_LISTEN): permission denied (EACCES): port 443 is privileged (below 1024); use a port from 1024 behind a reverse proxy, or grant CAP_NET_BIND_SERVICE',
  );
  assert.equal(
    listenErrorMessage(errno('EACCES'), { host: '::1', port: 8080 }),
    'Cannot listen on [::1]:8080 (EVENTSUBD_LISTEN): permission denied (EACCES): set EVENTSUBD_LISTEN to another address or port',
  );
  assert.match(listenErrorMessage(errno('ENOTFOUND'), { host: 'localhst', port: 8080 }), /^Cannot listen on localhst:8080 \(EVENTSUBD_LISTEN\): the host name does not resolve \(ENOTFOUND\)/);
  assert.equal(listenErrorMessage(errno('EMFILE'), { host: '127.0.0.1', port: 1 }), 'Cannot listen on 127.0.0.1:1 (EVENTSUBD_LISTEN): EMFILE');
});
