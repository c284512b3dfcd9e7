import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { ROOT } from '../helpers/cli.js';

test('README "The emulator" documents every control endpoint the emulator serves, and no other', () => {
  const source = readFileSync(join(ROOT, 'src/emulator/control.ts'), 'utf8');
  const served = [...source.matchAll(/case '((?:GET|POST|DELETE) \/_emulator\/[^']*)'/g)].map((m) => m[1]!.replace(/:id/g, 'ID')).sort();
  assert.ok(served.length >= 15, `found the routes of control.ts (${served.length})`);
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
  const section = readme.split(/^## The emulator$/m)[1]?.split(/^## /m)[0] ?? '';
  const documented = [...section.matchAll(/^\| `((?:GET|POST|DELETE) \/_emulator\/[^`]*)`/gm)].map((m) => m[1]!).sort();
  assert.deepEqual(documented, served);
});
