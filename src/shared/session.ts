/**
 * The session's words, shared by every side: who the user is, what a session looks like when read,
 * the handle a cookie carries, and the one rule for every random id.
 */

export interface SessionUser {
  readonly username: string
  readonly displayName: string
  readonly email: string
  readonly groups: readonly string[]
}

/**
 * Session data: a Map, not an object: keys are whatever apps chose (`__proto__`, `constructor`…),
 * and an object would inherit Object.prototype's names or have its prototype replaced by a value.
 */
export type SessionData = ReadonlyMap<string, unknown>

/** How the user signed in, from the identity only the IdP can sign (identity.ts). */
export interface SessionAuth {
  /** Each way the user proved who they are, with when: `pwd`, `otp`, `hwk` (RFC 8176 `amr`). */
  readonly methods: readonly { readonly method: 'pwd' | 'otp' | 'hwk'; readonly at: number }[]
  /** Epoch ms. */
  readonly signedInAt: number
}

export interface SessionSnapshot {
  readonly sid: string
  readonly user: SessionUser
  readonly auth: SessionAuth
  readonly data: SessionData
  readonly createdAt: number
  /** The absolute expiry, as the IdP signed it (epoch ms). */
  readonly expiresAt: number
}

export interface SessionLimits {
  readonly idleMs: number
  readonly absoluteMs: number
}

/** What an operator (or the user, on their sessions page) may see of a session: never its id, only a fingerprint of it. */
export interface SessionSummary {
  readonly id: string
  readonly createdAt: number
  readonly expiresAt: number
  readonly idleExpiresAt: number
  /**
   * The last request any app or the IdP made with it, derived from the idle timeout (each request
   * restarts it) rather than written on every request. In a session's last idle period before its
   * absolute end the timeout no longer moves, so there it is the earliest the request can have been.
   */
  readonly lastSeenAt: number
  /** The browser's User-Agent at sign-in, as it sent it (cut to MAX_USER_AGENT); '' when none. */
  readonly userAgent: string
  /** Origins of the apps that redeemed a hand-over for it (hold a handle), first first. */
  readonly apps: readonly string[]
}

/** A live handle: the sid it opens and the secret only the cookie holds. */
export interface Handle {
  readonly sid: string
  readonly secret: string
}

/** Random bytes behind each id: a session id, a handle's secret, a browser's hand-over state. */
export const ID_BYTES = { sid: 16, secret: 32, state: 32 } as const

const ID_PATTERNS = new Map<number, RegExp>()

/** True when `value` is the unpadded base64url of exactly `bytes` random bytes (the form randomId makes). */
export function isId(value: unknown, bytes: number): value is string {
  let pattern = ID_PATTERNS.get(bytes)
  if (pattern === undefined) {
    pattern = new RegExp(`^[A-Za-z0-9_-]{${Math.ceil((bytes * 4) / 3)}}$`)
    ID_PATTERNS.set(bytes, pattern)
  }
  return typeof value === 'string' && pattern.test(value)
}

export function isWellFormedHandle(handle: Handle): boolean {
  return isId(handle.sid, ID_BYTES.sid) && isId(handle.secret, ID_BYTES.secret)
}

/** The hand-over state a remote puts in its state cookie and the IdP seals into the token. */
export function isState(value: unknown): value is string {
  return isId(value, ID_BYTES.state)
}
