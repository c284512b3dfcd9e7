/**
 * The one way a message enters the journal, whatever brought it (a webhook request, a conduit's WebSocket shard):
 * de-duplicated by message id, appended durably, marked seen only once on disk, then handed to the callbacks.
 * Concurrent arrivals of one message id (a redelivery racing the first delivery, the same notification on two
 * shards) share one append.
 */
import type { Clock } from '../lib/clock.js';
import { silentLogger, type Logger } from '../lib/logger.js';
import type { Dedup } from './dedup.js';
import type { JournalEntry, JournalSink, ReceivedSubscription } from './types.js';

export type StoreResult = 'stored' | 'duplicate' | 'failed';

export interface IntakeDeps {
  journal: JournalSink;
  dedup: Dedup;
  clock: Clock;
  /** Called after a new revocation was journaled. Errors it throws are logged. */
  onRevocation?: ((subscription: ReceivedSubscription) => void) | undefined;
  /** Called after a new notification was journaled (the daemon watches `user.authorization.*`). Errors are logged. */
  onNotification?: ((subscription: ReceivedSubscription, event: unknown) => void) | undefined;
  logger?: Logger | undefined;
}

export class Intake {
  readonly #d: IntakeDeps;
  readonly #logger: Logger;
  /** message id → the append in flight for it (true = stored). */
  readonly #inFlight = new Map<string, Promise<boolean>>();

  constructor(deps: IntakeDeps) {
    this.#d = deps;
    this.#logger = deps.logger ?? silentLogger;
  }

  /** Messages being appended right now. */
  get pending(): number {
    return this.#inFlight.size;
  }

  /**
   * Appends unless the message id was seen or is being appended; marks it seen only once the append resolved;
   * then calls `onRevocation`/`onNotification` for a new message. The message id is the only key
   * (https://dev.twitch.tv/docs/eventsub/#handling-duplicate-events): a new id is a new message, even when its
   * event repeats an earlier one's `id` (a poll's progress, a reward update).
   */
  async store(entry: JournalEntry): Promise<StoreResult> {
    const id = entry.message_id;
    if (this.#d.dedup.has(id)) return 'duplicate';
    const pending = this.#inFlight.get(id);
    if (pending) return (await pending) ? 'duplicate' : 'failed';
    const append = this.#append(entry);
    this.#inFlight.set(id, append.then((r) => r !== 'failed'));
    const result = await append;
    this.#inFlight.delete(id);
    if (result !== 'stored') return result;
    if (entry.message_type === 'revocation') this.#notify(() => this.#d.onRevocation?.(entry.subscription), 'onRevocation');
    else this.#notify(() => this.#d.onNotification?.(entry.subscription, entry.event), 'onNotification');
    return 'stored';
  }

  /** `duplicate`: the journal's own shared de-duplication (Redis) says another replica stored this message id. */
  async #append(entry: JournalEntry): Promise<StoreResult> {
    let stored: { seq: number } | undefined;
    try {
      stored = await this.#d.journal.append(entry);
    } catch (err) {
      this.#logger.error('Journal append failed', { message_id: entry.message_id, transport: entry.transport, err });
      return 'failed';
    }
    this.#d.dedup.add(entry.message_id, this.#d.clock.now());
    return stored ? 'stored' : 'duplicate';
  }

  #notify(call: () => unknown, name: string): void {
    try {
      const r = call();
      if (r instanceof Promise) r.catch((err: unknown) => this.#logger.error(`${name} callback failed`, { err }));
    } catch (err) {
      this.#logger.error(`${name} callback failed`, { err });
    }
  }
}
