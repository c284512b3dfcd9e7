/**
 * The README's table of the types that need a user's grant ("Scopes per type"), rendered from the scope
 * catalogue (src/twitch/scopes.ts): the test compares the README with it, and
 * `npx tsx test/helpers/scope-table.ts` prints it to paste after a change of the catalogue.
 */
import { authorizationTable } from '../../src/twitch/scopes.js';

export function scopeTableMarkdown(): string[] {
  const rows = authorizationTable()
    .filter((t) => t.requirements.length > 0)
    .slice()
    .sort((a, b) => a.type.localeCompare(b.type) || a.version.localeCompare(b.version))
    .map((t) => {
      const who = t.requirements.map((r) => `\`${r.user}\``).join(', ');
      const scopes = t.requirements
        .map((r) => {
          const groups = r.groups.map((g) => g.map((s) => `\`${s}\``).join(' or ')).join(' and ');
          return t.requirements.length > 1 ? `${r.user}: ${groups}` : groups;
        })
        .join('; ');
      return `| \`${t.type}\` | ${t.version} | ${who} | ${scopes} |`;
    });
  return ['| type | version | who grants (condition field) | scopes |', '|---|---|---|---|', ...rows];
}

if (import.meta.url === `file://${process.argv[1]}`) process.stdout.write(scopeTableMarkdown().join('\n') + '\n');
