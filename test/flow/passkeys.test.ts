/**
 * Passkeys over HTTP (real sockets, real Redis), with a software authenticator playing the browser's
 * passkey manager: sign in with a passkey alone through app A and reach app B, and each way a passkey
 * answer must be refused (a replayed challenge, another origin, a counter gone back, an unknown or
 * removed credential).
 */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { Redis } from 'ioredis'
import { Browser, type Page } from '../helpers/browser.js'
import { type TestRedis } from '../helpers/redis-server.js'
import { formFields, useStack, type Stack } from '../helpers/stack.js'
import { SoftAuthenticator } from '../helpers/soft-authenticator.js'
import { claimedSid } from '../../src/shared/handle-cookie.js'
import { keys } from '../../src/shared/keys.js'
import { PasskeyStore } from '../../src/idp/factors/passkey-store.js'
import { relyingParty, registrationOptions, verifyRegistration } from '../../src/idp/factors/webauthn.js'

let redis: TestRedis
let stack: Stack
useStack((r, s) => { redis = r; stack = s })

/** Registers a passkey for alice straight into the store, through the real registration check. */
async function enrol(auth: SoftAuthenticator, username = 'alice'): Promise<string> {
  const client = new Redis(redis.url)
  try {
    const store = new PasskeyStore(client)
    const rp = relyingParty(stack.idpUrl)
    const options = await registrationOptions(rp, { username, displayName: username, handle: await store.userHandle(username) }, [])
    const credential = await verifyRegistration(rp, auth.register(options) as never, options.challenge)
    assert.ok(await store.add(username, credential, 'Test key'))
    return credential.id
  } finally {
    client.disconnect()
  }
}

interface LoginForm { readonly fields: Record<string, string>; readonly loginUrl: string }

/** App A's private page sends the browser to the IdP's form; resolves to the form's hidden fields. */
async function openLogin(b: Browser): Promise<LoginForm> {
  const first = await b.get(`${stack.appAUrl}/private`)
  const loginUrl = first.location() as string
  const form = await b.get(loginUrl)
  assert.equal(form.status, 200)
  assert.match(form.body, /Sign in with a passkey/)
  return { fields: formFields(form.body), loginUrl }
}

async function passkeyOptions(b: Browser, csrf: string): Promise<Page> {
  return b.request(`${stack.idpUrl}/login/passkey/options`, {
    method: 'POST', headers: { 'content-type': 'application/json', accept: 'application/json' }, body: JSON.stringify({ csrf }),
  })
}

/** The methods (amr) in the identity the IdP signed into this browser's session. */
async function signedInWith(b: Browser): Promise<string[]> {
  const sid = claimedSid(b.cookies('127.0.0.1').get('tessera_idp'))
  assert.ok(sid, 'the browser holds an IdP session')
  const client = new Redis(redis.url)
  try {
    const record = await client.hget(keys.session(sid), 'u')
    const payload = JSON.parse(Buffer.from((record ?? '').split('.')[1] ?? '', 'base64url').toString()) as { amr: { m: string }[] }
    return payload.amr.map((a) => a.m)
  } finally {
    client.disconnect()
  }
}

async function postAnswer(b: Browser, fields: Record<string, string>, answer: unknown): Promise<Page> {
  return b.post(`${stack.idpUrl}/login/passkey`, { ...fields, response: JSON.stringify(answer) })
}

test('a passkey alone signs in through app A, and app B opens with no prompt', async () => {
  const auth = new SoftAuthenticator(stack.idpUrl)
  await enrol(auth)
  const b = new Browser()
  const { fields } = await openLogin(b)
  const options = await passkeyOptions(b, fields.csrf as string)
  assert.equal(options.status, 200)
  const request = options.json<{ challenge: string; rpId: string; userVerification: string; allowCredentials?: { id: string }[] }>()
  assert.equal(request.rpId, '127.0.0.1', 'the RP ID is the IdP\'s host')
  assert.equal(request.userVerification, 'required')
  assert.deepEqual(request.allowCredentials ?? [], [], 'discoverable: no user named before the passkey')

  const signedIn = await postAnswer(b, fields, auth.assert(request))
  assert.equal(signedIn.status, 303, signedIn.body.slice(0, 300))
  const hops = await b.navigate(signedIn.location() as string)
  assert.match(hops.at(-1)?.body ?? '', /Alice Example/)
  assert.deepEqual(await signedInWith(b), ['hwk'], 'the session says: signed in with a hardware-backed key')

  const atB = await b.navigate(`${stack.appBUrl}/private`)
  assert.deepEqual(atB.map((h) => h.status), [302, 302, 302, 200], 'app B -> IdP -> app B with token -> page: no form')
  assert.match(atB.at(-1)?.body ?? '', /Alice Example/)
})

test('a challenge is used once: the same answer again is refused', async () => {
  const auth = new SoftAuthenticator(stack.idpUrl)
  await enrol(auth)
  const b = new Browser()
  const { fields } = await openLogin(b)
  const request = (await passkeyOptions(b, fields.csrf as string)).json<{ challenge: string }>()
  const answer = auth.assert(request)
  assert.equal((await postAnswer(b, fields, answer)).status, 303)
  // The same browser, signed out at the IdP, a new form (signing in ended the old one's CSRF token), the old answer.
  b.cookies('127.0.0.1').delete('tessera_idp')
  const form = await b.get(`${stack.idpUrl}/login`)
  const fresh = formFields(form.body)
  assert.ok(b.cookies('127.0.0.1').has('tessera_wa'), 'the browser still holds its WebAuthn cookie')
  const replayed = await postAnswer(b, fresh, answer)
  assert.equal(replayed.status, 401)
  assert.match(replayed.body, /That passkey could not be used/)
  assert.doesNotMatch(replayed.headers.get('set-cookie') ?? '', /tessera_idp=[^;]/, 'no session')
})

test('an answer signed for another origin (a phishing page) is refused', async () => {
  const auth = new SoftAuthenticator(stack.idpUrl)
  await enrol(auth)
  const b = new Browser()
  const { fields } = await openLogin(b)
  const request = (await passkeyOptions(b, fields.csrf as string)).json<{ challenge: string }>()
  const refused = await postAnswer(b, fields, auth.assert(request, { origin: 'http://127.0.0.1.evil.example' }))
  assert.equal(refused.status, 401)
  assert.equal(refused.location(), undefined)
})

test('a sign counter that goes back (a cloned authenticator) is refused', async () => {
  const auth = new SoftAuthenticator(stack.idpUrl)
  await enrol(auth)
  const b = new Browser()
  let { fields } = await openLogin(b)
  assert.equal((await postAnswer(b, fields, auth.assert((await passkeyOptions(b, fields.csrf as string)).json()))).status, 303)
  const clone = new Browser()
  ;({ fields } = await openLogin(clone))
  const cred = auth.credentials[0]
  assert.ok(cred)
  cred.counter = 0 // the clone signs with a counter the IdP has already seen
  const refused = await postAnswer(clone, fields, auth.assert((await passkeyOptions(clone, fields.csrf as string)).json()))
  assert.equal(refused.status, 401)
})

test('an unknown credential is refused, with the same answer as any other failure', async () => {
  const enrolled = new SoftAuthenticator(stack.idpUrl)
  await enrol(enrolled)
  const stranger = new SoftAuthenticator(stack.idpUrl)
  stranger.register({ challenge: 'x', rp: { id: '127.0.0.1' }, user: { id: 'AAAA' } }) // never sent to the IdP
  const b = new Browser()
  const { fields } = await openLogin(b)
  const refused = await postAnswer(b, fields, stranger.assert((await passkeyOptions(b, fields.csrf as string)).json()))
  assert.equal(refused.status, 401)
  assert.match(refused.body, /That passkey could not be used/)
})

test('options without the login form\'s CSRF token are refused, and garbage answers are a 401, not a 500', async () => {
  const b = new Browser()
  const { fields } = await openLogin(b)
  const forged = await passkeyOptions(b, 'not-the-token')
  assert.equal(forged.status, 403)
  assert.equal(forged.json<{ code: string }>().code, 'TESSERA_ERR_CSRF')
  await passkeyOptions(b, fields.csrf as string)
  for (const garbage of ['not json', '{"id":1}', JSON.stringify({ id: 'x', type: 'public-key', response: {} })]) {
    const res = await b.post(`${stack.idpUrl}/login/passkey`, { ...fields, response: garbage })
    assert.equal(res.status, 401, garbage)
  }
})
