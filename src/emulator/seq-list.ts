/** A list of subscriptions kept in creation order (ascending `seq`), searchable by binary search. */

/** What a SeqList holds: anything with a unique creation sequence. */
export interface Sequenced {
  readonly seq: number;
}

/**
 * Subscriptions ordered by creation sequence. Appending the newest is O(1); inserting or removing an older
 * one is a binary search plus one array move (a memmove, no per-element callback). A page after a cursor
 * costs O(log n + page size), whatever was deleted before the cursor.
 */
export class SeqList<T extends Sequenced> {
  readonly #items: T[] = [];

  get size(): number {
    return this.#items.length;
  }

  /** Inserts `item` at its place by `seq` (normally the end: new items have the highest sequence). */
  add(item: T): void {
    const last = this.#items.at(-1);
    if (last === undefined || last.seq < item.seq) this.#items.push(item);
    else this.#items.splice(this.#firstAfter(item.seq - 1), 0, item);
  }

  /** Removes `item`; returns false when it was not in the list. */
  remove(item: T): boolean {
    const at = this.#firstAfter(item.seq - 1);
    if (this.#items[at] !== item) return false;
    this.#items.splice(at, 1);
    return true;
  }

  /** Up to `limit` items with `seq > afterSeq`, oldest first, and whether any further item follows them. */
  after(afterSeq: number, limit: number): { page: T[]; more: boolean } {
    const start = this.#firstAfter(afterSeq);
    const page = this.#items.slice(start, start + limit);
    return { page, more: start + page.length < this.#items.length };
  }

  /** A copy, oldest first. */
  toArray(): T[] {
    return [...this.#items];
  }

  /** Index of the first item with `seq > afterSeq` (the length when there is none). */
  #firstAfter(afterSeq: number): number {
    let lo = 0;
    let hi = this.#items.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if ((this.#items[mid] as T).seq > afterSeq) hi = mid;
      else lo = mid + 1;
    }
    return lo;
  }
}
