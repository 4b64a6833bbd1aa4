/**
 * Hostile callbacks over real HTTP: every payload of oauth2-proxy's open-redirect list (raw and
 * query-unescaped) and every hand-written hostile case, against GET /login (signed in and
 * anonymous), POST /login with good credentials and POST /logout (signed in and anonymous).
 * No 5xx, and no Location that leaves the IdP.
 */
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { test, before, after } from 'node:test'
import { Browser } from '../helpers/browser.js'
import { ALLOWED_NON_ASCII, ALLOWED_ORIGINS, fixtureCases, hostileCases, type CallbackCase } from '../helpers/callbacks.js'
import { startRedis, type TestRedis } from '../helpers/redis-server.js'
import { formFields, PASSWORD, startStack, type Stack } from '../helpers/stack.js'

const NOTICE = 'not on this sign-in service'
const LOGOUT_NOTICE = 'not on the list of allowed sites'
const CONCURRENCY = 20

let redis: TestRedis
let stack: Stack
let allowedOrigins: Set<string>
/** The IdP session cookie (name=value) of a browser that signed in through app A. */
let signedIn: string
/** A pre-login cookie (name=value) and the login CSRF token bound to it. */
let preLogin: { cookie: string; csrf: string }
let requests = 0

before(async () => {
  redis = await startRedis()
  stack = await startStack(redis, { extraRemoteHosts: ALLOWED_ORIGINS })
  allowedOrigins = new Set(stack.config.knownRemoteHosts)
  assert.deepEqual([...allowedOrigins].sort(), [stack.appAUrl, stack.appBUrl, ...ALLOWED_ORIGINS].sort())
  signedIn = await signInThroughAppA()
  preLogin = await freshLoginForm()
})
after(async () => {
  await stack?.close()
  await redis?.stop()
})

interface Reply { status: number; location: URL | undefined; body: string; setCookies: string[] }

async function send(path: string, init: { method?: 'GET' | 'POST'; cookie?: string; form?: URLSearchParams } = {}): Promise<Reply> {
  requests++
  const headers: Record<string, string> = { accept: 'text/html' }
  if (init.cookie !== undefined) headers.cookie = init.cookie
  if (init.form !== undefined) headers['content-type'] = 'application/x-www-form-urlencoded'
  const res = await fetch(`${stack.idpUrl}${path}`, { method: init.method ?? 'GET', headers, body: init.form?.toString(), redirect: 'manual' })
  const loc = res.headers.get('location')
  return { status: res.status, location: loc === null ? undefined : new URL(loc, stack.idpUrl), body: await res.text(), setCookies: res.headers.getSetCookie() }
}

function cookieFrom(reply: Reply, name: string): string | undefined {
  const line = reply.setCookies.find((c) => c.startsWith(`${name}=`) && !/max-age=0/i.test(c))
  const pair = line?.split(';')[0]
  return pair === undefined || pair === `${name}=` ? undefined : pair
}

/** Signs in once through app A with a real browser; returns the IdP session cookie. */
async function signInThroughAppA(): Promise<string> {
  const b = new Browser()
  const first = await b.get(`${stack.appAUrl}/private`)
  assert.equal(first.status, 302)
  const form = await b.get(first.location() as string)
  const posted = await b.post(`${stack.idpUrl}/login`, { ...formFields(form.body), username: 'alice', password: PASSWORD })
  assert.equal(posted.status, 303)
  assert.equal(new URL(posted.location() as string).origin, stack.appAUrl)
  const value = b.cookies('127.0.0.1').get('tessera_idp')
  assert.ok(value, 'the IdP set its session cookie')
  return `tessera_idp=${value}`
}

async function freshLoginForm(): Promise<{ cookie: string; csrf: string }> {
  const page = await send('/login')
  const cookie = cookieFrom(page, 'tessera_pre')
  const csrf = formFields(page.body).csrf
  assert.ok(cookie && csrf)
  return { cookie, csrf }
}

const newState = (): string => randomBytes(32).toString('base64url')

function withCallback(param: CallbackCase['param'], extra: Record<string, string>): URLSearchParams {
  const p = new URLSearchParams()
  for (const v of typeof param === 'string' ? [param] : param) p.append('callback', v)
  for (const [k, v] of Object.entries(extra)) p.append(k, v)
  return p
}

/** The invariant for every reply: no 5xx; a Location, if any, is an allowed origin or the IdP; for a hostile callback, only the IdP. */
function assertSafe(reply: Reply, what: string): void {
  assert.ok(reply.status < 500, `${what}: status ${reply.status}`)
  if (reply.location === undefined) return
  const origin = reply.location.origin
  assert.ok(allowedOrigins.has(origin) || origin === stack.idpUrl, `${what}: Location ${reply.location.href}`)
  assert.equal(origin, stack.idpUrl, `${what}: a hostile callback was followed to ${reply.location.href}`)
}

/** Runs `fn` over `items`, at most `limit` at a time; collects every failure instead of stopping at the first. */
async function pool<T>(items: readonly T[], limit: number, fn: (item: T) => Promise<void>): Promise<string[]> {
  const failures: string[] = []
  let next = 0
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const item = items[next++] as T
      try {
        await fn(item)
      } catch (err) {
        failures.push((err as Error).message)
      }
    }
  }
  await Promise.all(Array.from({ length: limit }, worker))
  return failures
}

/** App A's own origin, spelled in ways that must not match it. */
function appOriginVariants(): CallbackCase[] {
  const a = new URL(stack.appAUrl)
  const port = a.port
  const b64 = (u: string): string => Buffer.from(u).toString('base64url')
  return [
    `https://127.0.0.2:${port}/`,
    `http://2130706434:${port}/`,
    `http://0x7f000002:${port}/`,
    `http://127.2:${port}/`,
    `http://0177.0.0.2:${port}/`,
    `http://127.0.0.2.:${port}/`,
    `http://127.0.0.2:0${port}/`,
    `http://127.0.0.2:${Number(port) + 1}/`,
    `http://127.0.0.2/`,
    `http://[::ffff:127.0.0.2]:${port}/`,
    `http://127.0.0.2:${port}@evil.com/`,
    `http://evil.com@127.0.0.2:${port}/`,
    `http://127.0.0.2:${port}\\@evil.com/`,
    `http://127.0.0.2:${port}.evil.com/`,
    `http:127.0.0.2:${port}/`,
    `//127.0.0.2:${port}/`,
    `blob:http://127.0.0.2:${port}/x`,
    `http://%31%32%37.0.0.2:${port}/`,
  ].map((url) => ({ label: `app A variant: ${JSON.stringify(url)}`, param: b64(url) }))
}

function allCases(): CallbackCase[] {
  const seen = new Set<string>()
  return [...fixtureCases(), ...hostileCases(), ...appOriginVariants()].filter((c) => {
    const key = JSON.stringify(c.param)
    if (seen.has(key)) return false
    seen.add(key)
    return true
  })
}

test('every hostile callback, on every route, gets no 5xx and no Location off the IdP', async (t) => {
  const cases = allCases()
  assert.ok(cases.length > 800, `${cases.length} distinct callbacks`)
  const before = requests
  const failures = await pool(cases, CONCURRENCY, async ({ label, param }) => {
    const state = newState()
    const query = withCallback(param, { state }).toString()

    // (a) Signed in: no redirect, the home page with the notice.
    const a = await send(`/login?${query}`, { cookie: signedIn })
    assertSafe(a, `GET /login signed in, ${label}`)
    assert.equal(a.status, 200, `GET /login signed in, ${label}`)
    assert.ok(a.body.includes(NOTICE), `GET /login signed in, ${label}: notice shown`)
    assert.ok(!a.setCookies.some((c) => c.startsWith('tessera_idp=')), `GET /login signed in, ${label}: session cookie untouched`)

    // (b) Anonymous: the form, with the notice and without the refused callback.
    const b = await send(`/login?${query}`)
    assertSafe(b, `GET /login anonymous, ${label}`)
    assert.equal(b.status, 200, `GET /login anonymous, ${label}`)
    assert.ok(b.body.includes(NOTICE), `GET /login anonymous, ${label}: notice shown`)
    assert.equal(formFields(b.body).callback, '', `GET /login anonymous, ${label}: callback not kept in the form`)
    assert.ok(!b.body.includes('to continue to'), `GET /login anonymous, ${label}: no callback host shown`)

    // (c) Good credentials and CSRF: signed in, and sent to the IdP's own home page.
    const c = await send('/login', {
      method: 'POST', cookie: preLogin.cookie,
      form: withCallback(param, { state, csrf: preLogin.csrf, username: 'alice', password: PASSWORD }),
    })
    assertSafe(c, `POST /login, ${label}`)
    if (typeof param === 'string') {
      assert.equal(c.status, 303, `POST /login, ${label}`)
      assert.equal(c.location?.href, `${stack.idpUrl}/`, `POST /login, ${label}`)
    }

    // (d) Logout, signed in (the session from (c), or a fresh one) with its CSRF token, then anonymous.
    const session = cookieFrom(c, 'tessera_idp') ?? cookieFrom(await send('/login', {
      method: 'POST', cookie: preLogin.cookie, form: new URLSearchParams({ csrf: preLogin.csrf, username: 'alice', password: PASSWORD }),
    }), 'tessera_idp')
    assert.ok(session, `${label}: signed in for the logout`)
    const home = await send('/', { cookie: session })
    const csrf = formFields(home.body).csrf
    assert.ok(csrf, `${label}: logout CSRF on the home page`)
    const d = await send('/logout', { method: 'POST', cookie: session, form: withCallback(param, { csrf }) })
    assertSafe(d, `POST /logout signed in, ${label}`)
    const anon = await send('/logout', { method: 'POST', form: withCallback(param, {}) })
    assertSafe(anon, `POST /logout anonymous, ${label}`)
    if (typeof param === 'string') {
      assert.equal(d.status, 200, `POST /logout signed in, ${label}`)
      assert.ok(d.body.includes(LOGOUT_NOTICE), `POST /logout signed in, ${label}: notice shown`)
      // Anonymous: nothing to end, so no callback is followed and nothing changes.
      assert.equal(anon.status, 303, `POST /logout anonymous, ${label}`)
      assert.equal(anon.location?.href, `${stack.idpUrl}/`, `POST /logout anonymous, ${label}`)
      assert.deepEqual(anon.setCookies, [], `POST /logout anonymous, ${label}: no cookie touched`)
      assert.equal((await send('/', { cookie: session })).body.includes('You are not signed in'), true, `${label}: logout ended the session`)
    } else {
      assert.equal(d.status, 400, `POST /logout signed in, ${label}: a repeated callback fails the body schema`)
    }
  })
  t.diagnostic(`${cases.length} distinct callbacks, ${requests - before} requests`)
  assert.deepEqual(failures.slice(0, 20), [], `${failures.length} failures`)

  // The signed-in browser of (a) is still signed in: no hostile callback ended or replaced its session.
  const home = await send('/', { cookie: signedIn })
  assert.match(home.body, /Alice Example/)
})

test('a signed-in browser with a refused callback sees the notice on a 200 page, not a redirect', async () => {
  const callback = Buffer.from('http://www.whitelisteddomain.tld@evil.com/').toString('base64url')
  const page = await send(`/login?callback=${callback}&state=${newState()}`, { cookie: signedIn })
  assert.equal(page.status, 200)
  assert.equal(page.location, undefined)
  assert.match(page.body, /<p class="notice" role="status">[^<]*not on this sign-in service/)
  assert.match(page.body, /Alice Example/)
})

test('an allowed callback keeps its path, query and fragment and gets exactly one new token', async () => {
  for (const origin of [stack.appAUrl, 'http://www.whitelisteddomain.tld']) {
    const target = `${origin}/deep/path?a=1&token=old#frag`
    const callback = Buffer.from(target).toString('base64url')
    const state = newState()

    const got = await send(`/login?callback=${callback}&state=${state}`, { cookie: signedIn })
    assert.equal(got.status, 302, target)
    const post = await send('/login', {
      method: 'POST', cookie: preLogin.cookie,
      form: new URLSearchParams({ callback, state, csrf: preLogin.csrf, username: 'alice', password: PASSWORD }),
    })
    assert.equal(post.status, 303, target)

    for (const loc of [got.location, post.location]) {
      assert.ok(loc, target)
      assert.equal(loc.origin, origin)
      assert.equal(loc.pathname, '/deep/path')
      assert.equal(loc.searchParams.get('a'), '1')
      const tokens = loc.searchParams.getAll('token')
      assert.equal(tokens.length, 1, loc.href)
      assert.notEqual(tokens[0], 'old')
      assert.ok((tokens[0] ?? '').length > 20, loc.href)
      assert.equal(loc.hash, '#frag')
    }
    assert.notEqual(got.location?.searchParams.get('token'), post.location?.searchParams.get('token'))
  }
})

test('a callback with non-ASCII text in its path, query or fragment is followed, percent-encoded, with its token', async () => {
  const cases = [...ALLOWED_NON_ASCII, [`${stack.appAUrl}/café?q=ü`, `${stack.appAUrl}/caf%C3%A9?q=%C3%BC`] as const]
  for (const [url, href] of cases) {
    const callback = Buffer.from(url).toString('base64url')
    const got = await send(`/login?callback=${callback}&state=${newState()}`, { cookie: signedIn })
    assert.equal(got.status, 302, url)
    const loc = got.location as URL
    const token = loc.searchParams.get('token')
    assert.ok(token, url)
    const expected = new URL(href)
    expected.searchParams.set('token', token)
    assert.equal(`${loc.origin}${loc.pathname}${loc.search}${loc.hash}`, `${expected.origin}${expected.pathname}${expected.search}${expected.hash}`, url)
  }
})
