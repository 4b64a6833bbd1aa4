/**
 * The user's own sessions page at the IdP, on the real stack (IdP, app A, app B, one Redis): each
 * session with its device, apps and sign-in method; signing one out (or all others) there is seen by
 * every app on its next request; only the user's own sessions, only with the page's CSRF field.
 */
import assert from 'node:assert/strict'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test } from 'node:test'
import { Browser, type Page } from '../helpers/browser.js'
import { formFields, newKey, PASSWORD, PASSWORD_HASH, useStack, type Stack } from '../helpers/stack.js'
import { enrolOnSecurityPage, postFactor } from '../helpers/factors.js'
import { me, signInThroughA } from '../helpers/sso-scenarios.js'
import { MAX_USER_AGENT } from '../../src/shared/sessions.js'
import { encodeHandle } from '../../src/shared/handle-cookie.js'
import { UserIndex } from '../../src/shared/user-index.js'
import type { TestRedis } from '../helpers/redis-server.js'
import { storesFor } from '../helpers/stores.js'

const FIREFOX_LINUX = 'Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0'
const SAFARI_IPHONE = 'Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1'
const CHROME_WINDOWS = 'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36'

/** alice (as every test has her) and carol, a second enabled user with the same test password. */
function usersFile(): string {
  const file = join(mkdtempSync(join(tmpdir(), 'tessera-users-')), 'users.yml')
  writeFileSync(file, `users:
  alice:
    displayname: Alice Example
    email: alice@example.com
    password: "${PASSWORD_HASH}"
    groups: [admins, staff]
  carol:
    displayname: Carol
    password: "${PASSWORD_HASH}"
`)
  return file
}

let redis: TestRedis
let stack: Stack
// FACTOR_KEYS: one test enrols a second factor for carol on the way back to /sessions.
useStack((r, s) => { redis = r; stack = s }, { env: { USERS_FILE: usersFile(), FACTOR_KEYS: newKey('f1') } })

const browserAs = (userAgent: string) => (): Browser => new Browser({ userAgent })

/** Signs in at the IdP directly (no app), as `username`. */
async function signInAtIdp(username: string, userAgent = CHROME_WINDOWS): Promise<Browser> {
  const b = new Browser({ userAgent })
  const form = await b.get(`${stack.idpUrl}/login`)
  const posted = await b.post(`${stack.idpUrl}/login`, { ...formFields(form.body), username, password: PASSWORD })
  assert.equal(posted.status, 303)
  assert.equal(posted.location(), `${stack.idpUrl}/`)
  return b
}

interface Listed { fingerprint: string; device: string; current: boolean; apps: string; methods: string; html: string }

/** The sessions the page lists, read from its markup. */
function listed(page: Page): Listed[] {
  return [...page.body.matchAll(/<li class="session( current)?" id="session-([A-Za-z0-9_-]{12})">([\s\S]*?)<\/li>/g)].map((m) => ({
    fingerprint: m[2] as string,
    current: m[1] !== undefined,
    device: /<span class="device">([^<]*)<\/span>/.exec(m[3] as string)?.[1] ?? '',
    apps: /<dd class="session-apps">([^<]*)<\/dd>/.exec(m[3] as string)?.[1] ?? '',
    methods: /<span class="methods">([^<]*)<\/span>/.exec(m[3] as string)?.[1] ?? '',
    html: m[3] as string,
  }))
}

async function sessionsPage(b: Browser, url = `${stack.idpUrl}/sessions`): Promise<{ page: Page; sessions: Listed[]; csrf: string }> {
  const page = await b.get(url)
  assert.equal(page.status, 200, page.body.slice(0, 300))
  assert.equal(page.headers.get('cache-control'), 'no-store')
  const csrf = formFields(page.body).csrf
  assert.ok(csrf, 'the page carries a CSRF field')
  return { page, sessions: listed(page), csrf }
}

/** The session id behind a browser's IdP cookie (`<sid>.<secret>.<mac>`), which the page must never show. */
function sidOf(b: Browser): string {
  const value = b.cookies(new URL(stack.idpUrl).hostname).get('tessera_idp')
  assert.ok(value, 'the browser holds an IdP session cookie')
  return value.split('.')[0] as string
}

async function endAllSessions(): Promise<void> {
  // Each test starts from no session of alice's: a fresh browser signs in and ends the others, then itself.
  const b = await signInAtIdp('alice')
  const { csrf, sessions } = await sessionsPage(b)
  await b.post(`${stack.idpUrl}/sessions/end-others`, { csrf })
  const own = sessions.find((s) => s.current)
  assert.ok(own)
  await b.post(`${stack.idpUrl}/sessions/end`, { csrf, session: own.fingerprint })
}

test('the page lists each of the user\'s sessions with device, apps and sign-in method, this one marked, and no session id', async () => {
  await endAllSessions()
  const laptop = await signInThroughA(stack, browserAs(FIREFOX_LINUX))
  assert.equal((await laptop.navigate(`${stack.appBUrl}/private`)).at(-1)?.status, 200, 'the laptop also holds a handle at app B')
  const phone = await signInThroughA(stack, browserAs(SAFARI_IPHONE))

  const { page, sessions } = await sessionsPage(phone)
  assert.equal(sessions.length, 2, 'both sessions are listed')
  const [first, second] = sessions as [Listed, Listed]
  assert.deepEqual([first.device, first.current], ['Safari on iOS', true], 'this session first, marked')
  assert.deepEqual([second.device, second.current], ['Firefox on Linux', false])
  assert.equal(first.apps, stack.appAUrl)
  assert.equal(second.apps, `${stack.appAUrl}, ${stack.appBUrl}`, 'the apps that hold a handle, in the order they got one')
  assert.equal(first.methods, 'password')
  assert.match(first.html, /Sign out this session/)
  assert.match(second.html, /Sign out this device/)
  assert.match(page.body, /<time class="signed-in" datetime="\d{4}-\d\d-\d\dT/)
  assert.match(page.body, /<time class="last-seen" datetime="\d{4}-\d\d-\d\dT/)
  for (const b of [laptop, phone]) assert.ok(!page.body.includes(sidOf(b)), 'no session id on the page')
  assert.match(page.body, /action="\/sessions\/end-others"/)

  // The same sessions, seen from the laptop: the mark follows the browser.
  const fromLaptop = (await sessionsPage(laptop)).sessions
  assert.deepEqual(fromLaptop.map((s) => [s.fingerprint, s.current]), [[second.fingerprint, true], [first.fingerprint, false]])
})

test('signing out the other session there ends it at app A and app B on their next request', async () => {
  await endAllSessions()
  const laptop = await signInThroughA(stack, browserAs(FIREFOX_LINUX))
  await laptop.navigate(`${stack.appBUrl}/private`)
  const phone = await signInThroughA(stack, browserAs(SAFARI_IPHONE))
  const { sessions, csrf } = await sessionsPage(phone)
  const other = sessions.find((s) => !s.current)
  assert.ok(other)

  const ended = await phone.post(`${stack.idpUrl}/sessions/end`, { csrf, session: other.fingerprint })
  assert.equal(ended.status, 303)
  assert.equal(ended.location(), `${stack.idpUrl}/sessions?ended=1`)
  const after = await sessionsPage(phone, ended.location())
  assert.match(after.page.body, /1 session is signed out everywhere\./)
  assert.deepEqual(after.sessions.map((s) => s.current), [true], 'only this session is left')

  for (const base of [stack.appAUrl, stack.appBUrl]) {
    const res = await me(laptop, base)
    assert.equal(res.status, 401, `the laptop is refused at ${base}`)
    assert.equal(res.json().code, 'TESSERA_ERR_UNAUTHENTICATED')
  }
  assert.match((await laptop.get(`${stack.idpUrl}/`)).body, /You are not signed in/, 'and at the IdP')
  assert.equal((await me(phone, stack.appAUrl)).status, 200, 'the phone keeps its session')
})

test('sign out all other sessions ends every other one and keeps this one', async () => {
  await endAllSessions()
  const others = [await signInThroughA(stack, browserAs(FIREFOX_LINUX)), await signInThroughA(stack, browserAs(SAFARI_IPHONE))]
  await others[0]?.navigate(`${stack.appBUrl}/private`)
  const desk = await signInThroughA(stack, browserAs(CHROME_WINDOWS))
  const { csrf } = await sessionsPage(desk)

  const ended = await desk.post(`${stack.idpUrl}/sessions/end-others`, { csrf })
  assert.equal(ended.status, 303)
  assert.equal(ended.location(), `${stack.idpUrl}/sessions?ended=2`)
  for (const b of others) {
    for (const base of [stack.appAUrl, stack.appBUrl]) assert.equal((await me(b, base)).status, 401, `an ended session is refused at ${base}`)
  }
  assert.equal((await me(desk, stack.appAUrl)).status, 200, 'this session is kept')
  const after = await sessionsPage(desk)
  assert.deepEqual(after.sessions.map((s) => [s.device, s.current]), [['Chrome on Windows', true]])
  assert.ok(!after.page.body.includes('action="/sessions/end-others"'), 'no "all others" button with no others')
})

test('signing out this session from the page signs this browser out everywhere', async () => {
  await endAllSessions()
  const b = await signInThroughA(stack, browserAs(FIREFOX_LINUX))
  const { sessions, csrf } = await sessionsPage(b)
  const own = sessions.find((s) => s.current)
  assert.ok(own)
  const out = await b.post(`${stack.idpUrl}/sessions/end`, { csrf, session: own.fingerprint })
  assert.equal(out.status, 200)
  assert.match(out.body, /You signed out this session/)
  assert.ok(b.setCookies.some((c) => /^tessera_idp=;/.test(c)), 'the IdP cookie is cleared')
  assert.equal((await me(b, stack.appAUrl)).status, 401)
  const again = await b.get(`${stack.idpUrl}/sessions`)
  assert.equal(again.status, 302)
  assert.equal(again.location(), `${stack.idpUrl}/login?next=%2Fsessions`)
})

test('an unknown, malformed or another user\'s fingerprint is refused with 404 and ends nothing', async () => {
  await endAllSessions()
  const alice = await signInThroughA(stack, browserAs(FIREFOX_LINUX))
  const aliceFingerprint = (await sessionsPage(alice)).sessions[0]?.fingerprint as string
  const carol = await signInAtIdp('carol', SAFARI_IPHONE)
  const carolPage = await sessionsPage(carol)
  assert.deepEqual(carolPage.sessions.map((s) => s.device), ['Safari on iOS'], 'carol sees only her own session')
  assert.ok(!carolPage.page.body.includes(aliceFingerprint), 'nothing of alice\'s session on carol\'s page')

  for (const session of [aliceFingerprint, '000000000000', 'not a fingerprint', '', sidOf(alice)]) {
    const res = await carol.post(`${stack.idpUrl}/sessions/end`, { csrf: carolPage.csrf, session })
    assert.equal(res.status, 404, `fingerprint ${JSON.stringify(session)}`)
    assert.match(res.body, /TESSERA_ERR_UNKNOWN_SESSION/)
    assert.match(res.body, /not one of your active sessions/)
    const json = await carol.post(`${stack.idpUrl}/sessions/end`, { csrf: carolPage.csrf, session }, 'application/json')
    assert.deepEqual([json.status, json.json().code], [404, 'TESSERA_ERR_UNKNOWN_SESSION'])
  }
  assert.equal((await me(alice, stack.appAUrl)).status, 200, 'alice\'s session is untouched')
  assert.equal((await sessionsPage(carol)).sessions.length, 1, 'and so is carol\'s')

  // "All others" for carol reaches none of alice's sessions.
  const endOthers = await carol.post(`${stack.idpUrl}/sessions/end-others`, { csrf: carolPage.csrf })
  assert.equal(endOthers.location(), `${stack.idpUrl}/sessions?ended=0`)
  assert.equal((await me(alice, stack.appAUrl)).status, 200, 'alice is still signed in')
})

test('a post without the page\'s CSRF field, or with another session\'s, is refused and ends nothing', async () => {
  await endAllSessions()
  const laptop = await signInThroughA(stack, browserAs(FIREFOX_LINUX))
  const phone = await signInThroughA(stack, browserAs(SAFARI_IPHONE))
  const laptopPage = await sessionsPage(laptop)
  const phoneFingerprint = laptopPage.sessions.find((s) => !s.current)?.fingerprint as string
  const phoneCsrf = (await sessionsPage(phone)).csrf

  for (const [what, csrf] of [['no field', undefined], ['an empty field', ''], ['the phone\'s field', phoneCsrf], ['a forged field', 'A'.repeat(43)]] as const) {
    const form: Record<string, string> = { session: phoneFingerprint }
    if (csrf !== undefined) form.csrf = csrf
    const one = await laptop.post(`${stack.idpUrl}/sessions/end`, form)
    assert.equal(one.status, 403, `end with ${what}`)
    assert.match(one.body, /TESSERA_ERR_CSRF/)
    const all = await laptop.post(`${stack.idpUrl}/sessions/end-others`, csrf === undefined ? {} : { csrf })
    assert.equal(all.status, 403, `end-others with ${what}`)
  }
  // Another site's form: the browser says so (and under SameSite=Lax would not even send the cookie).
  const cross = await laptop.request(`${stack.idpUrl}/sessions/end-others`, {
    method: 'POST',
    headers: { accept: 'text/html', 'content-type': 'application/x-www-form-urlencoded', origin: 'http://evil.example', 'sec-fetch-site': 'cross-site' },
    body: new URLSearchParams({ csrf: laptopPage.csrf }).toString(),
  })
  assert.equal(cross.status, 403)
  assert.equal((await me(phone, stack.appAUrl)).status, 200, 'the phone is still signed in')
  assert.equal((await sessionsPage(laptop)).sessions.length, 2)

  // Without a session there is nothing to end: the browser is sent to sign in, and nothing changes.
  const stranger = new Browser()
  const none = await stranger.post(`${stack.idpUrl}/sessions/end-others`, { csrf: laptopPage.csrf })
  assert.equal(none.status, 303)
  assert.equal(none.location(), `${stack.idpUrl}/login?next=%2Fsessions`)
  assert.equal((await me(phone, stack.appAUrl)).status, 200)
})

test('a hostile User-Agent is shown escaped, cut to its bounded length', async () => {
  await endAllSessions()
  const hostile = `<script>alert(1)</script><img src=x onerror="alert(2)"> & 'quoted' ${'x'.repeat(400)}`
  await signInThroughA(stack, browserAs(hostile))
  const viewer = await signInThroughA(stack, browserAs(FIREFOX_LINUX))
  const { page, sessions } = await sessionsPage(viewer)
  assert.equal(sessions.length, 2)
  assert.ok(!page.body.includes('<script>'), 'no script element from the User-Agent')
  assert.ok(!page.body.includes('<img'), 'no img element from the User-Agent')
  assert.ok(page.body.includes('&lt;script&gt;alert(1)&lt;/script&gt;&lt;img src=x onerror=&quot;alert(2)&quot;&gt; &amp; &#39;quoted&#39;'), 'the string is shown as text')
  const shown = /<code class="user-agent">&lt;script([^<]*)<\/code>/.exec(page.body)?.[1] ?? ''
  assert.ok(shown.endsWith('x'.repeat(20)) && !shown.includes('x'.repeat(MAX_USER_AGENT)), 'kept to MAX_USER_AGENT characters')
  assert.equal(sessions.find((s) => !s.current)?.device, 'Unknown browser')
})

test('without a session, /sessions (and /security) sends the browser to sign in and back; the home page links to it', async () => {
  const b = new Browser({ userAgent: FIREFOX_LINUX })
  const first = await b.get(`${stack.idpUrl}/sessions`)
  assert.equal(first.status, 302)
  assert.equal(first.location(), `${stack.idpUrl}/login?next=%2Fsessions`)
  const form = await b.get(first.location() as string)
  const fields = formFields(form.body)
  assert.equal(fields.next, '/sessions', 'the form keeps where to return')
  const posted = await b.post(`${stack.idpUrl}/login`, { ...fields, username: 'alice', password: PASSWORD })
  assert.equal(posted.status, 303)
  assert.equal(posted.location(), `${stack.idpUrl}/sessions`)
  assert.equal((await b.get(posted.location() as string)).status, 200)
  assert.match((await b.get(`${stack.idpUrl}/`)).body, /<a href="\/sessions"/)

  // The security page does the same.
  const c = new Browser()
  const security = await c.get(`${stack.idpUrl}/security`)
  assert.equal(security.location(), `${stack.idpUrl}/login?next=%2Fsecurity`)
  const securityForm = formFields((await c.get(security.location() as string)).body)
  const back = await c.post(`${stack.idpUrl}/login`, { ...securityForm, username: 'alice', password: PASSWORD })
  assert.equal(back.location(), `${stack.idpUrl}/security`)

  // `next` is one of the IdP's own pages or nothing: never another site.
  const other = new Browser()
  const evil = await other.get(`${stack.idpUrl}/login?next=${encodeURIComponent('https://evil.example/')}`)
  assert.equal(formFields(evil.body).next, undefined)
  const sneaky = await other.post(`${stack.idpUrl}/login`, { ...formFields(evil.body), username: 'alice', password: PASSWORD, next: '//evil.example/' })
  assert.equal(sneaky.location(), `${stack.idpUrl}/`)
})

/**
 * A browser holding an IdP session of alice's that signed in `minutesAgo` (made in the store as the
 * IdP makes one, the sign-in time in its signed identity), so a test needs not wait 5 minutes.
 */
async function signedInLongAgo(minutesAgo: number): Promise<Browser> {
  const client = redis.client()
  const { sessions, signer } = storesFor(client, { keyring: stack.config.keyring })
  const user = { username: 'alice', displayName: 'Alice Example', email: 'alice@example.com', groups: ['admins', 'staff'] }
  const absoluteMs = stack.config.sessionTtlSeconds * 1000
  const handle = await sessions.create(user, [{ method: 'pwd', at: Date.now() - minutesAgo * 60_000 }],
    { idleMs: stack.config.sessionIdleSeconds * 1000, absoluteMs }, stack.config.publicUrl, signer, CHROME_WINDOWS)
  await new UserIndex(client).add('alice', handle.sid, absoluteMs)
  const b = new Browser({ userAgent: CHROME_WINDOWS })
  b.cookies(new URL(stack.idpUrl).hostname).set('tessera_idp', encodeHandle(handle, stack.config.sessionSecret, stack.config.publicUrl))
  return b
}

test('ending another session needs a factor in the last 5 minutes: an older sign-in types its password again first', async () => {
  await endAllSessions()
  const laptop = await signInThroughA(stack, browserAs(FIREFOX_LINUX))
  const desk = await signedInLongAgo(10)
  const stale = await sessionsPage(desk)
  assert.deepEqual(stale.sessions.map((s) => [s.device, s.current]), [['Chrome on Windows', true], ['Firefox on Linux', false]])
  assert.match(stale.page.body, /action="\/sessions\/confirm"/, 'the page asks for the password')
  assert.ok(!stale.page.body.includes('Sign out this device'), 'no button that would be refused')
  assert.ok(!stale.page.body.includes('action="/sessions/end-others"'))
  const other = stale.sessions.find((s) => !s.current)?.fingerprint as string

  for (const [path, form] of [['/sessions/end', { csrf: stale.csrf, session: other }], ['/sessions/end-others', { csrf: stale.csrf }]] as const) {
    const refused = await desk.post(`${stack.idpUrl}${path}`, form)
    assert.equal(refused.status, 403, path)
    assert.match(refused.body, /TESSERA_ERR_REAUTH_REQUIRED/)
  }
  assert.equal((await me(laptop, stack.appAUrl)).status, 200, 'nothing was ended')

  const wrong = await desk.post(`${stack.idpUrl}/sessions/confirm`, { csrf: stale.csrf, password: 'not the password' })
  assert.equal(wrong.status, 401)
  assert.match(wrong.body, /Incorrect password\./)
  assert.equal((await desk.post(`${stack.idpUrl}/sessions/confirm`, { password: PASSWORD })).status, 403, 'the confirm form needs its CSRF field too')
  const confirmed = await desk.post(`${stack.idpUrl}/sessions/confirm`, { csrf: stale.csrf, password: PASSWORD })
  assert.equal(confirmed.status, 303)
  assert.equal(confirmed.location(), `${stack.idpUrl}/sessions`)
  const fresh = await sessionsPage(desk)
  assert.ok(!fresh.page.body.includes('action="/sessions/confirm"'))
  assert.match(fresh.page.body, /Sign out this device/)
  assert.equal((await desk.post(`${stack.idpUrl}/sessions/end-others`, { csrf: fresh.csrf })).location(), `${stack.idpUrl}/sessions?ended=1`)
  assert.equal((await me(laptop, stack.appAUrl)).status, 401, 'the laptop is signed out')
})

test('an older sign-in may still sign itself out with no password: that is a logout', async () => {
  await endAllSessions()
  const desk = await signedInLongAgo(10)
  const { sessions, csrf, page } = await sessionsPage(desk)
  assert.ok(!page.body.includes('action="/sessions/confirm"'), 'nothing else to end, so no password asked')
  const out = await desk.post(`${stack.idpUrl}/sessions/end`, { csrf, session: sessions[0]?.fingerprint as string })
  assert.equal(out.status, 200)
  assert.match(out.body, /You signed out this session/)
  assert.match((await desk.get(`${stack.idpUrl}/`)).body, /You are not signed in/)
})

test('with a second factor enrolled, signing in for /sessions comes back there after the factor, and says how', async () => {
  const { codes } = await enrolOnSecurityPage(await signInAtIdp('carol'), stack.idpUrl)
  const b = new Browser({ userAgent: FIREFOX_LINUX })
  const login = (await b.get(`${stack.idpUrl}/sessions`)).location() as string
  const form = await b.get(login)
  const posted = await b.post(`${stack.idpUrl}/login`, { ...formFields(form.body), username: 'carol', password: PASSWORD })
  assert.equal(posted.location(), `${stack.idpUrl}/login/second-factor`)
  const done = await postFactor(b, stack.idpUrl, { recovery: codes[0] as string })
  assert.equal(done.status, 303)
  assert.equal(done.location(), `${stack.idpUrl}/sessions`, 'back to the sessions page, not the start page')
  const own = (await sessionsPage(b)).sessions.find((s) => s.current)
  assert.equal(own?.methods, 'password and one-time code')
})
