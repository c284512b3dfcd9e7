/** The queue of scripted faults (see `Fault` in types.ts) and the schema that checks them at the edges. */
import { z } from 'zod';
import type { Fault } from './types.js';

const match = z.object({ method: z.string().min(1).optional(), pathPrefix: z.string().startsWith('/').optional() }).optional();
const times = z.number().int().positive().optional();

/** A Fault as JSON (`POST /_emulator/faults`) or as passed to `injectFault`. */
export const FaultSchema = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('status'), status: z.number().int().min(200).max(599), body: z.unknown().optional(), match, times }),
  z.object({ kind: z.literal('latency'), ms: z.number().nonnegative(), match, times }),
  z.object({ kind: z.literal('reset'), match, times }),
  z.object({ kind: z.literal('drop-response'), match, times }),
  z.object({ kind: z.literal('expire-token'), match, times }),
]);

interface Queued {
  fault: Fault;
  left: number;
}

/** Faults in injection order; each keeps a count of the uses it has left. */
export class FaultQueue {
  #queue: Queued[] = [];

  /** @throws Error when the fault does not match FaultSchema. */
  add(fault: Fault): void {
    const parsed = FaultSchema.safeParse(fault);
    if (!parsed.success) throw new Error(`Invalid fault: ${parsed.error.issues[0]?.message ?? 'unknown'}`);
    this.#queue.push({ fault: parsed.data, left: parsed.data.times ?? 1 });
  }

  clear(): void {
    this.#queue = [];
  }

  /**
   * The first queued fault matching the request, consuming one of its uses. `path` has its aliases resolved;
   * a fault without `pathPrefix` matches Helix requests only.
   */
  take(method: string, path: string, isHelix: boolean): Fault | undefined {
    const index = this.#queue.findIndex(({ fault }) => matches(fault, method, path, isHelix));
    const entry = this.#queue[index];
    if (!entry) return undefined;
    entry.left -= 1;
    if (entry.left <= 0) this.#queue.splice(index, 1);
    return entry.fault;
  }
}

function matches(fault: Fault, method: string, path: string, isHelix: boolean): boolean {
  const m = fault.match;
  if (m?.method && m.method.toUpperCase() !== method.toUpperCase()) return false;
  return m?.pathPrefix ? path.startsWith(m.pathPrefix) : isHelix;
}
