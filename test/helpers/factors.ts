/** Second-factor steps as a user takes them: sign in, confirm the password, enrol TOTP, type a code. */
import assert from 'node:assert/strict'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Secret, TOTP } from 'otpauth'
import { Browser, type Page } from './browser.js'
import { formFields } from './forms.js'
import { PASSWORD, PASSWORD_HASH } from './users.js'

/** A USERS_FILE with users for the second-factor tests, each with PASSWORD, in the groups given. */
export function writeFactorUsers(users: Record<string, readonly string[]>): string {
  const file = join(mkdtempSync(join(tmpdir(), 'tessera-users-')), 'users.yml')
  const lines = Object.entries(users).map(([name, groups]) =>
    `  ${name}:\n    displayname: ${name}\n    password: "${PASSWORD_HASH}"\n    groups: [${groups.join(', ')}]\n`)
  writeFileSync(file, `users:\n${lines.join('')}`)
  return file
}

/** The code of `secret` (base32) at `offsetSteps` 30-second steps from now. */
export function codeAt(secret: string, offsetSteps = 0): string {
  return TOTP.generate({ secret: Secret.fromBase32(secret), algorithm: 'SHA1', digits: 6, period: 30, timestamp: Date.now() + offsetSteps * 30_000 })
}

/** Opens app A's private page and posts the right password at the IdP; resolves to the POST's answer. */
export async function postPassword(b: Browser, idpUrl: string, appUrl: string, username: string, loginUrl?: (url: string) => string): Promise<Page> {
  const first = await b.get(`${appUrl}/private`)
  assert.equal(first.status, 302)
  const login = (loginUrl ?? ((u) => u))(first.location() as string)
  const form = await b.get(login)
  assert.equal(form.status, 200)
  return b.post(`${idpUrl}/login`, { ...formFields(form.body), username, password: PASSWORD })
}

/** Follows a hand-over to the app and asserts the user is signed in there. */
export async function assertHandedOver(b: Browser, page: Page, appUrl: string, who: string): Promise<void> {
  assert.equal(page.status, 303, `answered ${page.status}: ${page.body.slice(0, 300)}`)
  const back = new URL(page.location() as string)
  assert.equal(back.origin, appUrl)
  assert.ok(back.searchParams.get('token'), 'a hand-over token')
  await b.navigate(back.href)
  const me = await b.get(`${appUrl}/api/me`, 'application/json')
  assert.equal(me.status, 200)
  assert.equal(me.json<{ user: { username: string } }>().user.username, who)
}

/** A fresh security page: GET /security, the password typed again. Resolves to the page's CSRF token. */
export async function confirmPassword(b: Browser, idpUrl: string): Promise<string> {
  const page = await b.get(`${idpUrl}/security`)
  assert.equal(page.status, 200)
  const { csrf } = formFields(page.body)
  assert.ok(csrf)
  const confirmed = await b.post(`${idpUrl}/security/confirm`, { csrf, password: PASSWORD })
  assert.equal(confirmed.status, 303)
  const fresh = await b.get(`${idpUrl}/security`)
  assert.match(fresh.body, /id="totp-status"/)
  return csrf
}

/** The secret an enrolment page shows as text. */
export function shownSecret(page: Page): string {
  const m = /<code id="totp-secret">([A-Z2-7 ]+)<\/code>/.exec(page.body)
  assert.ok(m, 'the enrolment page shows the secret')
  return (m[1] as string).replace(/ /g, '')
}

/** The recovery codes a page shows. */
export function shownCodes(page: Page): string[] {
  return [...page.body.matchAll(/<li><code>([a-z0-9-]+)<\/code><\/li>/g)].map((m) => m[1] as string)
}

/** Enrols TOTP through the security page of a signed-in browser; resolves to its secret and recovery codes. */
export async function enrolOnSecurityPage(b: Browser, idpUrl: string): Promise<{ secret: string; codes: string[] }> {
  const csrf = await confirmPassword(b, idpUrl)
  const start = await b.post(`${idpUrl}/security/totp/start`, { csrf })
  assert.equal(start.status, 200)
  const secret = shownSecret(start)
  const done = await b.post(`${idpUrl}/security/totp/confirm`, { ...formFields(start.body), code: codeAt(secret) })
  assert.equal(done.status, 200)
  const codes = shownCodes(done)
  assert.equal(codes.length, 10)
  return { secret, codes }
}

/** Signs a new browser in through app A with the password only (a user with no factor). */
export async function passwordOnly(idpUrl: string, appUrl: string, username: string): Promise<Browser> {
  const b = new Browser()
  await assertHandedOver(b, await postPassword(b, idpUrl, appUrl, username), appUrl, username)
  return b
}

/** Posts to the second-factor form the browser is at; resolves to the answer. */
export async function postFactor(b: Browser, idpUrl: string, field: { code: string } | { recovery: string }): Promise<Page> {
  const page = await b.get(`${idpUrl}/login/second-factor`)
  assert.equal(page.status, 200, `second-factor page: ${page.status}`)
  return b.post(`${idpUrl}/login/second-factor`, { ...formFields(page.body), ...field })
}
