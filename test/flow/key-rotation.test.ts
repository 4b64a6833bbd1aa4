/**
 * Rotating SYNC_KEYS on a running IdP and app, one process restarted at a time: every sign-in
 * succeeds, including a token minted before a restart and redeemed after it.
 */
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import type { FastifyInstance } from 'fastify'
import { buildIdp } from '../../src/idp/app.js'
import { loadConfig } from '../../src/idp/config.js'
import { buildExampleApp } from '../../examples/remote-app.js'
import { Browser } from '../helpers/browser.js'
import { freePort } from '../helpers/net.js'
import { startRedis, type TestRedis } from '../helpers/redis-server.js'
import { formFields, newKey, PASSWORD, writeUsersFile } from '../helpers/stack.js'

let redis: TestRedis
let idpPort: number
let appPort: number
let idp: FastifyInstance | undefined
let app: FastifyInstance | undefined
const usersFile = writeUsersFile()
const sessionSecret = randomBytes(32).toString('base64url')
const appSecret = randomBytes(32).toString('base64url')
const OLD = newKey('old')
const NEW = newKey('new')

before(async () => {
  redis = await startRedis()
  idpPort = await freePort('127.0.0.1')
  appPort = await freePort('127.0.0.2')
})
after(async () => {
  await idp?.close()
  await app?.close()
  await redis.stop()
})

const idpUrl = (): string => `http://127.0.0.1:${idpPort}`
const appUrl = (): string => `http://127.0.0.2:${appPort}`

async function restartIdp(syncKeys: string): Promise<void> {
  await idp?.close()
  idp = buildIdp(loadConfig({
    REDIS_URL: redis.url, KNOWN_REMOTE_HOSTS: appUrl(), SYNC_KEYS: syncKeys, SESSION_SECRET: sessionSecret,
    USERS_FILE: usersFile, PUBLIC_URL: idpUrl(), LOGIN_MAX_RETRIES: '100',
  }), { logger: false })
  await idp.listen({ host: '127.0.0.1', port: idpPort })
}

async function restartApp(syncKeys: string): Promise<void> {
  await app?.close()
  app = buildExampleApp({ name: 'App', origin: appUrl(), idpUrl: idpUrl(), syncKeys, redis: redis.url, sessionSecret: appSecret })
  await app.listen({ host: '127.0.0.2', port: appPort })
}

/** Signs in through the app up to the 303 that carries the token; returns the browser and that URL. */
async function tokenInHand(): Promise<{ b: Browser; back: string }> {
  const b = new Browser()
  const hops = await b.navigate(`${appUrl()}/private`)
  const posted = await b.post(`${idpUrl()}/login`, { ...formFields(hops.at(-1)?.body ?? ''), username: 'alice', password: PASSWORD })
  assert.equal(posted.status, 303)
  return { b, back: posted.location() as string }
}

async function completes(t: { b: Browser; back: string }): Promise<string> {
  const hops = await t.b.navigate(t.back)
  assert.equal(hops.at(-1)?.status, 200, `sign-in failed: ${hops.map((h) => h.status).join(' ')}`)
  return new URL(t.back).searchParams.get('token')?.split('.')[1] as string
}

test('old → new,old → new: no failed sign-in at any step', async () => {
  await restartIdp(OLD)
  await restartApp(OLD)
  assert.equal(await completes(await tokenInHand()), 'old')

  // 1. Apps learn the new key first (they can open both), while the IdP still mints with old.
  const inFlight1 = await tokenInHand()
  await restartApp(`${NEW},${OLD}`)
  assert.equal(await completes(inFlight1), 'old', 'a token minted before the app restart opens after it')
  assert.equal(await completes(await tokenInHand()), 'old')

  // 2. The IdP mints with the new key; the old one still opens.
  const inFlight2 = await tokenInHand()
  await restartIdp(`${NEW},${OLD}`)
  assert.equal(await completes(inFlight2), 'old')
  assert.equal(await completes(await tokenInHand()), 'new')

  // 3. After a token TTL, the old key is dropped everywhere.
  await restartIdp(NEW)
  await restartApp(NEW)
  assert.equal(await completes(await tokenInHand()), 'new')
})

test('a token under a key the app no longer has is refused with 403', async () => {
  await restartIdp(`${NEW},${OLD}`)
  await restartApp(`${NEW},${OLD}`)
  await restartIdp(`${OLD}`) // an IdP rolled back to the old key, after the app dropped it
  await restartApp(NEW)
  const t = await tokenInHand()
  const res = await t.b.get(t.back)
  assert.equal(res.status, 403)
})
