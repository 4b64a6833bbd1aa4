/**
 * `tessera/remote`: sends an unknown user to the IdP, redeems the one-time token that comes back,
 * and restores the shared session from Redis on every request after.
 */
import fp from 'fastify-plugin'
import cookie from '@fastify/cookie'
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify'
import { randomId, safeEqual } from '../shared/crypto.js'
import { InvalidTokenError, TesseraError, UnauthenticatedError } from '../shared/errors.js'
import { decodeHandle, encodeHandle } from '../shared/handle-cookie.js'
import { encodeCallback, replaceQueryParam } from '../shared/query.js'
import { createRedis, readyWhenRedisIs, type RedisClient, type RedisConnection } from '../shared/redis.js'
import { SessionStore, type SessionSnapshot } from '../shared/session-store.js'
import { openToken } from '../shared/token.js'
import { resolveOptions, type ResolvedOptions, type TesseraRemoteOptions } from './options.js'
import { sendError } from './pages.js'
import { TesseraSession } from './session.js'

declare module 'fastify' {
  interface FastifyRequest {
    /** The shared Tessera session; `session.user` is set on every protected route. */
    session: TesseraSession
  }
  interface FastifyReply {
    /**
     * Ends the shared session everywhere (every app and the IdP) and redirects (303) to `callback`:
     * a path or URL on this app's origin or the IdP's; anything else goes to `/`.
     */
    tesseraLogout(callback?: string): Promise<FastifyReply>
  }
}

/** How long a user may spend at the IdP's login form before the state cookie lapses. */
const STATE_MAX_AGE_S = 15 * 60
const STATE = /^[A-Za-z0-9_-]{43}$/

const tesseraRemote: FastifyPluginAsync<TesseraRemoteOptions> = async (app, rawOpts) => {
  const opts = resolveOptions(rawOpts)
  // Duck-typed, not instanceof: the app's ioredis may be another copy than ours.
  const owned = typeof (opts.redis as Partial<RedisClient>).defineCommand !== 'function'
  const redis: RedisClient = owned ? createRedis(opts.redis as string | RedisConnection) : (opts.redis as RedisClient)
  if (owned) {
    redis.on('error', (err: Error) => app.log.warn({ err: { message: err.message } }, 'tessera: redis connection error'))
    app.addHook('onClose', async () => { redis.disconnect() })
  }
  readyWhenRedisIs(app, redis, 'tessera: ')
  const store = new SessionStore(redis, { waitReplicas: opts.waitReplicas })
  if (!app.hasRequestDecorator('cookies')) await app.register(cookie)

  app.decorateRequest('session', null as unknown as TesseraSession)
  app.decorateReply('tesseraLogout', async function tesseraLogout(this: FastifyReply, callback?: string) {
    const session = this.request.session
    if (session?.id !== undefined) await store.destroy(session.id)
    session?.end()
    this.clearCookie(opts.cookieName, opts.cookie)
    return this.header('cache-control', 'no-store').redirect(logoutTarget(opts, callback), 303)
  })

  app.addHook('onRequest', async (req, reply) => {
    req.session = new TesseraSession()
    try {
      return await restoreOrRedirect(opts, store, req, reply)
    } catch (err) {
      if (!(err instanceof TesseraError) || !err.expose) throw err
      req.log.info({ code: err.code, detail: err.detail }, 'tessera: request rejected')
      return sendError(req, reply, err, {}, err instanceof InvalidTokenError ? { href: cleanUrl(opts, req), label: 'Try again' } : undefined)
    }
  })

  // Callback style, not async: most requests change nothing, and then this costs no promise.
  app.addHook('onSend', (req, reply, payload, done) => {
    const session = req.session
    const sid = session?.id
    if (sid === undefined) { done(null, payload); return }
    keepOutOfCaches(reply)
    if (!session.changed) { done(null, payload); return }
    store.save(sid, session.takeChanges()).then(() => { done(null, payload) }, done)
  })
}

async function restoreOrRedirect(opts: ResolvedOptions, store: SessionStore, req: FastifyRequest, reply: FastifyReply): Promise<FastifyReply | undefined> {
  // req.url is origin-form ("/path?query") for every request a browser sends; anything else is not ours to serve.
  if (!req.url.startsWith('/')) return sendError(req, reply, new TesseraError('TESSERA_ERR_BAD_REQUEST', 400, 'Bad request.'))
  const cookieValue = req.cookies[opts.cookieName]
  const handle = decodeHandle(cookieValue, opts.sessionSecret, opts.origin)
  const snapshot = handle === undefined ? undefined : await store.resolve(handle, opts.origin)
  const token = (req.query as Record<string, unknown> | undefined)?.token
  if (snapshot !== undefined) {
    req.session = new TesseraSession(snapshot)
    // Already signed in here: drop a stray token from the address bar without spending it.
    if (token !== undefined && isNavigation(req)) return reply.redirect(cleanUrl(opts, req), 302)
    return undefined
  }
  if (cookieValue !== undefined) reply.clearCookie(opts.cookieName, opts.cookie)
  if (token !== undefined) return redeem(opts, store, req, reply, token)
  if (opts.isPublic(pathOf(req.url))) return undefined
  return askToSignIn(opts, req, reply)
}

async function redeem(opts: ResolvedOptions, store: SessionStore, req: FastifyRequest, reply: FastifyReply, token: unknown): Promise<FastifyReply> {
  if (typeof token !== 'string') throw new InvalidTokenError('token parameter repeated')
  if (req.method !== 'GET' && req.method !== 'HEAD') throw new InvalidTokenError(`token on a ${req.method}`)
  const claims = openToken(opts.keyring, token, opts.origin)
  const state = req.cookies[opts.stateCookieName]
  if (state === undefined || !safeEqual(state, claims.st)) throw new InvalidTokenError('state does not match this browser')
  const result = await store.redeem(claims.sid, claims.jti, opts.origin)
  if (result === 'replayed') throw new InvalidTokenError('token used before, expired or never minted')
  if (result === 'gone') throw new InvalidTokenError('session ended')
  req.session = new TesseraSession(result.session as SessionSnapshot)
  req.log.info('tessera: session handed over')
  reply.setCookie(opts.cookieName, encodeHandle(result.handle, opts.sessionSecret, opts.origin), opts.cookie)
  reply.clearCookie(opts.stateCookieName, opts.cookie)
  // Back to the same URL without the token, so it never stays in the address bar, history or a Referer.
  return reply.header('cache-control', 'no-store').header('referrer-policy', 'no-referrer').redirect(cleanUrl(opts, req), 302)
}

function askToSignIn(opts: ResolvedOptions, req: FastifyRequest, reply: FastifyReply): FastifyReply {
  // Reuse a live state so two tabs signing in at once do not invalidate each other's token.
  let state = req.cookies[opts.stateCookieName]
  if (state === undefined || !STATE.test(state)) {
    state = randomId(32)
    reply.setCookie(opts.stateCookieName, state, { ...opts.cookie, maxAge: STATE_MAX_AGE_S })
  }
  // The way back after sign-in is a GET: a GET comes back to where it was; a POST (a form sent after
  // the session lapsed) cannot be replayed, so it comes back to the app's start page.
  const back = req.method === 'GET' || req.method === 'HEAD' ? req.url : '/'
  const loginUrl = `${opts.idpUrl}/login?callback=${encodeCallback(`${opts.origin}${back}`)}&state=${state}`
  if (!isNavigation(req)) return sendError(req, reply, new UnauthenticatedError(), { loginUrl }, { href: loginUrl, label: 'Sign in' })
  return reply.header('cache-control', 'no-store').redirect(loginUrl, 302)
}

/**
 * An answer built with a session is personal: no shared or back/forward cache may keep it (ASVS
 * V14.3.2), unless the app chose its own Cache-Control. Vary: Cookie either way, since the cookie
 * picked what it shows.
 */
function keepOutOfCaches(reply: FastifyReply): void {
  if (!reply.hasHeader('cache-control')) reply.header('cache-control', 'no-store')
  const vary = reply.getHeader('vary')
  const current = Array.isArray(vary) ? vary.join(', ') : vary === undefined ? '' : String(vary)
  if (current === '') reply.header('vary', 'Cookie')
  else if (!/(^|,)\s*(cookie|\*)\s*(,|$)/i.test(current)) reply.header('vary', `${current}, Cookie`)
}

/** A browser navigation: GET or HEAD that accepts HTML. Anything else gets a 401 (JSON, or a page with a sign-in link), not a redirect. */
function isNavigation(req: FastifyRequest): boolean {
  return (req.method === 'GET' || req.method === 'HEAD') && (req.headers.accept ?? '').includes('text/html')
}

/** This request's absolute URL on our own origin, without `token`. Absolute, so a `//host` path cannot leave the origin. */
function cleanUrl(opts: ResolvedOptions, req: FastifyRequest): string {
  const q = req.url.indexOf('?')
  if (q < 0) return `${opts.origin}${req.url}`
  return `${opts.origin}${req.url.slice(0, q)}${replaceQueryParam(req.url.slice(q), 'token')}`
}

function pathOf(url: string): string {
  const q = url.indexOf('?')
  return q < 0 ? url : url.slice(0, q)
}

function logoutTarget(opts: ResolvedOptions, callback: string | undefined): string {
  if (callback === undefined) return `${opts.origin}/`
  try {
    const url = new URL(callback, `${opts.origin}/`)
    if (url.origin === opts.origin || url.origin === opts.idpUrl) return url.href
  } catch { /* falls through */ }
  return `${opts.origin}/`
}


export default fp(tesseraRemote, { name: 'tessera-remote', fastify: '5.x' })
