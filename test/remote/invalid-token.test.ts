import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import { Browser, type Page } from '../helpers/browser.js'
import { type TestRedis } from '../helpers/redis-server.js'
import { appCookies, formFields, newKey, PASSWORD, startStack, useStackPerAdapter, type Adapter, type Stack } from '../helpers/stack.js'
import { keyringOf } from '../helpers/sync-keys.js'
import { mintToken } from '../../src/shared/token.js'
import { keys } from '../../src/shared/keys.js'
import { mintingKeyFor } from '../../src/shared/app-keys.js'

const A_HOST = '127.0.0.2'
const B_HOST = '127.0.0.3'
const IDP_HOST = '127.0.0.1'

let redis: TestRedis
let stack: Stack
let adapter: Adapter
// Every test runs against apps built with the Fastify plugin and with the Express middleware.
const test = useStackPerAdapter((r, s, a) => { redis = r; stack = s; adapter = a })

interface RealToken {
  /** The browser that signed in; it holds the state cookie for the app and the IdP session, and no app session. */
  readonly browser: Browser
  readonly token: string
  /** The URL the IdP sent the browser back to, token included. */
  readonly url: string
  readonly state: string
  readonly sid: string
}

/**
 * Opens `/private` at an app, signs in at the IdP and stops at the IdP's 303: the token in its
 * Location is minted and recorded in Redis but not redeemed.
 */
async function realToken(s: Stack = stack, app: 'A' | 'B' = 'A'): Promise<RealToken> {
  const base = app === 'A' ? s.appAUrl : s.appBUrl
  const host = app === 'A' ? A_HOST : B_HOST
  const browser = new Browser()
  const first = await browser.get(`${base}/private`)
  assert.strictEqual(first.status, 302)
  const login = first.location() as string
  assert.ok(login.startsWith(`${s.idpUrl}/login?`))
  const form = await browser.get(login)
  assert.strictEqual(form.status, 200)
  const posted = await browser.post(`${s.idpUrl}/login`, { ...formFields(form.body), username: 'alice', password: PASSWORD })
  assert.strictEqual(posted.status, 303)
  const url = posted.location() as string
  assert.ok(url.startsWith(`${base}/private?`), url)
  const token = new URL(url).searchParams.get('token')
  assert.ok(token)
  const state = browser.cookies(host).get(appCookies(base).state)
  assert.ok(state, 'the app set a state cookie')
  const idpCookie = browser.cookies(IDP_HOST).get('tessera_idp')
  assert.ok(idpCookie, 'the IdP set its session cookie')
  const sid = idpCookie.split('.')[0] as string
  assert.match(sid, /^[A-Za-z0-9_-]{22}$/)
  assert.strictEqual(browser.cookies(host).get(appCookies(base).session), undefined, 'no app session yet')
  return { browser, token, url, state, sid }
}

/** A browser that has only app A's state cookie set to `state`. */
function browserWithState(state: string): Browser {
  const b = new Browser()
  b.cookies(A_HOST).set(appCookies(stack.appAUrl).state, state)
  return b
}

const tokenUrl = (token: string, base = stack.appAUrl, path = '/private'): string =>
  `${base}${path}?token=${encodeURIComponent(token)}`

/** True when a Set-Cookie line sets (not clears) an app's session cookie (`tessera_<port>`, not its `_state`). */
const setsSession = (line: string): boolean => /^tessera_\d+=[^;\s]/.test(line)

/**
 * Checks one rejected hand-over: 403, no session cookie set, no redirect, the right body for
 * the Accept header, and no token echoed back.
 */
function assertRejected(page: Page, kind: 'json' | 'html', what: string): void {
  assert.strictEqual(page.status, 403, `${what}: status`)
  assert.strictEqual(page.headers.get('location'), null, `${what}: no Location`)
  const cookies = page.headers.getSetCookie()
  assert.ok(!cookies.some(setsSession), `${what}: no session cookie set (${cookies.join(' | ')})`)
  assert.match(page.headers.get('cache-control') ?? '', /no-store/, `${what}: not cached`)
  if (kind === 'json') {
    assert.match(page.headers.get('content-type') ?? '', /^application\/json/, `${what}: JSON`)
    const body = page.json<{ code: string; message: string }>()
    assert.strictEqual(body.code, 'TESSERA_ERR_INVALID_TOKEN', `${what}: code`)
    assert.strictEqual(body.message, 'This sign-in link is invalid or has expired.', `${what}: one generic message`)
  } else {
    assert.match(page.headers.get('content-type') ?? '', /^text\/html/, `${what}: HTML`)
    assert.match(page.body, /^<!doctype html>/i, `${what}: an HTML page`)
    assert.match(page.body, /TESSERA_ERR_INVALID_TOKEN/, `${what}: code on the page`)
    assert.ok(!page.body.includes('token='), `${what}: the retry link has no token`)
  }
}

/** Sends `url` as a JSON request and as a navigation from `browser`, checking both are rejected. */
async function assertBothRejected(browser: Browser, url: string, what: string): Promise<void> {
  assertRejected(await browser.get(url, 'application/json'), 'json', `${what} (json)`)
  assertRejected(await browser.get(url, 'text/html'), 'html', `${what} (html)`)
}

/** The browser is not signed in at app A: no session cookie in its jar or ever set, and /api/me answers 401. */
async function assertSignedOutAtA(browser: Browser, what: string): Promise<void> {
  assert.strictEqual(browser.cookies(A_HOST).get(appCookies(stack.appAUrl).session), undefined, `${what}: no session cookie in the jar`)
  assert.ok(!browser.setCookies.some(setsSession), `${what}: no session cookie was ever set`)
  const me = await browser.get(`${stack.appAUrl}/api/me`, 'application/json')
  assert.strictEqual(me.status, 401, `${what}: /api/me`)
  assert.strictEqual(me.json().code, 'TESSERA_ERR_UNAUTHENTICATED', `${what}: /api/me code`)
}

test('malformed tokens are rejected with 403 and no session', async () => {
  const { browser } = await realToken()
  const bad = ['garbage', '', 'v1', 'v1.k1.a.b.c', 'v1.k1....', '....', 'v1.k1.AAAAAAAAAAAAAAAA.AAAA.AAAAAAAAAAAAAAAAAAAAAA',
    'v1.k1.AAAAAAAAAAAAAAAA.AA+A.AAAAAAAAAAAAAAAAAAAAAA', `v1.k1.${'A'.repeat(3000)}`, 'A'.repeat(10 * 1024), '<script>alert(1)</script>']
  for (const token of bad) await assertBothRejected(browser, tokenUrl(token), `malformed ${JSON.stringify(token.slice(0, 40))}`)
  await assertSignedOutAtA(browser, 'after malformed tokens')
})

test('a real token with a character flipped in its ciphertext is rejected', async () => {
  const { browser, token } = await realToken()
  const p = token.split('.')
  const body = p[3] as string
  const mid = Math.floor(body.length / 2) // a middle character: all six of its bits are significant
  const c = body[mid] as string
  p[3] = body.slice(0, mid) + (c === 'A' ? 'B' : 'A') + body.slice(mid + 1)
  const tampered = p.join('.')
  assert.notStrictEqual(tampered, token)
  await assertBothRejected(browser, tokenUrl(tampered), 'tampered ciphertext')
  await assertSignedOutAtA(browser, 'after a tampered token')
  // The untampered token was not spent by the attempt: it still signs this browser in.
  const ok = await browser.get(tokenUrl(token))
  assert.strictEqual(ok.status, 302)
  assert.strictEqual(ok.location(), `${stack.appAUrl}/private`)
})

test('a token minted with another key is rejected', async () => {
  const { browser, state, sid } = await realToken()
  // Same key id as the stack's, other key material; and a key id the apps do not know.
  const kid = stack.syncKeys.split(':')[0] as string
  for (const raw of [newKey(kid), newKey('other')]) {
    const { token } = mintToken(mintingKeyFor(keyringOf(raw), stack.appAUrl), { sid, aud: stack.appAUrl, st: state, ttlSeconds: 10 })
    await assertBothRejected(browser, tokenUrl(token), `key ${raw.split(':')[0]}`)
  }
  await assertSignedOutAtA(browser, 'after wrong-key tokens')
})

test('a token for another audience is rejected', async () => {
  // A real token the IdP minted for app B, brought to app A with app B's state as A's state cookie.
  const real = await realToken(stack, 'B')
  const browser = browserWithState(real.state)
  await assertBothRejected(browser, tokenUrl(real.token), 'app B token at app A')
  // Minted with the right key for app B's origin, carrying app A's real state and a real sid.
  const a = await realToken()
  const { token } = mintToken(mintingKeyFor(stack.config.keyring, stack.appBUrl), { sid: a.sid, aud: stack.appBUrl, st: a.state, ttlSeconds: 10 })
  await assertBothRejected(a.browser, tokenUrl(token), 'minted for app B')
  // ...and for the IdP's own origin.
  const { token: forIdp } = mintToken(mintingKeyFor(stack.config.keyring, stack.idpUrl), { sid: a.sid, aud: stack.idpUrl, st: a.state, ttlSeconds: 10 })
  await assertBothRejected(a.browser, tokenUrl(forIdp), 'minted for the IdP')
  await assertSignedOutAtA(browser, 'after app B token')
  await assertSignedOutAtA(a.browser, 'after tokens for other audiences')
  // App B's token was not spent at A: it still works at B for its owner.
  const atB = await real.browser.get(real.url)
  assert.strictEqual(atB.status, 302)
  assert.strictEqual(atB.location(), `${stack.appBUrl}/private`)
})

test('a token in a browser with no or another state cookie is rejected', async () => {
  const { browser: owner, token, url, state } = await realToken()
  const noState = new Browser()
  await assertBothRejected(noState, url, 'no state cookie')
  await assertSignedOutAtA(noState, 'browser without state')
  // The no-state browser's /api/me gave it a fresh state cookie: still not the owner's.
  assert.notStrictEqual(noState.cookies(A_HOST).get(appCookies(stack.appAUrl).state), state)
  await assertBothRejected(noState, url, 'a fresh state cookie of its own')

  let other = randomBytes(32).toString('base64url')
  if (other === state) other = randomBytes(32).toString('base64url')
  const otherState = browserWithState(other)
  await assertBothRejected(otherState, url, 'another state cookie')
  // Near misses: a prefix, an extension, the state with one character changed, empty.
  const flipped = state.slice(0, -1) + (state.endsWith('A') ? 'B' : 'A')
  for (const s of [state.slice(0, 22), `${state}A`, flipped, '']) {
    const b = new Browser()
    if (s !== '') b.cookies(A_HOST).set(appCookies(stack.appAUrl).state, s)
    await assertBothRejected(b, url, `state ${JSON.stringify(s)}`)
    await assertSignedOutAtA(b, `state ${JSON.stringify(s)}`)
  }
  await assertSignedOutAtA(otherState, 'browser with another state')
  // Nothing above spent the token: its owner still signs in with it.
  const ok = await owner.get(tokenUrl(token))
  assert.strictEqual(ok.status, 302)
  assert.strictEqual(ok.location(), `${stack.appAUrl}/private`)
  assert.ok(owner.setCookies.some(setsSession))
})

test('an expired token is rejected (TOKEN_TTL_SECONDS=1)', async () => {
  const short = await startStack(redis, { env: { TOKEN_TTL_SECONDS: '1' }, adapter })
  try {
    assert.strictEqual(short.config.tokenTtlSeconds, 1)
    // Control: redeemed at once, a token of this stack works.
    const fresh = await realToken(short)
    const ok = await fresh.browser.get(fresh.url)
    assert.strictEqual(ok.status, 302)

    const late = await realToken(short)
    await sleep(1300)
    const json = await late.browser.get(late.url, 'application/json')
    assertRejected(json, 'json', 'expired (json)')
    assertRejected(await late.browser.get(late.url, 'text/html'), 'html', 'expired (html)')
    assert.strictEqual(late.browser.cookies(A_HOST).get(appCookies(short.appAUrl).session), undefined)
    assert.ok(!late.browser.setCookies.some(setsSession))
    const me = await late.browser.get(`${short.appAUrl}/api/me`, 'application/json')
    assert.strictEqual(me.status, 401)
  } finally {
    await short.close()
  }
})

test('a replayed token is rejected', async () => {
  const { browser, url, state } = await realToken()
  const first = await browser.get(url)
  assert.strictEqual(first.status, 302)
  assert.strictEqual(first.location(), `${stack.appAUrl}/private`)
  assert.ok(browser.setCookies.some(setsSession))
  assert.strictEqual((await browser.get(`${stack.appAUrl}/api/me`, 'application/json')).status, 200)

  const replay = browserWithState(state)
  await assertBothRejected(replay, url, 'replayed')
  await assertSignedOutAtA(replay, 'replaying browser')
})

test('two racing redemptions of one token: exactly one wins', async () => {
  const { url, state } = await realToken()
  const one = browserWithState(state)
  const two = browserWithState(state)
  const pages = await Promise.all([one.get(url, 'application/json'), two.get(url, 'application/json')])
  const statuses = pages.map((p) => p.status).sort()
  assert.deepStrictEqual(statuses, [302, 403])
  const winner = pages[0]?.status === 302 ? one : two
  const loser = winner === one ? two : one
  const lost = pages.find((p) => p.status === 403) as Page
  assertRejected(lost, 'json', 'the losing redemption')
  assert.ok(winner.setCookies.some(setsSession))
  assert.strictEqual((await winner.get(`${stack.appAUrl}/api/me`, 'application/json')).status, 200)
  await assertSignedOutAtA(loser, 'the losing browser')
})

test('a token whose session ended at the IdP is rejected', async () => {
  const { browser, url, sid } = await realToken()
  const home = await browser.get(`${stack.idpUrl}/`)
  assert.strictEqual(home.status, 200)
  const { csrf } = formFields(home.body)
  assert.ok(csrf)
  const out = await browser.post(`${stack.idpUrl}/logout`, { csrf })
  assert.ok(out.status === 200 || out.status === 303, `logout answered ${out.status}`)
  assert.strictEqual(browser.cookies(IDP_HOST).get('tessera_idp'), undefined)
  assert.strictEqual(await redis.client().exists(keys.session(sid)), 0, 'the session is gone from Redis')
  await assertBothRejected(browser, url, 'session gone')
  await assertSignedOutAtA(browser, 'after the session ended')
})

test('a repeated token parameter is rejected', async () => {
  const { browser, token, url } = await realToken()
  const base = `${stack.appAUrl}/private`
  for (const query of [`token=a&token=b`, `token=${encodeURIComponent(token)}&token=${encodeURIComponent(token)}`,
    `token=${encodeURIComponent(token)}&token=x`, `token=x&token=${encodeURIComponent(token)}`]) {
    await assertBothRejected(browser, `${base}?${query}`, `?${query.slice(0, 30)}...`)
  }
  await assertSignedOutAtA(browser, 'after repeated tokens')
  // The single, real token is still good.
  const ok = await browser.get(url)
  assert.strictEqual(ok.status, 302)
})

test('a token on a POST is rejected', async () => {
  const { browser, token } = await realToken()
  for (const accept of ['application/json', 'text/html'] as const) {
    const page = await browser.post(tokenUrl(token, stack.appAUrl, '/api/note'), { note: 'x' }, accept)
    assertRejected(page, accept === 'text/html' ? 'html' : 'json', `POST (${accept})`)
    const logout = await browser.post(tokenUrl(token, stack.appAUrl, '/logout'), {}, accept)
    assertRejected(logout, accept === 'text/html' ? 'html' : 'json', `POST /logout (${accept})`)
  }
  await assertSignedOutAtA(browser, 'after POSTs with a token')
})

test('after every kind of failed attempt the user is not signed in at app A', async () => {
  const { browser, token, url, state, sid } = await realToken()
  const p = token.split('.')
  const body = p[3] as string
  const mid = Math.floor(body.length / 2)
  const tampered = [p[0], p[1], p[2], body.slice(0, mid) + (body[mid] === 'z' ? 'y' : 'z') + body.slice(mid + 1), p[4]].join('.')
  const wrongKey = mintToken(mintingKeyFor(keyringOf(newKey('k1')), stack.appAUrl), { sid, aud: stack.appAUrl, st: state, ttlSeconds: 10 }).token
  const otherAud = mintToken(mintingKeyFor(stack.config.keyring, stack.appBUrl), { sid, aud: stack.appBUrl, st: state, ttlSeconds: 10 }).token
  const unrecorded = mintToken(mintingKeyFor(stack.config.keyring, stack.appAUrl), { sid, aud: stack.appAUrl, st: state, ttlSeconds: 10 }).token
  const attempts: [string, string][] = [
    ['malformed', tokenUrl('nope')],
    ['tampered', tokenUrl(tampered)],
    ['wrong key', tokenUrl(wrongKey)],
    ['other audience', tokenUrl(otherAud)],
    ['never recorded in Redis', tokenUrl(unrecorded)],
    ['repeated', `${stack.appAUrl}/private?token=${encodeURIComponent(token)}&token=b`],
  ]
  for (const [what, u] of attempts) {
    await assertBothRejected(browser, u, what)
    // A navigation after the failure goes to the IdP once, never straight back with a session.
    const nav = await browser.get(`${stack.appAUrl}/private`)
    assert.strictEqual(nav.status, 302, `${what}: /private`)
    assert.ok((nav.location() as string).startsWith(`${stack.idpUrl}/login?`), `${what}: to the IdP`)
  }
  assertRejected(await browser.post(url, {}, 'application/json'), 'json', 'POST')
  await assertSignedOutAtA(browser, 'after all failed attempts')
  const home = await browser.get(`${stack.appAUrl}/`)
  assert.strictEqual(home.status, 200)
  assert.match(home.body, /You are not signed in/)
})
