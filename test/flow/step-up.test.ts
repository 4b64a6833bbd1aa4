/**
 * Per-app step-up on the real stack (IdP on 127.0.0.1, app A on .2, app B on .3): app B has
 * `secondFactor: 'required'`, app A has no such option. A password-only session opens app A; app B
 * sends the browser to the IdP's login with mfa=1, answers a JSON request 401 with that login URL,
 * and refuses (403, no loop) a hand-over that still brings no second factor. A session the IdP signed
 * with a second factor opens app B. The whole round trip, with the IdP's own step-up (a TOTP code),
 * runs with app B built on each adapter.
 */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { Redis } from 'ioredis'
import { Browser } from '../helpers/browser.js'
import { type TestRedis } from '../helpers/redis-server.js'
import { ADAPTERS, appCookies, newKey, startStack, useStack, type Stack } from '../helpers/stack.js'
import { codeAt, enrolOnSecurityPage, passwordOnly, postFactor, writeFactorUsers } from '../helpers/factors.js'
import { me, signInThroughA } from '../helpers/sso-scenarios.js'
import { PWD, storesFor } from '../helpers/stores.js'
import { encodeHandle } from '../../src/shared/handle-cookie.js'

let redis: TestRedis
let stack: Stack
useStack((r, s) => { redis = r; stack = s }, { secondFactorApps: ['B'] })

const B_HOST = '127.0.0.3'

/** Asserts `location` is the IdP's login URL asking for a second factor, coming back to `back` at app B. */
function assertStepUp(location: string | undefined, back: string, b: Browser): void {
  assert.ok(location, 'a Location')
  const login = new URL(location)
  assert.equal(`${login.origin}${login.pathname}`, `${stack.idpUrl}/login`)
  assert.equal(login.searchParams.get('mfa'), '1', 'the IdP is asked for a second factor')
  assert.equal(Buffer.from(login.searchParams.get('callback') as string, 'base64url').toString(), back)
  assert.equal(login.searchParams.get('state'), b.cookies(B_HOST).get(appCookies(stack.appBUrl).state), 'the state is this browser\'s')
}

test('a password-only session opens app A; app B sends it to the IdP with mfa=1, and a JSON request gets 401 with that login URL', async () => {
  const b = await signInThroughA(stack)
  assert.equal((await me(b, stack.appAUrl)).status, 200, 'app A, without the option, keeps working with a password')

  const nav = await b.get(`${stack.appBUrl}/private?x=1`)
  assert.equal(nav.status, 302)
  assertStepUp(nav.location(), `${stack.appBUrl}/private?x=1`, b)

  const api = await me(b, stack.appBUrl)
  assert.equal(api.status, 401)
  assert.equal(api.headers.get('location'), null, 'not a redirect')
  const body = api.json<{ code: string; loginUrl: string }>()
  assert.equal(body.code, 'TESSERA_ERR_UNAUTHENTICATED')
  assertStepUp(body.loginUrl, `${stack.appBUrl}/api/me`, b)
  assert.equal((await me(b, stack.appAUrl)).status, 200, 'app A still works')
})

test('a hand-over that still brings no second factor gets 403 TESSERA_ERR_SECOND_FACTOR_REQUIRED at app B, not another redirect', async () => {
  const b = await signInThroughA(stack)
  const nav = await b.get(`${stack.appBUrl}/private`)
  // An IdP that does not step up hands the password-only session straight back: asked without mfa=1.
  const login = new URL(nav.location() as string)
  login.searchParams.delete('mfa')
  const back = await b.get(login.href)
  assert.equal(back.status, 302, 'the IdP hands over at once')
  const tokenUrl = back.location() as string
  assert.ok(tokenUrl.startsWith(`${stack.appBUrl}/private?token=`), tokenUrl)

  const refused = await b.get(tokenUrl)
  assert.equal(refused.status, 403)
  assert.equal(refused.headers.get('location'), null, 'no redirect: no loop')
  assert.match(refused.headers.get('content-type') ?? '', /^text\/html/)
  assert.match(refused.body, /TESSERA_ERR_SECOND_FACTOR_REQUIRED/)
  assert.match(refused.body, /needs a second factor/)
  assert.equal(b.cookies(B_HOST).get(appCookies(stack.appBUrl).session), undefined, 'no session cookie at app B')
  assert.equal((await me(b, stack.appAUrl)).status, 200, 'the session lives on at app A')
})

test('a session the IdP signed with a second factor opens app B, and the same user without it does not', async () => {
  const client = new Redis(redis.url)
  try {
    const { sessions, signer } = storesFor(client, { keyring: stack.config.keyring })
    const user = { username: 'alice', displayName: 'Alice Example', email: 'alice@example.com', groups: ['admins', 'staff'] }
    const limits = { idleMs: 60_000, absoluteMs: 600_000 }
    for (const second of ['otp', 'hwk'] as const) {
      const methods = [...PWD, { method: second, at: Date.now() }]
      const b = new Browser()
      const atB = await sessions.create(user, methods, limits, stack.appBUrl, signer)
      b.cookies(B_HOST).set(appCookies(stack.appBUrl).session, encodeHandle(atB, stack.appSecrets.B, stack.appBUrl))
      const page = await me(b, stack.appBUrl)
      assert.equal(page.status, 200, `pwd+${second} at app B`)
      assert.equal(page.json<{ user: { username: string } }>().user.username, 'alice')
      // The same session without its second factor is refused there.
      const weak = await sessions.create(user, PWD, limits, stack.appBUrl, signer)
      const w = new Browser()
      w.cookies(B_HOST).set(appCookies(stack.appBUrl).session, encodeHandle(weak, stack.appSecrets.B, stack.appBUrl))
      assert.equal((await me(w, stack.appBUrl)).status, 401, 'password only at app B')
    }
  } finally {
    client.disconnect()
  }
})

for (const adapter of ADAPTERS) {
  test(`the full step-up through app B (${adapter}): the IdP asks for the code, adds otp to the same session, app B opens and app A keeps it`, async () => {
    // A user of its own per run: factors are kept per user name in the one Redis these stacks share.
    const user = `paula-${adapter}`
    const s = await startStack(redis, { env: { FACTOR_KEYS: newKey('f1'), USERS_FILE: writeFactorUsers({ [user]: [] }) }, secondFactorApps: ['B'], adapterB: adapter })
    try {
      const b = await passwordOnly(s.idpUrl, s.appAUrl, user)
      const { secret } = await enrolOnSecurityPage(b, s.idpUrl)
      const nav = await b.get(`${s.appBUrl}/private`)
      assert.equal(nav.status, 302)
      const login = new URL(nav.location() as string)
      assert.equal(`${login.origin}${login.pathname}`, `${s.idpUrl}/login`)
      assert.equal(login.searchParams.get('mfa'), '1')
      const asked = await b.get(login.href)
      assert.equal(asked.location(), `${s.idpUrl}/login/second-factor`, 'the IdP asks for the missing factor, no token yet')
      // The enrolment spent this step's code: the next step's is still accepted (±1 step).
      const handed = await postFactor(b, s.idpUrl, { code: codeAt(secret, 1) })
      assert.equal(handed.status, 303)
      assert.ok(handed.location()?.startsWith(`${s.appBUrl}/private?token=`), handed.location())
      const hops = await b.navigate(handed.location() as string)
      assert.deepEqual(hops.map((h) => h.status), [302, 200], 'redeemed, then the clean URL')
      assert.match(hops.at(-1)?.body ?? '', new RegExp(`Signed in as <strong>${user}</strong>`))
      // One session: written at B (second factor required), read at A (no option), with no new sign-in.
      assert.equal((await b.post(`${s.appBUrl}/api/note`, { note: 'after step-up' }, 'application/json')).status, 200)
      const atA = await me(b, s.appAUrl)
      assert.equal(atA.status, 200)
      assert.equal(atA.json<{ data: { note: string } }>().data.note, 'after step-up')
      assert.equal((await b.get(`${s.appBUrl}/private`)).status, 200, 'app B keeps opening it')
    } finally {
      await s.close()
    }
  })
}
