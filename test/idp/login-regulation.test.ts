import { test, before } from 'node:test'
import assert from 'node:assert/strict'
import { Writable } from 'node:stream'
import { Browser, type Page } from '../helpers/browser.js'
import { loggerOptions } from '../../src/shared/logger.js'
import { type TestRedis } from '../helpers/redis-server.js'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { appCookies, formFields, PASSWORD, PASSWORD_HASH, useStack, type Stack } from '../helpers/stack.js'

const logLines: string[] = []
let redis: TestRedis
let stack: Stack
// alice and bob (disabled) as everywhere, and 24 colleagues who share one office address.
const COLLEAGUES = Array.from({ length: 24 }, (_, i) => `user${i}`)
function writeOfficeUsers(): string {
  const file = join(mkdtempSync(join(tmpdir(), 'tessera-regulation-')), 'users.yml')
  const entry = (name: string, extra = ''): string => `  ${name}:\n    displayname: ${name}\n    password: "${PASSWORD_HASH}"\n${extra}`
  writeFileSync(file, `users:\n${entry('alice', '    groups: [admins]\n')}${entry('bob', '    disabled: true\n')}${COLLEAGUES.map((n) => entry(n)).join('')}`)
  return file
}

useStack((r, s) => { redis = r; stack = s }, {
    env: {
      USERS_FILE: writeOfficeUsers(),
      LOGIN_MAX_RETRIES: '3', LOGIN_FIND_TIME_SECONDS: '120', LOGIN_BAN_TIME_SECONDS: '2',
      LOGIN_IP_MAX_RETRIES: '10', LOGIN_IP_FIND_TIME_SECONDS: '120', LOGIN_IP_BAN_TIME_SECONDS: '2',
    },
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
  // The subject in each key is a SHA-256 (256 bits: 64 hex digits or 43 base64url characters), not a shorter digest.
  assert.ok(keys.every((k) => /[0-9a-f]{64}|[A-Za-z0-9_-]{43}/.test(k)), keys.join(' '))
})

test('the password is checked exactly as typed: not case-folded, not truncated, not trimmed', async () => {
  await redis.client().flushall()
  assert.equal((await attempt(new Browser(), 'user20', PASSWORD)).status, 303, 'the password as set')
  for (const variant of [PASSWORD.toUpperCase(), PASSWORD.slice(0, -1), `${PASSWORD} `]) {
    assert.equal((await attempt(new Browser(), 'user21', variant)).status, 401, JSON.stringify(variant))
  }
})

test('a password over 1024 characters is refused before hashing, and 64 characters are fine', async () => {
  await redis.client().flushall()
  logLines.length = 0
  const long = await attempt(new Browser(), 'alice', 'x'.repeat(1025))
  assert.equal(long.status, 400)
  // No regulation slot taken and no check logged: the password never reached argon2.
  assert.deepEqual(await redis.client().keys('*{rl:*'), [])
  assert.equal(logLines.filter((l) => l.includes('login rejected')).length, 0)
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

/** Counts the argon2 checks the IdP makes from now on. */
function countPasswordChecks(): { readonly count: number } {
  const users = stack.config.users
  const verify = users.verify.bind(users)
  const counter = { count: 0 }
  users.verify = async (username, password) => { counter.count++; return verify(username, password) }
  return counter
}

test('20 colleagues signing in at the same moment from one address all get in', async () => {
  await redis.client().flushall()
  const results = await Promise.all(COLLEAGUES.slice(0, 20).map((name) => attempt(new Browser(), name, PASSWORD)))
  assert.deepEqual(results.map((r) => r.status), results.map(() => 303))
})

test('one user signing in from 5 devices at once gets in on every one, though only 3 checks may run together', async () => {
  await redis.client().flushall()
  const results = await Promise.all(Array.from({ length: 5 }, () => attempt(new Browser(), 'alice', PASSWORD)))
  assert.deepEqual(results.map((r) => r.status), [303, 303, 303, 303, 303])
})

test("another user's failures at the same address do not refuse a right password", async () => {
  await redis.client().flushall()
  const b = new Browser()
  for (let i = 0; i < 6; i++) assert.equal((await attempt(b, 'user0', `typo-${i}`)).status, 401)
  assert.equal((await attempt(b, 'user0', PASSWORD)).status, 401, 'user0 itself is banned')
  assert.equal((await attempt(new Browser(), 'user1', PASSWORD)).status, 303)
  assert.equal((await attempt(b, 'user1', PASSWORD)).status, 303, 'even in the same browser')
})

test('a banned attempt checks no password: one form token buys no hashing', async () => {
  await redis.client().flushall()
  const checks = countPasswordChecks()
  const b = new Browser()
  const form = await b.get(`${stack.idpUrl}/login`)
  const post = (password: string): Promise<Page> => b.request(`${stack.idpUrl}/login`, {
    method: 'POST',
    headers: { accept: 'text/html', 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ ...formFields(form.body), username: 'alice', password }).toString(),
  })
  const burst = await Promise.all(Array.from({ length: 20 }, (_, i) => post(`guess-${i}`)))
  assert.ok(burst.every((r) => r.status === 401))
  assert.equal(checks.count, 3, 'exactly the 3 allowed guesses were hashed')
  for (let i = 0; i < 10; i++) assert.equal((await post(i === 9 ? PASSWORD : `more-${i}`)).status, 401)
  assert.equal(checks.count, 3, 'no attempt during the ban was hashed, the right password included')
})

test('password spraying from one address bans the address, but not the browsers that signed in as their user before', async () => {
  await redis.client().flushall()
  const regular = new Browser()
  assert.equal((await attempt(regular, 'user5', PASSWORD)).status, 303)
  // Signed out since (the session ended); the browser keeps only its known-device cookie.
  regular.cookies('127.0.0.1').delete('tessera_idp')
  assert.ok(regular.cookies('127.0.0.1').has('tessera_device'))
  const sprayer = new Browser()
  // One password tried across 10 names (each name fails once: no user is banned).
  for (const name of COLLEAGUES.slice(10, 20)) assert.equal((await attempt(sprayer, name, 'Winter2026!')).status, 401)
  // The address is banned now: a new browser there is refused even with the right password...
  const checks = countPasswordChecks()
  assert.equal((await attempt(new Browser(), 'user6', PASSWORD)).status, 401)
  assert.equal((await attempt(sprayer, 'user7', PASSWORD)).status, 401)
  assert.equal(checks.count, 0)
  // ...while a colleague whose browser signed in as that user before still gets in.
  assert.equal((await attempt(regular, 'user5', PASSWORD)).status, 303)
  regular.cookies('127.0.0.1').delete('tessera_idp')
  // The known-device cookie names its user: it does not exempt another name.
  assert.equal((await attempt(regular, 'user8', PASSWORD)).status, 401)
  // Redis's TTL lifts the address ban (2 s here).
  await new Promise((r) => setTimeout(r, 2200))
  assert.equal((await attempt(new Browser(), 'user6', PASSWORD)).status, 303)
})

test('regulation counters are spread over Redis Cluster slots: one hash tag per subject', async () => {
  await redis.client().flushall()
  await attempt(new Browser(), 'alice', 'wrong')
  await attempt(new Browser(), 'user3', 'wrong')
  const tags = new Set((await redis.client().keys('*')).map((k) => /\{([^}]*)\}/.exec(k)?.[1]))
  // alice, user3 and the address: three subjects, three tags (no shared {rl}).
  assert.equal(tags.size, 3, [...tags].join(' '))
})
