/** What every IdP route needs, built once in `buildIdp` and passed to each route group. */
import type { FastifyReply, FastifyRequest } from 'fastify'
import type { IdpConfig } from './config.js'
import type { AllowList } from './allow-list.js'
import type { IdpCookies } from './cookies.js'
import type { Regulation } from './regulation.js'
import type { AnswerPace } from './answer-pace.js'
import { isState, type Handle, type SessionSnapshot } from '../shared/session.js'
import type { Sessions } from '../shared/sessions.js'
import type { Tokens } from '../shared/tokens.js'
import type { UserIndex } from '../shared/user-index.js'
import type { IdentitySigningKey } from '../shared/app-keys.js'
import { decodeHandle, encodeHandle } from '../shared/handle-cookie.js'
import { acceptsHtml } from '../shared/http.js'
import type { RedisClient } from '../shared/redis.js'
import type { FactorStore } from './factors/factor-store.js'
import type { RelyingParty } from './factors/webauthn.js'
import type { PasskeyStore } from './factors/passkey-store.js'
import type { WebAuthnChallenges } from './factors/webauthn-challenges.js'

export interface IdpContext {
  readonly config: IdpConfig
  readonly sessions: Sessions
  readonly tokens: Tokens
  readonly userIndex: UserIndex
  /** Signs the identity in each new session (apps verify it with the public key). */
  readonly signer: IdentitySigningKey
  readonly allowList: AllowList
  readonly regulation: Regulation
  /** How long a sign-in answer takes when no password was checked. */
  readonly pace: AnswerPace
  readonly cookies: IdpCookies
  /** The audience the IdP's own handles are bound to: its public origin. */
  readonly audience: string
  /** For the small stores that need no class of their own (fresh-auth.ts, pending-sign-in.ts). */
  readonly redis: RedisClient
  /** Each user's second factors. */
  readonly factors: FactorStore
  /** Second-factor failures, counted per user apart from passwords, under the same limits. */
  readonly factorRegulation: Regulation
  /** Passkeys (WebAuthn): the relying party (the IdP), the users' credentials, the ceremonies' challenges. */
  readonly passkeys: { readonly rp: RelyingParty; readonly store: PasskeyStore; readonly challenges: WebAuthnChallenges }
}

export interface CurrentSession {
  readonly handle: Handle
  readonly cookieValue: string
  readonly session: SessionSnapshot
}

/** The IdP session the request's cookie opens, if any; with `token`, records a token id in the same round trip. */
export async function currentSession(
  ctx: IdpContext, req: FastifyRequest, token?: { id: string; ttlMs: number },
): Promise<CurrentSession | undefined> {
  const cookieValue = req.cookies[ctx.cookies.session]
  const handle = decodeHandle(cookieValue, ctx.config.sessionSecret, ctx.audience)
  if (handle === undefined || cookieValue === undefined) return undefined
  const session = await ctx.sessions.resolve(handle, ctx.audience, token)
  return session === undefined ? undefined : { handle, cookieValue, session }
}

export function setSessionCookie(ctx: IdpContext, reply: FastifyReply, handle: Handle): void {
  reply.setCookie(ctx.cookies.session, encodeHandle(handle, ctx.config.sessionSecret, ctx.audience), ctx.cookies.options)
}

export function clearSessionCookie(ctx: IdpContext, reply: FastifyReply): void {
  reply.clearCookie(ctx.cookies.session, ctx.cookies.options)
}

/** The hand-over state a remote put in its state cookie, when well formed. */
export function parseState(value: unknown): string | undefined {
  return isState(value) ? value : undefined
}

/**
 * The IdP is a web site: it answers HTML unless a client asks only for something else (an app's
 * 401s answer JSON by default instead, for their API clients: `acceptsHtml`).
 */
export function wantsHtml(req: FastifyRequest): boolean {
  const accept = req.headers.accept
  return accept === undefined || accept.includes('*/*') || acceptsHtml(accept)
}
