/**
 * Checks declared subscriptions against the catalogue of types Twitch accepts (src/twitch/catalogue.ts),
 * so that a typo is refused at start with the nearest valid name, not by Twitch's 400 at the first sync.
 * Pure.
 */
import { nearestName } from '../lib/edit-distance.js';
import { catalogueEntries, lookupType, type CatalogueEntry } from '../twitch/catalogue.js';

/** A subscription as the file declares it, after the schema's checks. */
export interface DeclaredEntry {
  type: string;
  version: string;
  condition: Readonly<Record<string, string>>;
}

/** What is wrong with one entry; `path` names the key to fix inside it (`['condition', 'broadcaster_id']`). */
export interface EntryProblem {
  path: string[];
  message: string;
}

let versionsByType: ReadonlyMap<string, readonly string[]> | undefined;

/** Each known type with its versions, built once from the catalogue. */
function versions(): ReadonlyMap<string, readonly string[]> {
  if (versionsByType) return versionsByType;
  const map = new Map<string, string[]>();
  for (const e of catalogueEntries()) map.set(e.type, [...(map.get(e.type) ?? []), e.version]);
  return (versionsByType = map);
}

/**
 * Every problem of one entry: unknown type (with the nearest known type), unknown version for a known type
 * (with the versions that exist), missing required condition fields, unknown condition fields (with the
 * nearest allowed field). Empty when Twitch would accept the type, version and condition's field names.
 */
export function checkEntry(entry: DeclaredEntry): EntryProblem[] {
  const known = versions().get(entry.type);
  if (!known) {
    const near = nearestName(entry.type, versions().keys());
    const hint = near ? `: did you mean "${near}"?` : ': see the subscription types in the README';
    return [{ path: ['type'], message: `"${entry.type}" is not an EventSub subscription type${hint}` }];
  }
  const spec = lookupType(entry.type, entry.version);
  if (!spec) {
    const list = known.map((v) => `"${v}"`).join(', ');
    return [{ path: ['version'], message: `${entry.type} has no version "${entry.version}": use ${list}` }];
  }
  return checkCondition(entry.condition, spec);
}

function checkCondition(condition: Readonly<Record<string, string>>, spec: CatalogueEntry): EntryProblem[] {
  const problems: EntryProblem[] = [];
  const allowed = [...spec.required, ...spec.optional, ...spec.exactlyOneOf];
  const present = Object.keys(condition);
  const missing = spec.required.filter((f) => !present.includes(f));
  const where = `${spec.type} version ${spec.version}`;
  const suggested = new Set<string>();
  for (const field of present) {
    if (allowed.includes(field)) continue;
    // A misspelt field usually stands for one that is missing: look there first.
    const open = allowed.filter((f) => !present.includes(f));
    const near = nearestName(field, missing, { maxDistance: Math.ceil(Math.max(field.length, 2) / 2) + 2 })
      ?? nearestName(field, open);
    if (near) suggested.add(near);
    const hint = near ? `: did you mean "${near}"?` : `: allowed: ${allowed.join(', ')}`;
    problems.push({ path: ['condition', field], message: `${where} has no condition field "${field}"${hint}` });
  }
  // A missing field already suggested for a misspelt one is not reported twice.
  for (const field of missing.filter((f) => !suggested.has(f))) {
    problems.push({ path: ['condition'], message: `${where} requires the condition field "${field}"` });
  }
  if (spec.exactlyOneOf.length > 0) {
    const set = spec.exactlyOneOf.filter((f) => present.includes(f));
    if (set.length !== 1) {
      problems.push({
        path: ['condition'],
        message: `${where} needs exactly one of the condition fields ${spec.exactlyOneOf.join(', ')}: ${set.length} set`,
      });
    }
  }
  return problems;
}
