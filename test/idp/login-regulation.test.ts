import { test, before } from 'node:test'
import assert from 'node:assert/strict'
import { Writable } from 'node:stream'
import { Browser, type Page } from '../helpers/browser.js'
import { loggerOptions } from '../../src/shared/logger.js'
import { type TestRedis } from '../helpers/redis-server.js'
import { appCookies, formFields, PASSWORD, useStack, type Stack } from '../helpers/stack.js'

const logLines: string[] = []
let redis: TestRedis
let stack: Stack
useStack((r, s) => { redis = r; stack = s }, {
    env: { LOGIN_MAX_RETRIES: '3', LOGIN_FIND_TIME_SECONDS: '120', LOGIN_BAN_TIME_SECONDS: '2' },
    idpLogger: { ...loggerOptions('info'), stream: new Writable({ write(chunk: Buffer, _e, done) { logLines.push(...chunk.toString().split('\n').filter(Boolean)); done() } }) },
  })

async function attempt(b: Browser, username: string, password: string, headers: Record<string, string> = {}): Promise<Page> {
  const form = await b.get(`${stack.idpUrl}/login`)
  return b.request(`${stack.idpUrl}/login`, {
    method: 'POST',
    headers: { accept: 'text/html', 'content-type': 'application/x-www-form-urlencoded', ...headers },
    body: new URLSearchParams({ ...formFields(form.body), username, password }).toString(),
  })
}

test('three failures ban the user name; a banned attempt with the right password looks like a wrong one; the ban lifts', async () => {
  await redis.client().flushall()
  const b = new Browser()
  for (let i = 0; i < 3; i++) assert.equal((await attempt(b, 'alice', 'wrong')).status, 401)
  const banned = await attempt(b, 'alice', PASSWORD)
  const wrong = await attempt(new Browser(), 'nobody', 'wrong')
  assert.equal(banned.status, 401)
  assert.match(banned.body, /Incorrect username or password\./)
  assert.equal(banned.body.replace(/value="[^"]*"/g, ''), wrong.body.replace(/value="[^"]*"/g, '').replace('nobody', 'alice'))
  assert.equal(b.cookies('127.0.0.1').get('tessera_idp'), undefined)
  // Redis's TTL lifts the ban (2 s here); then the right password works.
  await new Promise((r) => setTimeout(r, 2200))
  assert.equal((await attempt(b, 'alice', PASSWORD)).status, 303)
})

test('unknown user names answer like known ones: same status and message', async () => {
  await redis.client().flushall()
  const known = await attempt(new Browser(), 'alice', 'wrong')
  const unknown = await attempt(new Browser(), 'zed', 'wrong')
  assert.equal(known.status, unknown.status)
  assert.equal(known.body.replace(/value="[^"]*"/g, ''), unknown.body.replace(/value="[^"]*"/g, ''))
})

test('Redis keeps only hashes of user names in its regulation keys', async () => {
  await redis.client().flushall()
  await attempt(new Browser(), 'alice', 'wrong')
  const keys = await redis.client().keys('*')
  assert.ok(keys.length > 0)
  assert.ok(keys.every((k) => !k.includes('alice') && !k.includes('127.0.0.1')), keys.join(' '))
})

test('a password over 1024 characters is refused before hashing, and 64 characters are fine', async () => {
  const long = await attempt(new Browser(), 'alice', 'x'.repeat(1025))
  assert.equal(long.status, 400)
  const ok64 = await attempt(new Browser(), 'alice', 'y'.repeat(64))
  assert.equal(ok64.status, 401, 'a 64-character password is checked, not refused')
})

test('a burst of parallel wrong guesses cannot slip past the limit: at most 3 passwords are checked', async () => {
  await redis.client().flushall()
  logLines.length = 0
  const b = new Browser()
  const form = await b.get(`${stack.idpUrl}/login`)
  const fields = formFields(form.body)
  const results = await Promise.all(Array.from({ length: 30 }, (_, i) => b.request(`${stack.idpUrl}/login`, {
    method: 'POST',
    headers: { accept: 'text/html', 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ ...fields, username: 'alice', password: `guess-${i}` }).toString(),
  })))
  assert.ok(results.every((r) => r.status === 401))
  const rejections = logLines.filter((l) => l.includes('login rejected')).map((l) => JSON.parse(l) as { detail: string })
  assert.equal(rejections.length, 30)
  const checked = rejections.filter((r) => r.detail !== 'throttled').length
  assert.ok(checked <= 3, `${checked} of 30 parallel guesses had their password checked`)
})

test('signing in again in the same browser ends the earlier session everywhere', async () => {
  await redis.client().flushall()
  const b = new Browser()
  const hops = await b.navigate(`${stack.appAUrl}/private`)
  const first = await b.post(`${stack.idpUrl}/login`, { ...formFields(hops.at(-1)?.body ?? ''), username: 'alice', password: PASSWORD })
  await b.navigate(first.location() as string)
  const appCookie = b.cookies('127.0.0.2').get(appCookies(stack.appAUrl).session) as string
  assert.equal((await b.get(`${stack.appAUrl}/api/me`, 'application/json')).status, 200)
  // A login form opened while signed out (say, in another tab), submitted while signed in.
  const idpJar = b.cookies('127.0.0.1')
  const idpCookie = idpJar.get('tessera_idp') as string
  idpJar.delete('tessera_idp')
  const again = await b.get(`${stack.idpUrl}/login`)
  idpJar.set('tessera_idp', idpCookie)
  assert.equal((await b.post(`${stack.idpUrl}/login`, { ...formFields(again.body), username: 'alice', password: PASSWORD })).status, 303)
  const old = new Browser()
  old.cookies('127.0.0.2').set(appCookies(stack.appAUrl).session, appCookie)
  assert.equal((await old.get(`${stack.appAUrl}/api/me`, 'application/json')).status, 401)
})
