/**
 * Issue 2, "Done when" 3 (compile time): nothing but an `AppToken` reaches the Helix EventSub client. Each
 * `@ts-expect-error` below must keep failing to compile; if the nominal type is ever weakened (the private
 * field dropped, `TokenSource` loosened to a structural type or a string), the error disappears and the
 * typecheck in `npm test` fails on the unused directive. The runtime test checks the same rule from the
 * other side: the only ways to an AppToken are the two factories, and the user-token one refuses.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { inspect } from 'node:util';
import { systemClock } from '../../src/lib/clock.js';
import { AppError } from '../../src/lib/errors.js';
import { HelixEventSubClient } from '../../src/twitch/helix.js';
import { OAuthClient } from '../../src/twitch/oauth.js';
import { AppToken } from '../../src/twitch/tokens.js';
import type { TokenSource } from '../../src/twitch/types.js';
import { startRig } from './helpers.js';

/** Everything public that an AppToken has, as a plain object. */
const lookalike = {
  clientId: 'abc',
  obtainedAt: 0,
  expiresAt: Number.MAX_SAFE_INTEGER,
  validatedAt: 0,
  origin: 'minted' as const,
  fingerprint: 'sha256:00000000',
  reveal: () => 'a-user-token',
  sameValueAs: () => false,
  revalidated: (): AppToken => {
    throw new Error('not an AppToken');
  },
  toJSON: () => ({}),
  toString: () => 'AppToken(sha256:00000000)',
  [inspect.custom]: () => 'AppToken(sha256:00000000)',
};

/** Type-level only: never called. Each directive marks a line that must not compile. */
export function compileTimeRefusals(source: TokenSource): void {
  // @ts-expect-error A plain object with every public member is still not an AppToken (private #value).
  const fromObject: AppToken = lookalike;
  // @ts-expect-error A string (say, a user token from TWITCH_ACCESS_TOKEN) is not an AppToken.
  const fromString: AppToken = 'a-user-token';

  const objectSource: TokenSource = {
    // @ts-expect-error TokenSource.getToken must resolve an AppToken, not a plain object.
    getToken: async () => lookalike,
    tokenRejected: async (rejected) => rejected,
  };
  const stringSource: TokenSource = {
    // @ts-expect-error TokenSource.getToken must resolve an AppToken, not a string.
    getToken: async () => 'a-user-token',
    tokenRejected: async (rejected) => rejected,
  };
  // @ts-expect-error tokenRejected() takes the AppToken that was rejected, not a string.
  void source.tokenRejected('a-user-token');

  const common = { apiUrl: 'http://127.0.0.1:1/helix', clientId: 'abc', clock: systemClock };
  // @ts-expect-error The Helix client's token source cannot hand out strings.
  void new HelixEventSubClient({ ...common, tokens: { getToken: async () => 'a-user-token', tokenRejected: async () => 'a-user-token' } });
  // @ts-expect-error The Helix client's token source cannot hand out plain objects.
  void new HelixEventSubClient({ ...common, tokens: { getToken: async () => lookalike, tokenRejected: async () => lookalike } });

  void [fromObject, fromString, objectSource, stringSource];
}

describe('AppToken (nominal) against the emulator', () => {
  it('is obtained from a client-credentials mint, refused from a user token validation, and never from a lookalike', async (t) => {
    const { emu, client } = await startRig(t);
    const oauth = new OAuthClient({ authUrl: emu.authUrl, clientId: client.clientId, clientSecret: client.clientSecret, clock: systemClock });

    const minted = await oauth.mint();
    assert.ok(minted instanceof AppToken);
    assert.equal(minted.clientId, client.clientId);
    assert.equal(JSON.stringify(minted).includes(minted.reveal()), false, 'the value never serialises');

    const userToken = emu.registerUserToken({ clientId: client.clientId, userId: '4242' });
    const answer = await oauth.validate(userToken);
    assert.equal(answer?.user_id, '4242');
    assert.throws(
      () => AppToken.fromValidation(userToken, answer, { expectedClientId: client.clientId, now: 0, origin: 'supplied' }),
      (err: unknown) => err instanceof AppError && err.code === 'USER_TOKEN_REFUSED',
    );

    const appAnswer = await oauth.validate(minted.reveal());
    const proven = AppToken.fromValidation(minted.reveal(), appAnswer!, { expectedClientId: client.clientId, now: 0, origin: 'supplied' });
    assert.ok(proven instanceof AppToken && proven.sameValueAs(minted));
    assert.equal((lookalike as unknown) instanceof AppToken, false, 'a lookalike object is not an AppToken at runtime either');
  });
});
