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

/**
 * On a terminal, one progress line (stderr, redrawn in place with `\r`) lives below everything else: every line
 * written through this object (results, notes, log lines through `logSink`, errors) first clears it, then is
 * written, then the progress line is drawn again, so that neither breaks the other. Off a terminal there is no
 * progress line at all: plain lines only.
 */
export class Output {
  readonly json: boolean;
  /**
   * Where the logger writes (stderr), in step with the progress line: give it to `createJsonLogger` as its sink.
   */
  readonly logSink: { write(line: string): void };
  readonly #stdout: TextSink;
  readonly #stderr: TextSink;
  readonly #redactor: Redactor;
  /** The progress line as last set (undefined: none); drawn only when stderr is a terminal. */
  #progress: string | undefined;
  #progressShown = false;

  constructor(init: { stdout: TextSink; stderr: TextSink; json: boolean; redactor: Redactor }) {
    this.#stdout = init.stdout;
    this.#stderr = init.stderr;
    this.json = init.json;
    this.#redactor = init.redactor;
    this.logSink = { write: (line) => this.#around(() => this.#stderr.write(line)) };
  }

  /** A command's result: `human` lines in text mode, `data` as one JSON document in --json mode. */
  result(data: unknown, human: () => string[]): void {
    if (this.json) this.#out(JSON.stringify(data, null, 2) + '\n');
    else this.#out(human().map((line) => line + '\n').join(''));
  }

  /** Lines for a person only (stdout, text mode), such as a plan shown before it is applied; nothing in --json mode. */
  lines(human: readonly string[]): void {
    if (!this.json && human.length > 0) this.#out(human.map((line) => line + '\n').join(''));
  }

  /** One record of a stream (events tail --follow): a JSON line, or a human line. */
  record(data: unknown, human: () => string): void {
    this.#out((this.json ? JSON.stringify(data) : human()) + '\n');
  }

  /** A diagnostic line on stderr (never mixed into --json stdout). */
  note(line: string): void {
    this.#around(() => this.#stderr.write(this.#redactor.redact(line) + '\n'));
  }

  /**
   * Sets the progress line (e.g. `deleted 3/10, created 120/500`) and draws it in place, when stderr is a
   * terminal; otherwise does nothing. `endProgress()` removes it.
   */
  progress(line: string): void {
    if (!this.#stderr.isTTY) return;
    this.#progress = this.#redactor.redact(line);
    this.#draw();
  }

  /** Clears the progress line for good (until the next `progress`). */
  endProgress(): void {
    this.#clearProgress();
    this.#progress = undefined;
  }

  /** The one-line error that ends a command. */
  error(err: AppError): void {
    this.endProgress();
    const line = this.json
      ? JSON.stringify({ error: { code: err.code, message: err.message } })
      : `eventsubd: ${err.code}: ${err.message}`;
    this.#stderr.write(this.#redactor.redact(line) + '\n');
  }

  #out(text: string): void {
    this.#around(() => this.#stdout.write(this.#redactor.redact(text)));
  }

  /** Clears the progress line, writes, and draws it again below what was written. */
  #around(write: () => void): void {
    this.#clearProgress();
    write();
    this.#draw();
  }

  #draw(): void {
    if (this.#progress === undefined) return;
    this.#stderr.write(`\r\x1b[2K${this.#progress}`);
    this.#progressShown = true;
  }

  #clearProgress(): void {
    if (this.#progressShown) {
      this.#stderr.write('\r\x1b[2K');
      this.#progressShown = false;
    }
  }
}
