/**
 * V8's `gc()` without `--expose-gc` on the command line, for tests that measure memory: figures taken after a
 * full collection count live objects only. Such a test belongs in a file of its own (node:test runs each file in
 * its own process), so that what it measures is its alone.
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

setFlagsFromString('--expose-gc');
export const gc = runInNewContext('gc') as () => void;

/** Heap used plus external memory (Buffers) after two full collections, bytes. */
export function liveBytesAfterGc(): number {
  gc();
  gc();
  const m = process.memoryUsage();
  return m.heapUsed + m.external;
}
