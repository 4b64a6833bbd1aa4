/** Another site's page posting to the IdP: no forced logout, no login CSRF, and the IdP's own forms still work. */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { Browser, type Page } from '../helpers/browser.js'
import { formFields, PASSWORD, useStack, type Stack } from '../helpers/stack.js'
import { me, signInThroughA } from '../helpers/sso-scenarios.js'

let stack: Stack
useStack((_r, s) => { stack = s })

const EVIL = 'http://evil.example'
type HeaderSet = Record<string, string>
const idpCookie = (b: Browser): string | undefined => b.cookies('127.0.0.1').get('tessera_idp')

function assertNothingChanged(res: Page, why: string): void {
  assert.deepEqual(res.headers.getSetCookie(), [], `${why}: no cookie set or cleared`)
  assert.doesNotMatch(res.body, /signed out/i, `${why}: no claim of a logout`)
}

async function assertStillSignedIn(b: Browser, cookie: string | undefined, why: string): Promise<void> {
  assert.equal(idpCookie(b), cookie, `${why}: the IdP cookie is kept`)
  assert.match((await b.get(`${stack.idpUrl}/`)).body, /Alice Example/, `${why}: still signed in at the IdP`)
  assert.equal((await me(b, stack.appAUrl)).status, 200, `${why}: still signed in at app A`)
}

test('a cross-site auto-submitted POST /logout changes nothing and claims no logout', async () => {
  const b = await signInThroughA(stack)
  const cookie = idpCookie(b)
  assert.ok(cookie)

  // A current browser: SameSite=Lax keeps the cookie home; Origin and Sec-Fetch-Site name the other site.
  const modern = await b.crossSitePost(`${stack.idpUrl}/logout`, {}, { origin: EVIL, 'sec-fetch-site': 'cross-site' })
  assert.equal(modern.status, 403)
  assert.match(modern.body, /sent from another site/)
  assertNothingChanged(modern, 'Origin and Sec-Fetch-Site')
  await assertStillSignedIn(b, cookie, 'after a cross-site logout')

  // A browser that sends neither header: the post carries no session, so there is nothing to end.
  const bare = await b.crossSitePost(`${stack.idpUrl}/logout`, {})
  assert.equal(bare.status, 303)
  assert.equal(bare.location(), `${stack.idpUrl}/`)
  assertNothingChanged(bare, 'no Origin, no cookie')
  await assertStillSignedIn(b, cookie, 'after a logout post without a cookie')

  // Even carrying the cookie and the right CSRF token, a post the browser marks cross-site is refused.
  const { csrf } = formFields((await b.get(`${stack.idpUrl}/`)).body)
  for (const headers of <HeaderSet[]>[{ origin: EVIL }, { 'sec-fetch-site': 'cross-site' }, { origin: 'null', 'sec-fetch-site': 'cross-site' }, { origin: stack.appAUrl }, { 'sec-fetch-site': 'same-site' }]) {
    const res = await b.request(`${stack.idpUrl}/logout`, {
      method: 'POST',
      headers: { accept: 'application/json', 'content-type': 'application/x-www-form-urlencoded', ...headers },
      body: new URLSearchParams({ csrf: csrf as string }).toString(),
    })
    assert.equal(res.status, 403, JSON.stringify(headers))
    assert.equal(res.json().code, 'TESSERA_ERR_CSRF')
  }
  await assertStillSignedIn(b, cookie, 'after cross-site posts with the cookie and the CSRF token')
})

test('logout from the IdP\'s own page still works, with the headers a browser sends (Origin: null under no-referrer)', async () => {
  for (const headers of <HeaderSet[]>[{ origin: stack.idpUrl, 'sec-fetch-site': 'same-origin' }, { origin: 'null', 'sec-fetch-site': 'same-origin' }, {}]) {
    const b = await signInThroughA(stack)
    const { csrf } = formFields((await b.get(`${stack.idpUrl}/`)).body)
    const out = await b.request(`${stack.idpUrl}/logout`, {
      method: 'POST',
      headers: { accept: 'text/html', 'content-type': 'application/x-www-form-urlencoded', ...headers },
      body: new URLSearchParams({ csrf: csrf as string }).toString(),
    })
    assert.equal(out.status, 200, JSON.stringify(headers))
    assert.match(out.body, /You are signed out of every application/)
    assert.equal(idpCookie(b), undefined)
    assert.equal((await me(b, stack.appAUrl)).status, 401, JSON.stringify(headers))
  }
})

test('a cross-site POST /login is refused before the password is checked; the IdP\'s own form signs in', async () => {
  const post = async (b: Browser, headers: HeaderSet): Promise<Page> => {
    const fields = formFields((await b.get(`${stack.idpUrl}/login`)).body)
    return b.request(`${stack.idpUrl}/login`, {
      method: 'POST',
      headers: { accept: 'text/html', 'content-type': 'application/x-www-form-urlencoded', ...headers },
      body: new URLSearchParams({ ...fields, username: 'alice', password: PASSWORD }).toString(),
    })
  }
  for (const headers of <HeaderSet[]>[{ origin: EVIL, 'sec-fetch-site': 'cross-site' }, { origin: EVIL }, { 'sec-fetch-site': 'cross-site' }, { origin: 'null', 'sec-fetch-site': 'cross-site' }, { origin: stack.appAUrl, 'sec-fetch-site': 'same-site' }]) {
    const b = new Browser()
    const res = await post(b, headers)
    assert.equal(res.status, 403, JSON.stringify(headers))
    assert.match(res.body, /sent from another site, so it was refused/)
    assert.equal(idpCookie(b), undefined, 'no session')
  }
  for (const headers of <HeaderSet[]>[{ origin: stack.idpUrl, 'sec-fetch-site': 'same-origin' }, { origin: 'null', 'sec-fetch-site': 'same-origin' }, { origin: 'null' }, {}]) {
    const b = new Browser()
    const res = await post(b, headers)
    assert.equal(res.status, 303, JSON.stringify(headers))
    assert.ok(idpCookie(b), 'signed in')
  }
})
