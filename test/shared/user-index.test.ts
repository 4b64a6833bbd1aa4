/**
 * What the per-user index tells the sessions page and the CLI, on a real Redis: the User-Agent kept at
 * sign-in (bounded), the apps that redeemed a hand-over (bounded), last seen, and only the user's own
 * sessions when identities are verified.
 */
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import type { Redis } from 'ioredis'
import { startRedis, type TestRedis } from '../helpers/redis-server.js'
import { PWD, storesFor } from '../helpers/stores.js'
import { randomId } from '../../src/shared/crypto.js'
import { identityKeysOf } from '../../src/shared/app-keys.js'
import { IdentityVerifier } from '../../src/shared/identity.js'
import { keys } from '../../src/shared/keys.js'
import { MAX_USER_AGENT } from '../../src/shared/sessions.js'
import { MAX_APP_ORIGIN, MAX_APPS } from '../../src/shared/tokens.js'
import { fingerprint, UserIndex } from '../../src/shared/user-index.js'
import { StoreUnavailableError } from '../../src/shared/errors.js'

const alice = { username: 'alice', displayName: 'Alice', email: '', groups: [] }
const carol = { username: 'carol', displayName: 'Carol', email: '', groups: [] }
const IDP = 'http://127.0.0.1:3000'
const APP = 'http://127.0.0.2:3001'
const OTHER = 'http://127.0.0.3:3002'
const LIMITS = { idleMs: 60_000, absoluteMs: 600_000 }

let redis: TestRedis
let client: Redis
let stores: ReturnType<typeof storesFor>
let verified: UserIndex
let unverified: UserIndex
before(async () => {
  redis = await startRedis()
  client = redis.client()
  stores = storesFor(client)
  verified = new UserIndex(client, { identity: new IdentityVerifier(identityKeysOf(stores.keyring).publicKeyFor) })
  unverified = new UserIndex(client)
})
after(async () => { await redis.stop() })

async function signIn(user: typeof alice, userAgent?: string): Promise<string> {
  const { sid } = await stores.sessions.create(user, PWD, LIMITS, IDP, stores.signer, userAgent)
  await verified.add(user.username, sid, LIMITS.absoluteMs)
  return sid
}

async function redeemAt(sid: string, origin: string): Promise<void> {
  const tokenId = randomId(16)
  await stores.tokens.record(sid, tokenId, 10_000)
  assert.equal(typeof await stores.tokens.redeem(sid, tokenId, origin), 'object', `redeemed at ${origin}`)
}

test('a session\'s summary: its User-Agent cut to the bound, each app once in order, last seen, methods; never its id', async () => {
  await client.flushall()
  const before = Date.now()
  const sid = await signIn(alice, `Firefox/128.0 ${'y'.repeat(1000)}`)
  await redeemAt(sid, APP)
  await redeemAt(sid, OTHER)
  await redeemAt(sid, APP)
  const [entry] = await verified.sessions('alice')
  assert.ok(entry)
  assert.equal(entry.sid, sid)
  assert.equal(entry.summary.id, fingerprint(sid))
  assert.ok(!JSON.stringify(entry.summary).includes(sid), 'the summary never carries the id')
  assert.equal(entry.summary.userAgent.length, MAX_USER_AGENT)
  assert.ok(entry.summary.userAgent.startsWith('Firefox/128.0 yyy'))
  assert.deepEqual(entry.summary.apps, [APP, OTHER])
  assert.deepEqual(entry.methods.map((m) => m.method), ['pwd'])
  // Redis's clock and this host's are one clock here; a second either side for rounding.
  assert.ok(entry.summary.lastSeenAt >= before - 1000 && entry.summary.lastSeenAt <= Date.now() + 1000, 'last seen: the last redemption')
  assert.ok(entry.summary.lastSeenAt >= entry.summary.createdAt)
  // A second read: the times it derives from Redis's clock (TIME, PTTL: each rounded to the
  // millisecond on its own) may come out a millisecond apart; everything else is the same.
  const listed = await unverified.list('alice')
  assert.equal(listed.length, 1)
  const { idleExpiresAt, lastSeenAt, ...rest } = listed[0] as (typeof listed)[number]
  const { idleExpiresAt: idleBefore, lastSeenAt: seenBefore, ...restBefore } = entry.summary
  assert.deepEqual(rest, restBefore, 'the CLI\'s list is the same summary')
  assert.ok(Math.abs(idleExpiresAt - idleBefore) <= 1 && Math.abs(lastSeenAt - seenBefore) <= 1, 'the same times, to the millisecond')
})

test('a session with no User-Agent keeps none', async () => {
  await client.flushall()
  const sid = await signIn(alice)
  assert.equal(await client.hexists(keys.session(sid), 'a'), 0)
  assert.equal((await verified.list('alice'))[0]?.userAgent, '')
})

test('the apps a session records are bounded in count and length, however many an app redeems', async () => {
  await client.flushall()
  const sid = await signIn(alice)
  await redeemAt(sid, `http://${'a'.repeat(MAX_APP_ORIGIN)}.example`)
  for (let i = 0; i < MAX_APPS + 8; i++) await redeemAt(sid, `http://app${i}.example`)
  const apps = (await verified.list('alice'))[0]?.apps ?? []
  assert.equal(apps.length, MAX_APPS)
  assert.equal(apps[0], 'http://app0.example', 'the over-long origin was not recorded')
  assert.equal(apps.at(-1), `http://app${MAX_APPS - 1}.example`)
  assert.ok(((await client.hget(keys.session(sid), 'o')) ?? '').length < MAX_APPS * 32)
})

test('verified, the index lists only sessions signed for its user; the CLI lists what the index holds', async () => {
  await client.flushall()
  const own = await signIn(alice)
  const carols = await signIn(carol)
  // Another writer put carol's session in alice's index: alice's page must not show it or let her end it.
  await client.sadd(keys.userIndex('alice'), carols)
  assert.deepEqual((await verified.sessions('alice')).map((s) => s.sid), [own])
  assert.deepEqual((await verified.sessions('carol')).map((s) => s.sid), [carols])
  assert.equal((await unverified.list('alice')).length, 2)
  // A record whose identity does not verify is no one's session.
  await client.hset(keys.session(own), 'u', 'forged')
  assert.deepEqual(await verified.sessions('alice'), [])
})

test('remove takes an ended session out of its user\'s index; gone sessions are pruned when listed', async () => {
  await client.flushall()
  const a = await signIn(alice)
  const b = await signIn(alice)
  await verified.remove('alice', a)
  assert.deepEqual(await client.smembers(keys.userIndex('alice')), [b])
  await client.del(keys.session(b))
  assert.deepEqual(await verified.list('alice'), [])
  assert.deepEqual(await client.smembers(keys.userIndex('alice')), [])
})

test('a revocation is confirmed by the replicas it is told to wait for, as a logout is: with none attached, 503 after the deletes', async () => {
  await client.flushall()
  const a = await signIn(alice)
  const b = await signIn(alice)
  const waiting = new UserIndex(client, { waitReplicas: 1 })
  await assert.rejects(waiting.revokeAll('alice'), (err: Error) => err instanceof StoreUnavailableError && /^WAIT: 0 of 1/.test((err as StoreUnavailableError).detail ?? ''))
  // The deletes were made on the primary; what is missing is a replica's word that they survive a failover.
  assert.equal(await client.exists(keys.session(a), keys.session(b), keys.userIndex('alice')), 0)
  // Without replicas to wait for, the same revocation answers at once.
  const c = await signIn(alice)
  assert.equal(await verified.revokeAll('alice'), 1)
  assert.equal(await client.exists(keys.session(c)), 0)
})
