/** `request.session` in a remote app: the shared session's user and data, written back at the end of the request. */
import { UnauthenticatedError } from '../shared/errors.js'
import type { SessionAuth, SessionSnapshot, SessionUser } from '../shared/session.js'

export type TesseraUser = SessionUser

/**
 * The most data one session holds, keys and JSON values counted in characters together: every
 * request of every app reads all of it from Redis, so a few large values would slow each one.
 */
export const MAX_SESSION_DATA = 64 * 1024

export class TesseraSession {
  #snapshot: SessionSnapshot | undefined
  readonly #changes = new Map<string, unknown>()
  /** Characters per key (key and JSON value) of the data as it will be after the pending changes; made at the first set(). */
  #sizes: Map<string, number> | undefined
  #total = 0

  constructor(snapshot?: SessionSnapshot) {
    this.#snapshot = snapshot
  }

  /** The signed-in user, or undefined on a public path without a session. */
  get user(): TesseraUser | undefined {
    return this.#snapshot?.user
  }

  /**
   * How the user signed in (`methods`: `pwd`, `otp`, `hwk`, each with when) and when: part of the
   * identity only the IdP can sign, so no app can claim a factor the user never gave.
   */
  get auth(): SessionAuth | undefined {
    return this.#snapshot?.auth
  }

  /** @internal Kept for apps that read it before it left the published types: whether a session opened. */
  get authenticated(): boolean {
    return this.#snapshot !== undefined
  }

  /** When the session ends at the latest (absolute timeout), epoch ms. */
  get expiresAt(): number | undefined {
    return this.#snapshot?.expiresAt
  }

  /** @internal The shared session's id, for the adapters; never put it in a page or a log. */
  get id(): string | undefined {
    return this.#snapshot?.sid
  }

  /** The value stored under `key`, or undefined: only keys some app set, never inherited ones like `constructor`. */
  get<T = unknown>(key: string): T | undefined {
    if (this.#changes.has(key)) return this.#changes.get(key) as T | undefined
    return this.#snapshot?.data.get(key) as T | undefined
  }

  /**
   * Sets a value every app of this session will read; saved when the reply is sent. `undefined` deletes.
   * The value is stored as its JSON, copied now: change it later by calling set() again.
   * @throws UnauthenticatedError when there is no session to write to.
   * @throws TypeError for a key that is not a string of 1 to 256 characters, or a value JSON cannot hold.
   * @throws RangeError when the session's data would grow past MAX_SESSION_DATA characters.
   */
  set(key: string, value: unknown): void {
    const snapshot = this.#snapshot
    if (snapshot === undefined) throw new UnauthenticatedError()
    if (typeof key !== 'string' || key === '' || key.length > 256) throw new TypeError('session keys are non-empty strings of at most 256 characters')
    // Serialised now, so a value that cannot be stored fails here, in the caller's code.
    const json = value === undefined ? undefined : JSON.stringify(value)
    if (value !== undefined && json === undefined) throw new TypeError(`session values are JSON: a ${typeof value} cannot be stored`)
    const sizes = this.#sizes ??= this.#measure(snapshot)
    const size = json === undefined ? 0 : key.length + json.length
    const total = this.#total - (sizes.get(key) ?? 0) + size
    // Only growth is refused, so a session already over the limit can still shrink.
    if (total > MAX_SESSION_DATA && size > (sizes.get(key) ?? 0)) {
      throw new RangeError(`session data is limited to ${MAX_SESSION_DATA} characters (keys and JSON values together); "${key.slice(0, 40)}" would make it ${total}`)
    }
    sizes.set(key, size)
    this.#total = total
    this.#changes.set(key, json === undefined ? undefined : JSON.parse(json))
  }

  #measure(snapshot: SessionSnapshot): Map<string, number> {
    const sizes = new Map<string, number>()
    this.#total = 0
    for (const [key, value] of snapshot.data) {
      const size = key.length + (JSON.stringify(value) ?? '').length
      sizes.set(key, size)
      this.#total += size
    }
    return sizes
  }

  delete(key: string): void {
    this.set(key, undefined)
  }

  /** @internal Whether set() or delete() was called since the last takeChanges(). */
  get changed(): boolean {
    return this.#changes.size > 0
  }

  /** @internal The pending writes, for the plugin's onSend hook. */
  takeChanges(): ReadonlyMap<string, unknown> {
    const changes = new Map(this.#changes)
    this.#changes.clear()
    return changes
  }

  /** @internal */
  end(): void {
    this.#snapshot = undefined
    this.#changes.clear()
    this.#sizes = undefined
  }
}
