import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { AppError, ERROR_CODES, EXIT, exitCodeFor, toAppError } from '../../src/lib/errors.js';
import { ROOT } from '../helpers/cli.js';

/** Rows of the README's error-code table: | `CODE` | exit | meaning | */
function readmeErrorRows(): Map<string, number> {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
  const section = readme.split(/^## Error codes$/m)[1]?.split(/^## /m)[0];
  assert.ok(section, 'README.md has a "## Error codes" section');
  const rows = new Map<string, number>();
  for (const m of section.matchAll(/^\| `([A-Z_]+)` \| (\d+) \|/gm)) rows.set(m[1]!, Number(m[2]));
  return rows;
}

test('every error code is documented in the README with its exit code, and the README lists no other', () => {
  const documented = readmeErrorRows();
  for (const [code, { exit }] of Object.entries(ERROR_CODES)) {
    assert.equal(documented.get(code), exit, `README row for ${code}`);
  }
  assert.deepEqual([...documented.keys()].sort(), Object.keys(ERROR_CODES).sort());
});

test('exitCodeFor() maps codes to the exit codes of SPEC.md', () => {
  assert.equal(exitCodeFor(new AppError('CONFIG_INVALID', 'x')), EXIT.CONFIG);
  assert.equal(exitCodeFor(new AppError('USER_TOKEN_REFUSED', 'x')), 77);
  assert.equal(exitCodeFor(new AppError('TWITCH_AUTH_FAILED', 'x')), 77);
  assert.equal(exitCodeFor(new AppError('USAGE_ERROR', 'x')), 2);
  assert.equal(exitCodeFor(new Error('boom')), 1);
});

test('toAppError() keeps only the first line of a foreign error and chains it as cause', () => {
  const cause = new Error('first line\nsecond line\n    at stack');
  const err = toAppError(cause);
  assert.equal(err.code, 'INTERNAL_ERROR');
  assert.equal(err.message, 'Unexpected error: first line');
  assert.equal(err.cause, cause);
});
