/** `request.session` in a remote app: the shared session's user and data, written back at the end of the request. */
import { UnauthenticatedError } from '../shared/errors.js'
import type { SessionAuth, SessionSnapshot, SessionUser } from '../shared/session.js'

export type TesseraUser = SessionUser

export class TesseraSession {
  #snapshot: SessionSnapshot | undefined
  readonly #changes = new Map<string, unknown>()

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

  get authenticated(): boolean {
    return this.#snapshot !== undefined
  }

  /** When the session ends at the latest (absolute timeout), epoch ms. */
  get expiresAt(): number | undefined {
    return this.#snapshot?.expiresAt
  }

  /** The shared session's id, for the plugin; never put it in a page or a log. */
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
   * @throws UnauthenticatedError when there is no session to write to.
   */
  set(key: string, value: unknown): void {
    if (this.#snapshot === undefined) throw new UnauthenticatedError()
    if (typeof key !== 'string' || key === '' || key.length > 256) throw new TypeError('session keys are non-empty strings of at most 256 characters')
    // Round-trip now, so a value that cannot be stored fails here, in the caller's code.
    this.#changes.set(key, value === undefined ? undefined : JSON.parse(JSON.stringify(value)))
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
  }
}
