/** The passkey store and the challenge store on a real Redis: what each promises. */
import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { randomBytes } from 'node:crypto'
import type { Redis } from 'ioredis'
import { startRedis, type TestRedis } from '../helpers/redis-server.js'
import { PasskeyStore } from '../../src/idp/factors/passkey-store.js'
import type { PasskeyCredential } from '../../src/idp/factors/webauthn.js'

let redis: TestRedis
let client: Redis
let store: PasskeyStore

before(async () => {
  redis = await startRedis()
  client = redis.client()
  store = new PasskeyStore(client)
})
after(async () => { await redis.stop() })

const credential = (counter = 0): PasskeyCredential => ({
  id: randomBytes(16).toString('base64url'), publicKey: new Uint8Array(randomBytes(77)), counter, transports: ['internal', 'hybrid'],
})

test('a passkey is kept with its public key, transports and name, and found by its owner', async () => {
  const c = credential()
  assert.equal(await store.add('carol', c, 'Laptop', 1_000), true)
  const [kept] = await store.list('carol')
  assert.ok(kept)
  assert.deepEqual({ ...kept, publicKey: Buffer.from(kept.publicKey) },
    { id: c.id, publicKey: Buffer.from(c.publicKey), counter: 0, transports: ['internal', 'hybrid'], name: 'Laptop', createdAt: 1_000, lastUsedAt: undefined })
  assert.equal(await store.ownerOf(c.id), 'carol')
  assert.equal(await store.ownerOf('nobody-has-this'), undefined)
})

test('one credential id is registered once, to one user', async () => {
  const c = credential()
  assert.equal(await store.add('dave', c, 'Key'), true)
  assert.equal(await store.add('erin', c, 'Stolen id'), false)
  assert.equal(await store.ownerOf(c.id), 'dave')
  assert.equal((await store.list('erin')).length, 0)
})

test('the sign counter must go up; two answers with one counter value cannot both pass', async () => {
  const c = credential(5)
  await store.add('frank', c, 'Key')
  assert.equal(await store.recordUse('frank', c.id, 5), 'regressed', 'the same counter again')
  assert.equal(await store.recordUse('frank', c.id, 4), 'regressed')
  const raced = await Promise.all([store.recordUse('frank', c.id, 6), store.recordUse('frank', c.id, 6)])
  assert.deepEqual(raced.sort(), ['ok', 'regressed'])
  assert.equal((await store.get('frank', c.id))?.counter, 6)
  assert.ok((await store.get('frank', c.id))?.lastUsedAt !== undefined)
})

test('an authenticator that keeps no counter (always 0) is accepted every time', async () => {
  const c = credential(0)
  await store.add('grace', c, 'Synced passkey')
  assert.equal(await store.recordUse('grace', c.id, 0), 'ok')
  assert.equal(await store.recordUse('grace', c.id, 0), 'ok')
})

test('rename and remove change only the user\'s own passkeys; a removed passkey has no owner and no use', async () => {
  const c = credential()
  await store.add('heidi', c, 'Old name')
  assert.equal(await store.rename('ivan', c.id, 'Mine now'), false)
  assert.equal(await store.remove('ivan', c.id), false)
  assert.equal(await store.ownerOf(c.id), 'heidi', 'another user\'s remove released nothing')
  assert.equal(await store.rename('heidi', c.id, 'Phone'), true)
  assert.equal((await store.get('heidi', c.id))?.name, 'Phone')
  assert.equal(await store.remove('heidi', c.id), true)
  assert.equal(await store.get('heidi', c.id), undefined)
  assert.equal(await store.ownerOf(c.id), undefined)
  assert.equal(await store.recordUse('heidi', c.id, 9), 'gone')
})

test('the WebAuthn user handle is random, 32 bytes, and the same for all of a user\'s passkeys', async () => {
  const a = await store.userHandle('judy')
  assert.equal(a.length, 32)
  assert.deepEqual(await store.userHandle('judy'), a)
  assert.notDeepEqual(await store.userHandle('mallory'), a)
  assert.ok(!Buffer.from(a).toString().includes('judy'))
})
