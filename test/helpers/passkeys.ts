/** Passkey steps as a browser takes them, over HTTP, with a software authenticator answering for the user. */
import assert from 'node:assert/strict'
import type { Redis } from 'ioredis'
import { Browser, type Page } from './browser.js'
import { formFields } from './forms.js'
import { confirmPassword, passwordOnly } from './factors.js'
import type { SoftAuthenticator, AnswerOptions } from './soft-authenticator.js'
import { claimedSid } from '../../src/shared/handle-cookie.js'
import { keys } from '../../src/shared/keys.js'

export interface Urls { readonly idpUrl: string; readonly appAUrl: string }

/** POSTs `{ csrf }` as JSON, as public/passkeys.js does to fetch a ceremony's options. */
export async function postOptions(b: Browser, url: string, csrf: string): Promise<Page> {
  return b.request(url, {
    method: 'POST', headers: { 'content-type': 'application/json', accept: 'application/json' }, body: JSON.stringify({ csrf }),
  })
}

/**
 * Registers a passkey for `username` on the security page of a browser signed in with its password
 * (the password typed again first), as a user clicking "Add a passkey" would. Resolves to the
 * browser, signed in, and the new credential's id.
 */
export async function registerPasskey(s: Urls, auth: SoftAuthenticator, username = 'alice', name = 'Test key', b?: Browser): Promise<{ browser: Browser; id: string }> {
  const browser = b ?? await passwordOnly(s.idpUrl, s.appAUrl, username)
  const csrf = await confirmPassword(browser, s.idpUrl)
  const options = await postOptions(browser, `${s.idpUrl}/security/passkeys/options`, csrf)
  assert.equal(options.status, 200, options.body.slice(0, 300))
  const answer = auth.register(options.json())
  const added = await browser.post(`${s.idpUrl}/security/passkeys`, { csrf, name, response: JSON.stringify(answer) })
  assert.equal(added.status, 303, added.body.slice(0, 300))
  return { browser, id: answer.id as string }
}

/** App A's private page sends the browser to the IdP's form: its hidden fields (csrf, callback, state). */
export async function openLogin(b: Browser, s: Urls): Promise<Record<string, string>> {
  const first = await b.get(`${s.appAUrl}/private`)
  const form = await b.get(first.location() as string)
  assert.equal(form.status, 200)
  assert.match(form.body, /Sign in with a passkey/)
  return formFields(form.body)
}

/** Signs in with a passkey alone from the login form's fields: options, the authenticator's answer, the post. */
export async function passkeySignIn(b: Browser, s: Urls, fields: Record<string, string>, auth: SoftAuthenticator, answer: AnswerOptions = {}): Promise<Page> {
  const options = await postOptions(b, `${s.idpUrl}/login/passkey/options`, fields.csrf as string)
  assert.equal(options.status, 200)
  return b.post(`${s.idpUrl}/login/passkey`, { ...fields, response: JSON.stringify(auth.assert(options.json(), answer)) })
}

/** The methods (amr) in the identity the IdP signed into this browser's session at `idpHost`. */
export async function signedInWith(b: Browser, redis: Redis, idpHost = '127.0.0.1'): Promise<string[]> {
  const sid = claimedSid(b.cookies(idpHost).get('tessera_idp'))
  assert.ok(sid, 'the browser holds an IdP session')
  const record = await redis.hget(keys.session(sid), 'u')
  const payload = JSON.parse(Buffer.from((record ?? '').split('.')[1] ?? '', 'base64url').toString()) as { amr: { m: string }[] }
  return payload.amr.map((a) => a.m)
}
