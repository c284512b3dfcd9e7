/**
 * Summarises a V8 heap snapshot: live objects by self size (strings, objects by constructor, arrays and
 * V8 internals by name), and what is reachable from given fields of given classes (e.g. the dedup
 * window's Map and queues) without going through shared things (hidden classes, code, prototypes).
 */
import { readFileSync } from 'node:fs';

const SKIP_TYPES = new Set(['object shape', 'code', 'closure', 'synthetic']);

function groupOf(type, name) {
  if (type === 'string' || type === 'concatenated string' || type === 'sliced string') return 'strings';
  if (type === 'object') return `objects: ${name || '(anonymous)'}`;
  if (type === 'array') return `arrays: ${name || '(backing stores)'}`;
  if (type === 'heap number') return 'heap numbers';
  return `${type}: ${name.length > 40 ? `${name.slice(0, 40)}…` : name}`;
}

/**
 * `{totalBytes, rows: [{name, bytes, count}], reachable: [{label, bytes, count}]}`: the `top` largest
 * groups, and for each `{label, className, fields}` of `reachableFrom`, the objects reachable from those
 * fields of every instance of `className`.
 */
export function summarizeHeapSnapshot(path, { top = 10, reachableFrom = [] } = {}) {
  const snap = JSON.parse(readFileSync(path, 'utf8'));
  const { node_fields: nf, edge_fields: ef, node_types: nt, edge_types: et } = snap.snapshot.meta;
  const W = nf.length;
  const E = ef.length;
  const [iType, iName, iSize, iEdges] = ['type', 'name', 'self_size', 'edge_count'].map((f) => nf.indexOf(f));
  const types = nt[0];
  const edgeTypes = et[0];
  const { nodes, edges, strings } = snap;
  const count = nodes.length / W;
  const firstEdge = new Int32Array(count);
  let at = 0;
  for (let n = 0; n < count; n++) {
    firstEdge[n] = at;
    at += nodes[n * W + iEdges] * E;
  }
  const groups = new Map();
  let total = 0;
  for (let n = 0; n < count; n++) {
    const size = nodes[n * W + iSize];
    total += size;
    const key = groupOf(types[nodes[n * W + iType]], strings[nodes[n * W + iName]] ?? '');
    const g = groups.get(key) ?? { name: key, bytes: 0, count: 0 };
    g.bytes += size;
    g.count += 1;
    groups.set(key, g);
  }
  const edgeName = (off) => {
    const type = edgeTypes[edges[off]];
    return type === 'element' || type === 'hidden' ? '' : strings[edges[off + 1]];
  };
  const reachable = reachableFrom.map(({ label, className, fields }) => {
    const seen = new Uint8Array(count);
    const queue = [];
    for (let n = 0; n < count; n++) {
      if (types[nodes[n * W + iType]] !== 'object' || strings[nodes[n * W + iName]] !== className) continue;
      for (let e = 0; e < nodes[n * W + iEdges]; e++) {
        const off = firstEdge[n] + e * E;
        const to = edges[off + 2] / W;
        if (fields.includes(edgeName(off)) && !seen[to]) {
          seen[to] = 1;
          queue.push(to);
        }
      }
    }
    let bytes = 0;
    let objects = 0;
    while (queue.length > 0) {
      const n = queue.pop();
      bytes += nodes[n * W + iSize];
      objects += 1;
      for (let e = 0; e < nodes[n * W + iEdges]; e++) {
        const off = firstEdge[n] + e * E;
        const type = edgeTypes[edges[off]];
        if (type === 'weak' || type === 'shortcut') continue;
        const name = edgeName(off);
        if (name === '__proto__' || name === 'map') continue;
        const to = edges[off + 2] / W;
        if (seen[to] || SKIP_TYPES.has(types[nodes[to * W + iType]])) continue;
        seen[to] = 1;
        queue.push(to);
      }
    }
    return { label, bytes, count: objects };
  });
  return { totalBytes: total, rows: [...groups.values()].sort((a, b) => b.bytes - a.bytes).slice(0, top), reachable };
}
