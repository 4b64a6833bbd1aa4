/**
 * An example app on its own domain that signs users in through Tessera. Copy from here: in your
 * app, import the plugin as `import tesseraRemote from 'tessera/remote'`.
 */
import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify'
import formbody from '@fastify/formbody'
import tesseraRemote, { tesseraLoggerOptions, type TesseraRemoteOptions } from '../src/remote/index.js'
import { accentOf, homePage, privatePage } from './pages.js'

export interface ExampleAppOptions {
  /** Shown on the pages, e.g. "App" or "Shop". */
  name: string
  /** This app's public origin, e.g. http://app.localhost:3001. */
  origin: string
  idpUrl: string
  /** This app's keys (`npx tessera app-key <origin>`). */
  appKeys?: string
  /** The old way (the IdP's own SYNC_KEYS): still accepted, with a warning. */
  syncKeys?: string
  /** A redis:// URL, a `{ sentinels, sentinelName }` or `{ clusterNodes }` object, or an ioredis client. */
  redis: TesseraRemoteOptions['redis']
  sessionSecret: string
  /** Other apps to link to from the private page. */
  links?: readonly string[]
  /** A CSS hex colour, so each app looks like its own site. */
  accent?: string
  logger?: FastifyServerOptions['logger']
  /** The plugin's `waitReplicas`: set it as the IdP's REDIS_WAIT_REPLICAS. */
  waitReplicas?: number
  /** The plugin's `secondFactor`: `required` refuses a session without a passkey or a one-time code. */
  secondFactor?: TesseraRemoteOptions['secondFactor']
}

/** The plugin's (or the Express middleware's) options for an example app. */
export function remoteOptionsOf(opts: ExampleAppOptions): TesseraRemoteOptions {
  return {
    idpUrl: opts.idpUrl,
    origin: opts.origin,
    ...(opts.appKeys === undefined ? {} : { appKeys: opts.appKeys }),
    ...(opts.syncKeys === undefined ? {} : { syncKeys: opts.syncKeys }),
    redis: opts.redis,
    sessionSecret: opts.sessionSecret,
    // /logout is public: logging out without a session (a second click, a retry) just clears the cookie.
    publicPaths: ['/', '/healthz', '/logout'],
    ...(opts.waitReplicas === undefined ? {} : { waitReplicas: opts.waitReplicas }),
    ...(opts.secondFactor === undefined ? {} : { secondFactor: opts.secondFactor }),
  }
}

export function buildExampleApp(opts: ExampleAppOptions): FastifyInstance {
  const accent = accentOf(opts.accent)
  // Tessera's logger options log paths without query strings (the token travels in one) and redact
  // cookies: use them, or your own serializers that do the same.
  const app = Fastify({ logger: opts.logger === undefined || opts.logger === false ? false : { ...tesseraLoggerOptions('info'), ...(opts.logger as object) } })
  app.register(formbody)
  app.register(tesseraRemote, remoteOptionsOf(opts))

  app.get('/', async (req, reply) => {
    return reply.type('text/html').send(homePage(opts.name, accent, req.session.user))
  })

  app.get('/healthz', async () => ({ status: 'ok' }))

  app.get('/private', async (req, reply) => {
    const user = req.session.user
    if (user === undefined) throw new Error('unreachable: the plugin guards this path') // narrows the type
    const visits = (req.session.get<number>('visits') ?? 0) + 1
    req.session.set('visits', visits) // shared: every app of this session sees the same counter
    return reply.type('text/html').send(privatePage(opts.name, accent, user, visits, opts.links ?? []))
  })

  app.get('/api/me', async (req) => ({ user: req.session.user, data: { visits: req.session.get('visits') ?? null, note: req.session.get('note') ?? null } }))

  app.post<{ Body: { note?: string } }>('/api/note', async (req) => {
    req.session.set('note', req.body?.note ?? null)
    return { ok: true }
  })

  app.post('/logout', async (req, reply) => reply.tesseraLogout('/'))
  return app
}
