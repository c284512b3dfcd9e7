/**
 * The one way a message enters the journal, whatever brought it (a webhook request, a conduit's WebSocket shard):
 * de-duplicated by message id, appended durably, marked seen only once on disk, then handed to the callbacks.
 * Concurrent arrivals of one message id (a redelivery racing the first delivery, the same notification on two
 * shards) share one append.
 */
import type { Clock } from '../lib/clock.js';
import { silentLogger, type Logger } from '../lib/logger.js';
import type { Dedup } from './dedup.js';
import type { JournalEntry, JournalSink, PreparedNotification, ReceivedSubscription } from './types.js';

export type StoreResult = 'stored' | 'duplicate' | 'failed';

export interface IntakeDeps {
  journal: JournalSink;
  dedup: Dedup;
  clock: Clock;
  /** Called after a new revocation was journaled. Errors it throws are logged. */
  onRevocation?: ((subscription: ReceivedSubscription) => void) | undefined;
  /**
   * Called after a new notification was journaled (the daemon watches `user.authorization.*`); `event()` gives
   * its event (parsed on demand: the fast path journals the raw bytes). Errors are logged.
   */
  onNotification?: ((subscription: ReceivedSubscription, event: () => unknown) => void) | undefined;
  logger?: Logger | undefined;
}

/** What an append in flight for a message id ends as: `stored`, `duplicate` (the store had it) or `failed`. */
type Outcome = Promise<StoreResult>;

export class Intake {
  readonly #d: IntakeDeps;
  readonly #logger: Logger;
  /** message id → the append in flight for it. */
  readonly #inFlight = new Map<string, Outcome>();
  readonly #prepared: boolean;

  constructor(deps: IntakeDeps) {
    this.#d = deps;
    this.#logger = deps.logger ?? silentLogger;
    this.#prepared = typeof deps.journal.appendPrepared === 'function';
  }

  /** Messages being appended right now. */
  get pending(): number {
    return this.#inFlight.size;
  }

  /** True when the journal takes prepared records (`storePrepared`): the receiver's fast path is open. */
  get takesPrepared(): boolean {
    return this.#prepared;
  }

  /**
   * Appends unless the message id was seen or is being appended; marks it seen only once the append resolved;
   * then calls `onRevocation`/`onNotification` for a new message. The message id is the only key
   * (https://dev.twitch.tv/docs/eventsub/#handling-duplicate-events): a new id is a new message, even when its
   * event repeats an earlier one's `id` (a poll's progress, a reward update).
   */
  store(entry: JournalEntry): Promise<StoreResult> {
    const seen = this.#seen(entry.message_id);
    if (seen !== undefined) return seen;
    let append: Promise<{ seq: number } | undefined>;
    try {
      append = this.#d.journal.append(entry);
    } catch (err) {
      append = Promise.reject(err instanceof Error ? err : new Error(String(err)));
    }
    return this.#track(entry.message_id, entry.transport, append, entry);
  }

  /** `store()` for a notification the fast path serialised; only when `takesPrepared`. */
  storePrepared(p: PreparedNotification): Promise<StoreResult> {
    const seen = this.#seen(p.message_id);
    if (seen !== undefined) return seen;
    return this.#track(p.message_id, 'webhook', this.#d.journal.appendPrepared!(p.tail, p.received_at), p);
  }

  /** The answer for a message id already stored or being stored, else undefined. */
  #seen(id: string): Outcome | undefined {
    if (this.#d.dedup.has(id)) return DUPLICATE;
    const pending = this.#inFlight.get(id);
    return pending?.then(sharedOutcome);
  }

  /** `duplicate` from the append: the journal's own shared de-duplication (Redis) says another replica stored it. */
  #track(
    id: string,
    transport: string | undefined,
    append: Promise<{ seq: number } | number | undefined>,
    message: JournalEntry | PreparedNotification,
  ): Outcome {
    const outcome = append.then(
      (stored): StoreResult => {
        this.#d.dedup.add(id, this.#d.clock.now());
        this.#inFlight.delete(id);
        if (stored === undefined) return 'duplicate';
        this.#notify(message);
        return 'stored';
      },
      (err: unknown): StoreResult => {
        this.#inFlight.delete(id);
        this.#logger.error('Journal append failed', { message_id: id, transport, err });
        return 'failed';
      },
    );
    this.#inFlight.set(id, outcome);
    return outcome;
  }

  #notify(message: JournalEntry | PreparedNotification): void {
    const revocation = !('tail' in message) && message.message_type === 'revocation';
    const name = revocation ? 'onRevocation' : 'onNotification';
    try {
      let r: unknown;
      if (revocation) r = this.#d.onRevocation?.(message.subscription);
      else if ('tail' in message) r = this.#d.onNotification?.(message.subscription, () => message.event());
      else if (this.#d.onNotification) r = this.#d.onNotification(message.subscription, () => message.event);
      if (r instanceof Promise) r.catch((err: unknown) => this.#logger.error(`${name} callback failed`, { err }));
    } catch (err) {
      this.#logger.error(`${name} callback failed`, { err });
    }
  }
}

const DUPLICATE: Outcome = Promise.resolve('duplicate');
/** What a second arrival of a message id answers once the first one's append ended. */
const sharedOutcome = (r: StoreResult): StoreResult => (r === 'failed' ? 'failed' : 'duplicate');
