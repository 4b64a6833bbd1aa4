/**
 * An example app on its own domain that signs users in through Tessera. Copy from here: in your
 * app, import the plugin as `import tesseraRemote from 'tessera/remote'`.
 */
import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify'
import formbody from '@fastify/formbody'
import tesseraRemote, { tesseraLoggerOptions, type TesseraRemoteOptions } from '../src/remote/index.js'

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

const esc = (s: string): string => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`)

/** Self-contained pages (an app on another origin cannot share the IdP's stylesheet): one small inline style. */
const STYLE = ':root{color-scheme:light dark;--fg:#1d232a;--muted:#5b6570;--bg:#f4f5f7;--card:#fff;--line:#d9dde3;--ink:var(--accent)}' +
  '@media (prefers-color-scheme:dark){:root{--fg:#e6e8eb;--muted:#9aa4af;--bg:#14171b;--card:#1d2127;--line:#333a43;--ink:color-mix(in srgb,var(--accent) 45%,#fff)}}' +
  '*{box-sizing:border-box}body{margin:0;min-height:100vh;display:grid;place-items:center;background:var(--bg);color:var(--fg);font:16px/1.5 system-ui,sans-serif}' +
  'main{width:min(28rem,92vw);background:var(--card);border:1px solid var(--line);border-top:6px solid var(--accent);border-radius:12px;padding:2rem}' +
  '.brand{margin:0 0 1rem;font-weight:700;letter-spacing:.08em;text-transform:uppercase;font-size:.8rem;color:var(--ink)}' +
  'h1{margin:0 0 1rem;font-size:1.5rem}.muted{color:var(--muted)}a{color:var(--ink)}ul{padding-left:1.2rem}' +
  'button,.button{display:inline-block;margin-top:1rem;padding:.6rem 1rem;border:1px solid var(--accent);border-radius:8px;background:var(--accent);color:#fff;font:inherit;font-weight:600;text-decoration:none;cursor:pointer}' +
  'button{background:transparent;color:var(--ink);border-color:var(--ink)}'

const page = (name: string, accent: string, title: string, body: string): string =>
  `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">` +
  `<title>${esc(title)}</title><style>${STYLE}:root{--accent:${accent}}</style></head>` +
  `<body><main><p class="brand">${esc(name)}</p>${body}</main></body></html>`

export function buildExampleApp(opts: ExampleAppOptions): FastifyInstance {
  const accent = /^#[0-9a-f]{3,8}$/i.test(opts.accent ?? '') ? opts.accent as string : '#2a5bd7'
  // Tessera's logger options log paths without query strings (the token travels in one) and redact
  // cookies: use them, or your own serializers that do the same.
  const app = Fastify({ logger: opts.logger === undefined || opts.logger === false ? false : { ...tesseraLoggerOptions('info'), ...(opts.logger as object) } })
  app.register(formbody)
  app.register(tesseraRemote, {
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
  })

  app.get('/', async (req, reply) => {
    const user = req.session.user
    return reply.type('text/html').send(page(opts.name, accent, opts.name, '<h1>Home</h1>' +
      '<p class="muted">An example app on its own site, signed in through Tessera.</p>' +
      (user ? `<p>Signed in as <strong>${esc(user.displayName)}</strong>.</p>` : '<p>You are not signed in.</p>') +
      '<p><a class="button" href="/private">Open the private page</a></p>'))
  })

  app.get('/healthz', async () => ({ status: 'ok' }))

  app.get('/private', async (req, reply) => {
    const user = req.session.user
    if (user === undefined) throw new Error('unreachable: the plugin guards this path') // narrows the type
    const visits = (req.session.get<number>('visits') ?? 0) + 1
    req.session.set('visits', visits) // shared: every app of this session sees the same counter
    const links = (opts.links ?? []).map((l) => `<li><a href="${esc(l)}/private">${esc(l.replace(/^https?:\/\//, ''))}</a></li>`).join('')
    return reply.type('text/html').send(page(opts.name, accent, `${opts.name}: private`,
      '<h1>Private page</h1>' +
      `<p id="who">Signed in as <strong>${esc(user.displayName)}</strong> (${esc(user.username)}).</p>` +
      `<p>Visits across all apps in this session: <strong id="visits">${visits}</strong></p>` +
      (links ? `<p>Your other apps, no second sign-in:</p><ul>${links}</ul>` : '') +
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
