/** The built CLI: `trigger` with its target and secret from ./.env, a twitch-cli short name and --count. */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { test } from 'node:test';
import { verifySignature } from '../../src/twitch/signature.js';
import { runCli, tempDir } from '../helpers/cli.js';

const SECRET = 'e2e-trigger-secret-0123';

test('eventsubd trigger cheer --count 3, with EVENTSUBD_LISTEN and EVENTSUB_SECRET from .env: 3 signed messages, exit 0', async (t) => {
  const seen: Array<{ path: string; id: string; type: string; signed: boolean }> = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const h = req.headers;
      const id = String(h['twitch-eventsub-message-id']);
      const signed = verifySignature([SECRET], id, String(h['twitch-eventsub-message-timestamp']), Buffer.concat(chunks), String(h['twitch-eventsub-message-signature']));
      seen.push({ path: req.url ?? '', id, type: String(h['twitch-eventsub-subscription-type']), signed });
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise<void>((resolve) => server.close(() => resolve())));
  const dir = tempDir();
  t.after(dir.cleanup);
  const port = (server.address() as AddressInfo).port;
  writeFileSync(join(dir.path, '.env'), `EVENTSUBD_LISTEN=127.0.0.1:${port}\nEVENTSUB_SECRET=${SECRET}\n`);
  const res = await runCli(['trigger', 'cheer', '--count', '3'], { cwd: dir.path });
  assert.equal(res.code, 0, res.stderr);
  assert.equal(seen.length, 3);
  assert.deepEqual([...new Set(seen.map((s) => s.path))], ['/eventsub']);
  assert.ok(seen.every((s) => s.signed && s.type === 'channel.cheer'));
  assert.equal(new Set(seen.map((s) => s.id)).size, 3);
  assert.match(res.stdout, /^3 notification channel\.cheer v1 -> http:\/\/127\.0\.0\.1:\d+\/eventsub: 3 answered 2xx, 0 failed/);
  assert.ok(!res.stdout.includes(SECRET) && !res.stderr.includes(SECRET));
});
