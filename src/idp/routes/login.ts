/** GET and POST /login: the form, the credential check, and the hand-over to an allowed callback. */
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify'
import { randomId } from '../../shared/crypto.js'
import { encodeCallback } from '../../shared/query.js'
import { BadCredentialsError, CsrfError } from '../../shared/errors.js'
import type { CallbackCheck } from '../allow-list.js'
import { claimedSid } from '../../shared/handle-cookie.js'
import { PRE_LOGIN_BYTES } from '../cookies.js'
import { clearSessionCookie, currentSession, parseState, type IdpContext } from '../context.js'
import { csrfToken, isValidCsrf } from '../csrf.js'
import { mintFor } from '../handover.js'
import { completeSignIn, handOver } from '../sign-in.js'
import { isKnownDevice } from '../known-device.js'
import { localReturn } from '../local-return.js'
import { isId, type SessionUser } from '../../shared/session.js'
import { renderHome } from './home.js'

interface LoginQuery { callback?: unknown; state?: unknown; next?: unknown }
interface LoginBody { username: string; password: string; callback?: string; state?: string; csrf?: string; next?: string }

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
    next: { type: 'string', maxLength: 64 },
  },
} as const

export const loginRoutes: FastifyPluginAsync<{ ctx: IdpContext }> = async (app, { ctx }) => {
  app.get<{ Querystring: LoginQuery }>('/login', async (req, reply) => {
    const callback = ctx.allowList.check(req.query.callback)
    const state = parseState(req.query.state)
    const target = callback.kind === 'allowed' && state !== undefined ? callback.url : undefined
    const sid = claimedSid(req.cookies[ctx.cookies.session])
    const minted = target !== undefined && sid !== undefined ? mintFor(ctx, sid, target, state as string) : undefined
    const next = localReturn(req.query.next)
    const current = await currentSession(ctx, req, minted && { id: minted.tokenId, ttlMs: minted.ttlMs })
    if (current !== undefined) {
      if (minted !== undefined) return handOver(reply, minted.location, 302)
      if (next !== undefined && callback.kind === 'none') return reply.header('cache-control', 'no-store').redirect(next, 302)
      return renderHome(ctx, reply, current, noticeFor(callback, state))
    }
    return renderLogin(ctx, req, reply, { status: 200, callback, state, next })
  })

  app.post<{ Body: LoginBody }>('/login', { schema: { body: loginBodySchema } }, async (req, reply) => {
    const { username, password, csrf } = req.body
    const callback = ctx.allowList.check(req.body.callback)
    const state = parseState(req.body.state)
    const next = localReturn(req.body.next)
    if (!isValidCsrf(ctx.config.sessionSecret, 'login', req.cookies[ctx.cookies.preLogin], csrf)) {
      const err = new CsrfError('login form without a valid CSRF token')
      req.log.info({ code: err.code, detail: err.detail }, 'login rejected')
      return renderLogin(ctx, req, reply, { status: err.statusCode, callback, state, error: err.message, username, fresh: true, next })
    }
    const user = await checkPassword(ctx, req, username, password)
    if (typeof user === 'string') {
      const err = new BadCredentialsError(user === 'banned' ? 'throttled' : 'unknown user, wrong password or disabled account')
      req.log.info({ code: err.code, detail: err.detail }, 'login rejected')
      return renderLogin(ctx, req, reply, { status: err.statusCode, callback, state, error: err.message, username, next })
    }
    return completeSignIn(ctx, req, reply, user, [{ method: 'pwd', at: Date.now() }], callback, state, next)
  })
}

/**
 * Regulation (ASVS V6.3.1) around the argon2 check: a banned attempt checks no password and is
 * answered after the same delay as a wrong one, with the same message. Redis down: 503, never an
 * unchecked sign-in.
 */
async function checkPassword(ctx: IdpContext, req: FastifyRequest, username: string, password: string): Promise<SessionUser | 'banned' | 'wrong'> {
  const knownDevice = isKnownDevice(ctx.config.sessionSecret, req.cookies[ctx.cookies.knownDevice], username)
  const permit = await ctx.regulation.admit(username, req.ip, knownDevice)
  if (permit === 'banned') {
    await ctx.pace.wait()
    return 'banned'
  }
  let user: SessionUser | undefined
  try {
    const started = performance.now()
    user = await ctx.config.users.verify(username, password)
    ctx.pace.record(performance.now() - started)
  } finally {
    await ctx.regulation.settle(permit, user !== undefined)
  }
  return user ?? 'wrong'
}

export function noticeFor(callback: CallbackCheck, state: string | undefined): string | undefined {
  if (callback.kind === 'refused') return 'The application that sent you here is not on this sign-in service\'s list of allowed sites, so you will not be sent back to it.'
  if (callback.kind === 'allowed' && state === undefined) return 'The application that sent you here did not send a valid request, so you will not be sent back to it. Open the application again to retry.'
  return undefined
}

interface LoginView {
  status: number
  callback: CallbackCheck
  state: string | undefined
  error?: string
  username?: string
  /** Issue a new pre-login cookie even if one came with the request. */
  fresh?: boolean
  /** The IdP page to return to after signing in (local-return.ts). */
  next?: string
}

async function renderLogin(ctx: IdpContext, req: FastifyRequest, reply: FastifyReply, view: LoginView): Promise<FastifyReply> {
  let pre = view.fresh === true ? undefined : req.cookies[ctx.cookies.preLogin]
  if (!isId(pre, PRE_LOGIN_BYTES)) {
    pre = randomId(PRE_LOGIN_BYTES)
    reply.setCookie(ctx.cookies.preLogin, pre, ctx.cookies.preLoginOptions)
  }
  // An expired or forged session cookie is cleared so the browser stops sending it.
  if (req.cookies[ctx.cookies.session] !== undefined) clearSessionCookie(ctx, reply)
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
    next: view.next ?? '',
  })
}
