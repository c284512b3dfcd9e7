/** A URL without credentials, query or fragment, for messages and logs; `(invalid URL)` when it is none. */
export function safeUrl(url: string): string {
  try {
    const u = new URL(url);
    return `${u.origin}${u.pathname}`;
  } catch {
    return '(invalid URL)';
  }
}
