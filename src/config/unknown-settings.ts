/**
 * Names in the environment or the settings file that look like settings eventsubd does not have
 * (`EVENTSUBD_LISTN`, `EVENTSUBD_FORWRD_URL`): a typo there is silently ignored, and the default used
 * instead. They are warned about, never refused: other tools share the environment. Pure.
 */
import { nearestName } from '../lib/edit-distance.js';

/** Prefixes that only eventsubd uses: any unknown name with one is reported. */
const OWN_PREFIXES = ['EVENTSUBD_', 'EVENTSUB_'];
/**
 * `TWITCH_` is shared with other Twitch tools (chat bots, twitch-cli scripts), so an unknown `TWITCH_` name is
 * reported only when it is this close to one of ours: a typo, not another tool's setting.
 */
const SHARED_PREFIX = 'TWITCH_';
const SHARED_MAX_DISTANCE = 2;

export interface KnownSettings {
  /** Every setting name. */
  settings: readonly string[];
  /** The secrets among them, which may also be read from `<NAME>_FILE`. */
  secrets: readonly string[];
  /** Names read from elsewhere (systemd's STATE_DIRECTORY...), never reported. */
  others?: readonly string[];
}

/** One warning line per unknown name worth a warning, in the order of `names`. */
export function unknownSettingWarnings(names: Iterable<string>, known: KnownSettings): string[] {
  const accepted = new Set([...known.settings, ...known.secrets.map((n) => `${n}_FILE`), ...(known.others ?? [])]);
  const candidates = [...accepted];
  const lines: string[] = [];
  for (const name of names) {
    if (accepted.has(name)) continue;
    const upper = name.toUpperCase();
    const where = `eventsubd: warning: ${name} is not a setting of eventsubd and is ignored`;
    if (accepted.has(upper)) {
      lines.push(`${where}: setting names are upper case: did you mean ${upper}?`);
    } else if (upper.endsWith('_FILE') && known.settings.includes(upper.slice(0, -5))) {
      lines.push(`${where}: only secrets (${known.secrets.join(', ')}) can be read from a file: set ${upper.slice(0, -5)} itself`);
    } else if (OWN_PREFIXES.some((p) => upper.startsWith(p))) {
      const near = nearestName(name, candidates);
      lines.push(near ? `${where}: did you mean ${near}?` : `${where}: see README.md "Settings"`);
    } else if (upper.startsWith(SHARED_PREFIX)) {
      const near = nearestName(name, candidates, { maxDistance: SHARED_MAX_DISTANCE });
      if (near) lines.push(`${where}: did you mean ${near}?`);
    }
  }
  return lines;
}
