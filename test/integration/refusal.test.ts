/**
 * Issue 2, "Done when" 3: a supplied TWITCH_ACCESS_TOKEN that is a user token, or an app token of another
 * client, is refused before any Helix request leaves — the emulator's Helix counter does not move.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { AppError } from '../../src/lib/errors.js';
import { body, mintRaw, startRig, validateStatus } from './helpers.js';

function hasCode(code: string): (err: unknown) => boolean {
  return (err) => {
    assert.ok(err instanceof AppError, `expected an AppError, got ${String(err)}`);
    assert.equal(err.code, code);
    return true;
  };
}

describe('HelixEventSubClient against the emulator: refused tokens', () => {
  it('a registered user token in TWITCH_ACCESS_TOKEN rejects list, create and delete with USER_TOKEN_REFUSED and zero Helix requests', async (t) => {
    let userToken = '';
    const { emu, stack } = await startRig(t, {
      settings: (e, client) => {
        userToken = e.registerUserToken({ clientId: client.clientId, userId: '4242', scopes: ['channel:read:subscriptions'] });
        return { TWITCH_ACCESS_TOKEN: userToken };
      },
    });

    await assert.rejects(stack.helix.list({}), hasCode('USER_TOKEN_REFUSED'));
    await assert.rejects(stack.helix.create(body('4242')), hasCode('USER_TOKEN_REFUSED'));
    await assert.rejects(stack.helix.delete('00000000-0000-0000-0000-000000000000'), hasCode('USER_TOKEN_REFUSED'));

    assert.equal(emu.stats.helix.total, 0, 'no Helix request was sent');
    assert.equal(emu.stats.mints, 0, 'a supplied token is never replaced by a mint, even with a client secret set');
    assert.equal(emu.stats.validations, 1, 'one /validate proved it a user token; the refusal is remembered');
    assert.equal(await validateStatus(emu, userToken), 200, 'the user token itself is valid at Twitch');
    assert.equal(emu.subscriptions().length, 0);
    assert.equal(stack.tokens.status().state, 'refused');
    assert.equal(stack.tokens.status().lastError?.code, 'USER_TOKEN_REFUSED');
  });

  it("another client's app token in TWITCH_ACCESS_TOKEN rejects list and create with TOKEN_CLIENT_MISMATCH and zero Helix requests", async (t) => {
    let foreignToken = '';
    const { emu, stack } = await startRig(t, {
      settings: async (e) => {
        foreignToken = await mintRaw(e, e.addClient());
        return { TWITCH_ACCESS_TOKEN: foreignToken };
      },
    });
    emu.resetStats();

    await assert.rejects(stack.helix.list({}), hasCode('TOKEN_CLIENT_MISMATCH'));
    await assert.rejects(stack.helix.create(body('4242')), hasCode('TOKEN_CLIENT_MISMATCH'));

    assert.equal(emu.stats.helix.total, 0, 'no Helix request was sent');
    assert.equal(emu.stats.mints, 0, 'no mint replaces a supplied token');
    assert.equal(emu.stats.validations, 1);
    assert.equal(await validateStatus(emu, foreignToken), 200, 'the foreign app token itself is valid at Twitch');
    assert.equal(stack.tokens.status().lastError?.code, 'TOKEN_CLIENT_MISMATCH');
  });
});
