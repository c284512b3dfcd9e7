/**
 * The only way commands print. Human mode writes lines to stdout; `--json` mode writes one JSON document
 * (or one object per line for streams). Diagnostics, progress and errors go to stderr. Every string passes
 * through the redactor, so a secret cannot reach the terminal even by mistake.
 */
import type { Redactor } from '../lib/logger.js';
import type { AppError } from '../lib/errors.js';

export interface TextSink {
  write(chunk: string): unknown;
  isTTY?: boolean;
}

export class Output {
  readonly json: boolean;
  readonly #stdout: TextSink;
  readonly #stderr: TextSink;
  readonly #redactor: Redactor;
  #progressShown = false;

  constructor(init: { stdout: TextSink; stderr: TextSink; json: boolean; redactor: Redactor }) {
    this.#stdout = init.stdout;
    this.#stderr = init.stderr;
    this.json = init.json;
    this.#redactor = init.redactor;
  }

  /** A command's result: `human` lines in text mode, `data` as one JSON document in --json mode. */
  result(data: unknown, human: () => string[]): void {
    if (this.json) this.#out(JSON.stringify(data, null, 2) + '\n');
    else for (const line of human()) this.#out(line + '\n');
  }

  /** One record of a stream (events tail --follow): a JSON line, or a human line. */
  record(data: unknown, human: () => string): void {
    this.#out((this.json ? JSON.stringify(data) : human()) + '\n');
  }

  /** A diagnostic line on stderr (never mixed into --json stdout). */
  note(line: string): void {
    this.#clearProgress();
    this.#stderr.write(this.#redactor.redact(line) + '\n');
  }

  /** Progress on stderr, only when stderr is a terminal. */
  progress(label: string, done: number, total: number): void {
    if (!this.#stderr.isTTY || total === 0) return;
    const pct = Math.floor((done / total) * 100);
    this.#stderr.write(`\r\x1b[2K${label} ${done}/${total} (${pct}%)`);
    this.#progressShown = true;
    if (done >= total) this.#clearProgress();
  }

  /** The one-line error that ends a command. */
  error(err: AppError): void {
    this.#clearProgress();
    const line = this.json
      ? JSON.stringify({ error: { code: err.code, message: err.message } })
      : `eventsubd: ${err.code}: ${err.message}`;
    this.#stderr.write(this.#redactor.redact(line) + '\n');
  }

  #out(text: string): void {
    this.#clearProgress();
    this.#stdout.write(this.#redactor.redact(text));
  }

  #clearProgress(): void {
    if (this.#progressShown) {
      this.#stderr.write('\r\x1b[2K');
      this.#progressShown = false;
    }
  }
}
