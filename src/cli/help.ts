/** Help text, generated from the command table so it can never drift from what the parser accepts. */
import type { CommandSpec } from './command.js';

export function globalHelp(commands: readonly CommandSpec[]): string {
  const width = Math.max(...commands.map((c) => c.path.join(' ').length));
  const lines = [
    'eventsubd: Twitch EventSub plumbing done once (app tokens, subscriptions, webhook receiver)',
    '',
    'Usage: eventsubd <command> [flags]',
    '',
    'Commands:',
    ...commands.map((c) => `  ${c.path.join(' ').padEnd(width)}  ${c.summary}`),
    '',
    'Global flags:',
    '  --settings-file PATH  read settings from PATH (dotenv syntax) instead of ./.env',
    '                        (--env-file PATH: its former name, deprecated: Node 20 reads it too)',
    '  --help, -h            show help (also after a command)',
    '  --version             print the version',
    '',
    'Exit codes: 0 ok, 1 runtime failure, 2 usage error, 77 token refused, 78 configuration error, 130 interrupted.',
    'Settings and error codes: see README.md.',
    '',
  ];
  return lines.join('\n');
}

export function groupHelp(group: string, commands: readonly CommandSpec[]): string {
  const width = Math.max(...commands.map((c) => c.path.join(' ').length));
  return [
    `Usage: eventsubd ${group} <command> [flags]`,
    '',
    ...commands.map((c) => `  ${c.path.join(' ').padEnd(width)}  ${c.summary}`),
    '',
  ].join('\n');
}

export function commandHelp(spec: CommandSpec): string {
  const entries = Object.entries(spec.options).map(([name, o]) => {
    const flag = `--${name}${o.value ? ' ' + o.value : ''}${o.multiple ? ' ...' : ''}`;
    return [flag, o.description] as const;
  });
  entries.push(['--settings-file PATH', 'read settings from PATH (dotenv syntax) instead of ./.env']);
  const width = Math.max(...entries.map(([f]) => f.length));
  return [
    `Usage: eventsubd ${spec.path.join(' ')} ${spec.usage}`.trimEnd(),
    '',
    spec.summary,
    '',
    'Flags:',
    ...entries.map(([f, d]) => `  ${f.padEnd(width)}  ${d}`),
    '',
  ].join('\n');
}
