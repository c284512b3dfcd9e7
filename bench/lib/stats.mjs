/** Small statistics and formatting helpers for the benchmark tables. */

/** Median of the finite values (mean of the two middle ones for an even count); NaN when there are none. */
export function median(values) {
  const v = values.filter(Number.isFinite).sort((a, b) => a - b);
  if (v.length === 0) return Number.NaN;
  const mid = Math.floor(v.length / 2);
  return v.length % 2 ? v[mid] : (v[mid - 1] + v[mid]) / 2;
}

/** `{min, median, max, n}` of the finite values. */
export function summarize(values) {
  const v = values.filter(Number.isFinite);
  return { min: v.length ? Math.min(...v) : Number.NaN, median: median(v), max: v.length ? Math.max(...v) : Number.NaN, n: v.length };
}

/** A number with `digits` decimals and thousands separators; '—' for NaN. */
export function fmt(value, digits = 0) {
  if (!Number.isFinite(value)) return '—';
  return value.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

/** `median (min–max)`. */
export function fmtRange(s, digits = 0) {
  if (!Number.isFinite(s.median)) return '—';
  return `${fmt(s.median, digits)} (${fmt(s.min, digits)}–${fmt(s.max, digits)})`;
}

/** Bytes as MiB (2^20 bytes), one decimal. */
export function mib(bytes) {
  return fmt(bytes / 1024 / 1024, 1);
}

/** A Markdown table. */
export function table(header, rows) {
  const line = (cells) => `| ${cells.join(' | ')} |`;
  return [line(header), line(header.map(() => '---')), ...rows.map(line)].join('\n');
}

/** A share as a percentage; '—' for NaN. */
export const pct = (x, digits = 0) => (Number.isFinite(x) ? `${fmt(x * 100, digits)}%` : '—');
/** A ratio as `0.52×`; '—' for NaN. */
export const ratio = (x) => (Number.isFinite(x) ? `${fmt(x, 2)}×` : '—');
/** Milliseconds; '—' for NaN. */
export const ms = (x, digits = 1) => (Number.isFinite(x) ? `${fmt(x, digits)} ms` : '—');
/** Milliseconds shown as seconds, one decimal; '—' for NaN. */
export const sec = (msValue) => (Number.isFinite(msValue) ? `${fmt(msValue / 1000, 1)} s` : '—');
