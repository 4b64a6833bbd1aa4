/**
 * `secondFactor: 'required'` in the framework-free core, on its decisions (real Redis, no HTTP): a
 * session without `otp` or `hwk` is sent to the IdP with `mfa=1` (navigation) or gets 401 with that
 * login URL; a hand-over that still brings none gets 403, not another redirect.
 */
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { startRedis, type TestRedis } from '../helpers/redis-server.js'
import { newKey } from '../helpers/stack.js'
import { RemoteCore, type Decision, type PlainRequest } from '../../src/remote/core.js'
import { resolveOptions } from '../../src/remote/options.js'
import { PWD, storesFor } from '../helpers/stores.js'
import { parseSyncKeys, type Keyring } from '../../src/shared/keyring.js'
import { formatAppKeys, mintingKeyFor, type IdentitySigningKey } from '../../src/shared/app-keys.js'
import { mintToken } from '../../src/shared/token.js'
import { encodeHandle } from '../../src/shared/handle-cookie.js'
import { randomId } from '../../src/shared/crypto.js'
import type { AuthMethod } from '../../src/shared/identity.js'
import { SecondFactorRequiredError, TesseraError } from '../../src/shared/errors.js'

const ORIGIN = 'http://127.0.0.2:4000'
const IDP = 'http://127.0.0.1:3000'
const USER = { username: 'alice', displayName: 'Alice', email: '', groups: [] }
const LIMITS = { idleMs: 60_000, absoluteMs: 600_000 }
const HTML = 'text/html,application/xhtml+xml'
const PWD_OTP: readonly AuthMethod[] = [...PWD, { method: 'otp', at: Date.now() }]
const PWD_HWK: readonly AuthMethod[] = [...PWD, { method: 'hwk', at: Date.now() }]

let redis: TestRedis
let strict: RemoteCore
let lenient: RemoteCore
let signer: IdentitySigningKey
let keyring: Keyring
const sessionSecret = randomBytes(32).toString('base64url')
before(async () => {
  redis = await startRedis()
  const client = redis.client()
  const stores = storesFor(client, { keyring: parseSyncKeys(newKey('k1'), 'SYNC_KEYS', []) as Keyring })
  signer = stores.signer
  keyring = stores.keyring
  const base = { idpUrl: IDP, origin: ORIGIN, appKeys: formatAppKeys(keyring, ORIGIN), redis: client, sessionSecret, publicPaths: ['/', '/logout'] }
  strict = new RemoteCore(resolveOptions({ ...base, secondFactor: 'required' }), stores.sessions, stores.tokens)
  lenient = new RemoteCore(resolveOptions(base), stores.sessions, stores.tokens)
})
after(async () => { await redis.stop() })

const request = (over: Partial<PlainRequest> = {}): PlainRequest => ({ method: 'GET', url: '/private', accept: HTML, cookies: {}, ...over })

/** A session signed in with `methods`, and this app's cookie for it. */
async function signedIn(methods: readonly AuthMethod[]): Promise<{ sid: string; cookie: string }> {
  const handle = await strict.sessions.create(USER, methods, LIMITS, ORIGIN, signer)
  return { sid: handle.sid, cookie: encodeHandle(handle, sessionSecret, ORIGIN) }
}

/** A session at the IdP signed in with `methods`, and a token for this app bound to `state`. */
async function handOver(methods: readonly AuthMethod[], state: string): Promise<string> {
  const { sid } = await strict.sessions.create(USER, methods, LIMITS, IDP, signer)
  const { token, claims } = mintToken(mintingKeyFor(keyring, ORIGIN), { sid, aud: ORIGIN, st: state, ttlSeconds: 10 })
  await strict.tokens.record(sid, claims.jti, 10_000)
  return token
}

function loginUrlOf(d: Decision): URL {
  if (d.kind === 'redirect') return new URL(d.location)
  assert.equal(d.kind, 'error')
  return new URL((d as { extra?: Record<string, string> }).extra?.loginUrl as string)
}

test('the option is optional or required; anything else is refused', () => {
  const base = { idpUrl: IDP, origin: ORIGIN, appKeys: formatAppKeys(keyring, ORIGIN), redis: redis.url, sessionSecret }
  assert.equal(resolveOptions(base).secondFactorRequired, false, 'not required by default')
  assert.equal(resolveOptions({ ...base, secondFactor: 'optional' }).secondFactorRequired, false)
  assert.equal(resolveOptions({ ...base, secondFactor: 'required' }).secondFactorRequired, true)
  for (const bad of ['REQUIRED', 'yes', true, 1, '']) {
    assert.throws(() => resolveOptions({ ...base, secondFactor: bad as 'required' }),
      (err: unknown) => err instanceof TesseraError && err.code === 'TESSERA_ERR_OPTIONS' && /secondFactor: must be optional or required/.test(err.message))
  }
})

test('a password-only session, a navigation: to the IdP with mfa=1, the callback and state; the cookie is kept', async () => {
  const { cookie } = await signedIn(PWD)
  const d = await strict.decide(request({ url: '/private?x=1', cookies: { [strict.opts.cookieName]: cookie } }))
  assert.equal(d.kind, 'redirect')
  assert.equal(d.session, undefined, 'the app does not see the session')
  const login = loginUrlOf(d)
  assert.equal(login.origin + login.pathname, `${IDP}/login`)
  assert.equal(login.searchParams.get('mfa'), '1')
  assert.equal(Buffer.from(login.searchParams.get('callback') as string, 'base64url').toString(), `${ORIGIN}/private?x=1`)
  assert.equal(login.searchParams.get('state'), d.cookies.find((c) => c.name === strict.opts.stateCookieName)?.value)
  assert.ok(!d.cookies.some((c) => c.name === strict.opts.cookieName), 'the handle cookie is neither cleared nor replaced')
})

test('a password-only session, not a navigation: 401 with a login URL that carries mfa=1', async () => {
  const { cookie } = await signedIn(PWD)
  const d = await strict.decide(request({ accept: 'application/json', cookies: { [strict.opts.cookieName]: cookie } }))
  assert.ok(d.kind === 'error')
  assert.equal(d.error.statusCode, 401)
  assert.equal(d.error.code, 'TESSERA_ERR_UNAUTHENTICATED')
  assert.equal(loginUrlOf(d).searchParams.get('mfa'), '1')
  assert.equal(d.session, undefined)
})

test('a password-only session on a public path goes on without the session', async () => {
  const { cookie } = await signedIn(PWD)
  const d = await strict.decide(request({ url: '/', cookies: { [strict.opts.cookieName]: cookie } }))
  assert.deepEqual(d, { kind: 'continue', cookies: [] })
})

test('a session with otp or hwk passes', async () => {
  for (const methods of [PWD_OTP, PWD_HWK, [{ method: 'hwk' as const, at: Date.now() }]]) {
    const { cookie } = await signedIn(methods)
    const d = await strict.decide(request({ cookies: { [strict.opts.cookieName]: cookie } }))
    assert.equal(d.kind, 'continue', methods.map((m) => m.method).join('+'))
    assert.equal(d.session?.user.username, 'alice')
  }
})

test('without the option a password-only session passes and no login URL asks for mfa', async () => {
  const { cookie } = await signedIn(PWD)
  const d = await lenient.decide(request({ cookies: { [lenient.opts.cookieName]: cookie } }))
  assert.equal(d.kind, 'continue')
  const nobody = await lenient.decide(request())
  assert.equal(loginUrlOf(nobody).searchParams.get('mfa'), null)
})

test('no session at all: the first redirect already asks the IdP for a second factor', async () => {
  const d = await strict.decide(request())
  assert.equal(loginUrlOf(d).searchParams.get('mfa'), '1')
})

test('a hand-over that brings a session without a second factor gets 403, not another redirect, and no session cookie', async () => {
  const state = randomId(32)
  const token = await handOver(PWD, state)
  const d = await strict.decide(request({ url: `/private?token=${token}`, cookies: { [strict.opts.stateCookieName]: state } }))
  assert.ok(d.kind === 'error', `decided ${d.kind}`)
  assert.ok(d.error instanceof SecondFactorRequiredError)
  assert.equal(d.error.statusCode, 403)
  assert.equal(d.error.code, 'TESSERA_ERR_SECOND_FACTOR_REQUIRED')
  assert.equal(d.session, undefined)
  assert.ok(!d.cookies.some((c) => c.name === strict.opts.cookieName && c.value !== null), 'no handle cookie set')
  assert.equal(d.wayOn?.href, `${IDP}/`, 'the page links to the IdP, where a factor is set up')
})

test('a password-only session whose browser comes back with a token still without a second factor gets 403', async () => {
  const { cookie } = await signedIn(PWD)
  const state = randomId(32)
  const token = await handOver(PWD, state)
  const d = await strict.decide(request({ url: `/private?token=${token}`, cookies: { [strict.opts.cookieName]: cookie, [strict.opts.stateCookieName]: state } }))
  assert.ok(d.kind === 'error' && d.error instanceof SecondFactorRequiredError, `decided ${d.kind}`)
})

test('a hand-over that brings a second factor opens the session', async () => {
  const state = randomId(32)
  const token = await handOver(PWD_OTP, state)
  const d = await strict.decide(request({ url: `/private?token=${token}`, cookies: { [strict.opts.stateCookieName]: state } }))
  assert.equal(d.kind, 'redirect')
  assert.equal((d as { location: string }).location, `${ORIGIN}/private`)
  assert.ok(d.cookies.some((c) => c.name === strict.opts.cookieName && c.value !== null))
  assert.deepEqual(d.session?.auth.methods.map((m) => m.method), ['pwd', 'otp'])
})
