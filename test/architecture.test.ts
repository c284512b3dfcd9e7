/**
 * The import directions of src/ (STYLE.md "A layout that shows the architecture"): main → cli → daemon →
 * features → twitch → lib, nothing upward. Every import of every file counts: static, type-only, re-exports
 * and dynamic `import()`. A new arrow the other way fails here: it wants a new seam, not an exception.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { test } from 'node:test';
import { ROOT } from './helpers/cli.js';

const SRC = join(ROOT, 'src');
const FEATURES = ['auth', 'conduit', 'config', 'delivery', 'emulator', 'journal', 'receiver', 'storage', 'subscriptions'];

/** What each top-level part of src/ may import, besides itself. */
const ALLOWED: Record<string, readonly string[]> = {
  main: ['cli', 'lib'],
  cli: ['daemon', ...FEATURES, 'twitch', 'lib'],
  daemon: [...FEATURES, 'twitch', 'lib'],
  auth: ['twitch', 'lib'],
  // config reads the files into twitch/'s shapes; it reaches into no feature (the subscriptions engine included).
  config: ['twitch', 'lib'],
  // The conduit's shards hand what they read to the receiver's intake (one de-duplication and journal path).
  conduit: ['receiver', 'twitch', 'lib'],
  // The forwarder and the stream are consumers of the journal.
  delivery: ['journal', 'lib'],
  emulator: ['twitch', 'lib'],
  journal: ['lib'],
  receiver: ['twitch', 'lib'],
  // Redis's implementations of the journal, cursors, token record, conduit record, locks and leases.
  storage: ['auth', 'conduit', 'config', 'journal', 'twitch', 'lib'],
  subscriptions: ['twitch', 'lib'],
  twitch: ['lib'],
  lib: [],
};

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? sourceFiles(path) : name.endsWith('.ts') ? [path] : [];
  });
}

/** `main` for src/main.ts, else the first directory under src/. */
function partOf(file: string): string {
  const rel = relative(SRC, file).split('/');
  return rel.length === 1 ? rel[0]!.replace(/\.ts$/, '') : rel[0]!;
}

/** Every relative module a file names: `from '...'`, `import '...'`, `import('...')`. */
function importsOf(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  const specs = [...text.matchAll(/(?:from\s+|import\s*\(\s*|import\s+)'(\.{1,2}\/[^']+)'/g)].map((m) => m[1]!);
  return specs.map((s) => resolve(dirname(file), s.replace(/\.js$/, '.ts')));
}

test('src/ imports run one way: main → cli → daemon → features → twitch → lib; config reaches into no feature', () => {
  const violations: string[] = [];
  const files = sourceFiles(SRC);
  assert.ok(files.length > 50, `found ${files.length} source files`);
  for (const file of files) {
    const from = partOf(file);
    const allowed = ALLOWED[from];
    assert.ok(allowed, `src/${from} is not in the architecture table: add it with its allowed imports`);
    for (const target of importsOf(file)) {
      const to = partOf(target);
      if (to !== from && !allowed.includes(to)) violations.push(`${relative(SRC, file)} imports ${relative(SRC, target)} (${from} → ${to})`);
    }
  }
  assert.deepEqual(violations, []);
});

test('the architecture test sees every kind of import (static, type, re-export, dynamic)', () => {
  const file = join(SRC, 'daemon', 'daemon.ts');
  const targets = importsOf(file).map((t) => relative(SRC, t));
  assert.ok(targets.includes('journal/journal.ts'), 'a static import');
  assert.ok(targets.includes('receiver/types.ts'), 'a type-only import');
  assert.ok(targets.includes('delivery/stream.ts'), 'a dynamic import()');
  assert.ok(importsOf(join(SRC, 'emulator', 'index.ts')).some((t) => t.endsWith('emulator/server.ts')), 'a re-export');
});
