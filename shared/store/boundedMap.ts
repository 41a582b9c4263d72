/**
 * A Map that keeps at most `max` entries, dropping the least recently set one first. For the
 * in-process knowledge an adapter keeps per case or per lease (etags): useful while it is fresh,
 * harmless to forget (the adapter reads again), and unbounded it would grow with every alert a
 * long-running instance ever saw. Pure, no I/O.
 */
export class BoundedMap<K, V> {
  private readonly map = new Map<K, V>();

  /** @param max how many entries to keep (at least 1). */
  constructor(private readonly max: number) {
    if (!Number.isInteger(max) || max < 1) throw new RangeError(`BoundedMap max must be a positive integer, got ${max}`);
  }

  /** Number of entries held. */
  get size(): number {
    return this.map.size;
  }

  /** The value of `key`, or undefined. */
  get(key: K): V | undefined {
    return this.map.get(key);
  }

  /** Sets `key` as the most recent entry, dropping the oldest when full. */
  set(key: K, value: V): void {
    this.map.delete(key);
    if (this.map.size >= this.max) {
      const oldest = this.map.keys().next();
      if (!oldest.done) this.map.delete(oldest.value);
    }
    this.map.set(key, value);
  }

  /** Whether `key` is held. */
  has(key: K): boolean {
    return this.map.has(key);
  }

  /** The entries, least recently set first. */
  entries(): IterableIterator<[K, V]> {
    return this.map.entries();
  }

  /** The values, least recently set first. */
  values(): IterableIterator<V> {
    return this.map.values();
  }

  /** Forgets `key`. */
  delete(key: K): void {
    this.map.delete(key);
  }
}
