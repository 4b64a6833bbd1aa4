/**
 * `tessera/remote`: sends an unknown user to the IdP, redeems the one-time token that comes back,
 * and restores the shared session from Redis on every request after.
 */
import fp from 'fastify-plugin'
import cookie from '@fastify/cookie'
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify'
import { varyOnCookie } from '../shared/http.js'
import { readyWhenRedisIs } from '../shared/redis-ready.js'
import { type CookieChange, type Decision } from './core.js'
import { resolveOptions, type ResolvedOptions, type TesseraRemoteOptions } from './options.js'
import { connectRedis, coreFor } from './setup.js'
import type { RedisClient } from '../shared/redis.js'
import { describesBody, errorAnswer, exposedError, type ErrorAnswer } from './pages.js'
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

const tesseraRemote: FastifyPluginAsync<TesseraRemoteOptions> = async (app, rawOpts) => {
  const opts = resolveOptions(rawOpts, { fastifyRegister: true })
  const core = coreFor(opts, connect(app, opts), app.log)
  if (!app.hasRequestDecorator('cookies')) await app.register(cookie)

  app.decorateRequest('session', null as unknown as TesseraSession)
  app.decorateReply('tesseraLogout', async function tesseraLogout(this: FastifyReply, callback?: string) {
    const session = this.request.session
    let out: Awaited<ReturnType<typeof core.logout>>
    try {
      out = await core.logout(session?.id, callback)
    } catch (err) {
      // Tessera's own answer (a Redis outage's 503 page or JSON), as the Express middleware gives.
      return sendAnswer(this, errorAnswer(this.request.headers.accept, exposedError(err)))
    }
    const { location, cookies } = out
    session?.end()
    applyCookies(this, opts, cookies)
    return this.header('cache-control', 'no-store').redirect(location, 303)
  })

  app.addHook('onRequest', async (req, reply) => {
    const decision = await core.decide({ method: req.method, url: req.url, accept: req.headers.accept, cookies: req.cookies })
    req.session = new TesseraSession(decision.session)
    return answer(req, reply, opts, decision)
  })

  // Callback style, not async: most requests change nothing, and then this costs no promise.
  app.addHook('onSend', (req, reply, payload, done) => {
    const session = req.session
    const sid = session?.id
    if (sid === undefined) { done(null, payload); return }
    keepOutOfCaches(reply)
    if (!session.changed) { done(null, payload); return }
    core.save(sid, session.takeChanges()).then(() => { done(null, payload) }, (err: unknown) => {
      // The answer the route built would claim a success that was not saved: Tessera's own error
      // answer instead (JSON or a page, as the Express middleware gives), not the app's error handler.
      req.log.warn({ err: { message: (err as Error).message } }, 'tessera: session data not saved')
      if (payload !== null && typeof (payload as { destroy?: unknown }).destroy === 'function') (payload as { destroy: () => void }).destroy()
      for (const name of Object.keys(reply.getHeaders())) if (describesBody(name)) reply.removeHeader(name)
      const page = errorAnswer(req.headers.accept, exposedError(err))
      reply.code(page.status).headers(page.headers)
      done(null, page.body)
    })
  })
}

/** The plugin's Redis client, closed with the app when the plugin connected it, and awaited before the app listens. */
export function connect(app: Parameters<FastifyPluginAsync>[0], opts: ResolvedOptions): RedisClient {
  const { redis, close } = connectRedis(opts, app.log)
  app.addHook('onClose', async () => { close() })
  readyWhenRedisIs(app, redis, 'tessera: ')
  return redis
}

/** Carries out a decision: nothing to send when the request goes on to the app's route. */
function answer(req: FastifyRequest, reply: FastifyReply, opts: ResolvedOptions, decision: Decision): FastifyReply | undefined {
  applyCookies(reply, opts, decision.cookies)
  if (decision.event !== undefined) req.log.info(`tessera: ${decision.event}`)
  if (decision.kind === 'continue') return undefined
  if (decision.kind === 'redirect') return reply.headers(decision.headers).redirect(decision.location, 302)
  const { error } = decision
  req.log.info({ code: error.code, detail: error.detail }, 'tessera: request rejected')
  return sendAnswer(reply, errorAnswer(req.headers.accept, error, decision.extra, decision.wayOn))
}

function sendAnswer(reply: FastifyReply, page: ErrorAnswer): FastifyReply {
  return reply.code(page.status).headers(page.headers).send(page.body)
}

// Straight into the reply's headers (set-cookie lines add up): @fastify/cookie's onSend keeps them
// beside any cookie the app sets itself.
function applyCookies(reply: FastifyReply, opts: ResolvedOptions, cookies: readonly CookieChange[]): void {
  for (const c of cookies) reply.header('set-cookie', opts.setCookie(c))
}

/**
 * An answer built with a session is personal: no shared or back/forward cache may keep it (ASVS
 * V14.3.2), unless the app chose its own Cache-Control. Vary: Cookie either way, since the cookie
 * picked what it shows.
 */
function keepOutOfCaches(reply: FastifyReply): void {
  if (!reply.hasHeader('cache-control')) reply.header('cache-control', 'no-store')
  const vary = reply.getHeader('vary')
  reply.header('vary', varyOnCookie(Array.isArray(vary) ? vary.join(', ') : vary === undefined ? undefined : String(vary)))
}

export default fp(tesseraRemote, { name: 'tessera-remote', fastify: '5.x' })
