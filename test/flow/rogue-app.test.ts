/**
 * A compromised app A, holding exactly what a real app A holds (its app keys, its Redis user from
 * docs/deploy.md, its session secret), attacks app B on another host, against a real IdP and B
 * running under their own Redis users from the same document.
 */
import { test, before } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { Redis } from 'ioredis'
import { Browser } from '../helpers/browser.js'
import { startRedis, type TestRedis } from '../helpers/redis-server.js'
import { appCookies, startStack, formFields, PASSWORD, type Stack } from '../helpers/stack.js'
import { after } from 'node:test'
import { formatAppKeys, parseAppKeys, type AppKeyring } from '../../src/shared/app-keys.js'
import { mintToken } from '../../src/shared/token.js'
import { keys } from '../../src/shared/keys.js'
import { encodeHandle, claimedSid } from '../../src/shared/handle-cookie.js'
import { randomId } from '../../src/shared/crypto.js'
import { assertHandedOver, codeAt, enrolOnSecurityPage, passwordOnly, postFactor, postPassword } from '../helpers/factors.js'
import { newKey } from '../helpers/sync-keys.js'

/** The `ACL SETUSER` lines of docs/deploy.md, with a password of ours. */
function documentedUsers(): { name: string; rules: string[] }[] {
  const doc = readFileSync('docs/deploy.md', 'utf8')
  const block = /```acl\n([\s\S]*?)```/.exec(doc)?.[1] ?? ''
  return block.trim().split('\n').map((line) => {
    const [, , name, ...rules] = line.trim().split(/\s+/)
    return { name: name as string, rules: rules.map((r) => (r === '>CHANGE-ME' ? `>pw-${name}` : r)) }
  })
}

let redis: TestRedis
let stack: Stack
let rogueRedis: Redis
let rogueKeys: AppKeyring
before(async () => {
  const users = documentedUsers()
  assert.deepEqual(users.map((u) => u.name), ['tessera-idp', 'tessera-app-shop'])
  redis = await startRedis()
  const admin = redis.client()
  const appRules = (users[1] as { rules: string[] }).rules
  await admin.call('ACL', 'SETUSER', 'tessera-idp', ...(users[0] as { rules: string[] }).rules)
  for (const app of ['a', 'b']) await admin.call('ACL', 'SETUSER', `tessera-app-${app}`, ...appRules.map((r) => r.replace('pw-tessera-app-shop', `pw-app-${app}`)))
  const url = (user: string, pw: string): string => `redis://${user}:${pw}@127.0.0.1:${redis.port}`
  stack = await startStack(redis, {
    ownRedis: true,
    env: { REDIS_URL: url('tessera-idp', 'pw-tessera-idp'), FACTOR_KEYS: newKey('f1') },
    appRedis: (app) => url(`tessera-app-${app.toLowerCase()}`, `pw-app-${app.toLowerCase()}`),
  })
  rogueRedis = new Redis(url('tessera-app-a', 'pw-app-a'))
  rogueKeys = parseAppKeys(formatAppKeys(stack.config.keyring, stack.appAUrl), 'appKeys', []) as AppKeyring
})
after(async () => {
  rogueRedis.disconnect()
  await stack.close()
  await redis.stop()
})

/** alice signs in through A, then opens B: both work under their Redis users. Returns her browser and sid. */
async function aliceEverywhere(): Promise<{ b: Browser; sid: string }> {
  const b = new Browser()
  const hops = await b.navigate(`${stack.appAUrl}/private`)
  const posted = await b.post(`${stack.idpUrl}/login`, { ...formFields(hops.at(-1)?.body ?? ''), username: 'alice', password: PASSWORD })
  assert.equal(posted.status, 303)
  assert.equal((await b.navigate(posted.location() as string)).at(-1)?.status, 200)
  assert.equal((await b.navigate(`${stack.appBUrl}/private`)).at(-1)?.status, 200)
  const sid = claimedSid(b.cookies('127.0.0.2').get(appCookies(stack.appAUrl).session)) as string
  return { b, sid }
}

test('the IdP and the apps run the whole flow under the documented Redis users', async () => {
  const { b } = await aliceEverywhere()
  // Data saved at A is read at B (HSET through the script), and logout at B (DEL) ends it at A.
  assert.equal((await b.get(`${stack.appBUrl}/api/me`, 'application/json')).status, 200)
  // The user's sessions page reads the index and each session's summary (Lua) under the IdP's user.
  const sessions = await b.get(`${stack.idpUrl}/sessions`)
  assert.equal(sessions.status, 200)
  assert.match(sessions.body, /class="session current"/)
  assert.equal((await b.post(`${stack.idpUrl}/sessions/end-others`, { csrf: formFields(sessions.body).csrf as string })).status, 303)
  assert.equal((await b.request(`${stack.appBUrl}/logout`, { method: 'POST', headers: { accept: 'text/html' } })).status, 303)
  assert.equal((await b.get(`${stack.appAUrl}/api/me`, 'application/json')).status, 401)
  assert.equal((await b.get(`${stack.idpUrl}/readyz`, 'application/json')).status, 200)
})

test('1. A mints a token for B with its own keys: B answers 403, even with B\'s state cookie and the token id recorded', async () => {
  const { sid } = await aliceEverywhere()
  const victim = new Browser()
  const toIdp = await victim.get(`${stack.appBUrl}/private`)
  assert.equal(toIdp.status, 302)
  const state = victim.cookies('127.0.0.3').get(appCookies(stack.appBUrl).state) as string
  const key = [...rogueKeys.byId.values()][0] as { id: string; tokenKey: import('node:crypto').KeyObject }
  const { token, claims } = mintToken({ id: key.id, key: key.tokenKey }, { sid, aud: stack.appBUrl, st: state, ttlSeconds: 10 })
  await rogueRedis.set(keys.token(sid, claims.jti), '1', 'PX', 10_000)
  const at = await victim.get(`${stack.appBUrl}/private?token=${encodeURIComponent(token)}`)
  assert.equal(at.status, 403)
  assert.equal(victim.cookies('127.0.0.3').get(appCookies(stack.appBUrl).session), undefined)
})

test("2. A rewrites alice's session (user, groups, methods): B treats the session as gone", async () => {
  const { b, sid } = await aliceEverywhere()
  const record = await rogueRedis.hget(keys.session(sid), 'u') as string
  const [kid, payload, signature] = record.split('.') as [string, string, string]
  const claims = JSON.parse(Buffer.from(payload, 'base64url').toString()) as { user: { username: string; groups: string[] }; amr: { m: string; t: number }[] }
  claims.user = { ...claims.user, username: 'root', groups: ['admins', 'payroll'] }
  claims.amr.push({ m: 'hwk', t: Date.now() })
  await rogueRedis.hset(keys.session(sid), 'u', `${kid}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}.${signature}`)
  assert.equal((await b.get(`${stack.appBUrl}/api/me`, 'application/json')).status, 401)
  // The old, unsigned format (plain user JSON) is no session either.
  const second = await aliceEverywhere()
  await rogueRedis.hset(keys.session(second.sid), 'u', JSON.stringify({ username: 'root', displayName: 'Root', email: '', groups: ['admins'] }))
  assert.equal((await second.b.get(`${stack.appBUrl}/api/me`, 'application/json')).status, 401)
  // Nor is alice's own signed identity copied into another session.
  const third = await aliceEverywhere()
  const fourth = await aliceEverywhere()
  await rogueRedis.hset(keys.session(fourth.sid), 'u', await rogueRedis.hget(keys.session(third.sid), 'u') as string)
  assert.equal((await fourth.b.get(`${stack.appBUrl}/api/me`, 'application/json')).status, 401)
})

test("3. A writes a handle for B's audience and forges B's cookie with its own secret: refused", async () => {
  const { sid } = await aliceEverywhere()
  const secret = randomId(32)
  await rogueRedis.hset(keys.session(sid), keys.handleField(secret, stack.appBUrl), '1')
  await rogueRedis.set(keys.legacyHandle(sid, secret, stack.appBUrl), '1', 'PX', 600_000)
  const forged = new Browser()
  forged.cookies('127.0.0.3').set(appCookies(stack.appBUrl).session, encodeHandle({ sid, secret }, stack.appSecrets.A, stack.appBUrl))
  assert.equal((await forged.get(`${stack.appBUrl}/api/me`, 'application/json')).status, 401)
})

test('second factors run under the documented IdP user, and A cannot read them', async () => {
  const { secret } = await enrolOnSecurityPage(await passwordOnly(stack.idpUrl, stack.appAUrl, 'alice'), stack.idpUrl)
  const b = new Browser()
  await postPassword(b, stack.idpUrl, stack.appAUrl, 'alice')
  await assertHandedOver(b, await postFactor(b, stack.idpUrl, { code: codeAt(secret, 1) }), stack.appAUrl, 'alice')
  await assert.rejects(rogueRedis.hgetall(keys.factors('alice')), /NOPERM/)
  await redis.client().del(keys.factors('alice'))
})

test('4. Redis refuses A what its ACL does not grant: NOPERM', async () => {
  for (const command of [['FLUSHALL'], ['KEYS', '*'], ['CONFIG', 'GET', 'maxmemory'], ['SCRIPT', 'FLUSH'], ['SCRIPT', 'LOAD', 'return 1'],
    ['FUNCTION', 'FLUSH'], ['GET', 'other-app:secret'], ['SET', 'other-app:secret', 'x'], ['GET', keys.userIndex('alice')], ['ACL', 'LIST']]) {
    await assert.rejects(rogueRedis.call(command[0] as string, ...command.slice(1)), /NOPERM/, command.join(' '))
  }
  // Everything the IdP and B did in these tests was within their rules: only A was ever refused.
  const log = await redis.client().call('ACL', 'LOG', '128') as unknown[][]
  const refused = new Set(log.map((entry) => entry[entry.indexOf('username') + 1]))
  assert.deepEqual([...refused], ['tessera-app-a'])
})
