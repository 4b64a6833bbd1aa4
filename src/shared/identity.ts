/**
 * The identity in a session record: who the user is, how and when they signed in, and when the
 * session ends at the latest, signed by the IdP (Ed25519) and verified by every app with the IdP's
 * public key. Apps hold no signing key, so an app with write access to Redis can end sessions or
 * write shared data, but cannot make a session belong to someone else, claim a factor the user never
 * gave, or extend a session past its absolute expiry: a record that does not verify is no session.
 *
 * Format (field `u` of the session hash): `<kid>.<payload, b64url JSON>.<signature, b64url>`, the
 * signature over `<kid>.<payload>`. The payload names its session id, so an identity copied into
 * another session's record does not verify there.
 */
import { sign, verify, type KeyObject } from 'node:crypto'
import type { IdentitySigningKey } from './app-keys.js'
import { BoundedMemo } from './bounded-memo.js'
import type { SessionUser } from './session.js'

/** How the user proved who they are (`amr` values of RFC 8176): password, one-time code, hardware key. */
export type AuthMethodName = 'pwd' | 'otp' | 'hwk'

export interface AuthMethod {
  readonly method: AuthMethodName
  /** When, epoch ms. */
  readonly at: number
}

export interface Identity {
  readonly sid: string
  readonly user: SessionUser
  readonly methods: readonly AuthMethod[]
  /** Epoch ms. */
  readonly signedInAt: number
  readonly expiresAt: number
}

interface Payload {
  readonly sid: string
  readonly user: SessionUser
  readonly amr: readonly { readonly m: AuthMethodName; readonly t: number }[]
  readonly iat: number
  readonly exp: number
}

export function signIdentity(key: IdentitySigningKey, identity: Identity): string {
  const payload: Payload = {
    sid: identity.sid, user: identity.user, iat: identity.signedInAt, exp: identity.expiresAt,
    amr: identity.methods.map((m) => ({ m: m.method, t: m.at })),
  }
  const signed = `${key.id}.${Buffer.from(JSON.stringify(payload)).toString('base64url')}`
  return `${signed}.${sign(null, Buffer.from(signed), key.privateKey).toString('base64url')}`
}

// Hosts' clocks may differ from the IdP's by this much; the Redis TTL is the everyday expiry.
const CLOCK_TOLERANCE_MS = 60_000
// The last record read for each session, with what checking it gave (its identity, or null when it
// was refused), remembered (the older half dropped when full: bounded-memo.ts): a page view then
// costs a lookup by session id and one string comparison, not an Ed25519 verification. Keyed by
// session id rather than by the record, whose ~450 characters V8 would hash on every lookup.
// A record's text changes whenever the IdP re-signs it, and then it is checked again.
const REMEMBERED_MAX = 10_000
const METHODS: readonly string[] = ['pwd', 'otp', 'hwk']

export class IdentityVerifier {
  readonly #lookup: (kid: string) => KeyObject | undefined
  readonly #onInvalid: ((reason: string) => void) | undefined
  readonly #remembered = new BoundedMemo<string, { readonly record: string; readonly identity: Identity | null }>(REMEMBERED_MAX)
  /** Records already reported as copied into another session, so each is logged once. */
  readonly #misplaced = new Set<string>()

  /**
   * @param lookup the IdP's public identity key for a key id
   * @param onInvalid told once per record and session that does not verify (the reason only, never the record)
   */
  constructor(lookup: (kid: string) => KeyObject | undefined, onInvalid?: (reason: string) => void) {
    this.#lookup = lookup
    this.#onInvalid = onInvalid
  }

  /** The identity in `record` when the IdP signed it for session `sid` and it has not expired; else undefined. */
  verify(record: string, sid: string, now = Date.now()): Identity | undefined {
    const known = this.#remembered.get(sid)
    let identity: Identity | null
    if (known !== undefined && known.record === record) identity = known.identity
    else {
      identity = this.#check(record)
      this.#remembered.set(sid, { record, identity })
    }
    if (identity === null) return undefined
    if (identity.sid !== sid) {
      if (!this.#misplaced.has(record)) {
        if (this.#misplaced.size >= REMEMBERED_MAX) this.#misplaced.clear()
        this.#misplaced.add(record)
        this.#onInvalid?.('identity signed for another session')
      }
      return undefined
    }
    return identity.expiresAt + CLOCK_TOLERANCE_MS > now ? identity : undefined
  }

  #check(record: string): Identity | null {
    const reason = (why: string): null => { this.#onInvalid?.(why); return null }
    const parts = record.split('.')
    if (parts.length !== 3) return reason('identity is not signed')
    const [kid, payloadText, signature] = parts as [string, string, string]
    const key = this.#lookup(kid)
    if (key === undefined) return reason(`identity signed with unknown key id ${kid}`)
    if (!verify(null, Buffer.from(`${kid}.${payloadText}`), key, Buffer.from(signature, 'base64url'))) return reason('identity signature does not verify')
    let p: Payload
    try {
      p = JSON.parse(Buffer.from(payloadText, 'base64url').toString('utf8')) as Payload
    } catch {
      return reason('identity payload is not JSON')
    }
    if (typeof p?.sid !== 'string' || typeof p.user?.username !== 'string' || !Array.isArray(p.amr) ||
        typeof p.iat !== 'number' || typeof p.exp !== 'number' || !p.amr.every((a) => METHODS.includes(a.m) && typeof a.t === 'number')) {
      return reason('identity payload has the wrong shape')
    }
    return Object.freeze({
      sid: p.sid, user: p.user, signedInAt: p.iat, expiresAt: p.exp,
      methods: Object.freeze(p.amr.map((a) => Object.freeze({ method: a.m, at: a.t }))),
    })
  }
}
