/**
 * WebAuthn challenges: each one single-use and short-lived in Redis, bound to the browser it was
 * given to by a random cookie (ASVS V6: a captured assertion cannot be replayed, nor one ceremony's
 * answer used in another browser). Taking a challenge deletes it (GETDEL) whether or not the answer
 * then verifies, so a failed attempt must start over with new options.
 *
 * A challenge is kept per purpose (sign-in, registration, second step, confirming it is you), so a browser can have a
 * sign-in and a registration in flight without one replacing the other; `subject` records whom it
 * was issued for (the signed-in user, or the user between password and second step), and the route
 * that takes it checks it still matches.
 */
import type { FastifyReply, FastifyRequest } from 'fastify'
import { randomId } from '../../shared/crypto.js'
import { keys } from '../../shared/keys.js'
import { inStore, type RedisClient } from '../../shared/redis.js'
import { isId } from '../../shared/session.js'
import { CEREMONY_TIMEOUT_MS } from './webauthn.js'

export type ChallengePurpose = 'sign-in' | 'register' | 'second-step' | 'confirm'

export interface IssuedChallenge {
  readonly challenge: string
  /** Whom the ceremony is for (a username); '' for a passkey sign-in, where the passkey says who. */
  readonly subject: string
}

// The browser's ceremony timeout plus time for the answer to travel: after that the challenge is gone.
export const CHALLENGE_TTL_MS = CEREMONY_TIMEOUT_MS + 30_000
const BROWSER_ID_BYTES = 32

export class WebAuthnChallenges {
  readonly #redis: RedisClient
  readonly #cookie: string
  readonly #secure: boolean

  constructor(redis: RedisClient, publicUrl: string) {
    this.#redis = redis
    this.#secure = publicUrl.startsWith('https:')
    this.#cookie = `${this.#secure ? '__Host-' : ''}tessera_wa`
  }

  /** Keeps `challenge` for this browser (setting its cookie if it has none), replacing any earlier one of the same purpose. */
  async issue(req: FastifyRequest, reply: FastifyReply, purpose: ChallengePurpose, issued: IssuedChallenge): Promise<void> {
    let browserId = req.cookies[this.#cookie]
    if (!isId(browserId, BROWSER_ID_BYTES)) browserId = randomId(BROWSER_ID_BYTES)
    await inStore(() => this.#redis.set(keys.webauthnChallenge(browserId, purpose), JSON.stringify(issued), 'PX', CHALLENGE_TTL_MS))
    // Strict: only this origin's own pages (fetch and form posts) ever send it.
    reply.setCookie(this.#cookie, browserId, {
      path: '/', httpOnly: true, sameSite: 'strict', secure: this.#secure, maxAge: Math.ceil(CHALLENGE_TTL_MS / 1000),
    })
  }

  /** The challenge this browser was given for `purpose`, removed in the same step; undefined if none, used or expired. */
  async take(req: FastifyRequest, purpose: ChallengePurpose): Promise<IssuedChallenge | undefined> {
    const browserId = req.cookies[this.#cookie]
    if (!isId(browserId, BROWSER_ID_BYTES)) return undefined
    const raw = await inStore(() => this.#redis.getdel(keys.webauthnChallenge(browserId, purpose)))
    if (raw === null) return undefined
    const parsed = JSON.parse(raw) as Partial<IssuedChallenge>
    return typeof parsed.challenge === 'string' && typeof parsed.subject === 'string'
      ? { challenge: parsed.challenge, subject: parsed.subject }
      : undefined
  }
}
