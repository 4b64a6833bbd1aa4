/** What the plugin adds to an app's answers: cache headers on personal pages, a way on from a 401. */
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { after } from 'node:test'
import Fastify from 'fastify'
import formbody from '@fastify/formbody'
import express from 'express'
import tesseraRemote from '../../src/remote/index.js'
import { tesseraExpress } from '../../src/remote/express.js'
import { Browser } from '../helpers/browser.js'
import { freePort } from '../helpers/net.js'
import { type TestRedis } from '../helpers/redis-server.js'
import { ADAPTERS, formFields, PASSWORD, useStackPerAdapter, type Adapter, type Stack } from '../helpers/stack.js'
import { signInThroughA } from '../helpers/sso-scenarios.js'

const HOST = '127.0.0.4'
const ownUrls = new Map<Adapter, string>()
for (const a of ADAPTERS) ownUrls.set(a, `http://${HOST}:${await freePort(HOST)}`)

let redis: TestRedis
let stack: Stack
let adapter: Adapter
let ownUrl: string
// Every test runs with the Fastify plugin and with the Express middleware (apps A and B and this file's own app).
const test = useStackPerAdapter((r, s, a) => { redis = r; stack = s; adapter = a; ownUrl = ownUrls.get(a) as string }, { extraRemoteHosts: [...ownUrls.values()] })
const owns = new Map<Adapter, () => Promise<void>>()

/** This file's own app for the current adapter, built as README shows, started on first use (after the stack is up). */
async function startOwnApp(): Promise<void> {
  if (owns.has(adapter)) return
  const options = {
    idpUrl: stack.idpUrl, origin: ownUrl, syncKeys: stack.syncKeys, redis: redis.url,
    sessionSecret: randomBytes(32).toString('base64url'), publicPaths: ['/open'],
  }
  const port = Number(new URL(ownUrl).port)
  if (adapter === 'fastify') {
    const own = Fastify()
    await own.register(formbody)
    await own.register(tesseraRemote, options)
    own.get('/mine', async (req) => ({ user: req.session.user?.username }))
    own.get('/own-cache', async (req, reply) => reply.header('cache-control', 'private, max-age=60').send({ user: req.session.user?.username }))
    own.get('/vary', async (req, reply) => reply.header('vary', 'Accept-Encoding').send({ user: req.session.user?.username }))
    own.get('/open', async (req) => ({ user: req.session.user?.username ?? null }))
    own.post('/form', async () => ({ ok: true }))
    own.get('/write', async (req, reply) => { req.session.set('written', Date.now()); return reply.header('content-disposition', 'attachment; filename="w.json"').send({ ok: true }) })
    await own.listen({ host: HOST, port })
    owns.set(adapter, () => own.close())
    return
  }
  const tessera = tesseraExpress(options)
  const own = express()
  own.use(tessera)
  own.get('/mine', (req, res) => { res.json({ user: req.session.user?.username }) })
  own.get('/own-cache', (req, res) => { res.set('cache-control', 'private, max-age=60').json({ user: req.session.user?.username }) })
  own.get('/vary', (req, res) => { res.set('vary', 'Accept-Encoding').json({ user: req.session.user?.username }) })
  own.get('/open', (req, res) => { res.json({ user: req.session.user?.username ?? null }) })
  own.post('/form', (_req, res) => { res.json({ ok: true }) })
  own.get('/write', (req, res) => { req.session.set('written', Date.now()); res.set('content-disposition', 'attachment; filename="w.json"').json({ ok: true }) })
  await tessera.ready()
  const server = own.listen(port, HOST)
  await new Promise((resolve, reject) => { server.once('listening', resolve).once('error', reject) })
  owns.set(adapter, async () => {
    server.closeAllConnections()
    await new Promise((resolve) => server.close(resolve))
    await tessera.close()
  })
}
after(async () => { for (const close of owns.values()) await close() })

/** A browser signed in at app A, then at this test's own app through the IdP (no form). */
async function signedInHere(): Promise<Browser> {
  await startOwnApp()
  const b = await signInThroughA(stack)
  const hops = await b.navigate(`${ownUrl}/mine`)
  assert.deepEqual(hops.map((h) => h.status), [302, 302, 302, 200])
  assert.equal(hops.at(-1)?.json().user, 'alice')
  return b
}

test('every answer built with a session gets Cache-Control: no-store and Vary: Cookie, unless the app set its own Cache-Control', async () => {
  const b = await signedInHere()
  const mine = await b.get(`${ownUrl}/mine`, 'application/json')
  assert.equal(mine.status, 200)
  assert.equal(mine.headers.get('cache-control'), 'no-store')
  assert.equal(mine.headers.get('vary'), 'Cookie')

  const chosen = await b.get(`${ownUrl}/own-cache`, 'application/json')
  assert.equal(chosen.headers.get('cache-control'), 'private, max-age=60', 'the app\'s own Cache-Control is kept')
  assert.equal(chosen.headers.get('vary'), 'Cookie')

  const vary = await b.get(`${ownUrl}/vary`, 'application/json')
  assert.equal(vary.headers.get('cache-control'), 'no-store')
  assert.equal(vary.headers.get('vary'), 'Accept-Encoding, Cookie', 'the app\'s Vary is extended, not replaced')

  // A public path answered with the session (it may show who is signed in) is personal too.
  const open = await b.get(`${ownUrl}/open`, 'application/json')
  assert.equal(open.json().user, 'alice')
  assert.equal(open.headers.get('cache-control'), 'no-store')
  assert.equal(open.headers.get('vary'), 'Cookie')

  // The example app's private page (README's example) too.
  const page = await b.get(`${stack.appAUrl}/private`)
  assert.equal(page.status, 200)
  assert.equal(page.headers.get('cache-control'), 'no-store')
  assert.match(page.headers.get('vary') ?? '', /\bCookie\b/)
  // ...and the IdP's signed-in page.
  const home = await b.get(`${stack.idpUrl}/`)
  assert.match(home.body, /Alice Example/)
  assert.equal(home.headers.get('cache-control'), 'no-store')
})

test('the answer that redeems a token is kept out of caches too', async () => {
  await startOwnApp()
  const b = await signInThroughA(stack)
  const hops = await b.navigate(`${ownUrl}/mine?x=1`)
  const redeem = hops[2]
  assert.ok(redeem?.url.includes('token='), 'the third hop redeems')
  assert.equal(redeem?.headers.get('cache-control'), 'no-store')
  assert.equal(redeem?.headers.get('vary'), 'Cookie')
})

test('an answer without a session is left to the app: no Cache-Control or Vary added', async () => {
  await startOwnApp()
  const open = await new Browser().get(`${ownUrl}/open`, 'application/json')
  assert.equal(open.status, 200)
  assert.equal(open.json().user, null)
  assert.equal(open.headers.get('cache-control'), null)
  assert.equal(open.headers.get('vary'), null)
})

test('the HTML 401 (a form posted after the session lapsed) links to sign-in, and the link leads back to the app', async () => {
  const b = new Browser()
  const page = await b.post(`${stack.appAUrl}/api/note`, { note: 'x' }, 'text/html')
  assert.equal(page.status, 401)
  assert.match(page.headers.get('content-type') ?? '', /^text\/html/)
  assert.match(page.body, /Sign-in required\./)
  const href = /<a href="([^"]+)">Sign in<\/a>/.exec(page.body)?.[1]?.replace(/&amp;/g, '&')
  assert.ok(href, 'a sign-in link')
  // The same login URL as the JSON 401 gives (same browser, same state cookie).
  const json = await b.post(`${stack.appAUrl}/api/note`, { note: 'x' }, 'application/json')
  assert.equal(json.status, 401)
  assert.equal(href, json.json().loginUrl)
  const login = new URL(href)
  assert.equal(`${login.origin}${login.pathname}`, `${stack.idpUrl}/login`)
  // A POST cannot be replayed by the redirect back: the way back is the app's start page, never a Referer.
  assert.equal(Buffer.from(login.searchParams.get('callback') as string, 'base64url').toString(), `${stack.appAUrl}/`)

  const form = await b.get(href)
  assert.equal(form.status, 200)
  const posted = await b.post(`${stack.idpUrl}/login`, { ...formFields(form.body), username: 'alice', password: PASSWORD })
  assert.equal(posted.status, 303)
  const hops = await b.navigate(posted.location() as string)
  assert.equal(hops.at(-1)?.url, `${stack.appAUrl}/`)
  assert.match(hops.at(-1)?.body ?? '', /Signed in as <strong>Alice Example<\/strong>/)

  // A GET that is not a navigation (a script's fetch) still comes back to where it was.
  const api = await new Browser().get(`${stack.appAUrl}/api/me?x=1`, 'application/json')
  const back = new URL(api.json<{ loginUrl: string }>().loginUrl).searchParams.get('callback') as string
  assert.equal(Buffer.from(back, 'base64url').toString(), `${stack.appAUrl}/api/me?x=1`)
})

test('a session write Redis does not take answers Tessera\'s 503: a page for a browser, its JSON otherwise, not the route\'s body', async () => {
  const b = await signedInHere()
  const client = redis.client()
  // Reads go on; the write waits past the client's 2-s command timeout.
  await client.call('CLIENT', 'PAUSE', '10000', 'WRITE')
  try {
    const page = await b.request(`${ownUrl}/write`, { method: 'GET', headers: { accept: 'text/html' } })
    assert.equal(page.status, 503)
    assert.match(page.headers.get('content-type') ?? '', /^text\/html/)
    assert.match(page.body, /TESSERA_ERR_STORE_UNAVAILABLE/)
    assert.equal(page.headers.get('content-disposition'), null, 'the route\'s body headers went with its body')
    const json = await b.request(`${ownUrl}/write`, { method: 'GET', headers: { accept: 'application/json' } })
    assert.equal(json.status, 503)
    assert.deepEqual(json.json(), { code: 'TESSERA_ERR_STORE_UNAVAILABLE', message: json.json<{ message: string }>().message })
  } finally {
    await client.call('CLIENT', 'UNPAUSE')
  }
})
