/**
 * A memo bounded to `max` entries, kept as two generations: new entries go to the young one, and
 * when it holds half of `max` the old one is dropped whole and the young one takes its place. An
 * entry found in the old generation moves back to the young one, so what is in use stays.
 *
 * Why not one Map, oldest out first: deleting a Map's first key and adding one is not O(1) in V8.
 * `keys().next()` walks over every deleted slot until the table is rebuilt, which cost about 10 µs
 * per eviction at 10,000 entries: in the hand-over bench, where every hand-over brings a new cookie
 * value, that was more than the HMAC the memo saves (bench/README.md, issue 17). Here every
 * operation is O(1).
 */
export class BoundedMemo<K, V> {
  #young = new Map<K, V>()
  #old = new Map<K, V>()
  readonly #half: number

  constructor(max: number) {
    this.#half = Math.max(1, Math.floor(max / 2))
  }

  /** The value remembered for `key`, or undefined. */
  get(key: K): V | undefined {
    const young = this.#young.get(key)
    if (young !== undefined) return young
    const old = this.#old.get(key)
    if (old !== undefined) {
      this.#old.delete(key)
      this.set(key, old)
    }
    return old
  }

  set(key: K, value: V): void {
    if (this.#young.size >= this.#half) {
      this.#old = this.#young
      this.#young = new Map()
    }
    this.#young.set(key, value)
  }

  /** How many entries are remembered (at most `max`). */
  get size(): number {
    return this.#young.size + this.#old.size
  }
}
