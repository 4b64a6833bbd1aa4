/**
 * A sign-in between its password and its second factor (or, at step-up, a session waiting for its
 * second factor): in Redis for 5 minutes (`keys.pendingSignIn`), bound to this browser by the random
 * cookie `tessera_2fa` (only its hash names the key), used once. No session and no hand-over token
 * exist until `finishPending`, which calls `completeSignIn` (sign-in.ts), the one place they are made.
 *
 * For the factor modules (TOTP here, passkeys next):
 *   startPending(ctx, reply, pending)   stores it and sets the cookie; then send the browser to
 *                                       /login/second-factor
 *   readPending(ctx, req)               { id, pending } for this browser, or undefined (not consumed)
 *   updatePending(ctx, id, pending)     rewrites it, TTL kept (e.g. a factor enrolled on the way)
 *   whileClaimed(ctx, id, check)        runs `check` (spending a code, then finishPending) with the
 *                                       sign-in claimed: a concurrent answer is refused before it spends
 *   finishPending(ctx, req, reply, m)   consumes it (GETDEL: one caller only) once the factor `m`
 *                                       ('otp' or 'hwk') was checked, and signs in (or, at step-up,
 *                                       adds `m` to the session) and hands over to the callback
 */
import type { FastifyReply, FastifyRequest } from 'fastify'
import { randomId } from '../shared/crypto.js'
import { keys } from '../shared/keys.js'
import { inStore } from '../shared/redis.js'
import { isId, type SessionUser } from '../shared/session.js'
import type { AuthMethod, AuthMethodName } from '../shared/identity.js'
import { SignInExpiredError } from '../shared/errors.js'
import { SECOND_FACTOR_MAX_AGE_S } from './cookies.js'
import { currentSession, type IdpContext } from './context.js'
import { completeSignIn, handOverTo } from './sign-in.js'
import { localReturn } from './local-return.js'

const PENDING_BYTES = 32

export interface PendingSignIn {
  readonly user: SessionUser
  /** How the user proved who they are so far (the password, with when). */
  readonly methods: readonly AuthMethod[]
  /** The allowed callback (href) and the app's state, when an app sent the user. */
  readonly callback?: string
  readonly state?: string
  /** The IdP page to return to when no app sent the user (local-return.ts; checked again at the end). */
  readonly next?: string
  /** Step-up: the session that gets the factor, instead of a new sign-in. */
  readonly stepUp?: string
  /** A factor was enrolled on the way and checked with its first code: only "continue" is left. */
  readonly verified?: AuthMethodName
}

export async function startPending(ctx: IdpContext, reply: FastifyReply, pending: PendingSignIn): Promise<string> {
  const id = randomId(PENDING_BYTES)
  await inStore(() => ctx.redis.set(keys.pendingSignIn(id), JSON.stringify(pending), 'EX', SECOND_FACTOR_MAX_AGE_S))
  reply.setCookie(ctx.cookies.secondFactor, id, ctx.cookies.secondFactorOptions)
  return id
}

export async function readPending(ctx: IdpContext, req: FastifyRequest): Promise<{ id: string; pending: PendingSignIn } | undefined> {
  const id = req.cookies[ctx.cookies.secondFactor]
  if (!isId(id, PENDING_BYTES)) return undefined
  const raw = await inStore(() => ctx.redis.get(keys.pendingSignIn(id)))
  const pending = parse(raw)
  return pending === undefined ? undefined : { id, pending }
}

/** Rewrites a pending sign-in that still exists, keeping its expiry. */
export async function updatePending(ctx: IdpContext, id: string, pending: PendingSignIn): Promise<boolean> {
  return (await inStore(() => ctx.redis.set(keys.pendingSignIn(id), JSON.stringify(pending), 'KEEPTTL', 'XX'))) === 'OK'
}

const CLAIM_MS = 10_000

/**
 * Runs `check` while the pending sign-in `id` is claimed, so that of two answers posted at once for
 * one sign-in (a double submit, or a guesser racing the user) only one spends a code: the other is
 * refused before it touches a factor, as it would be once the first has ended the sign-in. Without
 * the claim, the loser's recovery code or TOTP step was used up by a request that then found the
 * sign-in gone. The claim lapses after 10 s if this process dies holding it.
 */
export async function whileClaimed<T>(ctx: IdpContext, id: string, check: () => Promise<T>): Promise<T> {
  const key = keys.pendingClaim(id)
  if ((await inStore(() => ctx.redis.set(key, '1', 'PX', CLAIM_MS, 'NX'))) !== 'OK') {
    throw new SignInExpiredError('another answer for this sign-in is being checked')
  }
  try {
    return await check()
  } finally {
    // A release that fails leaves the claim to lapse; the answer already decided stands.
    await inStore(() => ctx.redis.del(key)).catch(() => undefined)
  }
}

/**
 * Consumes the browser's pending sign-in after its second factor `method` was checked, and ends it:
 * a new session and the hand-over (completeSignIn), or at step-up the method added to the same
 * session and a new hand-over. A second call for the same sign-in finds nothing: SignInExpiredError.
 */
export async function finishPending(ctx: IdpContext, req: FastifyRequest, reply: FastifyReply, method: AuthMethodName): Promise<FastifyReply> {
  const id = req.cookies[ctx.cookies.secondFactor]
  const pending = isId(id, PENDING_BYTES) ? parse(await inStore(() => ctx.redis.getdel(keys.pendingSignIn(id)))) : undefined
  reply.clearCookie(ctx.cookies.secondFactor, ctx.cookies.options)
  if (pending === undefined) throw new SignInExpiredError('no pending sign-in at its last step')
  const given: AuthMethod = { method, at: Date.now() }
  const callback = pending.callback === undefined ? ctx.allowList.check(undefined) : ctx.allowList.checkUrl(pending.callback)
  if (pending.stepUp === undefined) {
    return completeSignIn(ctx, req, reply, pending.user, [...pending.methods, given], callback, pending.state, localReturn(pending.next))
  }
  // Step-up: the factor goes to the session this browser still holds, never to another one.
  const current = await currentSession(ctx, req)
  if (current?.session.sid !== pending.stepUp || !(await ctx.sessions.addMethod(pending.stepUp, given, ctx.signer))) {
    throw new SignInExpiredError('the session to step up ended or changed')
  }
  req.log.info({ user: pending.user.username, amr: method }, 'second factor added to the session')
  if (callback.kind === 'allowed' && pending.state !== undefined) return handOverTo(ctx, reply, pending.stepUp, callback.url, pending.state, 303)
  return reply.redirect('/', 303)
}

function parse(raw: string | null): PendingSignIn | undefined {
  if (raw === null) return undefined
  try {
    const p = JSON.parse(raw) as PendingSignIn
    return typeof p?.user?.username === 'string' && Array.isArray(p.methods) ? p : undefined
  } catch {
    return undefined
  }
}
