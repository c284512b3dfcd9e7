/** What a terminal shows for text written to it, for tests of output redrawn in place. */

const ERASE_LINE = '\x1b[2K';

/**
 * The lines a terminal shows once `text` has been written: `\n` ends a line, `\r` and erase-line (`ESC [2K`)
 * blank the current one (enough for a progress line redrawn in place). The last entry is the unfinished line.
 */
export function screen(text: string): string[] {
  const lines: string[] = [''];
  for (const chunk of text.split(ERASE_LINE).join('\r').split('')) {
    if (chunk === '\n') lines.push('');
    else if (chunk === '\r') lines[lines.length - 1] = '';
    else lines[lines.length - 1] += chunk;
  }
  return lines;
}
