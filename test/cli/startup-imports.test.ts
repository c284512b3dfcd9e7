import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const SRC = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'src');

/**
 * What loading `entries` loads before any dynamic `import()` runs: the static import closure, as source
 * files (relative to src/) and npm packages. `import type` is erased by tsc; every other import or
 * re-export (also `import { type X }`, kept by verbatimModuleSyntax) loads its module.
 */
function staticClosure(entries: readonly string[]): { files: string[]; packages: string[] } {
  const files = new Set<string>();
  const packages = new Set<string>();
  const queue = entries.map((e) => join(SRC, e));
  const statement = /^\s*(?:import|export)\s+(?!type\b)(?:[^'";]*?\sfrom\s+)?'([^']+)'/gm;
  while (queue.length > 0) {
    const file = queue.pop()!;
    const rel = relative(SRC, file);
    if (files.has(rel)) continue;
    files.add(rel);
    for (const [, spec] of readFileSync(file, 'utf8').matchAll(statement)) {
      if (spec!.startsWith('.')) queue.push(join(dirname(file), spec!.replace(/\.js$/, '.ts')));
      else if (!spec!.startsWith('node:')) packages.add(spec!.startsWith('@') ? spec!.split('/').slice(0, 2).join('/') : spec!.split('/')[0]!);
    }
  }
  return { files: [...files].sort(), packages: [...packages].sort() };
}

test('staticClosure() follows static imports and re-exports, and skips import type and dynamic import()', () => {
  const daemon = staticClosure(['daemon/daemon.ts']);
  assert.ok(daemon.files.includes('journal/journal.ts'));
  assert.ok(daemon.files.includes('receiver/server.ts'));
  assert.ok(!daemon.files.includes('daemon/twitch-side.ts'), 'twitch-side.ts is imported dynamically');
  assert.ok(!daemon.files.includes('daemon/sync-scheduler.ts'), 'sync-scheduler.ts is an import type in daemon.ts');
  assert.deepEqual(staticClosure(['daemon/twitch-side.ts']).packages, ['undici', 'zod']);
  assert.deepEqual(staticClosure(['daemon/sync-scheduler.ts']).packages, ['yaml', 'zod']);
});

test('the CLI entry loads no command module and no package: --help, --version and usage errors stay instant', () => {
  const { files, packages } = staticClosure(['main.ts']);
  assert.deepEqual(packages, []);
  assert.deepEqual(
    files.filter((f) => !/^(cli\/[a-z-]+\.ts|lib\/[a-z-]+\.ts|main\.ts)$/.test(f)),
    [],
    'only src/main.ts, src/cli/*.ts and src/lib/*.ts',
  );
});

test('eventsubd run loads before READY=1 neither zod nor the Twitch side (undici, YAML, tokens, sync) nor the emulator nor ws', () => {
  // runCli loads the settings, then the command's module; the daemon imports the rest after READY=1.
  const { files, packages } = staticClosure(['main.ts', 'config/settings.ts', 'cli/commands/run.ts']);
  assert.deepEqual(packages, ['node-cron'], 'zod takes about 75 ms to import: settings are checked without it');
  const late = files.filter((f) =>
    /^(auth|emulator|subscriptions\/(?!status\.ts)|twitch\/(?!signature\.ts))|daemon\/(twitch-|sync-)|delivery\/(stream|forwarder)|config\/subscriptions-file/.test(f),
  );
  assert.deepEqual(late, []);
});
