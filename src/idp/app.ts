/** Builds the IdP as a Fastify instance, not listening: the caller (server.ts or a test) listens. */
import { readFileSync } from 'node:fs'
import Fastify, { type FastifyInstance } from 'fastify'
import cookie from '@fastify/cookie'
import formbody from '@fastify/formbody'
import view from '@fastify/view'
import { Eta } from 'eta'
import { loggerOptions } from '../shared/logger.js'
import { createRedis, type RedisClient } from '../shared/redis.js'
import { readyWhenRedisIs } from '../shared/redis-ready.js'
import { logRedisErrors } from '../shared/redis-errors.js'
import { Sessions } from '../shared/sessions.js'
import { identityKeysOf } from '../shared/app-keys.js'
import { IdentityVerifier } from '../shared/identity.js'
import { Tokens } from '../shared/tokens.js'
import { UserIndex } from '../shared/user-index.js'
import { AllowList } from './allow-list.js'
import { AnswerPace } from './answer-pace.js'
import { Regulation } from './regulation.js'
import { FactorStore } from './factors/factor-store.js'
import type { IdpConfig } from './config.js'
import type { IdpContext } from './context.js'
import { idpCookies } from './cookies.js'
import { installCrossSiteCheck } from './cross-site.js'
import { frameworkErrorHandler, installErrorHandlers, refuseNonPathTargets } from './error-handler.js'
import { STYLESHEET, VIEWS_DIR } from './paths.js'
import { installSecurityHeaders, securityHeaders } from './security-headers.js'
import { homeRoutes } from './routes/home.js'
import { loginRoutes } from './routes/login.js'
import { logoutRoutes } from './routes/logout.js'
import { securityRoutes } from './routes/security.js'
import { secondFactorRoutes } from './routes/second-factor.js'
import { sessionsRoutes } from './routes/sessions.js'
import { passkeyLoginRoutes } from './routes/login-passkey.js'
import { securityPasskeyRoutes } from './routes/security-passkeys.js'
import { secondFactorPasskeyRoutes } from './routes/second-factor-passkey.js'
import { passkeyScriptRoutes } from './routes/passkey-scripts.js'
import { relyingParty } from './factors/webauthn.js'
import { PasskeyStore } from './factors/passkey-store.js'
import { WebAuthnChallenges } from './factors/webauthn-challenges.js'
import { clientErrorHandlerWith } from '../shared/client-error.js'
import { requestTimeoutOptions } from '../shared/request-timeout.js'

export interface BuildIdpOptions {
  /** An ioredis client to use instead of connecting to `config.redis`; the caller closes it. */
  readonly redis?: RedisClient
  /** Fastify's `logger` option; defaults to pino at `config.logLevel` with Tessera's redaction. */
  readonly logger?: unknown
  /**
   * How long a request (headers and body) may take to arrive, ms, before it gets 408 and its socket
   * is closed; REQUEST_TIMEOUT_MS (60 s, shared/request-timeout.ts) unless a test needs it short.
   */
  readonly requestTimeoutMs?: number
}

/**
 * Registers everything and returns at once; plugins load on `await app.ready()` (or `listen`).
 */
export function buildIdp(config: IdpConfig, opts: BuildIdpOptions = {}): FastifyInstance {
  const https = config.publicUrl.startsWith('https:')
  // One set of browser headers for every answer: routes' (the hook), Fastify's refusals before
  // routing (frameworkErrors) and Node's parser's (clientErrorHandler).
  const headers = securityHeaders(config.knownRemoteHosts, https)
  // frameworkErrors reads `app` only when a request comes, after it is assigned.
  const app: FastifyInstance = Fastify({
    logger: (opts.logger ?? loggerOptions(config.logLevel)) as boolean,
    // boolean | number | string[] are all valid here; Fastify's overloads only reject the union type.
    trustProxy: config.trustProxy as boolean,
    bodyLimit: 64 * 1024,
    return503OnClosing: true,
    ...requestTimeoutOptions(opts.requestTimeoutMs),
    clientErrorHandler: clientErrorHandlerWith(headers),
    frameworkErrors: frameworkErrorHandler(() => app, headers),
  })
  const redis = opts.redis ?? createRedis(config.redis)
  if (opts.redis === undefined) app.addHook('onClose', async () => { redis.disconnect() })
  // ioredis reports connection errors as events; without a listener they would be printed as unhandled.
  logRedisErrors(redis, (obj, msg) => { app.log.warn(obj, msg) }, 'redis connection error')
  readyWhenRedisIs(app, redis)
  for (const warning of config.warnings) app.log.warn(`configuration: ${warning}`)

  const { signer, publicKeyFor } = identityKeysOf(config.keyring)
  const identity = new IdentityVerifier(publicKeyFor, (reason) => app.log.warn({ reason }, 'session record refused: its identity does not verify'))
  const ctx: IdpContext = {
    config,
    sessions: new Sessions(redis, { identity, waitReplicas: config.redisWaitReplicas, notice: (message) => { app.log.warn(message) } }),
    tokens: new Tokens(redis, { identity, waitReplicas: config.redisWaitReplicas }),
    signer,
    userIndex: new UserIndex(redis, { identity, waitReplicas: config.redisWaitReplicas }),
    allowList: new AllowList(config.knownRemoteHosts),
    regulation: new Regulation(redis, config.regulation),
    pace: new AnswerPace(),
    cookies: idpCookies(config.publicUrl),
    audience: config.publicUrl,
    redis,
    factors: new FactorStore(redis),
    factorRegulation: new Regulation(redis, config.regulation, '2fa:'),
    passkeys: { rp: relyingParty(config.publicUrl), store: new PasskeyStore(redis), challenges: new WebAuthnChallenges(redis, config.publicUrl) },
  }

  app.register(cookie)
  app.register(formbody)
  // Forms (urlencoded) and JSON objects of the same fields are the IdP's bodies; Fastify would also
  // parse text/plain into a string that no route's schema takes (400): refuse it as 415 like any other type.
  app.removeContentTypeParser('text/plain')
  installSecurityHeaders(app, headers)
  installCrossSiteCheck(app, config.publicUrl)
  app.register(view, {
    engine: { eta: new Eta({ cache: true }) },
    root: VIEWS_DIR,
    layout: 'layout.eta',
    production: true,
  })
  installErrorHandlers(app)
  refuseNonPathTargets(app)

  const css = readFileSync(STYLESHEET)
  app.register(async (scope) => {
    scope.get('/static/tessera.css', async (req, reply) =>
      reply.type('text/css; charset=utf-8').header('cache-control', 'public, max-age=3600').send(css))
  })

  app.register(homeRoutes, { ctx })
  app.register(loginRoutes, { ctx })
  app.register(logoutRoutes, { ctx })
  app.register(securityRoutes, { ctx })
  app.register(secondFactorRoutes, { ctx })
  app.register(sessionsRoutes, { ctx })
  app.register(passkeyScriptRoutes)
  app.register(passkeyLoginRoutes, { ctx })
  app.register(securityPasskeyRoutes, { ctx })
  app.register(secondFactorPasskeyRoutes, { ctx })
  return app
}
