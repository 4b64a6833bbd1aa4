/**
 * An example app on its own domain that signs users in through Tessera. Copy from here: in your
 * app, import the plugin as `import tesseraRemote from 'tessera/remote'`.
 */
import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify'
import formbody from '@fastify/formbody'
import type { Redis } from 'ioredis'
import tesseraRemote, { tesseraLoggerOptions } from '../src/remote/index.js'

export interface ExampleAppOptions {
  /** Shown on the pages, e.g. "App" or "Shop". */
  name: string
  /** This app's public origin, e.g. http://app.localhost:3001. */
  origin: string
  idpUrl: string
  syncKeys: string
  redis: string | Redis
  sessionSecret: string
  /** Other apps to link to from the private page. */
  links?: readonly string[]
  logger?: FastifyServerOptions['logger']
}

const esc = (s: string): string => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`)

const page = (title: string, body: string): string =>
  `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">` +
  `<title>${esc(title)}</title><style>body{font:16px/1.5 system-ui,sans-serif;max-width:36rem;margin:3rem auto;padding:0 1rem}` +
  `button{font:inherit;padding:.5rem 1rem}</style></head><body>${body}</body></html>`

export function buildExampleApp(opts: ExampleAppOptions): FastifyInstance {
  // Tessera's logger options log paths without query strings (the token travels in one) and redact
  // cookies: use them, or your own serializers that do the same.
  const app = Fastify({ logger: opts.logger === undefined || opts.logger === false ? false : { ...tesseraLoggerOptions('info'), ...(opts.logger as object) } })
  app.register(formbody)
  app.register(tesseraRemote, {
    idpUrl: opts.idpUrl,
    origin: opts.origin,
    syncKeys: opts.syncKeys,
    redis: opts.redis,
    sessionSecret: opts.sessionSecret,
    publicPaths: ['/', '/healthz'],
  })

  app.get('/', async (req, reply) => {
    const user = req.session.user
    return reply.type('text/html').send(page(opts.name, `<h1>${esc(opts.name)}</h1>` +
      (user ? `<p>Signed in as <strong>${esc(user.displayName)}</strong>.</p>` : '<p>You are not signed in.</p>') +
      '<p><a href="/private">Open the private page</a></p>'))
  })

  app.get('/healthz', async () => ({ status: 'ok' }))

  app.get('/private', async (req, reply) => {
    const user = req.session.user
    if (user === undefined) throw new Error('unreachable: the plugin guards this path') // narrows the type
    const visits = (req.session.get<number>('visits') ?? 0) + 1
    req.session.set('visits', visits) // shared: every app of this session sees the same counter
    const links = (opts.links ?? []).map((l) => `<li><a href="${esc(l)}/private">${esc(l)}</a></li>`).join('')
    return reply.type('text/html').send(page(`${opts.name}: private`,
      `<h1>${esc(opts.name)}: private page</h1><p id="who">Signed in as <strong>${esc(user.displayName)}</strong> (${esc(user.username)}).</p>` +
      `<p>Visits across all apps in this session: <strong id="visits">${visits}</strong></p>` +
      (links ? `<p>Your other apps:</p><ul>${links}</ul>` : '') +
      '<form method="post" action="/logout"><button type="submit">Sign out everywhere</button></form>'))
  })

  app.get('/api/me', async (req) => ({ user: req.session.user, data: { visits: req.session.get('visits') ?? null, note: req.session.get('note') ?? null } }))

  app.post<{ Body: { note?: string } }>('/api/note', async (req) => {
    req.session.set('note', req.body?.note ?? null)
    return { ok: true }
  })

  app.post('/logout', async (req, reply) => reply.tesseraLogout('/'))
  return app
}
