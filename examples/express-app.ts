/**
 * The example app of remote-app.ts as an Express 5 app, signed in through Tessera with
 * `tessera/express`. Copy from here: in your app, import the middleware as
 * `import tesseraExpress from 'tessera/express'`.
 */
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import express, { type Express } from 'express'
import { pino, type DestinationStream } from 'pino'
import { tesseraExpress, type TesseraMiddleware } from '../src/remote/express.js'
import { tesseraLoggerOptions } from '../src/remote/index.js'
import { accentOf, homePage, privatePage } from './pages.js'
import { remoteOptionsOf, type ExampleAppOptions } from './remote-app.js'

export interface ExpressExampleApp {
  readonly app: Express
  readonly tessera: TesseraMiddleware
  /** Waits for Redis (2 s at most), then listens. */
  listen(host: string, port: number): Promise<AddressInfo>
  close(): Promise<void>
}

export function buildExpressExampleApp(opts: ExampleAppOptions): ExpressExampleApp {
  const accent = accentOf(opts.accent)
  const logger = opts.logger === undefined || opts.logger === false ? undefined : opts.logger as { level?: string; stream?: DestinationStream }
  const tessera = tesseraExpress({
    ...remoteOptionsOf(opts),
    // Tessera's logger options redact cookies and never log a query string (the token travels in one).
    ...(logger === undefined ? {} : { logger: pino(tesseraLoggerOptions(logger.level ?? 'info'), logger.stream ?? process.stdout) }),
  })

  const app = express()
  app.disable('x-powered-by')
  app.use(tessera) // before the routes: every route below sees req.session
  app.use(express.urlencoded({ extended: false, limit: '16kb' }))

  app.get('/', (req, res) => {
    res.type('html').send(homePage(opts.name, accent, req.session.user))
  })

  app.get('/healthz', (_req, res) => { res.json({ status: 'ok' }) })

  app.get('/private', (req, res) => {
    const user = req.session.user
    if (user === undefined) throw new Error('unreachable: the middleware guards this path') // narrows the type
    const visits = (req.session.get<number>('visits') ?? 0) + 1
    req.session.set('visits', visits) // shared: every app of this session sees the same counter
    res.type('html').send(privatePage(opts.name, accent, user, visits, opts.links ?? []))
  })

  app.get('/api/me', (req, res) => {
    res.json({ user: req.session.user, data: { visits: req.session.get('visits') ?? null, note: req.session.get('note') ?? null } })
  })

  app.post('/api/note', (req, res) => {
    const note: unknown = (req.body as Record<string, unknown> | undefined)?.note
    req.session.set('note', typeof note === 'string' ? note : null)
    res.json({ ok: true })
  })

  app.post('/logout', tessera.logout('/'))

  let server: Server | undefined
  return {
    app,
    tessera,
    listen: async (host, port) => {
      await tessera.ready()
      const s = createServer(app)
      server = s
      await new Promise<void>((resolve, reject) => { s.once('error', reject).listen(port, host, () => { resolve() }) })
      return s.address() as AddressInfo
    },
    close: async () => {
      const s = server
      if (s !== undefined) {
        s.closeAllConnections()
        await new Promise<void>((resolve) => { s.close(() => { resolve() }) })
      }
      await tessera.close()
    },
  }
}
