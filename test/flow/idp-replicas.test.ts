/**
 * Several IdP replicas behind one public origin: two IdP instances built from the same configuration
 * (same PUBLIC_URL, keys and secrets, same Redis), listening on two ports of 127.0.0.1, and two apps.
 * A client spreads its IdP requests over both (round robin, as a load balancer would); cookies are per
 * host, so both replicas see the same cookies. A session made through one is used through the other,
 * and logout through either ends it everywhere.
 */
import assert from 'node:assert/strict'
import { test, before, after } from 'node:test'
import type { FastifyInstance } from 'fastify'
import { Redis } from 'ioredis'
import { Browser, type Page } from '../helpers/browser.js'
import { freePort } from '../helpers/net.js'
import { startRedis, type TestRedis } from '../helpers/redis-server.js'
import { formFields, PASSWORD, startStack, type Stack } from '../helpers/stack.js'
import { assertFullFlow, assertLogoutEverywhere, assertReplayRefused, assertSignedOutEverywhere, me, signInThroughA } from '../helpers/sso-scenarios.js'
import { buildIdp } from '../../src/idp/app.js'
import { REDIS_OPTIONS, waitForRedis } from '../../src/shared/redis.js'

let redis: TestRedis
let stack: Stack
let second: FastifyInstance
let secondRedis: Redis
let ports: [number, number]
/** How many requests each IdP replica answered, by port. */
const served = new Map<number, number>()

before(async () => {
  redis = await startRedis()
  stack = await startStack(redis)
  secondRedis = new Redis(redis.url, REDIS_OPTIONS)
  secondRedis.on('error', () => {})
  await waitForRedis(secondRedis)
  // The same configuration object: same PUBLIC_URL, SYNC_KEYS, SESSION_SECRET, users, Redis.
  second = buildIdp(stack.config, { redis: secondRedis, logger: false })
  const port = await freePort('127.0.0.1')
  await second.listen({ host: '127.0.0.1', port })
  ports = [Number(new URL(stack.idpUrl).port), port]
})
after(async () => {
  await second?.close()
  secondRedis?.disconnect()
  await stack?.close()
  await redis?.stop()
})

/**
 * A browser whose requests to the IdP (either replica's address) go to the replicas in `order`,
 * round robin; cookies stay per host name, so the replicas share them as behind one load balancer.
 */
class SpreadingBrowser extends Browser {
  #next = 0
  constructor(private readonly order: () => readonly number[]) { super() }

  override async request(url: string, init: { method: string; headers: Record<string, string>; body?: string }): Promise<Page> {
    const u = new URL(url)
    const order = this.order()
    if (u.hostname === '127.0.0.1' && ports.includes(Number(u.port))) {
      u.port = String(order[this.#next++ % order.length])
      served.set(Number(u.port), (served.get(Number(u.port)) ?? 0) + 1)
    }
    return super.request(u.href, init)
  }
}

const spreading = (): Browser => new SpreadingBrowser(() => ports)
const onlyFirst = (): Browser => new SpreadingBrowser(() => [ports[0]])
const onlySecond = (): Browser => new SpreadingBrowser(() => [ports[1]])
/** A browser pinned to one replica now, switchable later. */
function pinned(start: 0 | 1): { browser: Browser; use(i: 0 | 1): void } {
  let current: 0 | 1 = start
  const browser = new SpreadingBrowser(() => [ports[current]])
  return { browser, use: (i) => { current = i } }
}

test('replicas: the full SSO flow with IdP requests spread over both replicas', async () => {
  served.clear()
  await assertFullFlow(stack, spreading)
  assert.ok((served.get(ports[0]) ?? 0) > 0 && (served.get(ports[1]) ?? 0) > 0, `both replicas answered (${JSON.stringify([...served])})`)
})

test('replicas: a session created through one replica is used through the other', async () => {
  for (const [from, to] of [[0, 1], [1, 0]] as const) {
    const p = pinned(from)
    await signInThroughA(stack, () => p.browser) // the form and the POST at replica `from`
    p.use(to)
    const hops = await p.browser.navigate(`${stack.appBUrl}/private`)
    assert.deepEqual(hops.map((h) => h.status), [302, 302, 302, 200], `app B signs in through replica ${to} with no form`)
    assert.equal(new URL(hops[1]?.url as string).port, String(ports[to]))
    const home = await p.browser.get(`${stack.idpUrl}/`)
    assert.equal(new URL(home.url).port, String(ports[to]))
    assert.match(home.body, /Alice Example/, `replica ${to} knows the session made at replica ${from}`)
    assert.equal((await me(p.browser, stack.appBUrl)).status, 200)
  }
})

test('replicas: logout through either replica ends the session everywhere', async () => {
  for (const [from, to] of [[0, 1], [1, 0]] as const) {
    const p = pinned(from)
    await assertFullFlow(stack, () => p.browser)
    p.use(to)
    const home = await p.browser.get(`${stack.idpUrl}/`)
    const { csrf } = formFields(home.body)
    assert.ok(csrf, `replica ${to} shows the sign-out form`)
    const out = await p.browser.post(`${stack.idpUrl}/logout`, { csrf })
    assert.equal(out.status, 200)
    assert.match(out.body, /signed out of every application/)
    assert.equal(new URL(out.url).port, String(ports[to]))
    p.use(from)
    await assertSignedOutEverywhere(p.browser, stack, `logout at replica ${to}, checked at replica ${from}`)
    p.use(to)
    await assertSignedOutEverywhere(p.browser, stack, `logout at replica ${to}, checked at replica ${to}`)
  }
})

test('replicas: the login form of one replica is accepted by the other (CSRF and pre-login cookie)', async () => {
  const p = pinned(0)
  const first = await p.browser.get(`${stack.appAUrl}/private`)
  const form = await p.browser.get(first.location() as string)
  assert.equal(form.status, 200)
  p.use(1)
  const posted = await p.browser.post(`${stack.idpUrl}/login`, { ...formFields(form.body), username: 'alice', password: PASSWORD })
  assert.equal(posted.status, 303)
  assert.equal(new URL(posted.url).port, String(ports[1]))
  const done = await p.browser.navigate(posted.location() as string)
  assert.equal(done.at(-1)?.status, 200)
})

test('replicas: logout everywhere and token replay with requests spread over both', async () => {
  await assertLogoutEverywhere(stack, spreading)
  await assertReplayRefused(stack, spreading)
  // And pinned to each, for good measure.
  await assertReplayRefused(stack, onlyFirst)
  await assertReplayRefused(stack, onlySecond)
})
