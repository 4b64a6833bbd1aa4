/**
 * Passkeys over HTTP (real sockets, real Redis), with a software authenticator playing the browser's
 * passkey manager: register on the security page, sign in with the passkey alone through app A and
 * reach app B, and each way a passkey answer must be refused (a replayed challenge, another origin, a
 * counter gone back, an unknown or removed credential); removal, and its refusal for a last factor.
 */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import type { Redis } from 'ioredis'
import { Browser } from '../helpers/browser.js'
import { assertHandedOver, confirmPassword, passwordOnly, postPassword, writeFactorUsers } from '../helpers/factors.js'
import { openLogin, passkeySignIn, postOptions, registerPasskey, signedInWith } from '../helpers/passkeys.js'
import { type TestRedis } from '../helpers/redis-server.js'
import { formFields, newKey, useStack, type Stack } from '../helpers/stack.js'
import { SoftAuthenticator } from '../helpers/soft-authenticator.js'
import { claimedSid } from '../../src/shared/handle-cookie.js'
import { keys } from '../../src/shared/keys.js'
import { PasskeyStore } from '../../src/idp/factors/passkey-store.js'
import { relyingParty, registrationOptions, verifyRegistration } from '../../src/idp/factors/webauthn.js'

let redis: TestRedis
let stack: Stack
let client: Redis
// One user per test: a user with a passkey is asked for a second step after the password.
const USERS = ['carol', 'dave', 'erin', 'frank', 'grace', 'heidi', 'ivan', 'judy', 'kim', 'leo', 'mia', 'noah', 'pia', 'quinn']
useStack((r, s) => { redis = r; stack = s; client = r.client() }, {
  env: { USERS_FILE: writeFactorUsers({ ...Object.fromEntries(USERS.map((u) => [u, []])), root: ['admins'], olga: ['admins'] }), SECOND_FACTOR_GROUPS: 'admins', FACTOR_KEYS: newKey('f1') },
})

test('a passkey registered at the IdP signs in alone through app A, and app B on another host opens with no prompt', async () => {
  const auth = new SoftAuthenticator(stack.idpUrl)
  const { browser: first } = await registerPasskey(stack, auth, 'carol', 'Laptop')
  const security = await first.get(`${stack.idpUrl}/security`)
  assert.match(security.body, /value="Laptop"/, 'the security page lists the passkey by its name')

  const b = new Browser()
  const fields = await openLogin(b, stack)
  const options = await postOptions(b, `${stack.idpUrl}/login/passkey/options`, fields.csrf as string)
  const request = options.json<{ challenge: string; rpId: string; userVerification: string; allowCredentials?: { id: string }[] }>()
  assert.equal(request.rpId, '127.0.0.1', 'the RP ID is the IdP\'s host')
  assert.equal(request.userVerification, 'required')
  assert.deepEqual(request.allowCredentials ?? [], [], 'discoverable: no user named before the passkey')
  assert.ok(Buffer.from(request.challenge, 'base64url').length >= 16, 'a challenge of at least 128 bits')
  const signedIn = await b.post(`${stack.idpUrl}/login/passkey`, { ...fields, response: JSON.stringify(auth.assert(request)) })
  assert.equal(signedIn.status, 303, signedIn.body.slice(0, 300))
  const hops = await b.navigate(signedIn.location() as string)
  assert.match(hops.at(-1)?.body ?? '', /Signed in as <strong>carol<\/strong>/)
  assert.deepEqual(await signedInWith(b, client), ['hwk'], 'the session says: a hardware-backed key, no password')

  const atB = await b.navigate(`${stack.appBUrl}/private`)
  assert.deepEqual(atB.map((h) => h.status), [302, 302, 302, 200], 'app B -> IdP -> app B with token -> page: no form')
  assert.match(atB.at(-1)?.body ?? '', /Signed in as <strong>carol<\/strong>/)
})

test('a challenge is used once: the same answer again is refused', async () => {
  const auth = new SoftAuthenticator(stack.idpUrl)
  await registerPasskey(stack, auth, 'dave')
  const b = new Browser()
  const fields = await openLogin(b, stack)
  const request = (await postOptions(b, `${stack.idpUrl}/login/passkey/options`, fields.csrf as string)).json<{ challenge: string }>()
  const answer = auth.assert(request)
  assert.equal((await b.post(`${stack.idpUrl}/login/passkey`, { ...fields, response: JSON.stringify(answer) })).status, 303)
  // The same browser (its WebAuthn cookie kept), signed out at the IdP, a new form, the old answer.
  b.cookies('127.0.0.1').delete('tessera_idp')
  assert.ok(b.cookies('127.0.0.1').has('tessera_wa'), 'the browser still holds its WebAuthn cookie')
  const fresh = formFields((await b.get(`${stack.idpUrl}/login`)).body)
  const replayed = await b.post(`${stack.idpUrl}/login/passkey`, { ...fresh, response: JSON.stringify(answer) })
  assert.equal(replayed.status, 401)
  assert.match(replayed.body, /TESSERA_ERR_PASSKEY|That passkey could not be used/)
  assert.doesNotMatch(replayed.headers.get('set-cookie') ?? '', /tessera_idp=[^;]/, 'no session')
})

test('an answer signed for another origin (a phishing page relaying the challenge) is refused', async () => {
  const auth = new SoftAuthenticator(stack.idpUrl)
  await registerPasskey(stack, auth, 'erin')
  const b = new Browser()
  const refused = await passkeySignIn(b, stack, await openLogin(b, stack), auth, { origin: 'http://127.0.0.1.evil.example' })
  assert.equal(refused.status, 401)
  assert.equal(refused.location(), undefined)
})

test('a sign counter that goes back (a cloned authenticator) is refused', async () => {
  const auth = new SoftAuthenticator(stack.idpUrl)
  await registerPasskey(stack, auth, 'frank')
  const b = new Browser()
  assert.equal((await passkeySignIn(b, stack, await openLogin(b, stack), auth)).status, 303)
  const clone = new Browser()
  const cred = auth.credentials[0]
  assert.ok(cred)
  cred.counter = 0 // the clone signs with a counter the IdP has already seen
  const refused = await passkeySignIn(clone, stack, await openLogin(clone, stack), auth)
  assert.equal(refused.status, 401)
})

test('an unknown credential is refused with the same answer as any other failure', async () => {
  const stranger = new SoftAuthenticator(stack.idpUrl)
  stranger.register({ challenge: 'never-sent', rp: { id: '127.0.0.1' }, user: { id: 'AAAA' } }) // never shown to the IdP
  const b = new Browser()
  const refused = await passkeySignIn(b, stack, await openLogin(b, stack), stranger)
  assert.equal(refused.status, 401)
  assert.match(refused.body, /That passkey could not be used/)
  // A real user's passkey answering without user verification fails for another reason: the answer
  // (status and page, but for the form's fresh tokens) is the same, so it tells nothing of who exists.
  const auth = new SoftAuthenticator(stack.idpUrl)
  await registerPasskey(stack, auth, 'quinn')
  const b2 = new Browser()
  const unverified = await passkeySignIn(b2, stack, await openLogin(b2, stack), auth, { unverified: true })
  const shape = (p: { status: number; body: string }): unknown => ({ status: p.status, body: p.body.replace(/value="[^"]*"/g, 'value=""') })
  assert.deepEqual(shape(unverified), shape(refused))
})

test('a removed passkey signs no one in any more', async () => {
  const auth = new SoftAuthenticator(stack.idpUrl)
  const { browser, id } = await registerPasskey(stack, auth, 'grace', 'Old phone')
  const csrf = await confirmPassword(browser, stack.idpUrl)
  const removed = await browser.post(`${stack.idpUrl}/security/passkeys/remove`, { csrf, id })
  assert.equal(removed.status, 303)
  assert.doesNotMatch((await browser.get(`${stack.idpUrl}/security`)).body, /Old phone/)
  const b = new Browser()
  assert.equal((await passkeySignIn(b, stack, await openLogin(b, stack), auth)).status, 401)
})

test('changes need the page\'s CSRF token and a fresh password; a last factor under policy is not removed', async () => {
  const auth = new SoftAuthenticator(stack.idpUrl)
  const { browser, id } = await registerPasskey(stack, auth, 'heidi')
  const { csrf } = formFields((await browser.get(`${stack.idpUrl}/security`)).body)
  assert.equal((await browser.post(`${stack.idpUrl}/security/passkeys/remove`, { csrf: 'forged', id }, 'application/json')).json<{ code: string }>().code, 'TESSERA_ERR_CSRF')
  // The password typed at registration is fresh for 5 minutes; without it, nothing changes.
  await client.del(keys.freshAuth(claimedSid(browser.cookies('127.0.0.1').get('tessera_idp')) as string))
  const stale = await browser.post(`${stack.idpUrl}/security/passkeys/remove`, { csrf: csrf as string, id }, 'application/json')
  assert.equal(stale.status, 403)
  assert.equal(stale.json<{ code: string }>().code, 'TESSERA_ERR_REAUTH_REQUIRED')
  assert.equal((await new Browser().post(`${stack.idpUrl}/security/passkeys/options`, { csrf: csrf as string }, 'application/json')).status, 401)

  // root (group admins) must have a second factor: a passkey, set up beforehand, is the only one.
  const store = new PasskeyStore(client)
  const rp = relyingParty(stack.idpUrl)
  const rootAuth = new SoftAuthenticator(stack.idpUrl)
  const opts = await registrationOptions(rp, { username: 'root', displayName: 'root', handle: await store.userHandle('root') }, [])
  const credential = await verifyRegistration(rp, rootAuth.register(opts) as never, opts.challenge)
  assert.ok(await store.add('root', credential, 'Only key'))
  const r = new Browser()
  const signedIn = await passkeySignIn(r, stack, await openLogin(r, stack), rootAuth)
  assert.equal(signedIn.status, 303, 'a passkey satisfies the policy at sign-in')
  const rootCsrf = await confirmPassword(r, stack.idpUrl)
  const page = await r.get(`${stack.idpUrl}/security`)
  assert.doesNotMatch(page.body, /action="\/security\/passkeys\/remove"/, 'no remove button for the last required factor')
  const refused = await r.post(`${stack.idpUrl}/security/passkeys/remove`, { csrf: rootCsrf, id: credential.id }, 'application/json')
  assert.equal(refused.status, 409)
  assert.equal(refused.json<{ code: string }>().code, 'TESSERA_ERR_FACTOR_REQUIRED')
  assert.ok(await store.get('root', credential.id), 'still registered')
})

test('bad options requests and garbage answers get 4xx, never a 500', async () => {
  const b = new Browser()
  const fields = await openLogin(b, stack)
  const forged = await postOptions(b, `${stack.idpUrl}/login/passkey/options`, 'not-the-token')
  assert.equal(forged.status, 403)
  assert.equal(forged.json<{ code: string }>().code, 'TESSERA_ERR_CSRF')
  await postOptions(b, `${stack.idpUrl}/login/passkey/options`, fields.csrf as string)
  for (const garbage of ['not json', '{"id":1}', JSON.stringify({ id: 'x', type: 'public-key', response: {} }), '"x"', 'null']) {
    const res = await b.post(`${stack.idpUrl}/login/passkey`, { ...fields, response: garbage })
    assert.equal(res.status, 401, garbage)
  }
  const judy = await registerPasskey(stack, new SoftAuthenticator(stack.idpUrl), 'judy')
  const csrf = await confirmPassword(judy.browser, stack.idpUrl)
  await postOptions(judy.browser, `${stack.idpUrl}/security/passkeys/options`, csrf)
  for (const garbage of ['not json', '{}', JSON.stringify({ id: 'x', type: 'public-key', response: { clientDataJSON: 'e30', attestationObject: 'oA' } })]) {
    const res = await judy.browser.post(`${stack.idpUrl}/security/passkeys`, { csrf, response: garbage })
    assert.equal(res.status, 401, garbage)
  }
  assert.equal((await b.post(`${stack.idpUrl}/security/passkeys/rename`, { csrf, id: judy.id, name: 'x' }, 'application/json')).status, 401, 'no session: 401')
})

/** The second-factor page's passkey form: its fields, and the options the IdP gives for it. */
async function secondStepOptions(b: Browser): Promise<{ csrf: string; options: Record<string, unknown> & { challenge: string; allowCredentials?: { id: string }[] } }> {
  const page = await b.get(`${stack.idpUrl}/login/second-factor`)
  assert.equal(page.status, 200)
  assert.match(page.body, /action="\/login\/second-factor\/passkey"/, 'the second step offers a passkey')
  const { csrf } = formFields(page.body)
  const options = await postOptions(b, `${stack.idpUrl}/login/second-factor/passkey/options`, csrf as string)
  assert.equal(options.status, 200)
  return { csrf: csrf as string, options: options.json() }
}

test('after a password, the user\'s own passkey is the second step: the session records pwd then hwk', async () => {
  const auth = new SoftAuthenticator(stack.idpUrl)
  const { id } = await registerPasskey(stack, auth, 'ivan')
  const b = new Browser()
  const posted = await postPassword(b, stack.idpUrl, stack.appAUrl, 'ivan')
  assert.equal(posted.location(), `${stack.idpUrl}/login/second-factor`, 'a user with a passkey is asked for it')
  const { csrf, options } = await secondStepOptions(b)
  assert.deepEqual(options.allowCredentials?.map((c) => c.id), [id], 'only ivan\'s passkey is offered')
  // Another user's passkey does not answer for ivan.
  const other = new SoftAuthenticator(stack.idpUrl)
  await registerPasskey(stack, other, 'kim')
  const wrong = await b.post(`${stack.idpUrl}/login/second-factor/passkey`, { csrf, response: JSON.stringify(other.assert({ ...options, allowCredentials: [] })) })
  assert.equal(wrong.status, 401)
  assert.match(wrong.body, /That passkey could not be used/)
  const again = await secondStepOptions(b)
  const done = await b.post(`${stack.idpUrl}/login/second-factor/passkey`, { csrf: again.csrf, response: JSON.stringify(auth.assert(again.options)) })
  await assertHandedOver(b, done, stack.appAUrl, 'ivan')
  assert.deepEqual(await signedInWith(b, client), ['pwd', 'hwk'])
})

test('step-up: mfa=1 on a password-only session is answered with a passkey, on the same session', async () => {
  const b = await passwordOnly(stack.idpUrl, stack.appAUrl, 'leo')
  const auth = new SoftAuthenticator(stack.idpUrl)
  await registerPasskey(stack, auth, 'leo', 'Key', b)
  assert.deepEqual(await signedInWith(b, client), ['pwd'])
  const sid = claimedSid(b.cookies('127.0.0.1').get('tessera_idp'))
  b.clear(new URL(stack.appAUrl).hostname)
  const first = await b.get(`${stack.appAUrl}/private`)
  const asked = await b.get(`${first.location() as string}&mfa=1`)
  assert.equal(asked.location(), `${stack.idpUrl}/login/second-factor`)
  const { csrf, options } = await secondStepOptions(b)
  const done = await b.post(`${stack.idpUrl}/login/second-factor/passkey`, { csrf, response: JSON.stringify(auth.assert(options)) })
  await assertHandedOver(b, done, stack.appAUrl, 'leo')
  assert.equal(claimedSid(b.cookies('127.0.0.1').get('tessera_idp')), sid, 'the same session')
  assert.deepEqual(await signedInWith(b, client), ['pwd', 'hwk'])
})

test('"Confirm it is you" with a passkey instead of the password opens changes for the session; another user\'s passkey does not', async () => {
  const auth = new SoftAuthenticator(stack.idpUrl)
  const { browser: b, id } = await registerPasskey(stack, auth, 'mia')
  await client.del(keys.freshAuth(claimedSid(b.cookies('127.0.0.1').get('tessera_idp')) as string))
  const page = await b.get(`${stack.idpUrl}/security`)
  assert.match(page.body, /action="\/security\/confirm\/passkey"/, 'the confirm step offers the passkey')
  const { csrf } = formFields(page.body)
  const stranger = new SoftAuthenticator(stack.idpUrl)
  await registerPasskey(stack, stranger, 'noah')
  const asked = (await postOptions(b, `${stack.idpUrl}/security/confirm/passkey/options`, csrf as string)).json<{ challenge: string; allowCredentials: { id: string }[] }>()
  assert.deepEqual(asked.allowCredentials.map((c) => c.id), [id], 'only mia\'s own passkeys')
  const refused = await b.post(`${stack.idpUrl}/security/confirm/passkey`, { csrf: csrf as string, response: JSON.stringify(stranger.assert({ ...asked, allowCredentials: [] })) })
  assert.equal(refused.status, 401)
  assert.equal((await b.post(`${stack.idpUrl}/security/passkeys/remove`, { csrf: csrf as string, id }, 'application/json')).status, 403, 'still not fresh')
  const again = (await postOptions(b, `${stack.idpUrl}/security/confirm/passkey/options`, csrf as string)).json<{ challenge: string }>()
  const confirmed = await b.post(`${stack.idpUrl}/security/confirm/passkey`, { csrf: csrf as string, response: JSON.stringify(auth.assert(again)) })
  assert.equal(confirmed.status, 303)
  assert.equal((await b.post(`${stack.idpUrl}/security/passkeys/remove`, { csrf: csrf as string, id })).status, 303, 'fresh: the change goes through')
})

test('a user who must have a second factor and has none can register a passkey right after the password, and is signed in with it', async () => {
  const b = new Browser()
  const posted = await postPassword(b, stack.idpUrl, stack.appAUrl, 'olga')
  assert.equal(posted.location(), `${stack.idpUrl}/login/second-factor`, 'no session yet: enrol first')
  const page = await b.get(`${stack.idpUrl}/login/second-factor`)
  assert.match(page.body, /action="\/login\/second-factor\/passkey\/register"/, 'a passkey is offered beside the authenticator app')
  const { csrf } = formFields(page.body)
  const auth = new SoftAuthenticator(stack.idpUrl)
  const options = await postOptions(b, `${stack.idpUrl}/login/second-factor/passkey/register/options`, csrf as string)
  assert.equal(options.status, 200)
  const created = options.json<{ challenge: string; rp: { id?: string }; user: { id: string; name: string }; authenticatorSelection: { residentKey: string; userVerification: string } }>()
  assert.equal(created.user.name, 'olga')
  assert.deepEqual([created.authenticatorSelection.residentKey, created.authenticatorSelection.userVerification], ['required', 'required'])
  const done = await b.post(`${stack.idpUrl}/login/second-factor/passkey/register`, { csrf: csrf as string, response: JSON.stringify(auth.register(created)) })
  await assertHandedOver(b, done, stack.appAUrl, 'olga')
  assert.deepEqual(await signedInWith(b, client), ['pwd', 'hwk'])
  // The passkey is olga's from now on: it signs her in alone.
  const c = new Browser()
  assert.equal((await passkeySignIn(c, stack, await openLogin(c, stack), auth)).status, 303)
  // Enrolment at sign-in is for a user with no factor: olga now has one.
  const again = new Browser()
  await postPassword(again, stack.idpUrl, stack.appAUrl, 'olga')
  const { csrf: next } = formFields((await again.get(`${stack.idpUrl}/login/second-factor`)).body)
  const refused = await postOptions(again, `${stack.idpUrl}/login/second-factor/passkey/register/options`, next as string)
  assert.equal(refused.status, 400)
})

test('a passkey sign-in from /login?next=/sessions comes back to the sessions page, as the password form does', async () => {
  const auth = new SoftAuthenticator(stack.idpUrl)
  await registerPasskey(stack, auth, 'pia')
  const b = new Browser()
  const form = await b.get(`${stack.idpUrl}/login?next=/sessions`)
  const fields = formFields(form.body)
  assert.equal(fields.next, '/sessions')
  const signedIn = await passkeySignIn(b, stack, fields, auth)
  assert.equal(signedIn.status, 303)
  assert.equal(signedIn.location(), `${stack.idpUrl}/sessions`)
})
