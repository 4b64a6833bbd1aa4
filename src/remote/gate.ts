/**
 * The forward-auth gate: a small Fastify process beside nginx, Caddy or Traefik that answers, for an
 * app that knows nothing of Tessera, whether a request may go on. It is one more adapter of the core:
 * it reads the original request from the trusted proxy's headers (forwarded.ts), asks
 * `RemoteCore.decide()` for that host, and turns the decision into what the proxy understands:
 *   - `/api/authz/forward-auth` (Caddy, Traefik): 200 with `Remote-*` headers, or the core's own answer
 *     (302 with Set-Cookie, 401 JSON, 403), which those proxies hand to the browser as it is;
 *   - `/api/authz/auth-request` (nginx): 200 with `Remote-*` headers; a redirect as 401 with
 *     `Location` and the cookies as `Tessera-Set-Cookie-<n>` (nginx keeps only 2xx, 401 and 403 of an
 *     auth subrequest, and nginx 1.22 reads only the first Set-Cookie), which the snippet turns into a
 *     302; 401 without Location for a non-navigation; 403 for a bad token;
 *   - `/api/authz/logout` (POST, mapped by the proxy on each host): ends the session everywhere;
 *   - `/healthz` (buildGate's app only): 200 while the process runs, for a container's health check.
 * Each protected host gets its own core, with its own origin, app keys and handle cookie: the gate holds
 * only the keys of the hosts it protects, as each Fastify app holds only its own.
 */
import Fastify, { type FastifyInstance, type FastifyPluginAsync, type FastifyReply, type FastifyRequest, type FastifyServerOptions } from 'fastify'
import cookie from '@fastify/cookie'
import { BadRequestError, ForwardAuthError, NotFoundError, OptionsError, TesseraError } from '../shared/errors.js'
import { clientErrorHandler } from '../shared/client-error.js'
import { requestTimeoutOptions } from '../shared/request-timeout.js'
import { loggerOptions } from '../shared/logger.js'
import type { RedisClient, RedisConnection } from '../shared/redis.js'
import { readyWhenRedisIs } from '../shared/redis-ready.js'
import type { SessionSnapshot } from '../shared/session.js'
import type { CookieChange, Decision, RemoteCore } from './core.js'
import { originalRequest, parseProxies, type ProxyStyle, type ProxyTrust } from './forwarded.js'
import { resolveOptions, type ResolvedOptions, type TesseraCookieOptions, type TesseraRemoteOptions } from './options.js'
import { errorAnswer } from './pages.js'
import { connectRedis, coreFor } from './setup.js'

export interface TesseraGateHost {
  /** The protected app's public origin, exactly as in the IdP's KNOWN_REMOTE_HOSTS. */
  origin: string
  /** That origin's keys, as `npx tessera app-key <origin>` prints them. */
  appKeys: string | readonly string[]
  /** That host's handle cookie; defaults as for the plugin (`tessera`, `__Host-tessera` on https). */
  cookie?: TesseraCookieOptions
  /** As the plugin's: `required` lets only sessions with a second factor through (the IdP steps up the rest). */
  secondFactor?: 'optional' | 'required'
}

export interface TesseraGateOptions {
  /** The IdP's public base URL. */
  idpUrl: string
  /** As the plugin's `redis` option. */
  redis: string | RedisConnection | RedisClient
  /** At least 32 characters; signs every protected host's handle cookie (each bound to its origin). */
  sessionSecret: string
  /** The hosts this gate protects, each with its own app keys. */
  hosts: readonly TesseraGateHost[]
  /**
   * The proxies whose X-Forwarded-* / X-Original-* headers are believed: IP addresses or CIDR ranges,
   * comma-separated or a list. Empty refuses every request (TESSERA_ERR_FORWARD_AUTH).
   */
  proxies: string | readonly string[]
  /** As the plugin's `waitReplicas`. */
  waitReplicas?: number
}

/** The headers a signed-in answer carries: Authelia's names, so existing snippets and apps work. */
export const REMOTE_HEADERS = ['remote-user', 'remote-groups', 'remote-name', 'remote-email', 'remote-auth-methods'] as const

interface Host {
  readonly opts: ResolvedOptions
  readonly core: RemoteCore
}

interface Resolved {
  /** Each host's checked options. */
  readonly hosts: ReadonlyMap<string, { readonly resolved: ResolvedOptions }>
  readonly trust: ProxyTrust
}

const GATE_WIDE = /^(idpUrl|sessionSecret|redis|waitReplicas)\b/

/** Checks the gate's options; every problem at once, as the plugin does. */
export function resolveGateOptions(raw: Partial<TesseraGateOptions> | undefined): Resolved {
  const o = raw ?? {}
  const problems: string[] = []
  const hosts = new Map<string, { resolved: ResolvedOptions }>()
  if (!Array.isArray(o.hosts) || o.hosts.length === 0) problems.push('hosts: at least one { origin, appKeys } is required')
  for (const [i, h] of (Array.isArray(o.hosts) ? o.hosts as TesseraGateHost[] : []).entries()) {
    const raw: Partial<TesseraRemoteOptions> = {
      idpUrl: o.idpUrl, origin: h?.origin, appKeys: h?.appKeys, redis: o.redis, sessionSecret: o.sessionSecret,
      ...(h?.cookie === undefined ? {} : { cookie: h.cookie }), ...(h?.secondFactor === undefined ? {} : { secondFactor: h.secondFactor }),
      ...(o.waitReplicas === undefined ? {} : { waitReplicas: o.waitReplicas }),
    }
    try {
      const resolved = resolveOptions(raw)
      if (hosts.has(resolved.origin)) problems.push(`hosts[${i}]: ${resolved.origin} is listed twice`)
      hosts.set(resolved.origin, { resolved })
    } catch (err) {
      if (!(err instanceof OptionsError)) throw err
      // The options all hosts share are named once, without the host.
      problems.push(...err.problems.map((p) => (GATE_WIDE.test(p) ? p : `hosts[${i}].${p}`)))
    }
  }
  const proxies = o.proxies
  const trust = typeof proxies === 'string' || Array.isArray(proxies)
    ? parseProxies(proxies as string | readonly string[], 'proxies', problems)
    : (problems.push('proxies: required, the addresses of the proxies that call the gate (an empty list refuses all)'), undefined)
  if (problems.length > 0 || trust === undefined) throw new OptionsError([...new Set(problems)])
  return { hosts, trust }
}

/** The gate's routes, for a Fastify app of its own (buildGate) or one you build. */
export const tesseraGate: FastifyPluginAsync<TesseraGateOptions> = async (app, rawOpts) => {
  const { hosts: resolved, trust } = resolveGateOptions(rawOpts)
  // One Redis client for every host (they share the gate's redis option), closed with the gate.
  const [first] = resolved.values()
  const connection = connectRedis((first as { resolved: ResolvedOptions }).resolved, app.log)
  app.addHook('onClose', async () => { connection.close() })
  readyWhenRedisIs(app, connection.redis, 'tessera gate: ')
  const hosts = new Map<string, Host>()
  for (const [origin, { resolved: opts }] of resolved) hosts.set(origin, { opts, core: coreFor(opts, connection.redis, app.log) })
  const origins = new Set(hosts.keys())
  await app.register(cookie)
  // The proxy asks with the original method, sometimes with its body: the gate reads none of it.
  app.removeAllContentTypeParsers()
  app.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit: 64 * 1024 }, (_req, _body, done) => { done(null, undefined) })

  const hostFor = (style: ProxyStyle, req: FastifyRequest): { host: Host; method: string; url: string } => {
    const target = originalRequest(style, req.headers, req.socket.remoteAddress, trust, origins)
    return { host: hosts.get(target.origin) as Host, method: target.method, url: target.url }
  }
  const cookieLines = (opts: ResolvedOptions, changes: readonly CookieChange[]): string[] => changes.map(opts.setCookie)

  for (const style of ['auth-request', 'forward-auth'] as const) {
    app.all(`/api/authz/${style}`, async (req, reply) => {
      const { host, method, url } = hostFor(style, req)
      const decision = await host.core.decide({ method, url, accept: req.headers.accept, cookies: req.cookies })
      return answer(style, req, reply, decision, cookieLines(host.opts, decision.cookies))
    })
  }

  app.post<{ Querystring: { rd?: string } }>('/api/authz/logout', async (req, reply) => {
    const { host } = hostFor('logout', req)
    // SameSite=Lax keeps the cookie home on another site's form post; a browser that says where the
    // form came from is refused outright when it is not this host.
    const from = req.headers.origin
    if (from !== undefined && from !== host.opts.origin) throw new ForwardAuthError('a logout posted from another origin')
    const { session } = await host.core.decide({ method: 'GET', url: '/', accept: undefined, cookies: req.cookies })
    const rd = typeof req.query.rd === 'string' ? req.query.rd : undefined
    const { location, cookies } = await host.core.logout(session?.sid, rd)
    if (session !== undefined) req.log.info('tessera gate: signed out')
    return reply.header('cache-control', 'no-store').header('set-cookie', cookieLines(host.opts, cookies)).redirect(location, 303)
  })

  app.setErrorHandler((err: unknown, req, reply) => {
    if (err instanceof TesseraError && err.expose) {
      req.log.info({ code: err.code, detail: err.detail }, 'tessera gate: request rejected')
      const page = errorAnswer(undefined, err)
      return reply.code(page.status).headers(page.headers).send(page.body)
    }
    const status = (err as { statusCode?: number } | null)?.statusCode ?? 500
    if (status < 500) {
      // Fastify's own 4xx (a body too large): its status, Tessera's code.
      req.log.info({ code: (err as { code?: string }).code, status }, 'tessera gate: request rejected')
      const page = errorAnswer(undefined, new BadRequestError('The request was not understood.', 'refused by Fastify'))
      return reply.code(status).headers(page.headers).send(page.body)
    }
    req.log.error({ err }, 'tessera gate: unexpected error')
    return reply.code(500).send({ code: 'TESSERA_ERR_INTERNAL', message: 'internal error' })
  })
}

/** The core's decision in the proxy's terms (see the module comment). */
function answer(style: ProxyStyle, req: FastifyRequest, reply: FastifyReply, decision: Decision, cookies: readonly string[]): FastifyReply {
  if (decision.event !== undefined) req.log.info(`tessera gate: ${decision.event}`)
  reply.header('cache-control', 'no-store')
  if (decision.kind === 'continue' && decision.session !== undefined) return reply.code(200).headers(remoteHeaders(decision.session)).send()
  if (decision.kind === 'redirect') {
    reply.headers(decision.headers).header('location', decision.location)
    if (style === 'forward-auth') return reply.code(302).header('set-cookie', cookies).send()
    // Two at most: a new handle and the cleared state, or a cleared stale handle and a new state.
    cookies.forEach((line, i) => reply.header(`tessera-set-cookie-${i + 1}`, line))
    return reply.code(401).send()
  }
  // No session and nothing else to do: the gate has no public paths (the proxy's configuration has).
  const error = decision.kind === 'error' ? decision.error : new ForwardAuthError('no session on a path the gate protects')
  req.log.info({ code: error.code, detail: error.detail }, 'tessera gate: request rejected')
  const page = errorAnswer(req.headers.accept, error, decision.kind === 'error' ? decision.extra : undefined, decision.kind === 'error' ? decision.wayOn : undefined)
  if (style === 'forward-auth') reply.header('set-cookie', cookies)
  return reply.code(page.status).headers(page.headers).send(page.body)
}

/** The user, as header values: UTF-8 bytes on the wire (as Authelia sends them), no control characters. */
function remoteHeaders(s: SessionSnapshot): Record<(typeof REMOTE_HEADERS)[number], string> {
  return {
    'remote-user': headerText(s.user.username),
    'remote-groups': s.user.groups.map(headerText).join(','),
    'remote-name': headerText(s.user.displayName),
    'remote-email': headerText(s.user.email),
    'remote-auth-methods': s.auth.methods.map((m) => m.method).join(','),
  }
}

function headerText(value: string): string {
  // eslint-disable-next-line no-control-regex
  return Buffer.from(value.replace(/[\x00-\x1f\x7f]/g, ''), 'utf8').toString('latin1')
}

/** A Fastify app that is only the gate, with Tessera's logger options; listen on it yourself. */
export function buildGate(opts: TesseraGateOptions, server: { logger?: FastifyServerOptions['logger'] } = {}): FastifyInstance {
  const logger = server.logger === undefined || server.logger === false ? false : { ...loggerOptions('info'), ...(server.logger as object) }
  const app = Fastify({ logger, clientErrorHandler, ...requestTimeoutOptions() })
  // Liveness, as the IdP's: the process answers, Redis or not (a Redis outage must not restart every
  // gate). Here rather than in tesseraGate, so an app that registers the plugin keeps its own route.
  app.get('/healthz', async () => ({ status: 'ok' }))
  app.register(tesseraGate, opts)
  // Every answer of the gate's own app carries a Tessera code, an unknown path's too.
  app.setNotFoundHandler((req, reply) => {
    const page = errorAnswer(undefined, new NotFoundError())
    return reply.code(page.status).headers(page.headers).send(page.body)
  })
  return app
}
