/**
 * Several configuration mistakes reported at once: one ConfigError (CONFIG_INVALID, exit 78) whose one-line
 * message lists them all (up to MAX_LISTED), so that a run shows every mistake to fix, not the first only.
 */
import { ConfigError } from '../lib/errors.js';

/** One mistake: what to fix (`setting`, when a setting is to blame) and a sentence saying what is wrong. */
export interface ConfigProblem {
  setting?: string | undefined;
  message: string;
}

/** More problems than this are counted, not listed: the line stays readable. */
export const MAX_LISTED = 20;

/** A ConfigError carrying every problem found; `setting` defaults to the first problem's. */
export class ConfigProblemsError extends ConfigError {
  readonly problems: readonly ConfigProblem[];
  constructor(message: string, problems: readonly ConfigProblem[], setting?: string) {
    super(message, { setting: setting ?? problems[0]?.setting });
    this.problems = Object.freeze([...problems]);
  }
}

/**
 * One problem's message as it is; for several, `<heading>: 3 problems: a; b; c` (past MAX_LISTED:
 * `...; and 12 more`).
 */
export function joinProblems(problems: readonly ConfigProblem[], heading: string): string {
  if (problems.length === 1) return problems[0]!.message;
  const listed = problems.slice(0, MAX_LISTED).map((p) => p.message);
  const more = problems.length - listed.length;
  if (more > 0) listed.push(`and ${more} more`);
  return `${heading}: ${problems.length} problems: ${listed.join('; ')}`;
}
