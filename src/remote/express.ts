/**
 * `tessera/express`: the remote side as Express 5 middleware, with the Fastify plugin's options and
 * behaviour. It builds the core's plain request, calls `RemoteCore.decide()` and carries out the
 * decision (cookies, redirect, error answer); the order of checks lives in core.ts only. Express is
 * only a type here: nothing of it is loaded at run time, by this module or by `tessera/remote`.
 */
import type { NextFunction, Request, RequestHandler, Response } from 'express'
import { parseCookie } from 'cookie'
import { pino } from 'pino'
import { TesseraError } from '../shared/errors.js'
import { varyOnCookie } from '../shared/http.js'
import { loggerOptions } from '../shared/logger.js'
import { waitForRedis } from '../shared/redis.js'
import type { CookieChange, Decision, RemoteCore } from './core.js'
import { resolveOptions, type ResolvedOptions, type TesseraRemoteOptions } from './options.js'
import { describesBody, errorAnswer, exposedError } from './pages.js'
import { TesseraSession } from './session.js'
import { connectRedis, coreFor, type RemoteLog } from './setup.js'

export type { TesseraRemoteOptions, TesseraCookieOptions } from './options.js'
export { TesseraSession, type TesseraUser } from './session.js'
export type { SessionAuth as TesseraAuth } from '../shared/session.js'
export { TesseraError } from '../shared/errors.js'
export { loggerOptions as tesseraLoggerOptions } from '../shared/logger.js'
export type { RemoteLog as TesseraLogger } from './setup.js'

declare global {
  // eslint-disable-next-line @typescript-eslint/no-namespace -- Express's own way to type what middleware adds to a request
  namespace Express {
    interface Request {
      /** The shared Tessera session; `session.user` is set on every protected route. */
      session: TesseraSession
    }
  }
}

export interface TesseraExpressOptions extends TesseraRemoteOptions {
  /**
   * Where the middleware logs (hand-overs and refusals at info, problems at warn): a pino logger, or
   * anything with `info(obj, msg)` and `warn(obj, msg)`. Default: pino on standard output at `warn`,
   * with Tessera's redaction. Never given a token, cookie or session id.
   */
  logger?: RemoteLog
}

/** The middleware, with what an app needs beside it. */
export interface TesseraMiddleware extends RequestHandler {
  /**
   * A route handler that ends the shared session everywhere (every app and the IdP) and redirects
   * (303) to `callback`: a path or URL on this app's origin or the IdP's; anything else goes to `/`.
   */
  logout(callback?: string): RequestHandler
  /** Resolves true once Redis answers, or false after 2 s (requests get 503 until it does). Await it before `listen()`. */
  ready(): Promise<boolean>
  /** Disconnects the Redis client the middleware connected from a URL; an ioredis instance you gave stays yours. */
  close(): Promise<void>
}

/**
 * Express 5 middleware for a Tessera remote app: `app.use(tesseraExpress(options))` before the routes.
 * @throws OptionsError (`TESSERA_ERR_OPTIONS`) listing every bad option.
 */
export function tesseraExpress(options: TesseraExpressOptions): TesseraMiddleware {
  const { logger, ...remoteOptions } = options
  const log: RemoteLog = logger ?? pino(loggerOptions('warn'))
  const opts = resolveOptions(remoteOptions)
  const { redis, close } = connectRedis(opts, log)
  const core = coreFor(opts, redis, log)

  const middleware = async (req: Request, res: Response, next: NextFunction): Promise<void> => {
    let decision: Decision
    try {
      decision = await core.decide({ method: req.method, url: req.originalUrl, accept: req.headers.accept, cookies: parseCookie(req.headers.cookie ?? '') })
    } catch (err) {
      // Not one of Tessera's answers: never Express's default page, which shows a stack outside production.
      log.warn({ err: { message: (err as Error).message } }, 'tessera: request failed')
      sendError(res, req.headers.accept, exposedError(err))
      return
    }
    req.session = new TesseraSession(decision.session)
    applyCookies(res, opts, decision.cookies)
    if (decision.event !== undefined) log.info({}, `tessera: ${decision.event}`)
    if (decision.session !== undefined) saveByTheEnd(req, res, core, log)
    if (decision.kind === 'continue') { next(); return }
    if (decision.kind === 'redirect') {
      // As the core wrote it: Express's res.redirect() would re-encode the URL and add a body.
      setHeaders(res.status(302), { ...decision.headers, location: decision.location })
      res.end()
      return
    }
    log.info({ code: decision.error.code, detail: decision.error.detail }, 'tessera: request rejected')
    sendError(res, req.headers.accept, decision.error, decision.extra, decision.wayOn)
  }

  const logout = (callback?: string): RequestHandler => async (req, res) => {
    const session = req.session as TesseraSession | undefined
    let out: Awaited<ReturnType<RemoteCore['logout']>>
    try {
      out = await core.logout(session?.id, callback)
    } catch (err) {
      sendError(res, req.headers.accept, exposedError(err))
      return
    }
    session?.end()
    applyCookies(res, opts, out.cookies)
    res.status(303).setHeader('cache-control', 'no-store')
    res.setHeader('location', out.location)
    res.end()
  }

  return Object.assign(middleware, {
    logout,
    ready: async () => {
      const up = await waitForRedis(redis)
      if (!up) log.warn({}, 'tessera: redis is not reachable yet: answering 503 until it is')
      return up
    },
    close: async () => { close() },
  })
}

export default tesseraExpress

/**
 * Writes the session's changes before the response ends, and keeps a personal answer out of shared
 * and back/forward caches (ASVS V14.3.2) unless the app chose its own Cache-Control, as the Fastify
 * plugin's onSend hook does. `writeHead` is where Node sends the headers, explicitly or from the
 * first write or `end`, so the cache headers go there; `end` waits for Redis, so a response is only
 * complete once its data is saved.
 */
function saveByTheEnd(req: Request, res: Response, core: RemoteCore, log: RemoteLog): void {
  const writeHead = res.writeHead
  res.writeHead = function (this: Response, ...args: Parameters<Response['writeHead']>) {
    if (req.session.id !== undefined) keepOutOfCaches(this)
    return writeHead.apply(this, args)
  } as Response['writeHead']
  const end = res.end
  res.end = function (this: Response, ...args: Parameters<Response['end']>) {
    const session = req.session
    const sid = session.id
    if (sid === undefined || !session.changed) return end.apply(this, args)
    core.save(sid, session.takeChanges()).then(() => { end.apply(this, args) }, (err: unknown) => {
      log.warn({ err: { message: (err as Error).message } }, 'tessera: session data not saved')
      if (this.headersSent) { this.destroy(); return } // a streamed answer cannot turn into an error page now
      for (const name of this.getHeaderNames()) if (describesBody(name)) this.removeHeader(name)
      const page = errorAnswer(req.headers.accept, exposedError(err))
      setHeaders(this.status(page.status), page.headers)
      const endWith = end as (this: Response, body: string) => Response
      endWith.call(this, page.body)
    })
    return this
  } as Response['end']
}

function keepOutOfCaches(res: Response): void {
  if (!res.hasHeader('cache-control')) res.setHeader('cache-control', 'no-store')
  const vary = res.getHeader('vary')
  res.setHeader('vary', varyOnCookie(Array.isArray(vary) ? vary.join(', ') : vary === undefined ? undefined : String(vary)))
}

function sendError(res: Response, accept: string | undefined, error: TesseraError, extra?: Readonly<Record<string, string>>, wayOn?: Parameters<typeof errorAnswer>[3]): void {
  const page = errorAnswer(accept, error, extra, wayOn)
  setHeaders(res.status(page.status), page.headers)
  res.end(page.body)
}

/** Headers exactly as given (Express's `res.set` rewrites a Content-Type). */
function setHeaders(res: Response, headers: Readonly<Record<string, string>>): void {
  for (const [name, value] of Object.entries(headers)) res.setHeader(name, value)
}

/** Redis being down is a 503 Tessera already words; anything else is answered without its message. */
/** The cookie changes of a decision, with this app's attributes. */
function applyCookies(res: Response, opts: ResolvedOptions, cookies: readonly CookieChange[]): void {
  for (const c of cookies) res.append('set-cookie', opts.setCookie(c))
}
