import { test, before } from 'node:test'
import assert from 'node:assert/strict'
import { Browser } from '../helpers/browser.js'
import { type TestRedis } from '../helpers/redis-server.js'
import { formFields, PASSWORD, useStack, type Stack } from '../helpers/stack.js'

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
  assert.equal(b.cookies('127.0.0.2').has('tessera'), true, 'an outage does not clear the session cookie')

  await redis.start()
  await until(async () => (await fetch(`${stack.idpUrl}/readyz`)).status === 200)
  await until(async () => (await b.get(`${stack.appAUrl}/api/me`, 'application/json')).status !== 503)
  const back = await b.get(`${stack.appAUrl}/api/me`, 'application/json')
  assert.equal(back.status, 200, 'the session from before the outage is still valid')
  assert.equal(back.json<{ user: { username: string } }>().user.username, 'alice')
  await signIn(new Browser())
})
