/**
 * Property tests (fast-check): the callback decoder, the token opener and the login form parser
 * never throw anything but Tessera's own 4xx errors. A fixed seed in CI (CI=true) keeps runs
 * reproducible; elsewhere the seed varies and a failure prints it (re-run with FUZZ_SEED=<seed>).
 */
import type { Keyring } from '../src/shared/keyring.js'
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import fc from 'fast-check'
import type { FastifyInstance } from 'fastify'
import { AllowList } from '../src/idp/allow-list.js'
import { buildIdp } from '../src/idp/app.js'
import { loadConfig } from '../src/idp/config.js'
import { InvalidTokenError } from '../src/shared/errors.js'
import { parseSyncKeys } from '../src/shared/keyring.js'
import { mintToken, openToken } from '../src/shared/token.js'
import { startRedis, type TestRedis } from './helpers/redis-server.js'
import { newKey, writeUsersFile } from './helpers/stack.js'

/** Opens with the keyring's raw keys: these tests are about the token format, not key derivation. */
const opener = (kr: Keyring) => (kid: string) => kr.byId.get(kid)?.key

const seed = process.env.FUZZ_SEED !== undefined ? Number(process.env.FUZZ_SEED) : process.env.CI === 'true' ? 20261125 : undefined
const params = (numRuns: number): fc.Parameters<unknown> => ({ numRuns, ...(seed === undefined ? {} : { seed }) })

const allow = new AllowList(['https://app.example.com', 'http://app.test:3001'])

const hostileText = fc.oneof(
  fc.string({ maxLength: 200 }),
  fc.string({ unit: 'binary', maxLength: 200 }),
  fc.webUrl({ withQueryParameters: true, withFragments: true }),
  fc.tuple(fc.constantFrom('https://app.example.com', 'http://app.test:3001', 'HTTPS://APP.EXAMPLE.COM', 'http:', '//', '\\\\', 'https://'),
    fc.string({ maxLength: 60 }), fc.constantFrom('', '@evil.com', '.evil.com', '/x', '?token=1', '#f', '\t', '%2e'))
    .map(([a, b, c]) => `${a}${b}${c}`),
)

test('the callback decoder never throws, and allows only listed origins', () => {
  fc.assert(fc.property(hostileText, fc.boolean(), (text, standard) => {
    const encoded = Buffer.from(text, 'utf8').toString(standard ? 'base64' : 'base64url')
    for (const input of [encoded, text]) {
      const r = allow.check(input)
      assert.ok(['none', 'allowed', 'refused'].includes(r.kind))
      if (r.kind === 'allowed') assert.ok(allow.origins.includes(r.url.origin))
    }
  }), params(3000))
})

test('the token opener throws only InvalidTokenError, for garbage and for mutated real tokens', () => {
  const keyring = parseSyncKeys(newKey('k1'), 'SYNC_KEYS', []) ?? assert.fail('keyring')
  const { token } = mintToken(keyring.current, { sid: 'a'.repeat(22), aud: 'https://app.example.com', st: 's'.repeat(43), ttlSeconds: 10 })
  const mutated = fc.tuple(fc.nat({ max: token.length - 1 }), fc.string({ minLength: 0, maxLength: 3 }), fc.nat({ max: 3 }))
    .map(([at, insert, drop]) => token.slice(0, at) + insert + token.slice(at + drop))
  fc.assert(fc.property(fc.oneof(fc.string({ maxLength: 300 }), mutated), (candidate) => {
    if (candidate === token) return
    assert.throws(() => openToken(opener(keyring), candidate, 'https://app.example.com'), InvalidTokenError)
  }), params(3000))
})

let redis: TestRedis
let idp: FastifyInstance
before(async () => {
  redis = await startRedis()
  idp = buildIdp(loadConfig({
    REDIS_URL: redis.url, KNOWN_REMOTE_HOSTS: 'http://app.test:3001', SYNC_KEYS: newKey('k1'),
    SESSION_SECRET: randomBytes(32).toString('base64url'), USERS_FILE: writeUsersFile(), PUBLIC_URL: 'http://127.0.0.1:3000',
  }), { logger: false })
  await idp.ready()
})
after(async () => {
  await idp.close()
  await redis.stop()
})

const formValue = fc.oneof(fc.string({ maxLength: 50 }), fc.string({ unit: 'binary', maxLength: 50 }), fc.constant(''), fc.string({ maxLength: 2000 }))
const rawBody = fc.oneof(
  fc.dictionary(fc.constantFrom('username', 'password', 'callback', 'state', 'csrf', 'x', 'username[]', '__proto__'), formValue)
    .map((d) => new URLSearchParams(d).toString()),
  fc.array(fc.tuple(fc.constantFrom('username', 'password', 'csrf'), formValue), { maxLength: 6 })
    .map((pairs) => pairs.map(([k, v]) => `${k}=${encodeURIComponent(v)}`).join('&')),
  fc.string({ unit: 'binary', maxLength: 300 }),
  fc.string({ maxLength: 300 }).map((s) => s.replace(/ /g, '%')),
)

test('the login form parser answers every body with a status below 500', async () => {
  await fc.assert(fc.asyncProperty(rawBody, fc.constantFrom('application/x-www-form-urlencoded', 'application/json', 'text/plain', 'multipart/form-data'), async (body, type) => {
    const res = await idp.inject({ method: 'POST', url: '/login', headers: { 'content-type': type, accept: 'text/html' }, payload: body })
    assert.ok(res.statusCode >= 200 && res.statusCode < 500, `status ${res.statusCode} for ${JSON.stringify(body)}`)
    assert.ok(!res.body.includes('    at '), 'no stack trace')
  }), params(2000))
})
