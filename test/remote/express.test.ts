/**
 * What only the Express middleware has to show (the flow and every bad token run against it in the
 * shared tests): options refused at construction, Redis failures answered 503 (never Express's 500
 * page with a stack), data that cannot be saved failing the response, and `tessera/remote` loading
 * no Express.
 */
import assert from 'node:assert/strict'
import { test, before, after } from 'node:test'
import { randomBytes } from 'node:crypto'
import { spawnSync } from 'node:child_process'
import { createServer as createTcpServer, type Server as TcpServer } from 'node:net'
import type { AddressInfo } from 'node:net'
import type { Server } from 'node:http'
import express from 'express'
import { tesseraExpress, type TesseraExpressOptions, type TesseraMiddleware } from '../../src/remote/express.js'
import { TesseraError } from '../../src/shared/errors.js'
import { encodeHandle } from '../../src/shared/handle-cookie.js'
import { formatAppKeys } from '../../src/shared/app-keys.js'
import { Browser } from '../helpers/browser.js'
import { repoRoot } from '../helpers/callbacks.js'
import { startRedis, type TestRedis } from '../helpers/redis-server.js'
import { PWD, storesFor } from '../helpers/stores.js'

const HOST = '127.0.0.2'
const IDP = 'http://127.0.0.1:3000'
const USER = { username: 'alice', displayName: 'Alice', email: '', groups: [] }
const sessionSecret = randomBytes(32).toString('base64url')
const silent = { info: () => {}, warn: () => {} }

let redis: TestRedis
before(async () => { redis = await startRedis() })
after(async () => { await redis.stop() })

/** An Express app with the middleware, listening on a free port of HOST; closed after the test. */
async function serve(t: { after: (fn: () => Promise<void>) => void }, options: (origin: string) => Partial<TesseraExpressOptions>, routes: (app: express.Express, tessera: TesseraMiddleware) => void = () => {}): Promise<{ url: string; tessera: TesseraMiddleware }> {
  const app = express()
  const server: Server = app.listen(0, HOST)
  await new Promise((resolve) => server.once('listening', resolve))
  const url = `http://${HOST}:${(server.address() as AddressInfo).port}`
  const tessera = tesseraExpress({ idpUrl: IDP, origin: url, redis: redis.url, sessionSecret, logger: silent, ...options(url) } as TesseraExpressOptions)
  app.use(tessera)
  routes(app, tessera)
  t.after(async () => {
    server.closeAllConnections()
    await new Promise((resolve) => server.close(resolve))
    await tessera.close()
  })
  return { url, tessera }
}

/** A browser holding a live session's cookie for the app at `url`. */
async function signedInAt(url: string, keys: ReturnType<typeof storesFor>): Promise<Browser> {
  const handle = await keys.sessions.create(USER, PWD, { idleMs: 60_000, absoluteMs: 600_000 }, url, keys.signer)
  const b = new Browser()
  b.cookies(HOST).set(`tessera_${new URL(url).port}`, encodeHandle(handle, sessionSecret, url))
  return b
}

test('bad options are refused when the middleware is made, with TESSERA_ERR_OPTIONS naming each', () => {
  assert.throws(() => tesseraExpress({ idpUrl: 'nope', origin: 'http://127.0.0.2:4000', appKeys: 'x', redis: 'http://x', sessionSecret: 'short', secondFactor: 'always' } as unknown as TesseraExpressOptions),
    (err: unknown) => err instanceof TesseraError && err.code === 'TESSERA_ERR_OPTIONS' &&
      /idpUrl/.test(err.message) && /redis: must be/.test(err.message) && /sessionSecret/.test(err.message) && /secondFactor/.test(err.message))
  // Fastify's register options mean nothing to Express: refused like any unknown name, not ignored.
  assert.throws(() => tesseraExpress({ idpUrl: 'nope', prefix: '/x', logLevel: 'warn' } as unknown as TesseraExpressOptions),
    (err: unknown) => err instanceof TesseraError && /prefix: not an option/.test(err.message) && /logLevel: not an option/.test(err.message))
})

test('Redis unreachable: ready() resolves false and a protected request gets 503, not a 500 page', async (t) => {
  // A port this test holds, whose connections are dropped at once: no other test's Redis can take it.
  const refusing: TcpServer = createTcpServer((s) => s.destroy())
  await new Promise<void>((resolve) => refusing.listen(0, '127.0.0.1', resolve))
  t.after(() => new Promise<void>((resolve) => refusing.close(() => resolve())))
  const down = `redis://127.0.0.1:${(refusing.address() as AddressInfo).port}`
  const stores = storesFor(redis.client())
  const { url, tessera } = await serve(t, (origin) => ({ redis: down, appKeys: formatAppKeys(stores.keyring, origin) }), (app) => {
    app.get('/private', (_req, res) => { res.json({ ok: true }) })
  })
  assert.equal(await tessera.ready(), false)
  const b = await signedInAt(url, stores) // a cookie, so the request must read Redis
  for (const accept of ['application/json', 'text/html']) {
    const page = await b.get(`${url}/private`, accept)
    assert.equal(page.status, 503, accept)
    assert.match(page.body, /TESSERA_ERR_STORE_UNAVAILABLE/)
    assert.doesNotMatch(page.body, /at .*\.js:\d+/, 'no stack')
  }
})

test('session data that cannot be saved fails the response with 503 instead of answering as if it were', async (t) => {
  const own = await startRedis()
  t.after(() => own.stop())
  const stores = storesFor(own.client())
  const { url } = await serve(t, (origin) => ({ redis: own.url, appKeys: formatAppKeys(stores.keyring, origin) }), (app) => {
    app.post('/write', async (req, res) => {
      req.session.set('note', 'lost?')
      if (req.query.down === '1') await own.stop()
      res.json({ ok: true })
    })
    app.get('/read', (req, res) => { res.json({ note: req.session.get('note') ?? null }) })
  })
  const b = await signedInAt(url, stores)
  const saved = await b.post(`${url}/write`, {}, 'application/json')
  assert.equal(saved.status, 200)
  assert.equal((await b.get(`${url}/read`, 'application/json')).json().note, 'lost?')
  const failed = await b.post(`${url}/write?down=1`, {}, 'application/json')
  assert.equal(failed.status, 503)
  assert.equal(failed.json().code, 'TESSERA_ERR_STORE_UNAVAILABLE')
  assert.doesNotMatch(failed.body, /"ok"/)
})

test('tessera/remote (the Fastify plugin) loads no Express, and tessera/express loads none either', () => {
  const root = repoRoot()
  for (const entry of ['dist/src/remote/index.js', 'dist/src/remote/express.js']) {
    // Every module the entry resolves, seen by a resolve hook in a fresh process.
    const script = `import { registerHooks } from 'node:module'
const seen = []
registerHooks({ resolve(spec, ctx, next) { const r = next(spec, ctx); seen.push(r.url); return r } })
await import(${JSON.stringify(`${root}/${entry}`)})
process.stdout.write(JSON.stringify(seen))`
    const res = spawnSync(process.execPath, ['--input-type=module', '-e', script], { cwd: root, encoding: 'utf8', timeout: 60_000 })
    assert.equal(res.status, 0, res.stderr)
    const urls = JSON.parse(res.stdout) as string[]
    assert.ok(urls.some((u) => u.includes('/node_modules/ioredis/')), `${entry}: the hook saw the dependencies`)
    assert.deepEqual(urls.filter((u) => /\/node_modules\/(express|body-parser|router)\//.test(u)), [], entry)
  }
})
