/** GET and POST /login: the form, the credential check, and the hand-over to an allowed callback. */
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify'
import { randomId } from '../../shared/crypto.js'
import { encodeCallback } from '../../shared/query.js'
import { BadCredentialsError, CsrfError, FactorUnavailableError } from '../../shared/errors.js'
import type { CallbackCheck } from '../allow-list.js'
import { claimedSid } from '../../shared/handle-cookie.js'
import { PRE_LOGIN_BYTES } from '../cookies.js'
import { clearSessionCookie, currentSession, parseState, type CurrentSession, type IdpContext } from '../context.js'
import { csrfToken, isValidCsrf } from '../csrf.js'
import { mintFor } from '../handover.js'
import { completeSignIn, handOver, handOverTo } from '../sign-in.js'
import { checkPassword } from '../password-check.js'
import { localReturn } from '../local-return.js'
import { isId, type SessionUser } from '../../shared/session.js'
import { renderHome } from './home.js'
import { startPending } from '../pending-sign-in.js'
import { factorCount, hasSecondFactor, secondStepFor } from '../second-factor-policy.js'
import { enrolmentKeyring } from '../factors/totp-enrolment.js'

/** `mfa=1`: the app that sent the user needs a second factor in the session (step-up). */
interface LoginQuery { callback?: unknown; state?: unknown; mfa?: unknown; next?: unknown }
interface LoginBody { username: string; password: string; callback?: string; state?: string; csrf?: string; mfa?: string; next?: string }

// Passwords over 1024 characters are refused before hashing (argon2 on megabytes is a DoS lever).
const loginBodySchema = {
  type: 'object',
  required: ['username', 'password'],
  properties: {
    username: { type: 'string', maxLength: 256 },
    password: { type: 'string', maxLength: 1024 },
    callback: { type: 'string', maxLength: 8192 },
    state: { type: 'string', maxLength: 256 },
    csrf: { type: 'string', maxLength: 128 },
    // Any other value of mfa or next is ignored, as on GET: within the form's size, never a 400.
    mfa: { type: 'string', maxLength: 8192 },
    next: { type: 'string', maxLength: 8192 },
  },
} as const

export const loginRoutes: FastifyPluginAsync<{ ctx: IdpContext }> = async (app, { ctx }) => {
  app.get<{ Querystring: LoginQuery }>('/login', async (req, reply) => {
    const callback = ctx.allowList.check(req.query.callback)
    const state = parseState(req.query.state)
    const mfa = req.query.mfa === '1'
    const target = callback.kind === 'allowed' && state !== undefined ? callback.url : undefined
    const sid = claimedSid(req.cookies[ctx.cookies.session])
    // With mfa=1 nothing is minted before the session is known to hold a second factor.
    const minted = target !== undefined && sid !== undefined && !mfa ? mintFor(ctx, sid, target, state as string) : undefined
    const next = localReturn(req.query.next)
    const current = await currentSession(ctx, req, minted && { id: minted.tokenId, ttlMs: minted.ttlMs })
    if (current !== undefined) {
      if (minted !== undefined) return handOver(reply, minted.location, 302)
      if (mfa && !hasSecondFactor(current.session.auth.methods)) return startStepUp(ctx, reply, current, callback, state)
      if (target !== undefined) return handOverTo(ctx, reply, current.session.sid, target, state as string, 302)
      if (next !== undefined && callback.kind === 'none') return reply.header('cache-control', 'no-store').redirect(next, 302)
      return renderHome(ctx, reply, current, noticeFor(callback, state))
    }
    return renderLogin(ctx, req, reply, { status: 200, callback, state, mfa, next, sessionGone: true })
  })

  app.post<{ Body: LoginBody }>('/login', { schema: { body: loginBodySchema } }, async (req, reply) => {
    const { username, password, csrf } = req.body
    const callback = ctx.allowList.check(req.body.callback)
    const state = parseState(req.body.state)
    const mfa = req.body.mfa === '1'
    const next = localReturn(req.body.next)
    if (!isValidCsrf(ctx.config.sessionSecret, 'login', req.cookies[ctx.cookies.preLogin], csrf)) {
      const err = new CsrfError('login form without a valid CSRF token')
      req.log.info({ code: err.code, detail: err.detail }, 'login rejected')
      return renderLogin(ctx, req, reply, { status: err.statusCode, callback, state, error: err.message, username, fresh: true, mfa, next })
    }
    const user = await checkPassword(ctx, req, username, password)
    if (typeof user === 'string') {
      const err = new BadCredentialsError(user === 'banned' ? 'throttled' : 'unknown user, wrong password or disabled account')
      req.log.info({ code: err.code, detail: err.detail }, 'login rejected')
      return renderLogin(ctx, req, reply, { status: err.statusCode, callback, state, error: err.message, username, mfa, next })
    }
    return afterPassword(ctx, req, reply, user, callback, state, mfa, next)
  })
}

/**
 * After a right password: sign in at once, or (a factor enrolled, policy requiring one, or the app
 * asking with mfa=1) hold the sign-in as pending and send the browser to its second step.
 */
async function afterPassword(
  ctx: IdpContext, req: FastifyRequest, reply: FastifyReply,
  user: SessionUser, callback: CallbackCheck, state: string | undefined, mfa: boolean, next?: string,
): Promise<FastifyReply> {
  const methods = [{ method: 'pwd' as const, at: Date.now() }]
  const policy = ctx.config.secondFactor
  if (mfa && policy.mode === 'off') throw new FactorUnavailableError('an app asked for a second factor while SECOND_FACTOR is off')
  const step = policy.mode === 'off' ? 'none' : secondStepFor(policy, user, await ctx.factors.enrolled(user.username), mfa)
  if (step === 'none') return completeSignIn(ctx, req, reply, user, methods, callback, state, next)
  // Enrolment that cannot happen (no FACTOR_KEYS) is refused now, not after a pending sign-in.
  if (step === 'enrol') enrolmentKeyring(ctx)
  await startPending(ctx, reply, { user, methods, ...pendingTarget(callback, state), ...(next === undefined ? {} : { next }) })
  return reply.header('cache-control', 'no-store').redirect('/login/second-factor', 303)
}

/** mfa=1 and the session lacks a second factor: ask for it, then add it to this same session. */
async function startStepUp(ctx: IdpContext, reply: FastifyReply, current: CurrentSession, callback: CallbackCheck, state: string | undefined): Promise<FastifyReply> {
  if (ctx.config.secondFactor.mode === 'off') throw new FactorUnavailableError('an app asked for a second factor while SECOND_FACTOR is off')
  const { user, auth, sid } = current.session
  if (factorCount(await ctx.factors.enrolled(user.username)) === 0) enrolmentKeyring(ctx)
  await startPending(ctx, reply, { user, methods: auth.methods, stepUp: sid, ...pendingTarget(callback, state) })
  return reply.header('cache-control', 'no-store').redirect('/login/second-factor', 303)
}

function pendingTarget(callback: CallbackCheck, state: string | undefined): { callback?: string; state?: string } {
  return callback.kind === 'allowed' && state !== undefined ? { callback: callback.url.href, state } : {}
}

export function noticeFor(callback: CallbackCheck, state: string | undefined): string | undefined {
  if (callback.kind === 'refused') return 'The application that sent you here is not on this sign-in service\'s list of allowed sites, so you will not be sent back to it.'
  if (callback.kind === 'allowed' && state === undefined) return 'The application that sent you here did not send a valid request, so you will not be sent back to it. Open the application again to retry.'
  return undefined
}

export interface LoginView {
  status: number
  callback: CallbackCheck
  state: string | undefined
  error?: string
  username?: string
  /** Issue a new pre-login cookie even if one came with the request. */
  fresh?: boolean
  /** Keep the app's mfa=1 through the form. */
  mfa?: boolean
  /** The IdP page to return to after signing in (local-return.ts). */
  next?: string
  /** The request's session cookie was read and opens no session: clear it. */
  sessionGone?: boolean
}

export async function renderLogin(ctx: IdpContext, req: FastifyRequest, reply: FastifyReply, view: LoginView): Promise<FastifyReply> {
  let pre = view.fresh === true ? undefined : req.cookies[ctx.cookies.preLogin]
  if (!isId(pre, PRE_LOGIN_BYTES)) {
    pre = randomId(PRE_LOGIN_BYTES)
    reply.setCookie(ctx.cookies.preLogin, pre, ctx.cookies.preLoginOptions)
  }
  // An expired or forged session cookie is cleared so the browser stops sending it. A refused post
  // (a stale form, a wrong password) keeps it: it may open a live session, which the next sign-in
  // ends (completeSignIn) and a logout must still find, never an orphan the browser forgot.
  if (view.sessionGone === true && req.cookies[ctx.cookies.session] !== undefined) clearSessionCookie(ctx, reply)
  const keep = view.callback.kind === 'allowed' && view.state !== undefined
  return reply.code(view.status).header('cache-control', 'no-store').view('login.eta', {
    title: 'Sign in',
    csrf: csrfToken(ctx.config.sessionSecret, 'login', pre),
    callback: keep && view.callback.kind === 'allowed' ? encodeCallback(view.callback.url.href) : '',
    callbackHost: keep && view.callback.kind === 'allowed' ? view.callback.url.host : '',
    state: keep ? view.state : '',
    notice: noticeFor(view.callback, view.state),
    error: view.error,
    username: view.username ?? '',
    mfa: view.mfa === true,
    next: view.next ?? '',
  })
}
