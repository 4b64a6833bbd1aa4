/** The factor store's promises on a real Redis: a TOTP step once, a recovery code once, sealing bound to its user, reset. */
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import type { Redis } from 'ioredis'
import { Secret, TOTP } from 'otpauth'
import { startRedis, type TestRedis } from '../helpers/redis-server.js'
import { keyringOf, newKey } from '../helpers/sync-keys.js'
import { keys } from '../../src/shared/keys.js'
import { FactorStore } from '../../src/idp/factors/factor-store.js'
import { openFactor, sealFactor } from '../../src/idp/factors/factor-seal.js'
import { checkTotp, newTotpSecret, sealTotpSecret, stepOf } from '../../src/idp/factors/totp.js'
import { hashAll, newRecoveryCodes, normaliseRecoveryCode, recoveryCodeHash } from '../../src/idp/factors/recovery-codes.js'

let redis: TestRedis
let client: Redis
let store: FactorStore
before(async () => { redis = await startRedis(); client = redis.client(); store = new FactorStore(client) })
after(async () => { await redis.stop() })

const keyring = keyringOf(newKey('f1'))
const codeAt = (secret: string, at: number): string => TOTP.generate({ secret: Secret.fromBase32(secret), timestamp: at })

async function enrol(user: string, secret: string, at: number): Promise<string[]> {
  const codes = newRecoveryCodes()
  await store.enrolTotp(user, { sealed: sealTotpSecret(keyring, user, secret), enrolledAt: at }, stepOf(secret, codeAt(secret, at), at) as number, hashAll(user, codes), { secret, ttlMs: 60_000 })
  return codes
}

test('a TOTP step is accepted once, and no earlier step after it, even when two checks race', async () => {
  const secret = newTotpSecret()
  const t0 = Date.UTC(2026, 0, 1, 12, 0, 0)
  await enrol('u1', secret, t0)
  assert.equal(await checkTotp(store, keyring, 'u1', codeAt(secret, t0), t0), 'wrong', 'the enrolment code was spent')
  const next = t0 + 30_000
  const race = await Promise.all([1, 2, 3, 4].map(() => checkTotp(store, keyring, 'u1', codeAt(secret, next), next)))
  assert.deepEqual(race.filter((r) => r === 'ok').length, 1, 'one of four racing checks of one code wins')
  assert.equal(await checkTotp(store, keyring, 'u1', codeAt(secret, t0), next + 1000), 'wrong', 'an earlier step within the window')
  assert.equal(await checkTotp(store, keyring, 'u1', codeAt(secret, next + 30_000), next + 30_000), 'ok')
  const now = next + 30_000
  assert.equal(await checkTotp(store, keyring, 'u1', codeAt(secret, now + 60_000), now), 'wrong', 'two steps ahead: outside ±1 step')
  assert.equal(await checkTotp(store, keyring, 'u1', codeAt(secret, now + 30_000), now), 'ok', 'one step ahead: inside ±1 step')
  assert.equal(await checkTotp(store, keyring, 'u1', codeAt(secret, now + 120_000), now), 'wrong', 'four steps ahead')
  assert.equal(await client.pttl(keys.factors('u1')), -1, 'factors are durable: no TTL')
})

test('a sealed secret opens only for its user, purpose and with a key of the ring; rotation keeps it readable', async () => {
  const sealed = sealFactor(keyring, 'totp', 'alice', Buffer.from('SECRET'))
  assert.equal(openFactor(keyring, 'totp', 'alice', sealed)?.toString(), 'SECRET')
  assert.equal(openFactor(keyring, 'totp', 'mallory', sealed), undefined, 'moved to another user')
  assert.equal(openFactor(keyring, 'totp-enrol', 'alice', sealed), undefined, 'another purpose')
  assert.equal(openFactor(keyringOf(newKey('f1')), 'totp', 'alice', sealed), undefined, 'another key with the same id')
  const rotated = keyringOf(`${newKey('f2')},f1:${keyring.current.key.export().toString('base64url')}`)
  assert.equal(openFactor(rotated, 'totp', 'alice', sealed)?.toString(), 'SECRET', 'an older key still opens')
  assert.match(sealFactor(rotated, 'totp', 'alice', Buffer.from('x')), /^f1\.f2\./, 'the first key seals')
  const tampered = sealed.slice(0, -2) + (sealed.endsWith('A') ? 'BA' : 'AA')
  assert.equal(openFactor(keyring, 'totp', 'alice', tampered), undefined)
  const secret = newTotpSecret()
  const t = Date.now()
  await enrol('u2', secret, t)
  assert.equal(await checkTotp(store, keyringOf(newKey('f1')), 'u2', codeAt(secret, t + 30_000), t + 30_000), 'unreadable', 'a lost key fails closed')
})

test('a recovery code is good once, whatever its case and dashes; codes carry 120 bits', async () => {
  const codes = await enrol('u3', newTotpSecret(), Date.now())
  assert.equal(codes.length, 10)
  assert.equal(new Set(codes).size, 10)
  for (const c of codes) assert.match(c, /^[a-z2-9]{6}(-[a-z2-9]{6}){3}$/)
  // 120 bits: 24 characters, each drawn uniformly from 32 letters. Over 2,400 characters every one of
  // the 32 shows up (a letter missing by chance: about 32 × (31/32)^2400, below 10^-30).
  const seen = new Set(newRecoveryCodes(100).join('').replaceAll('-', ''))
  assert.equal(seen.size, 32, [...seen].sort().join(''))
  for (const c of seen) assert.ok('abcdefghijkmnpqrstuvwxyz23456789'.includes(c), c)
  const code = normaliseRecoveryCode((codes[0] as string).toUpperCase()) as string
  const race = await Promise.all([1, 2, 3].map(() => store.useRecoveryCode('u3', recoveryCodeHash('u3', code))))
  assert.equal(race.filter(Boolean).length, 1)
  assert.equal(await store.useRecoveryCode('u3', recoveryCodeHash('u2', normaliseRecoveryCode(codes[1]) as string)), false, "another user's hash")
  assert.equal((await store.enrolled('u3')).recoveryCodes, 9)
  assert.equal(normaliseRecoveryCode('short'), undefined)
})

test('removing TOTP takes the recovery codes with it unless a passkey remains; reset removes everything', async () => {
  await enrol('u4', newTotpSecret(), Date.now())
  await store.setField('u4', 'pk:cred1', '{}')
  assert.deepEqual(await store.enrolled('u4'), { totp: true, passkeys: 1, recoveryCodes: 10 })
  assert.equal(await store.removeTotp('u4'), true)
  assert.deepEqual(await store.enrolled('u4'), { totp: false, passkeys: 1, recoveryCodes: 10 }, 'codes back up the passkey')
  assert.equal(await store.replaceRecoveryCodes('u4', hashAll('u4', newRecoveryCodes(2))), true)
  assert.equal((await store.enrolled('u4')).recoveryCodes, 2)
  assert.equal(await store.reset('u4'), true)
  assert.deepEqual(await store.enrolled('u4'), { totp: false, passkeys: 0, recoveryCodes: 0 })
  assert.equal(await store.replaceRecoveryCodes('u4', hashAll('u4', newRecoveryCodes())), false, 'no codes without a factor')
  await enrol('u5', newTotpSecret(), Date.now())
  await store.removeTotp('u5')
  assert.equal(await client.exists(keys.factors('u5')), 0, 'no factor left: nothing left')
  assert.equal(await store.acceptStep('u5', 1e9), false, 'no step accepted without a secret')
})

test('one enrolment enrols once, even when four confirmations race; its marker lives as long as the form and shares the factors slot', async () => {
  const secret = newTotpSecret()
  const at = Date.now()
  const step = stepOf(secret, codeAt(secret, at), at) as number
  const once = { secret, ttlMs: 660_000 }
  const race = await Promise.all([1, 2, 3, 4].map(() =>
    store.enrolTotp('u5', { sealed: sealTotpSecret(keyring, 'u5', secret), enrolledAt: at }, step, hashAll('u5', newRecoveryCodes()), once)))
  assert.deepEqual(race.filter(Boolean).length, 1)
  assert.equal((await client.hkeys(keys.factors('u5'))).filter((f) => f.startsWith('rc:')).length, 10, 'one set of recovery codes')
  const ttl = await client.pttl(keys.enrolmentUsed('u5', secret))
  assert.ok(ttl > 600_000 && ttl <= 660_000, `marker TTL ${ttl}`)
  const tag = (key: string): string => /\{[^}]*\}/.exec(key)?.[0] ?? ''
  assert.equal(tag(keys.enrolmentUsed('u5', secret)), tag(keys.factors('u5')))
  assert.ok(!keys.enrolmentUsed('u5', secret).includes(secret), 'the secret is not in the key')
})
