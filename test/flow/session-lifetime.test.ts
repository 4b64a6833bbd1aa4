import { test, after } from 'node:test'
import assert from 'node:assert/strict'
import { Browser } from '../helpers/browser.js'
import { type TestRedis } from '../helpers/redis-server.js'
import { appCookies, formFields, PASSWORD, useStack, type Stack } from '../helpers/stack.js'

let redis: TestRedis
let stack: Stack
useStack((r, s) => { redis = r; stack = s }, { env: { SESSION_IDLE_SECONDS: '1', SESSION_TTL_SECONDS: '3' } })

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))

async function signIn(): Promise<Browser> {
  const b = new Browser()
  const hops = await b.navigate(`${stack.appAUrl}/private`)
  const posted = await b.post(`${stack.idpUrl}/login`, { ...formFields(hops.at(-1)?.body ?? ''), username: 'alice', password: PASSWORD })
  await b.navigate(posted.location() as string)
  return b
}

const signedIn = async (b: Browser, base: string): Promise<boolean> => (await b.get(`${base}/api/me`, 'application/json')).status === 200

test('an idle session expires everywhere after the idle timeout', async () => {
  const b = await signIn()
  assert.ok(await signedIn(b, stack.appAUrl))
  await sleep(1400)
  assert.equal(await signedIn(b, stack.appAUrl), false)
  assert.match((await b.get(`${stack.idpUrl}/`)).body, /You are not signed in/)
})

test('activity in any app keeps the session alive, but never past the absolute lifetime', async () => {
  const b = await signIn()
  await b.navigate(`${stack.appBUrl}/private`)
  const started = Date.now()
  // Alternate apps every 0.5 s: each request refreshes the one shared idle timer.
  let lastAlive = 0
  while (Date.now() - started < 4500) {
    const base = Math.floor((Date.now() - started) / 500) % 2 === 0 ? stack.appAUrl : stack.appBUrl
    if (await signedIn(b, base)) lastAlive = Date.now() - started
    await sleep(500)
  }
  assert.ok(lastAlive >= 1500, `kept alive past the 1 s idle timeout (last seen at ${lastAlive} ms)`)
  assert.equal(await signedIn(b, stack.appAUrl), false, 'ended by the 3 s absolute lifetime')
  assert.equal(await signedIn(b, stack.appBUrl), false)
})

test('Redis holds TTLs on every session key and no cookie value', async () => {
  const b = await signIn()
  const client = redis.client()
  const keys = await client.keys('tessera:*')
  assert.ok(keys.length >= 2)
  for (const k of keys) assert.ok((await client.pttl(k)) > 0, `${k} has a TTL`)
  const cookieValues = [b.cookies('127.0.0.1').get('tessera_idp'), b.cookies('127.0.0.2').get(appCookies(stack.appAUrl).session)].map((v) => (v as string).split('.')[1] as string)
  for (const k of keys) {
    for (const secret of cookieValues) assert.ok(!k.includes(secret))
    const type = await client.type(k)
    const dump = type === 'hash' ? JSON.stringify(await client.hgetall(k))
      : type === 'set' ? JSON.stringify(await client.smembers(k)) : String(await client.get(k))
    for (const secret of cookieValues) assert.ok(!dump.includes(secret))
  }
})
