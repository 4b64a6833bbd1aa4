/**
 * The SSO scenarios every Redis topology must pass (single Redis, Sentinel, Cluster, several IdPs):
 * the full flow through two apps, logout everywhere, and token replay. Each takes the URLs of a
 * running stack and a factory for browsers, so a test can hand in a browser that spreads its IdP
 * requests over several IdP replicas.
 */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { Browser, type Page } from './browser.js'
import { appCookies } from './app-cookies.js'
import { formFields } from './forms.js'
import { PASSWORD } from './users.js'

export interface StackUrls {
  readonly idpUrl: string
  readonly appAUrl: string
  readonly appBUrl: string
}

export type BrowserFactory = () => Browser

const hostOf = (url: string): string => new URL(url).hostname

export async function me(b: Browser, base: string): Promise<Page> {
  return b.get(`${base}/api/me`, 'application/json')
}

/** Opens app A's private page and signs in at the IdP, asserting every hop; resolves to the signed-in browser. */
export async function signInThroughA(s: StackUrls, newBrowser: BrowserFactory = () => new Browser()): Promise<Browser> {
  const b = newBrowser()
  const first = await b.get(`${s.appAUrl}/private?x=1`)
  assert.equal(first.status, 302)
  const login = new URL(first.location() as string)
  assert.equal(login.origin, s.idpUrl)
  assert.equal(login.pathname, '/login')
  const form = await b.get(login.href)
  assert.equal(form.status, 200)
  const fields = formFields(form.body)
  assert.ok(fields.csrf && fields.callback && fields.state, 'hidden csrf, callback and state are kept')
  const posted = await b.post(`${s.idpUrl}/login`, { ...fields, username: 'alice', password: PASSWORD })
  assert.equal(posted.status, 303, `POST /login answered ${posted.status}`)
  const back = new URL(posted.location() as string)
  assert.equal(back.origin, s.appAUrl)
  assert.ok(back.searchParams.get('token'))
  const redeemed = await b.get(back.href)
  assert.equal(redeemed.status, 302, `the redemption answered ${redeemed.status}`)
  assert.equal(redeemed.location(), `${s.appAUrl}/private?x=1`, 'the token is dropped from the URL')
  const page = await b.get(redeemed.location() as string)
  assert.equal(page.status, 200)
  assert.match(page.body, /Signed in as <strong>Alice Example<\/strong>/)
  return b
}

/** Sign in once through app A, reach app B with no form, share session data between them. */
export async function assertFullFlow(s: StackUrls, newBrowser?: BrowserFactory): Promise<Browser> {
  const b = await signInThroughA(s, newBrowser)
  const hops = await b.navigate(`${s.appBUrl}/private`)
  assert.deepEqual(hops.map((h) => h.status), [302, 302, 302, 200], 'app B -> IdP -> app B with token -> clean URL')
  assert.ok(!hops.some((h) => h.body.includes('action="/login"')), 'no login form at app B')
  assert.match(hops.at(-1)?.body ?? '', /Alice Example/)

  const userA = (await me(b, s.appAUrl)).json<{ user: unknown }>().user
  assert.deepEqual(userA, { username: 'alice', displayName: 'Alice Example', email: 'alice@example.com', groups: ['admins', 'staff'] })
  assert.deepEqual((await me(b, s.appBUrl)).json<{ user: unknown }>().user, userA)
  const note = await b.post(`${s.appAUrl}/api/note`, { note: 'written at A' }, 'application/json')
  assert.equal(note.status, 200)
  const seenInB = (await me(b, s.appBUrl)).json<{ data: { note: string; visits: number } }>().data
  assert.equal(seenInB.note, 'written at A', 'data written at A is read at B')
  assert.equal(seenInB.visits, 2, 'one visit counter for the session, written by both apps')
  assert.match((await b.get(`${s.idpUrl}/`)).body, /Alice Example/, 'signed in at the IdP too')
  return b
}

/** Asserts that `b` is signed out at both apps and at the IdP. */
export async function assertSignedOutEverywhere(b: Browser, s: StackUrls, why: string): Promise<void> {
  for (const base of [s.appAUrl, s.appBUrl]) {
    const res = await me(b, base)
    assert.equal(res.status, 401, `${why}: signed out at ${base}`)
    assert.equal(res.json().code, 'TESSERA_ERR_UNAUTHENTICATED')
  }
  assert.match((await b.get(`${s.idpUrl}/`)).body, /You are not signed in/, `${why}: signed out at the IdP`)
  const again = await b.get(`${s.appAUrl}/private`)
  assert.equal(again.status, 302)
  assert.equal(new URL(again.location() as string).origin, s.idpUrl, `${why}: app A sends the browser to sign in again`)
}

/** Logout at app B ends the session at A and the IdP; logout at the IdP ends it at both apps. */
export async function assertLogoutEverywhere(s: StackUrls, newBrowser?: BrowserFactory): Promise<void> {
  const one = await assertFullFlow(s, newBrowser)
  const out = await one.post(`${s.appBUrl}/logout`, {})
  assert.equal(out.status, 303)
  await assertSignedOutEverywhere(one, s, 'logout at app B')

  const two = await assertFullFlow(s, newBrowser)
  const home = await two.get(`${s.idpUrl}/`)
  const { csrf } = formFields(home.body)
  assert.ok(csrf)
  const idpOut = await two.post(`${s.idpUrl}/logout`, { csrf, callback: Buffer.from(`${s.appAUrl}/`).toString('base64url') })
  assert.equal(idpOut.status, 303)
  assert.equal(idpOut.location(), `${s.appAUrl}/`)
  await assertSignedOutEverywhere(two, s, 'logout at the IdP')
}

/**
 * A hand-over token is good once: redeemed, it opens a session; replayed (by another browser holding
 * the same state cookie), it gets 403 and no session, and neither does a second replay.
 */
export async function assertReplayRefused(s: StackUrls, newBrowser: BrowserFactory = () => new Browser()): Promise<void> {
  const b = newBrowser()
  const login = (await b.get(`${s.appAUrl}/private`)).location() as string
  const form = await b.get(login)
  const posted = await b.post(`${s.idpUrl}/login`, { ...formFields(form.body), username: 'alice', password: PASSWORD })
  assert.equal(posted.status, 303)
  const url = posted.location() as string
  const state = b.cookies(hostOf(s.appAUrl)).get(appCookies(s.appAUrl).state)
  assert.ok(state && new URL(url).searchParams.get('token'))

  const first = await b.get(url)
  assert.equal(first.status, 302, 'the first redemption opens a session')
  assert.equal((await me(b, s.appAUrl)).status, 200)

  for (const attempt of ['first replay', 'second replay']) {
    const thief = newBrowser()
    thief.cookies(hostOf(s.appAUrl)).set(appCookies(s.appAUrl).state, state)
    const replay = await thief.get(url)
    assert.equal(replay.status, 403, `${attempt}: 403`)
    assert.equal(replay.headers.get('location'), null, `${attempt}: no redirect`)
    assert.equal(thief.cookies(hostOf(s.appAUrl)).get(appCookies(s.appAUrl).session), undefined, `${attempt}: no session cookie`)
    const api = await thief.get(url, 'application/json')
    assert.equal(api.status, 403)
    assert.equal(api.json().code, 'TESSERA_ERR_INVALID_TOKEN')
    assert.equal((await me(thief, s.appAUrl)).status, 401, `${attempt}: signed out`)
  }
  assert.equal((await me(b, s.appAUrl)).status, 200, 'the rightful session is untouched')
}

/**
 * Registers the three scenarios as tests named `<label>: ...`, on the stack `stack()` returns once
 * the file's `before` has started it (a Redis topology's test file).
 */
export function topologyScenarioTests(label: string, stack: () => StackUrls): void {
  test(`${label}: full SSO flow through two apps`, async () => {
    await assertFullFlow(stack())
  })
  test(`${label}: logout at an app or at the IdP ends the session everywhere`, async () => {
    await assertLogoutEverywhere(stack())
  })
  test(`${label}: a replayed hand-over token gets 403`, async () => {
    await assertReplayRefused(stack())
  })
}
