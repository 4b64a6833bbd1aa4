/**
 * The store's promises, on a real Redis: what the IdP, the plugin and the CLI rely on, each of which
 * used to hang on a comment only.
 */
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { startRedis, type TestRedis } from '../helpers/redis-server.js'
import { PWD, storesFor } from '../helpers/stores.js'
import { keys } from '../../src/shared/keys.js'
import { MAX_HANDLES_PER_APP } from '../../src/shared/tokens.js'
import { readerParts, type Sessions } from '../../src/shared/sessions.js'
import type { Handle } from '../../src/shared/session.js'
import { randomId } from '../../src/shared/crypto.js'
import { StoreUnavailableError } from '../../src/shared/errors.js'
import { Redis } from 'ioredis'

const USER = { username: 'alice', displayName: 'Alice', email: 'alice@example.com', groups: ['staff'] }
const IDP = 'http://127.0.0.1:3000'
const APP = 'http://127.0.0.2:3001'
const OTHER = 'http://127.0.0.3:3002'

let redis: TestRedis
let client: Redis
let stores: ReturnType<typeof storesFor>
let signer: ReturnType<typeof storesFor>['signer']
before(async () => { redis = await startRedis(); client = redis.client(); stores = storesFor(client); signer = stores.signer })
after(async () => { await redis.stop() })

test('exactly one of two racing redemptions of one token wins', async () => {
  const sessions = stores.sessions
  const tokens = stores.tokens
  for (let round = 0; round < 20; round++) {
    const { sid } = await sessions.create(USER, PWD, { idleMs: 60_000, absoluteMs: 600_000 }, IDP, signer)
    const tokenId = randomId(16)
    await tokens.record(sid, tokenId, 10_000)
    const results = await Promise.all([tokens.redeem(sid, tokenId, APP), tokens.redeem(sid, tokenId, APP)])
    assert.equal(results.filter((r) => typeof r !== 'string').length, 1)
    assert.equal(results.filter((r) => r === 'replayed').length, 1)
  }
})

test('a save never brings back an ended session', async () => {
  const sessions = stores.sessions
  const handle = await sessions.create(USER, PWD, { idleMs: 60_000, absoluteMs: 600_000 }, IDP, signer)
  await sessions.destroy(handle.sid)
  assert.equal(await sessions.save(handle.sid, new Map([['cart', [1, 2]]])), false)
  assert.equal(await client.exists(keys.session(handle.sid)), 0)
  assert.equal(await sessions.resolve(handle, IDP), undefined)
})

test("TTLs follow the idle and absolute limits on Redis's clock, and a read refreshes the idle one", async () => {
  const sessions = stores.sessions
  const handle = await sessions.create(USER, PWD, { idleMs: 30_000, absoluteMs: 90_000 }, IDP, signer)
  const idle = await client.pttl(keys.session(handle.sid))
  assert.ok(idle > 29_000 && idle <= 30_000, `session TTL ${idle}`)
  // The handle is a field of the session: it has no TTL of its own, it ends with the session.
  assert.equal(await client.hget(keys.session(handle.sid), keys.handleField(handle.secret, IDP)), '1')
  assert.equal(await client.exists(keys.legacyHandle(handle.sid, handle.secret, IDP)), 0)
  await client.pexpire(keys.session(handle.sid), 5_000)
  assert.ok(await sessions.resolve(handle, IDP))
  assert.ok((await client.pttl(keys.session(handle.sid))) > 29_000, 'a read sets the idle TTL again')
  // Within idle/60 of its own refresh (0.5 s here), a process reads the session without setting
  // the TTL again: the session may end that much early, never late. After that, it refreshes again.
  await client.pexpire(keys.session(handle.sid), 20_000)
  assert.ok(await sessions.resolve(handle, IDP))
  assert.ok((await client.pttl(keys.session(handle.sid))) <= 20_000, 'not set again within idle/60')
  await new Promise((resolve) => setTimeout(resolve, 600))
  assert.ok(await sessions.resolve(handle, IDP))
  assert.ok((await client.pttl(keys.session(handle.sid))) > 29_000, 'set again after idle/60')
})

test('the absolute expiry wins over the idle timeout, on both the refreshing and the plain read', async () => {
  // Idle 120 s (a process skips its own refresh for 2 s), absolute 1.5 s: a refresh never sets the
  // session's TTL past the time left, so Redis ends it at its absolute expiry, under every handle.
  const sessions = stores.sessions
  const handle = await sessions.create(USER, PWD, { idleMs: 120_000, absoluteMs: 1_500 }, IDP, signer)
  await client.pexpire(keys.session(handle.sid), 1_000_000)
  assert.ok(await sessions.resolve(handle, IDP))
  const capped = await client.pttl(keys.session(handle.sid))
  assert.ok(capped > 0 && capped <= 1_500, `session TTL ${capped}`)
  assert.ok(await sessions.resolve(handle, IDP), 'the plain read, within idle/60 of the refresh')
  await new Promise((resolve) => setTimeout(resolve, 1_600))
  assert.equal(await sessions.resolve(handle, IDP), undefined, 'past its absolute expiry (just refreshed)')
  assert.equal(await storesFor(client, { keyring: stores.keyring }).sessions.resolve(handle, IDP), undefined, 'past its absolute expiry')
  // A record whose absolute expiry has passed on Redis's clock opens nothing, whatever its TTL says.
  const other = await sessions.create(USER, PWD, { idleMs: 60_000, absoluteMs: 600_000 }, IDP, signer)
  const [seconds] = await client.time()
  await client.hset(keys.session(other.sid), 'x', Number(seconds) * 1000 - 1)
  assert.equal(await storesFor(client, { keyring: stores.keyring }).sessions.resolve(other, IDP), undefined, 'x in the past')
})

test('a handle an earlier Tessera kept as its own key still opens its session, then as a field', async () => {
  const sessions = stores.sessions
  const handle = await sessions.create(USER, PWD, { idleMs: 60_000, absoluteMs: 600_000 }, IDP, signer)
  const sessionKey = keys.session(handle.sid)
  const field = keys.handleField(handle.secret, IDP)
  const legacy = keys.legacyHandle(handle.sid, handle.secret, IDP)
  await client.hdel(sessionKey, field)
  // A handle key without a TTL was never written by Tessera (it lived until the absolute expiry).
  await client.set(legacy, '1')
  assert.equal(await sessions.resolve(handle, IDP), undefined, 'a handle key without a TTL')
  await client.set(legacy, '1', 'PX', 600_000)
  const fresh = storesFor(client, { keyring: stores.keyring }).sessions
  assert.ok(await fresh.resolve(handle, IDP), 'the earlier layout opens')
  assert.equal(await client.hget(sessionKey, field), '1', 'and the handle is a field from then on')
  await client.del(legacy)
  assert.ok(await fresh.resolve(handle, IDP), 'the plain read finds the field')
  // Another secret has neither a field nor a key: nothing, on the plain read as on the refreshing one.
  const stranger = { sid: handle.sid, secret: randomId(32) }
  assert.equal(await fresh.resolve(stranger, IDP), undefined)
  assert.equal(await storesFor(client, { keyring: stores.keyring }).sessions.resolve(stranger, IDP), undefined)
})

test('a logout is seen by the next request everywhere, through every handle', async () => {
  const sessions = stores.sessions
  const tokens = stores.tokens
  const idpHandle = await sessions.create(USER, PWD, { idleMs: 60_000, absoluteMs: 600_000 }, IDP, signer)
  const handles = []
  for (const app of [APP, OTHER]) {
    const tokenId = randomId(16)
    await tokens.record(idpHandle.sid, tokenId, 10_000)
    const r = await tokens.redeem(idpHandle.sid, tokenId, app)
    assert.ok(typeof r !== 'string')
    handles.push([r.handle, app] as const)
  }
  // Each handle read once first, so the reads after the logout are this process's plain reads.
  assert.ok(await sessions.resolve(idpHandle, IDP))
  for (const [h, app] of handles) assert.ok(await sessions.resolve(h, app))
  await sessions.destroy(idpHandle.sid)
  assert.equal(await sessions.resolve(idpHandle, IDP), undefined)
  for (const [h, app] of handles) assert.equal(await sessions.resolve(h, app), undefined)
})

test('a session keeps the newest handles per app, so hand-overs do not grow what each page view reads', async () => {
  const sessions = stores.sessions
  const tokens = stores.tokens
  const idpHandle = await sessions.create(USER, PWD, { idleMs: 60_000, absoluteMs: 600_000 }, IDP, signer)
  const redeem = async (app: string): Promise<Handle> => {
    const tokenId = randomId(16)
    await tokens.record(idpHandle.sid, tokenId, 10_000)
    const r = await tokens.redeem(idpHandle.sid, tokenId, app)
    assert.ok(typeof r !== 'string')
    return r.handle
  }
  const other = await redeem(OTHER)
  const handles: Handle[] = []
  for (let i = 0; i < MAX_HANDLES_PER_APP + 3; i++) handles.push(await redeem(APP))
  const fresh = (): Sessions => storesFor(client, { keyring: stores.keyring }).sessions
  for (const [i, h] of handles.entries()) {
    const kept = i >= handles.length - MAX_HANDLES_PER_APP
    assert.equal(await fresh().resolve(h, APP) !== undefined, kept, `handle ${i} of ${handles.length}: ${kept ? 'kept' : 'dropped'}`)
  }
  assert.ok(await fresh().resolve(other, OTHER), "another app's handle stays")
  assert.ok(await fresh().resolve(idpHandle, IDP), "the IdP's handle stays")
  const fields = await client.hkeys(keys.session(idpHandle.sid))
  assert.equal(fields.filter((f) => f.startsWith('h:')).length, 1 + 1 + MAX_HANDLES_PER_APP)
})

test("a handle opens its session for its own audience only", async () => {
  const sessions = stores.sessions
  const handle = await sessions.create(USER, PWD, { idleMs: 60_000, absoluteMs: 600_000 }, IDP, signer)
  assert.ok(await sessions.resolve(handle, IDP))
  assert.equal(await sessions.resolve(handle, APP), undefined)
  assert.equal(await sessions.resolve({ sid: handle.sid, secret: randomId(32) }, IDP), undefined, 'another secret')
})

test('WAIT is issued when replicas are asked for, and not otherwise; too few acknowledgements fail closed', async () => {
  const waits = async (): Promise<number> => Number(/cmdstat_wait:calls=(\d+)/.exec(await client.info('commandstats'))?.[1] ?? 0)
  const before = await waits()
  await stores.sessions.create(USER, PWD, { idleMs: 60_000, absoluteMs: 600_000 }, IDP, signer)
  assert.equal(await waits(), before, 'no WAIT without waitReplicas')
  // This Redis has no replica: WAIT 1 gets 0 acknowledgements within its 1 s and the write is refused.
  const waiting = storesFor(client, { waitReplicas: 1 })
  await assert.rejects(waiting.sessions.create(USER, PWD, { idleMs: 60_000, absoluteMs: 600_000 }, IDP, waiting.signer), StoreUnavailableError)
  assert.equal(await waits(), before + 1)
  await assert.rejects(waiting.sessions.destroy(randomId(16)), StoreUnavailableError)
  assert.equal(await waits(), before + 2)
})

test('a corrupt session record is no session, not an outage', async () => {
  const sessions = stores.sessions
  const handle = await sessions.create(USER, PWD, { idleMs: 60_000, absoluteMs: 600_000 }, IDP, signer)
  await client.hset(keys.session(handle.sid), 'u', '{not json')
  assert.equal(await sessions.resolve(handle, IDP), undefined)
  const other = await sessions.create(USER, PWD, { idleMs: 60_000, absoluteMs: 600_000 }, IDP, signer)
  await client.hdel(keys.session(other.sid), 'u')
  assert.equal(await sessions.resolve(other, IDP), undefined)
})

test('session data has no inherited keys: __proto__ is data, constructor is nothing', async () => {
  const sessions = stores.sessions
  const handle = await sessions.create(USER, PWD, { idleMs: 60_000, absoluteMs: 600_000 }, IDP, signer)
  assert.ok(await sessions.save(handle.sid, new Map<string, unknown>([['__proto__', { isAdmin: true }]])))
  // The refreshing read (a script's reply) and the plain one (ioredis's HGETALL) alike.
  for (const read of ['refreshing', 'plain']) {
    const snapshot = await sessions.resolve(handle, IDP)
    assert.ok(snapshot, read)
    assert.deepEqual(snapshot.data.get('__proto__'), { isAdmin: true })
    assert.deepEqual([...snapshot.data.keys()], ['__proto__'])
    assert.equal(snapshot.data.get('constructor'), undefined)
  }
})

test('the plain read gives the session the refreshing read gives, data included, and only through the handle it was given', async () => {
  const idpHandle = await stores.sessions.create(USER, PWD, { idleMs: 60_000, absoluteMs: 600_000 }, IDP, signer, 'Bench/1.0')
  const tokenId = randomId(16)
  await stores.tokens.record(idpHandle.sid, tokenId, 10_000)
  const r = await stores.tokens.redeem(idpHandle.sid, tokenId, APP)
  assert.ok(typeof r !== 'string')
  assert.ok(await stores.sessions.save(idpHandle.sid, new Map<string, unknown>([['cart', [1, 2]], ['d', 'a data key named d']])))
  const reader = storesFor(client, { keyring: stores.keyring }).sessions
  const refreshing = await reader.resolve(r.handle, APP) // RESOLVE: this process has not refreshed the session yet
  const plain = await reader.resolve(r.handle, APP) // now one plain HGETALL
  assert.ok(refreshing && plain)
  assert.deepEqual(plain, refreshing)
  assert.deepEqual(plain.data, new Map<string, unknown>([['cart', [1, 2]], ['d', 'a data key named d']]))
  assert.equal(plain.user.username, 'alice')
  // A secret of the same length that is not the handle's: the plain read sees no such field, and RESOLVE agrees.
  assert.equal(await reader.resolve({ sid: r.handle.sid, secret: randomId(32) }, APP), undefined)
  assert.equal(await reader.resolve(r.handle, OTHER), undefined, "the handle's field is bound to its app")
})

test('readerParts decodes u, c, i, d and d: fields only, and finds the handle field by its exact bytes', () => {
  const parts = ['u', '{"id":1}', 'x', '99', 'i', '60000', 'c', '12', 'a', 'UA', 'd', '"k2":1', 'uu', 'no', 'dd', 'no', 'd:k', '"v"', 'h:abc', '1', 'h:abd', '1', 'hs:x', 'h:abc']
    .map((s) => Buffer.from(s))
  const { flat, hasHandle } = readerParts(parts, Buffer.from('h:abd'))
  assert.deepEqual(flat, ['u', '{"id":1}', 'i', '60000', 'c', '12', 'd', '"k2":1', 'd:k', '"v"'])
  assert.equal(hasHandle, true)
  assert.equal(readerParts(parts, Buffer.from('h:abe')).hasHandle, false)
  assert.equal(readerParts(parts, Buffer.from('h:ab')).hasHandle, false)
  assert.deepEqual(readerParts([], Buffer.from('h:abd')), { flat: [], hasHandle: false })
})

/** A session with an app's handle, and a reader that has refreshed it already, so its next reads are the plain read. */
async function signedInAtApp(): Promise<{ handle: Handle; sid: string }> {
  const idpHandle = await stores.sessions.create(USER, PWD, { idleMs: 60_000, absoluteMs: 600_000 }, IDP, signer)
  const tokenId = randomId(16)
  await stores.tokens.record(idpHandle.sid, tokenId, 10_000)
  const r = await stores.tokens.redeem(idpHandle.sid, tokenId, APP)
  assert.ok(typeof r !== 'string')
  return { handle: r.handle, sid: idpHandle.sid }
}

test('session data: each key saved on its own, whatever its characters; two apps saving different keys at once both keep theirs', async () => {
  const { handle, sid } = await signedInAtApp()
  const odd = ['a', 'ab', 'a":"b', 'line\nbreak', 'tab\there', 'quote"', 'back\\slash', 'ünïcødé 🔑', '__proto__', 'constructor', ':', '"a"']
  const values: unknown[] = [1, { nested: { deep: [1, 'two', null] } }, 'a":"b', 'x\ny', 0.1 + 0.2, '🔑', true, null, { isAdmin: true }, [], '', 12345678901234567890]
  assert.ok(await stores.sessions.save(sid, new Map(odd.map((k, i) => [k, values[i]]))))
  // Two apps (two processes) saving at once, each its own keys, one of them deleting one.
  const appA = storesFor(client, { keyring: stores.keyring }).sessions
  const appB = storesFor(client, { keyring: stores.keyring }).sessions
  await Promise.all([
    appA.save(sid, new Map<string, unknown>([['cart', [1, 2]], ['a', undefined]])),
    appB.save(sid, new Map<string, unknown>([['theme', 'dark'], ['ab', 'changed']])),
  ])
  const expected = new Map<string, unknown>(odd.map((k, i) => [k, values[i]]))
  expected.delete('a')
  expected.set('ab', 'changed').set('cart', [1, 2]).set('theme', 'dark')
  const reader = storesFor(client, { keyring: stores.keyring }).sessions
  for (const read of ['refreshing', 'plain']) {
    const snapshot = await reader.resolve(handle, APP)
    assert.ok(snapshot, read)
    assert.deepEqual(snapshot.data, expected, read)
  }
  assert.equal(await client.hlen(keys.session(sid)) < 12, true, 'one field for all the data, not one per key')
})

test('a session an earlier Tessera created (data as d:<key> fields) opens with its data, and saves go on as d: fields', async () => {
  const { handle, sid } = await signedInAtApp()
  const key = keys.session(sid)
  await client.hdel(key, 'd')
  await client.hset(key, 'd:cart', '[1,2]', 'd:who', '"me"')
  const reader = storesFor(client, { keyring: stores.keyring }).sessions
  for (const read of ['refreshing', 'plain']) {
    const snapshot = await reader.resolve(handle, APP)
    assert.ok(snapshot, read)
    assert.deepEqual(snapshot.data, new Map<string, unknown>([['cart', [1, 2]], ['who', 'me']]), read)
  }
  assert.ok(await reader.save(sid, new Map<string, unknown>([['cart', [3]], ['who', undefined], ['new', 1]])))
  assert.equal(await client.hexists(key, 'd'), 0, 'no second layout in one session')
  assert.deepEqual(await client.hmget(key, 'd:cart', 'd:who', 'd:new'), ['[3]', null, '1'])
  assert.deepEqual((await reader.resolve(handle, APP))?.data, new Map<string, unknown>([['cart', [3]], ['new', 1]]))
})

test('a Redis user without +hmget: page views go on (the whole session read), with one notice', async () => {
  const { handle } = await signedInAtApp()
  await client.call('ACL', 'SETUSER', 'no-hmget', 'on', '>pw-no-hmget', '~*', '+@all', '-hmget')
  const limited = new Redis(redis.url.replace('redis://', 'redis://no-hmget:pw-no-hmget@'))
  try {
    const notices: string[] = []
    const reader = storesFor(limited, { keyring: stores.keyring, notice: (m) => notices.push(m) }).sessions
    for (let i = 0; i < 3; i++) assert.equal((await reader.resolve(handle, APP))?.user.username, 'alice', `read ${i + 1}`)
    assert.equal(notices.length, 1)
    assert.match(notices[0] as string, /\+hmget/)
  } finally {
    limited.disconnect()
    await client.call('ACL', 'DELUSER', 'no-hmget')
  }
})
