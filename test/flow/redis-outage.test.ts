import { test, before } from 'node:test'
import assert from 'node:assert/strict'
import { buildIdp } from '../../src/idp/app.js'
import { Browser } from '../helpers/browser.js'
import { freePort } from '../helpers/net.js'
import { type TestRedis } from '../helpers/redis-server.js'
import { appCookies, formFields, PASSWORD, useStack, type Stack } from '../helpers/stack.js'

let redis: TestRedis
let stack: Stack
useStack((r, s) => { redis = r; stack = s }, {}, { persistent: true })

async function signIn(b: Browser): Promise<void> {
  const hops = await b.navigate(`${stack.appAUrl}/private`)
  const form = hops.at(-1)
  assert.equal(form?.status, 200)
  const posted = await b.post(`${stack.idpUrl}/login`, { ...formFields(form?.body ?? ''), username: 'alice', password: PASSWORD })
  assert.equal(posted.status, 303)
  const done = await b.navigate(posted.location() as string)
  assert.equal(done.at(-1)?.status, 200)
}

async function until(check: () => Promise<boolean>): Promise<void> {
  for (let i = 0; i < 100; i++) {
    if (await check()) return
    await new Promise((r) => setTimeout(r, 100))
  }
  throw new Error('condition never held')
}

test('Redis down: 503 everywhere it is needed, no 500, no crash; back by itself, sessions kept', async () => {
  const b = new Browser()
  await signIn(b)
  await redis.stop()

  assert.equal((await fetch(`${stack.idpUrl}/healthz`)).status, 200, 'the process is alive')
  assert.equal((await fetch(`${stack.idpUrl}/readyz`)).status, 503)
  const page = await b.get(`${stack.appAUrl}/private`)
  assert.equal(page.status, 503)
  assert.match(page.body, /temporarily unavailable/)
  const api = await b.get(`${stack.appAUrl}/api/me`, 'application/json')
  assert.equal(api.status, 503)
  assert.equal(api.json().code, 'TESSERA_ERR_STORE_UNAVAILABLE')
  const idpHome = await b.get(`${stack.idpUrl}/`)
  assert.equal(idpHome.status, 503)
  // A sign-in cannot be checked against regulation: it fails closed, never open.
  const fresh = new Browser()
  const form = await fresh.get(`${stack.idpUrl}/login`)
  assert.equal(form.status, 200, 'the form itself needs no Redis')
  const posted = await fresh.post(`${stack.idpUrl}/login`, { ...formFields(form.body), username: 'alice', password: PASSWORD })
  assert.equal(posted.status, 503)
  assert.equal(fresh.cookies('127.0.0.1').get('tessera_idp'), undefined)
  assert.equal(b.cookies('127.0.0.2').has(appCookies(stack.appAUrl).session), true, 'an outage does not clear the session cookie')

  await redis.start()
  await until(async () => (await fetch(`${stack.idpUrl}/readyz`)).status === 200)
  await until(async () => (await b.get(`${stack.appAUrl}/api/me`, 'application/json')).status !== 503)
  const back = await b.get(`${stack.appAUrl}/api/me`, 'application/json')
  assert.equal(back.status, 200, 'the session from before the outage is still valid')
  assert.equal(back.json<{ user: { username: string } }>().user.username, 'alice')
  await signIn(new Browser())
})

test('an IdP started while Redis is down waits up to 2 s for it, then starts anyway; once Redis is up its first answers are not 503', async () => {
  const b = new Browser()
  await signIn(b)
  await redis.stop()
  // Built as `npm start` builds it: its own connection, from the stack's configuration.
  const stubborn = buildIdp(stack.config, { logger: false })
  const port = await freePort('127.0.0.1')
  try {
    // Redis stays down: the IdP still starts, after its 2 s wait, and fails closed.
    const t0 = Date.now()
    await stubborn.listen({ host: '127.0.0.1', port })
    assert.ok(Date.now() - t0 >= 1900 && Date.now() - t0 < 5000, `started after ${Date.now() - t0} ms`)
    assert.equal((await fetch(`http://127.0.0.1:${port}/readyz`)).status, 503)
    assert.equal((await b.get(`http://127.0.0.1:${port}/`)).status, 503)
  } finally {
    await stubborn.close()
  }

  const fresh = buildIdp(stack.config, { logger: false })
  const port2 = await freePort('127.0.0.1')
  let listened = false
  const listening = fresh.listen({ host: '127.0.0.1', port: port2 }).then(() => { listened = true })
  try {
    await new Promise((r) => setTimeout(r, 300))
    assert.equal(listened, false, 'not listening yet: Redis is down and the 2 s wait has not passed')
    await redis.start()
    await listening
    // The first request after listen() needs Redis: the browser's IdP session, read on another port
    // of the same host (cookies are per host).
    const home = await b.get(`http://127.0.0.1:${port2}/`)
    assert.equal(home.status, 200)
    assert.match(home.body, /alice|Alice/)
  } finally {
    await listening.catch(() => {})
    await fresh.close()
  }
})
