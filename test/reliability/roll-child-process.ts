/**
 * The parent's side of fixtures/roll-child.ts (crash-points.test.ts, journal roll-over crashes): one child
 * process appending to a Journal, its markers and acknowledgements as parsed from its stdout, and what a
 * kill left in the journal directory.
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROLL_CHILD = fileURLToPath(new URL('./fixtures/roll-child.ts', import.meta.url));

export interface RollChildOptions {
  /** The journal directory. */
  dir: string;
  /** Prefix of the child's message ids (`<tag>-<n>`). */
  tag: string;
  /** Appends in flight at once. */
  concurrency: number;
  segmentMaxBytes: number;
}

/** One roll-child process: it loads at once and opens the journal when `go()` is called. */
export class RollChild {
  readonly proc: ChildProcessWithoutNullStreams;
  readonly tag: string;
  out = '';
  err = '';
  /** Settles once the child has loaded its modules (rejects if it exits first). */
  readonly loaded: Promise<void>;
  /** Settles once the process has exited and its output is fully read. */
  readonly closed: Promise<void>;
  #onData: (() => void) | undefined;

  constructor(options: RollChildOptions) {
    this.tag = options.tag;
    const args = [options.dir, options.tag, String(options.concurrency), String(options.segmentMaxBytes)];
    this.proc = spawn(process.execPath, ['--import', 'tsx', ROLL_CHILD, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
    this.proc.stderr.setEncoding('utf8').on('data', (d: string) => (this.err += d));
    this.proc.stdout.setEncoding('utf8').on('data', (d: string) => {
      this.out += d;
      this.#onData?.();
    });
    this.closed = new Promise((resolve) => this.proc.once('close', () => resolve()));
    this.loaded = this.until(() => this.out.startsWith('LOADED\n'), 'LOADED');
    this.loaded.catch(() => undefined); // a spare child killed unused at the end never loads: not an error
  }

  /** Resolves once `check()` holds (looked at after each chunk of output); rejects if the child exits first or after 20 s. */
  until(check: () => boolean, what: string): Promise<void> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`roll child ${this.tag}: no ${what} within 20 s; stderr: ${this.err}`)), 20_000);
      const done = (): void => {
        clearTimeout(timer);
        this.#onData = undefined;
        resolve();
      };
      if (check()) return done();
      this.#onData = () => {
        if (check()) done();
      };
      void this.closed.then(() => {
        clearTimeout(timer);
        reject(new Error(`roll child ${this.tag} exited before ${what}; stderr: ${this.err}`));
      });
    });
  }

  /** Lets the child open the journal and start appending. */
  go(): void {
    this.proc.stdin.write('go\n');
  }

  /** `ACK` lines seen so far (a line counts once its newline has arrived). */
  acks(): Array<{ seq: number; id: string }> {
    const out: Array<{ seq: number; id: string }> = [];
    for (const m of this.out.matchAll(/^ACK (\d+) (\S+)$/gm)) out.push({ seq: Number(m[1]), id: m[2]! });
    return out;
  }

  /** The head the child found when it opened the journal. */
  openedHead(): number | undefined {
    const m = /^OPEN (\d+)$/m.exec(this.out);
    return m ? Number(m[1]) : undefined;
  }

  /** The segment being rolled when the child died (a ROLL-BEGIN without its ROLL-END), if any. */
  rollInProgress(): string | undefined {
    let open: string | undefined;
    for (const m of this.out.matchAll(/^ROLL-(BEGIN|END) (\S+)$/gm)) open = m[1] === 'BEGIN' ? m[2] : undefined;
    return open;
  }

  /** Rolls begun so far. */
  rolls(): number {
    return [...this.out.matchAll(/^ROLL-BEGIN /gm)].length;
  }
}

/** What a crash left in the journal directory, before anything reopens it. */
export function inspectSegments(dir: string): { segments: number; emptyLast: boolean; tornTail: boolean } {
  const names = readdirSync(dir)
    .filter((n) => /^\d{20}\.jsonl$/.test(n))
    .sort();
  const last = names.at(-1);
  if (!last) return { segments: 0, emptyLast: false, tornTail: false };
  const path = join(dir, last);
  const size = statSync(path).size;
  const text = size > 0 ? readFileSync(path, 'utf8') : '';
  return { segments: names.length, emptyLast: size === 0, tornTail: size > 0 && !text.endsWith('\n') };
}
