/**
 * The framework-free hand-over core, tested on its decisions (no Fastify, no HTTP), on a real Redis.
 * The Fastify plugin's own tests run the same paths through real sockets.
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
import { InvalidTokenError } from '../../src/shared/errors.js'

const ORIGIN = 'http://127.0.0.2:4000'
const IDP = 'http://127.0.0.1:3000'
const USER = { username: 'alice', displayName: 'Alice', email: '', groups: [] }
const LIMITS = { idleMs: 60_000, absoluteMs: 600_000 }
const HTML = 'text/html,application/xhtml+xml'

let redis: TestRedis
let core: RemoteCore
let signer: IdentitySigningKey
let keyring: Keyring
const syncKeys = newKey('k1')
const sessionSecret = randomBytes(32).toString('base64url')
before(async () => {
  redis = await startRedis()
  const client = redis.client()
  const stores = storesFor(client, { keyring: parseSyncKeys(syncKeys, 'SYNC_KEYS', []) as Keyring })
  signer = stores.signer
  keyring = stores.keyring
  core = new RemoteCore(resolveOptions({ idpUrl: IDP, origin: ORIGIN, appKeys: formatAppKeys(keyring, ORIGIN), redis: client, sessionSecret, publicPaths: ['/', '/assets/*'] }),
    stores.sessions, stores.tokens)
})
after(async () => { await redis.stop() })

const request = (over: Partial<PlainRequest> = {}): PlainRequest => ({ method: 'GET', url: '/private', accept: HTML, cookies: {}, ...over })

/** A session at the IdP and a token for this app minted for `state`, recorded as the IdP records it. */
async function handOver(state: string): Promise<{ sid: string; token: string }> {
  const { sid } = await core.sessions.create(USER, PWD, LIMITS, IDP, signer)
  const { token, claims } = mintToken(mintingKeyFor(keyring, ORIGIN), { sid, aud: ORIGIN, st: state, ttlSeconds: 10 })
  await core.tokens.record(sid, claims.jti, 10_000)
  return { sid, token }
}

/** This browser's session cookie for `sid`, from a redemption as the first of two tabs' hand-overs makes it. */
async function redeemedCookie(sid: string, state: string): Promise<string> {
  const { claims } = mintToken(mintingKeyFor(keyring, ORIGIN), { sid, aud: ORIGIN, st: state, ttlSeconds: 10 })
  await core.tokens.record(sid, claims.jti, 10_000)
  const redeemed = await core.tokens.redeem(sid, claims.jti, ORIGIN)
  assert.ok(typeof redeemed === 'object')
  return encodeHandle(redeemed.handle, sessionSecret, ORIGIN)
}

function cookieValue(d: Decision, name: string): string | null | undefined {
  return d.cookies.find((c) => c.name === name)?.value
}

test('no session, a navigation: to the IdP with the callback and a new state cookie', async () => {
  const d = await core.decide(request({ url: '/private?x=1' }))
  assert.equal(d.kind, 'redirect')
  const location = new URL((d as { location: string }).location)
  assert.equal(location.origin + location.pathname, `${IDP}/login`)
  assert.equal(Buffer.from(location.searchParams.get('callback') as string, 'base64url').toString(), `${ORIGIN}/private?x=1`)
  assert.equal(location.searchParams.get('state'), cookieValue(d, core.opts.stateCookieName))
  // A live state is reused: two tabs signing in at once keep one state.
  const again = await core.decide(request({ cookies: { [core.opts.stateCookieName]: location.searchParams.get('state') as string } }))
  assert.equal(again.cookies.length, 0)
})

test('no session, not a navigation: 401 with the login URL; a POST comes back to /', async () => {
  const d = await core.decide(request({ method: 'POST', url: '/form', accept: 'application/json' }))
  assert.equal(d.kind, 'error')
  if (d.kind !== 'error') return
  assert.equal(d.error.statusCode, 401)
  const back = new URL(d.extra?.loginUrl as string).searchParams.get('callback') as string
  assert.equal(Buffer.from(back, 'base64url').toString(), `${ORIGIN}/`)
})

test('a public path goes on without a session; an origin-form target is required', async () => {
  assert.deepEqual(await core.decide(request({ url: '/assets/app.css' })), { kind: 'continue', cookies: [] })
  const bad = await core.decide(request({ url: 'http://evil.example/' }))
  assert.equal(bad.kind === 'error' && bad.error.statusCode, 400)
})

test('a valid token redeems once: handle cookie set, state cleared, back to the clean URL; a replay is refused', async () => {
  const state = randomId(32)
  const { token } = await handOver(state)
  const d = await core.decide(request({ url: `/private?a=1&token=${token}`, cookies: { [core.opts.stateCookieName]: state } }))
  assert.equal(d.kind, 'redirect')
  assert.equal((d as { location: string }).location, `${ORIGIN}/private?a=1`)
  assert.equal((d as { headers: Record<string, string> }).headers['referrer-policy'], 'no-referrer')
  assert.ok(cookieValue(d, core.opts.cookieName))
  assert.equal(cookieValue(d, core.opts.stateCookieName), null)
  assert.equal(d.session?.user.username, 'alice')
  const replay = await core.decide(request({ url: `/private?token=${token}`, cookies: { [core.opts.stateCookieName]: state } }))
  assert.ok(replay.kind === 'error' && replay.error instanceof InvalidTokenError)
  assert.equal(replay.kind === 'error' && replay.wayOn?.href, `${ORIGIN}/private`)
})

test('a token is refused without spending it when the state, the method or its count is wrong', async () => {
  const state = randomId(32)
  const { token } = await handOver(state)
  for (const req of [
    request({ url: `/private?token=${token}`, cookies: { [core.opts.stateCookieName]: randomId(32) } }),
    request({ url: `/private?token=${token}` }),
    request({ method: 'POST', url: `/private?token=${token}`, cookies: { [core.opts.stateCookieName]: state } }),
    request({ url: `/private?token=${token}&token=${token}`, cookies: { [core.opts.stateCookieName]: state } }),
  ]) {
    const d = await core.decide(req)
    assert.ok(d.kind === 'error' && d.error instanceof InvalidTokenError)
    assert.equal(d.session, undefined)
  }
  // None of them spent it.
  const d = await core.decide(request({ url: `/private?token=${token}`, cookies: { [core.opts.stateCookieName]: state } }))
  assert.equal(d.kind, 'redirect')
})

test('signed in: go on with the session; another tab\'s token of the same session is left unspent', async () => {
  const state = randomId(32)
  const { sid, token } = await handOver(state)
  const cookie = await redeemedCookie(sid, state)
  const d = await core.decide(request({ cookies: { [core.opts.cookieName]: cookie } }))
  assert.equal(d.kind, 'continue')
  assert.equal(d.session?.user.username, 'alice')
  // The second tab's token: its state cookie was cleared by the first redemption, or is still there.
  for (const cookies of [{ [core.opts.cookieName]: cookie }, { [core.opts.cookieName]: cookie, [core.opts.stateCookieName]: state }]) {
    const stray = await core.decide(request({ url: `/private?token=${token}`, cookies }))
    assert.equal(stray.kind === 'redirect' && stray.location, `${ORIGIN}/private`)
    const api = await core.decide(request({ url: `/private?token=${token}`, accept: 'application/json', cookies }))
    assert.equal(api.kind, 'continue')
  }
  assert.equal((await core.decide(request({ url: `/private?token=${token}`, cookies: { [core.opts.stateCookieName]: state } }))).kind, 'redirect', 'still redeemable')
})

test('signed in: a token this browser could not have been given is 403 all the same, and the session stays', async () => {
  const state = randomId(32)
  const { sid, token: spent } = await handOver(state)
  assert.equal((await core.decide(request({ url: `/private?token=${spent}`, cookies: { [core.opts.stateCookieName]: state } }))).kind, 'redirect')
  const cookie = await redeemedCookie(sid, state)
  const other = await handOver(state) // another session's token (another browser's hand-over)
  const unspent = mintToken(mintingKeyFor(keyring, ORIGIN), { sid, aud: ORIGIN, st: randomId(32), ttlSeconds: 10 })
  await core.tokens.record(sid, unspent.claims.jti, 10_000)
  const otherApp = mintToken(mintingKeyFor(keyring, 'http://127.0.0.3:4000'), { sid, aud: 'http://127.0.0.3:4000', st: state, ttlSeconds: 10 })
  for (const [url, extra, why] of [
    [`/private?token=${spent}`, {}, 'already used'],
    ['/private?token=garbage', {}, 'malformed'],
    [`/private?token=${other.token}`, {}, 'of another session'],
    [`/private?token=${otherApp.token}`, {}, 'meant for another app'],
    [`/private?token=${unspent.token}`, { [core.opts.stateCookieName]: state }, 'bound to another state than this browser\'s'],
    [`/private?token=${spent}&token=${spent}`, {}, 'repeated'],
  ] as const) {
    for (const accept of [HTML, 'application/json']) {
      const d = await core.decide(request({ url, accept, cookies: { [core.opts.cookieName]: cookie, ...extra } }))
      assert.ok(d.kind === 'error' && d.error instanceof InvalidTokenError, `${why}: ${d.kind}`)
      assert.equal(cookieValue(d, core.opts.cookieName), undefined, `${why}: the session cookie is kept`)
    }
  }
  assert.equal((await core.decide(request({ cookies: { [core.opts.cookieName]: cookie } }))).kind, 'continue', 'the session goes on')
  assert.equal((await core.decide(request({ url: `/private?token=${other.token}`, cookies: { [core.opts.stateCookieName]: state } }))).kind, 'redirect', 'the other session\'s token was not spent')
})

test('a cookie that opens nothing is cleared; logout ends the session and stays on allowed origins', async () => {
  const handle = await core.sessions.create(USER, PWD, LIMITS, ORIGIN, signer)
  const cookie = encodeHandle(handle, sessionSecret, ORIGIN)
  const out = await core.logout(handle.sid, 'https://evil.example/')
  assert.equal(out.location, `${ORIGIN}/`)
  assert.equal((await core.logout(undefined, `${IDP}/login`)).location, `${IDP}/login`)
  for (const withUserInfo of [`${IDP.replace('://', '://user:pw@')}/`, `${ORIGIN.replace('://', '://user@')}/x`]) {
    assert.equal((await core.logout(undefined, withUserInfo)).location, `${ORIGIN}/`, withUserInfo)
  }
  const d = await core.decide(request({ cookies: { [core.opts.cookieName]: cookie } }))
  assert.equal(d.kind, 'redirect')
  assert.equal(cookieValue(d, core.opts.cookieName), null)
})
