import assert from 'node:assert/strict'
import { Browser, type Page } from '../helpers/browser.js'
import { type TestRedis } from '../helpers/redis-server.js'
import { appCookies, formFields, PASSWORD, useStackPerAdapter, type Stack } from '../helpers/stack.js'
import { commandsSent } from '../helpers/redis-commands.js'

let redis: TestRedis
let stack: Stack
// Every test runs against apps built with the Fastify plugin and with the Express middleware.
const test = useStackPerAdapter((r, s) => { redis = r; stack = s })

/** Opens app A's private page and signs in at the IdP: returns the browser and the hops. */
async function signInThroughAppA(_t?: unknown): Promise<Browser> {
  const b = new Browser()
  const first = await b.get(`${stack.appAUrl}/private?x=1`)
  assert.strictEqual(first.status, 302)
  const login = new URL(first.location() as string)
  assert.strictEqual(login.origin, stack.idpUrl)
  assert.strictEqual(login.pathname, '/login')
  assert.strictEqual(Buffer.from(login.searchParams.get('callback') as string, 'base64url').toString(), `${stack.appAUrl}/private?x=1`)
  assert.match(b.setCookies.find((c) => c.startsWith(`${appCookies(stack.appAUrl).state}=`)) ?? '', /HttpOnly/i)

  const form = await b.get(login.href)
  assert.strictEqual(form.status, 200)
  assert.match(form.body, /<form method="post" action="\/login"/)
  const fields = formFields(form.body)
  assert.ok(fields.csrf && fields.callback && fields.state, 'hidden csrf, callback and state are kept')

  const posted = await b.post(`${stack.idpUrl}/login`, { ...fields, username: 'alice', password: PASSWORD })
  assert.strictEqual(posted.status, 303)
  const back = new URL(posted.location() as string)
  assert.strictEqual(back.origin, stack.appAUrl)
  assert.strictEqual(back.searchParams.get('x'), '1')
  assert.ok(back.searchParams.get('token'))

  const redeemed = await b.get(back.href)
  assert.strictEqual(redeemed.status, 302)
  assert.strictEqual(redeemed.location(), `${stack.appAUrl}/private?x=1`, 'the token is dropped from the URL')
  const page = await b.get(redeemed.location() as string)
  assert.strictEqual(page.status, 200)
  assert.match(page.body, /Signed in as <strong>Alice Example<\/strong>/)
  return b
}

async function me(b: Browser, base: string): Promise<Page> {
  return b.get(`${base}/api/me`, 'application/json')
}

test('sign in once through app A, reach app B with no form, share data, log out everywhere from B', async (t) => {
  const b = await signInThroughAppA(t)

  // App B: IdP session exists, so no form: app B → IdP → app B with token → clean URL → page.
  const hops = await b.navigate(`${stack.appBUrl}/private`)
  assert.deepStrictEqual(hops.map((h) => h.status), [302, 302, 302, 200])
  assert.ok(!hops.some((h) => h.body.includes('<form method="post" action="/login"')), 'no login form shown')
  assert.match(hops.at(-1)?.body ?? '', /Alice Example/)

  const userA = (await me(b, stack.appAUrl)).json<{ user: unknown }>().user
  const userB = (await me(b, stack.appBUrl)).json<{ user: unknown }>().user
  assert.deepStrictEqual(userA, { username: 'alice', displayName: 'Alice Example', email: 'alice@example.com', groups: ['admins', 'staff'] })
  assert.deepStrictEqual(userB, userA)

  // Data written in A is read in B (and the visit counter, written by both, is one value).
  const note = await b.post(`${stack.appAUrl}/api/note`, { note: 'hello from A' }, 'application/json')
  assert.strictEqual(note.status, 200)
  const seenInB = (await me(b, stack.appBUrl)).json<{ data: { note: string; visits: number } }>().data
  assert.strictEqual(seenInB.note, 'hello from A')
  assert.strictEqual(seenInB.visits, 2)

  // Logout in B ends the session in A and at the IdP.
  const out = await b.post(`${stack.appBUrl}/logout`, {})
  assert.strictEqual(out.status, 303)
  const afterA = await me(b, stack.appAUrl)
  assert.strictEqual(afterA.status, 401)
  assert.strictEqual(afterA.json().code, 'TESSERA_ERR_UNAUTHENTICATED')
  const idpHome = await b.get(`${stack.idpUrl}/`)
  assert.match(idpHome.body, /You are not signed in/)
  const againA = await b.get(`${stack.appAUrl}/private`)
  assert.strictEqual(againA.status, 302)
  assert.strictEqual(new URL(againA.location() as string).origin, stack.idpUrl)
})

test("the app's side of a hand-over costs Redis one script (the redemption) and one plain read (the first page)", async (t) => {
  const b = await signInThroughAppA(t)
  // App B sends the browser to the IdP, which hands it back with a token; from there on only B works.
  const toIdp = await b.get(`${stack.appBUrl}/api/me`, 'text/html')
  assert.strictEqual(toIdp.status, 302)
  const withToken = await b.get(toIdp.location() as string)
  assert.strictEqual(withToken.status, 302)
  const seen = await commandsSent(redis, async () => {
    const redeemed = await b.get(withToken.location() as string)
    assert.strictEqual(redeemed.status, 302)
    const page = await b.get(redeemed.location() as string, 'application/json')
    assert.strictEqual(page.status, 200)
  })
  // The redemption set the idle TTL, so the first page needs no refreshing script of its own.
  // The page reads four fields of the session (HMGET), whatever else its hash holds.
  assert.deepStrictEqual(seen, ['evalsha', 'hmget'])
})

test('logout at the IdP ends the session in every app and lands on an allowed callback', async (t) => {
  const b = await signInThroughAppA(t)
  await b.navigate(`${stack.appBUrl}/private`)
  const home = await b.get(`${stack.idpUrl}/`)
  assert.match(home.body, /Alice Example/)
  const { csrf } = formFields(home.body)
  const out = await b.post(`${stack.idpUrl}/logout`, { csrf: csrf as string, callback: Buffer.from(`${stack.appAUrl}/`).toString('base64url') })
  assert.strictEqual(out.status, 303)
  assert.strictEqual(out.location(), `${stack.appAUrl}/`)
  assert.strictEqual((await me(b, stack.appAUrl)).status, 401)
  assert.strictEqual((await me(b, stack.appBUrl)).status, 401)
})

test('logout at the IdP without its CSRF field is refused and the session lives on', async (t) => {
  const b = await signInThroughAppA(t)
  const out = await b.post(`${stack.idpUrl}/logout`, {}, 'application/json')
  assert.strictEqual(out.status, 403)
  assert.strictEqual(out.json().code, 'TESSERA_ERR_CSRF')
  assert.strictEqual((await me(b, stack.appAUrl)).status, 200)
})

test('a cookie from app A is no session at app B or at the IdP', async (t) => {
  const b = await signInThroughAppA(t)
  const cookieA = b.cookies('127.0.0.2').get(appCookies(stack.appAUrl).session) as string
  assert.ok(cookieA)
  const thief = new Browser()
  thief.cookies('127.0.0.3').set(appCookies(stack.appBUrl).session, cookieA)
  thief.cookies('127.0.0.1').set('tessera_idp', cookieA)
  assert.strictEqual((await me(thief, stack.appBUrl)).status, 401)
  assert.match((await thief.get(`${stack.idpUrl}/`)).body, /You are not signed in/)
  // ...while the same value still works at A, where it belongs.
  const owner = new Browser()
  owner.cookies('127.0.0.2').set(appCookies(stack.appAUrl).session, cookieA)
  assert.strictEqual((await me(owner, stack.appAUrl)).status, 200)
})

test('an API request without a session gets 401 JSON with the login URL, not a redirect', async (t) => {
  const b = new Browser()
  const res = await b.get(`${stack.appAUrl}/api/me`, 'application/json')
  assert.strictEqual(res.status, 401)
  assert.strictEqual(res.headers.get('location'), null)
  const body = res.json<{ code: string; loginUrl: string }>()
  assert.strictEqual(body.code, 'TESSERA_ERR_UNAUTHENTICATED')
  assert.ok(body.loginUrl.startsWith(`${stack.idpUrl}/login?callback=`))
  const post = await b.post(`${stack.appAUrl}/api/note`, { note: 'x' }, 'text/html')
  assert.strictEqual(post.status, 401, 'a POST is not a navigation even when it accepts HTML')
})

test('public paths answer without a session', async (t) => {
  const res = await new Browser().get(`${stack.appAUrl}/`)
  assert.strictEqual(res.status, 200)
  assert.match(res.body, /You are not signed in/)
})

test('wrong credentials show the form again with one generic message and 401', async (t) => {
  const b = new Browser()
  const first = await b.get(`${stack.appAUrl}/private`)
  const form = await b.get(first.location() as string)
  const fields = formFields(form.body)
  const wrong = await b.post(`${stack.idpUrl}/login`, { ...fields, username: 'alice', password: 'nope' })
  const unknown = await b.post(`${stack.idpUrl}/login`, { ...formFields(wrong.body), username: 'mallory', password: 'nope' })
  const disabled = await b.post(`${stack.idpUrl}/login`, { ...formFields(unknown.body), username: 'bob', password: PASSWORD })
  for (const res of [wrong, unknown, disabled]) {
    assert.strictEqual(res.status, 401)
    assert.match(res.body, /Incorrect username or password\./)
    assert.strictEqual(formFields(res.body).callback, fields.callback, 'the callback is kept')
  }
  // The kept callback still works with the right password.
  const ok = await b.post(`${stack.idpUrl}/login`, { ...formFields(disabled.body), username: 'alice', password: PASSWORD })
  assert.strictEqual(ok.status, 303)
  assert.strictEqual(new URL(ok.location() as string).origin, stack.appAUrl)
})

test('sign-in issues a new session cookie, never the pre-login one', async (t) => {
  const b = new Browser()
  const form = await b.get(`${stack.idpUrl}/login`)
  const pre = b.cookies('127.0.0.1').get('tessera_pre')
  assert.ok(pre)
  const ok = await b.post(`${stack.idpUrl}/login`, { ...formFields(form.body), username: 'alice', password: PASSWORD })
  assert.strictEqual(ok.status, 303)
  assert.strictEqual(ok.location(), `${stack.idpUrl}/`)
  const sid = b.cookies('127.0.0.1').get('tessera_idp') as string
  assert.ok(sid)
  assert.ok(!sid.includes(pre as string))
  assert.strictEqual(b.cookies('127.0.0.1').get('tessera_pre'), undefined, 'the pre-login cookie is cleared')
  assert.match((await b.get(`${stack.idpUrl}/`)).body, /Alice Example/)
})

test('a stale login form posted by a signed-in browser keeps its session: one logout still ends it everywhere', async (t) => {
  const b = new Browser()
  const stale = formFields((await b.get(`${stack.idpUrl}/login`)).body) // tab 1 opens the form
  const other = await signInThroughAppA(t) // the same person signs in in tab 2 ...
  for (const [host, jar] of other.jars) b.jars.set(host, new Map(jar)) // ... of the same browser
  const refused = await b.post(`${stack.idpUrl}/login`, { ...stale, csrf: 'expired', username: 'alice', password: PASSWORD })
  assert.strictEqual(refused.status, 403)
  assert.ok(b.cookies('127.0.0.1').get('tessera_idp'), 'the IdP session cookie is kept')
  assert.strictEqual((await me(b, stack.appAUrl)).status, 200)
  const home = await b.get(`${stack.idpUrl}/`)
  assert.match(home.body, /Alice Example/, 'still signed in at the IdP')
  const out = await b.post(`${stack.idpUrl}/logout`, { csrf: formFields(home.body).csrf as string, callback: Buffer.from(`${stack.appAUrl}/`).toString('base64url') })
  assert.strictEqual(out.status, 303)
  assert.strictEqual((await me(b, stack.appAUrl)).status, 401, 'the logout ended the session at the app')
})

test('a login POST without the CSRF field gets 403 and no session', async (t) => {
  const b = new Browser()
  await b.get(`${stack.idpUrl}/login`)
  const res = await b.post(`${stack.idpUrl}/login`, { username: 'alice', password: PASSWORD })
  assert.strictEqual(res.status, 403)
  assert.strictEqual(b.cookies('127.0.0.1').get('tessera_idp'), undefined)
})
