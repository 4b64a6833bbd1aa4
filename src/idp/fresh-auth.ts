/**
 * "The password was typed again within the last 5 minutes" for one session: what every change to a
 * user's factors needs (ASVS V6.2.x/V7.5.1-style re-authentication before a sensitive change), so a
 * browser left signed in cannot have a factor added or removed by whoever sits at it.
 *
 * Exported for other factor modules: `hasFreshAuth(ctx, sid)`, `markFreshAuth(ctx, sid)` (after a
 * password or passkey check), `confirmPassword(ctx, req, current, password)` (the password typed
 * again, checked and marked) and `requireFreshAuth(ctx, req, csrf)` (the guard of every POST).
 */
import type { FastifyRequest } from 'fastify'
import { keys } from '../shared/keys.js'
import { inStore } from '../shared/redis.js'
import { BadCredentialsError, CsrfError, ReauthRequiredError, UnauthenticatedError } from '../shared/errors.js'
import { currentSession, type CurrentSession, type IdpContext } from './context.js'
import { isValidCsrf } from './csrf.js'
import { checkPassword } from './password-check.js'

export const FRESH_AUTH_MS = 5 * 60_000

export async function hasFreshAuth(ctx: IdpContext, sid: string): Promise<boolean> {
  return (await inStore(() => ctx.redis.exists(keys.freshAuth(sid)))) === 1
}

export async function markFreshAuth(ctx: IdpContext, sid: string): Promise<void> {
  await inStore(() => ctx.redis.set(keys.freshAuth(sid), '1', 'PX', FRESH_AUTH_MS))
}

/**
 * The session's own user typing the password again, regulated as the login form is: marks the session
 * fresh, or resolves to the error to show (logged here, without the password).
 */
export async function confirmPassword(ctx: IdpContext, req: FastifyRequest, current: CurrentSession, password: string): Promise<BadCredentialsError | undefined> {
  const user = await checkPassword(ctx, req, current.session.user.username, password)
  if (typeof user === 'string') {
    const err = new BadCredentialsError(user === 'banned' ? 'throttled' : 'wrong password at re-authentication')
    req.log.info({ code: err.code, detail: err.detail }, 're-authentication rejected')
    return err
  }
  await markFreshAuth(ctx, current.session.sid)
  return undefined
}

/**
 * The guard of every change on the security page: a session (401), the form's CSRF token bound to
 * the session cookie (403), a fresh password (403). Resolves to the session.
 */
export async function requireFreshAuth(ctx: IdpContext, req: FastifyRequest, csrf: unknown): Promise<CurrentSession> {
  const current = await currentSession(ctx, req)
  if (current === undefined) throw new UnauthenticatedError()
  if (!isValidCsrf(ctx.config.sessionSecret, 'security', current.cookieValue, csrf)) throw new CsrfError('security form without a valid CSRF token')
  if (!(await hasFreshAuth(ctx, current.session.sid))) throw new ReauthRequiredError('no password typed in the last 5 minutes')
  return current
}
