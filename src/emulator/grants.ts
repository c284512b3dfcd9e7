/**
 * What the emulated Twitch remembers of user authorization (https://dev.twitch.tv/docs/authentication/):
 * the grants (which user authorized which client with which scopes; separate grants add up, as
 * Get User Authorization shows them, https://dev.twitch.tv/docs/api/reference/#get-user-authorization),
 * the single-use authorization codes of the code flow, the device codes of the device flow, and who consents
 * next at the authorize page (set through the control API: the emulator has no browser).
 */
import type { Clock } from '../lib/clock.js';
import { randomAlnum } from './ids.js';

export interface Grant {
  readonly userId: string;
  login: string;
  readonly scopes: Set<string>;
}

/** The user (or the refusal) the next visit of the authorize page answers with. */
export type Consent = { userId: string; login: string; scopes?: readonly string[] | undefined } | 'deny';

interface CodeRecord {
  clientId: string;
  redirectUri: string;
  userId: string;
  login: string;
  scopes: string[];
  expiresAt: number;
  used: boolean;
}

export interface DeviceRecord {
  readonly clientId: string;
  readonly deviceCode: string;
  readonly userCode: string;
  readonly scopes: string[];
  readonly expiresAt: number;
  decision: { userId: string; login: string } | 'deny' | undefined;
  used: boolean;
}

/** Authorization codes live this long: Twitch does not document it; ten minutes is the common practice. */
export const CODE_TTL_MS = 10 * 60_000;
/** Device codes: Twitch's example answer, 30 minutes. */
export const DEVICE_CODE_TTL_S = 1800;
/** Seconds between polls that Twitch's example answer asks for. */
export const DEVICE_POLL_INTERVAL_S = 5;

/** A grant as the state file keeps it. */
export interface GrantRecord {
  clientId: string;
  userId: string;
  login: string;
  scopes: string[];
}

export class Grants {
  readonly #clock: Clock;
  /** Called after every change of the grants or consents (the state file's cue). */
  onChange: () => void = () => undefined;
  /** clientId → userId → grant. */
  readonly #grants = new Map<string, Map<string, Grant>>();
  readonly #codes = new Map<string, CodeRecord>();
  readonly #devices = new Map<string, DeviceRecord>();
  /** clientId → who consents at the next authorize visit (kept until changed: a browser may come back). */
  readonly #consent = new Map<string, Consent>();

  constructor(clock: Clock) {
    this.#clock = clock;
  }

  /** The grant of `userId` to `clientId`, if any. Do not modify. */
  grantOf(clientId: string, userId: string): Grant | undefined {
    return this.#grants.get(clientId)?.get(userId);
  }

  /** Adds scopes to a user's grant (creating it). Returns true when the user had no grant before. */
  grant(clientId: string, user: { userId: string; login: string }, scopes: readonly string[]): boolean {
    let users = this.#grants.get(clientId);
    if (!users) this.#grants.set(clientId, (users = new Map<string, Grant>()));
    const existing = users.get(user.userId);
    this.onChange();
    if (existing) {
      existing.login = user.login;
      for (const s of scopes) existing.scopes.add(s);
      return false;
    }
    users.set(user.userId, { userId: user.userId, login: user.login, scopes: new Set(scopes) });
    return true;
  }

  /** Every grant to `clientId`, in the order given. */
  list(clientId: string): Grant[] {
    return [...(this.#grants.get(clientId)?.values() ?? [])];
  }

  /** Withdraws a user's grant (the user disconnected the app). Returns the grant withdrawn. */
  withdraw(clientId: string, userId: string): Grant | undefined {
    const users = this.#grants.get(clientId);
    const grant = users?.get(userId);
    users?.delete(userId);
    if (grant) this.onChange();
    return grant;
  }

  /** Every grant to every client, for the state file. */
  records(): GrantRecord[] {
    return [...this.#grants].flatMap(([clientId, users]) =>
      [...users.values()].map((g) => ({ clientId, userId: g.userId, login: g.login, scopes: [...g.scopes].sort() })),
    );
  }

  /** Every consent set, for the state file. */
  consents(): Array<{ clientId: string; consent: Consent }> {
    return [...this.#consent].map(([clientId, consent]) => ({ clientId, consent }));
  }

  setConsent(clientId: string, consent: Consent | undefined): void {
    if (consent === undefined) this.#consent.delete(clientId);
    else this.#consent.set(clientId, consent);
    this.onChange();
  }

  consentOf(clientId: string): Consent | undefined {
    return this.#consent.get(clientId);
  }

  /** A new single-use code for a consent given at the authorize page. */
  issueCode(init: Omit<CodeRecord, 'expiresAt' | 'used'>): string {
    const code = randomAlnum(30);
    this.#codes.set(code, { ...init, expiresAt: this.#clock.now() + CODE_TTL_MS, used: false });
    return code;
  }

  /** Consumes a code: the record when it is known, unused, unexpired and of this client; else why not. */
  redeemCode(code: string, clientId: string): CodeRecord | 'invalid' {
    const record = this.#codes.get(code);
    if (!record || record.used || record.clientId !== clientId || this.#clock.now() >= record.expiresAt) return 'invalid';
    record.used = true;
    return record;
  }

  startDevice(clientId: string, scopes: string[]): DeviceRecord {
    const record: DeviceRecord = {
      clientId,
      deviceCode: randomAlnum(40),
      userCode: randomAlnum(8).toUpperCase(),
      scopes,
      expiresAt: this.#clock.now() + DEVICE_CODE_TTL_S * 1000,
      decision: undefined,
      used: false,
    };
    this.#devices.set(record.deviceCode, record);
    return record;
  }

  /** The device flow started with `userCode` and still open, for the user's decision. */
  deviceByUserCode(userCode: string): DeviceRecord | undefined {
    for (const d of this.#devices.values()) if (d.userCode === userCode.toUpperCase() && !d.used && this.#clock.now() < d.expiresAt) return d;
    return undefined;
  }

  /** A poll: the record, or 'invalid' for an unknown, expired or already used device code. */
  device(deviceCode: string, clientId: string): DeviceRecord | 'invalid' {
    const record = this.#devices.get(deviceCode);
    if (!record || record.used || record.clientId !== clientId || this.#clock.now() >= record.expiresAt) return 'invalid';
    return record;
  }
}
