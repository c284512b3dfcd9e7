import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseSubscriptionsFile } from '../../src/config/subscriptions-file.js';
import { AppError } from '../../src/lib/errors.js';
import { createJsonLogger, Redactor } from '../../src/lib/logger.js';
import { syncSubscriptions } from '../../src/subscriptions/sync.js';
import { CALLBACK, CONDUIT, FakeEventSubApi, OLD_CONDUIT, OTHER_CALLBACK, SECRET, sub } from './fake-api.js';

const FILE = `
subscriptions:
  - type: stream.online
    version: 1
    condition: { broadcaster_user_id: 12345 }
  - type: channel.follow
    version: "2"
    condition: { broadcaster_user_id: "12345", moderator_user_id: "12345" }
  - type: user.update
    version: "1"
    condition: { user_id: "777" }
`;
const desired = parseSubscriptionsFile(FILE, { fileName: 'subs.yaml', callbackUrl: CALLBACK, secret: SECRET });

describe('syncSubscriptions()', () => {
  it('converges, and a second sync of the unchanged state sends zero writes', async () => {
    const foreign = sub({ id: 'foreign', callback: OTHER_CALLBACK });
    const stray = sub({ id: 'stray', type: 'stream.offline' });
    const broken = sub({ id: 'broken', type: 'user.update', condition: { user_id: '777' }, status: 'notification_failures_exceeded' });
    const api = new FakeEventSubApi([foreign, stray, broken]);

    const first = await syncSubscriptions({ api, desired, callbackUrl: CALLBACK, prune: true, dryRun: false });
    assert.equal(first.listPages, 1);
    assert.equal(first.result?.created.length, 2);
    assert.equal(first.result?.recreated, 1);
    assert.equal(first.result?.deleted, 1);
    assert.equal(api.writes, 5);
    assert.deepEqual(
      api.subs.map((s) => s.id).filter((id) => !id.startsWith('new-')),
      ['foreign'],
      'the foreign subscription survives prune; stray and broken are gone',
    );
    // What the sync reports as left is what Twitch now has, without another listing.
    assert.deepEqual(first.after.subscriptions.map((s) => s.id).sort(), api.subs.map((s) => s.id).sort());
    assert.equal(first.after.totalCost, api.subs.reduce((n, s) => n + s.cost, 0));
    assert.equal(api.lists, 1);

    const writesBefore = api.writes;
    const second = await syncSubscriptions({ api, desired, callbackUrl: CALLBACK, prune: true, dryRun: false });
    assert.equal(api.writes, writesBefore, 'no create or delete the second time');
    assert.equal(second.plan.keep.length, 3);
    assert.deepEqual(second.result, { created: [], adopted: [], recreated: 0, deleted: 0, migrated: 0, failed: [], removed: [], added: [] });
    assert.equal(api.lists, 2, 'one list per sync');
  });

  it('on a dry run plans but sends zero writes and returns no result', async () => {
    const api = new FakeEventSubApi([sub({ id: 'stray', type: 'stream.offline' })]);
    const outcome = await syncSubscriptions({ api, desired, callbackUrl: CALLBACK, prune: true, dryRun: true });
    assert.equal(api.writes, 0);
    assert.equal(outcome.result, undefined);
    assert.equal(outcome.plan.create.length, 3);
    assert.equal(outcome.plan.delete.length, 1);
  });

  it('leaves undeclared owned subscriptions alone without prune', async () => {
    const api = new FakeEventSubApi([sub({ id: 'stray', type: 'stream.offline' })]);
    const outcome = await syncSubscriptions({ api, desired: [], callbackUrl: CALLBACK, prune: false, dryRun: false });
    assert.equal(api.writes, 0);
    assert.deepEqual(outcome.plan.unmanaged.map((s) => s.id), ['stray']);
  });

  it('logs the plan and the outcome without the secret', async () => {
    const lines: string[] = [];
    const redactor = new Redactor();
    const logger = createJsonLogger({ sink: { write: (l) => lines.push(l) }, level: 'debug', redactor, now: () => 0 });
    const api = new FakeEventSubApi([sub({ id: 'rev', status: 'authorization_revoked' })]);
    await syncSubscriptions({ api, desired, callbackUrl: CALLBACK, prune: true, dryRun: false, logger });
    const text = lines.join('');
    assert.ok(!text.includes(SECRET));
    assert.match(text, /"msg":"Subscription plan".*"create":2.*"blocked":1/);
    assert.match(text, /"msg":"Declared subscription is disabled by Twitch.*"reason":"authorization_revoked"/);
  });
});

describe('syncSubscriptions() in conduit mode', () => {
  const TARGET = { method: 'conduit', conduit_id: CONDUIT } as const;
  const onConduit = parseSubscriptionsFile(FILE, { fileName: 'subs.yaml', target: TARGET, transport: 'conduit' });
  const ownership = { callbackUrl: CALLBACK, conduitIds: [CONDUIT, OLD_CONDUIT] };

  it('migrates every webhook to the conduit with the implicit authorization subscriptions, then converges to zero writes', async () => {
    const first = await syncSubscriptions({ api: new FakeEventSubApi(), desired, callbackUrl: CALLBACK, clientId: 'client-1', prune: true, dryRun: false });
    assert.equal(first.result?.created.length, 5, 'three declared + grant and revoke, as webhooks');
    const api = new FakeEventSubApi(first.after.subscriptions.map((s) => ({ ...s })));
    const foreign = sub({ id: 'foreign', callback: OTHER_CALLBACK });
    api.subs.push(foreign);

    const moved = await syncSubscriptions({ api, desired: onConduit, ownership, clientId: 'client-1', prune: false, dryRun: false });
    assert.equal(moved.plan.migrate.length, 5);
    assert.deepEqual([moved.result?.created.length, moved.result?.migrated, moved.result?.failed], [5, 5, []]);
    assert.deepEqual(
      api.subs.map((s) => `${s.type} ${s.transport.method}`).sort(),
      [
        'channel.follow conduit',
        'stream.online conduit',
        'stream.online webhook',
        'user.authorization.grant conduit',
        'user.authorization.revoke conduit',
        'user.update conduit',
      ],
    );
    assert.ok(api.subs.includes(foreign), 'the foreign webhook stays');
    const lastCreate = Math.max(...api.calls.map((c, i) => (c.startsWith('create') ? i : -1)));
    const firstDelete = api.calls.findIndex((c) => c.startsWith('delete'));
    assert.ok(firstDelete > lastCreate, `every create before any migration delete: ${api.calls.join(', ')}`);

    const writes = api.writes;
    const again = await syncSubscriptions({ api, desired: onConduit, ownership, clientId: 'client-1', prune: true, dryRun: false });
    assert.equal(api.writes, writes, 'no write the second time');
    assert.equal(again.plan.keep.length, 5);
  });

  it('a create Twitch refuses for a missing grant waits for the user, and its old webhook keeps delivering', async () => {
    const hook = sub({ id: 'hook', type: 'channel.follow', version: '2', condition: { broadcaster_user_id: '12345', moderator_user_id: '12345' } });
    const api = new FakeEventSubApi([hook], {
      failCreate: (b) => (b.type === 'channel.follow' ? new AppError('AUTHORIZATION_MISSING', 'subscription missing proper authorization') : undefined),
    });
    const outcome = await syncSubscriptions({ api, desired: onConduit, ownership, prune: true, dryRun: false });
    assert.deepEqual(outcome.result?.failed, [], 'a missing grant is not a failure');
    assert.deepEqual(outcome.needsAuthorization.map((p) => p.userId), ['12345']);
    assert.ok(api.subs.includes(hook), 'the old webhook is not deleted');
    assert.equal(outcome.result?.migrated, 0);
  });
});
